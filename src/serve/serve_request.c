/* mlxport serve: parsing of the request bodies (see serve_request.h). Field shapes follow the
 * OpenAI embeddings API, text-embeddings-inference's documented JSON and transformers'
 * zero-shot-classification pipeline; every rejection names the field. */
#include "serve/serve_request.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "core/json.h"

static int fail(char *err, size_t cap, int code, const char *fmt, ...) MP_PRINTF(4, 5);
static int fail(char *err, size_t cap, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, cap, fmt, ap);
  va_end(ap);
  return code;
}

/* a JSON string usable as C text: no embedded NUL, within the size limit */
static int text_ok(const mp_json *v, const char *field, const mp_serve_limits *lim, char *err, size_t cap) {
  if (!v || v->type != MP_JSON_STRING)
    return fail(err, cap, 400, "field %s must be a string, not %s", field, v ? mp_json_type_name(v->type) : "missing");
  if (strlen(v->str) != v->len) return fail(err, cap, 400, "field %s contains a NUL character", field);
  if (lim->max_text_bytes && v->len > lim->max_text_bytes)
    return fail(err, cap, 413, "field %s is %zu bytes; the limit is %zu", field, v->len, lim->max_text_bytes);
  return 0;
}

static int get_bool(const mp_json *root, const char *key, int dflt, int *out, char *err, size_t cap) {
  const mp_json *v = mp_json_get(root, key);
  if (!v || v->type == MP_JSON_NULL) {
    *out = dflt;
    return 0;
  }
  if (v->type != MP_JSON_BOOL)
    return fail(err, cap, 400, "field %s must be a boolean, not %s", key, mp_json_type_name(v->type));
  *out = v->boolean;
  return 0;
}

static int get_str(const mp_json *root, const char *key, const mp_serve_limits *lim, const char **out, char *err,
                   size_t cap) {
  const mp_json *v = mp_json_get(root, key);
  *out = NULL;
  if (!v || v->type == MP_JSON_NULL) return 0;
  int rc = text_ok(v, key, lim, err, cap);
  if (rc) return rc;
  *out = v->str;
  return 0;
}

static int alloc_inputs(mp_serve_req *r, size_t n, int pairs, mp_arena *a, char *err, size_t cap) {
  r->n = n;
  r->texts = mp_arena_alloc(a, (n ? n : 1) * sizeof *r->texts);
  r->pairs = pairs ? mp_arena_alloc(a, (n ? n : 1) * sizeof *r->pairs) : NULL;
  if (!r->texts || (pairs && !r->pairs)) return fail(err, cap, 500, "out of memory");
  return 0;
}

static int check_count(size_t n, const char *field, const mp_serve_limits *lim, char *err, size_t cap) {
  if (n == 0) return fail(err, cap, 400, "field %s must not be empty", field);
  if (lim->max_inputs && n > lim->max_inputs)
    return fail(err, cap, 413, "field %s has %zu inputs; the limit is %zu per request (--max-client-batch)", field, n,
                lim->max_inputs);
  return 0;
}

/* string | [string, ...] into texts */
static int parse_texts(const mp_json *v, const char *field, const mp_serve_limits *lim, mp_serve_req *r, mp_arena *a,
                       char *err, size_t cap) {
  if (!v) return fail(err, cap, 400, "field %s is required", field);
  char name[64];
  if (v->type == MP_JSON_STRING) {
    int rc = text_ok(v, field, lim, err, cap);
    if (rc || (rc = alloc_inputs(r, 1, 0, a, err, cap))) return rc;
    r->texts[0] = v->str;
    r->batched = 0;
    return 0;
  }
  if (v->type != MP_JSON_ARRAY)
    return fail(err, cap, 400, "field %s must be a string or a list of strings, not %s", field,
                mp_json_type_name(v->type));
  int rc = check_count(v->len, field, lim, err, cap);
  if (rc || (rc = alloc_inputs(r, v->len, 0, a, err, cap))) return rc;
  for (size_t i = 0; i < v->len; i++) {
    snprintf(name, sizeof name, "%s[%zu]", field, i);
    if ((rc = text_ok(v->items[i], name, lim, err, cap))) return rc;
    r->texts[i] = v->items[i]->str;
  }
  r->batched = 1;
  return 0;
}

static int is_int_array(const mp_json *v) {
  if (v->type != MP_JSON_ARRAY || !v->len) return 0;
  for (size_t i = 0; i < v->len; i++)
    if (v->items[i]->type != MP_JSON_NUMBER) return 0;
  return 1;
}

static int parse_ids(const mp_json *v, const char *field, mp_serve_req *r, size_t k, mp_arena *a, char *err,
                     size_t cap) {
  r->ids[k] = mp_arena_alloc(a, v->len * sizeof(int32_t));
  if (!r->ids[k]) return fail(err, cap, 500, "out of memory");
  r->n_ids[k] = v->len;
  for (size_t i = 0; i < v->len; i++) {
    const mp_json *x = v->items[i];
    if (!x->is_int || x->i < 0 || x->i > INT32_MAX)
      return fail(err, cap, 400, "field %s[%zu] must be a non-negative integer token id", field, i);
    r->ids[k][i] = (int32_t)x->i;
  }
  return 0;
}

static int parse_openai(const mp_json *root, const mp_serve_limits *lim, mp_serve_req *r, mp_arena *a, char *err,
                        size_t cap) {
  const mp_json *in = mp_json_get(root, "input");
  if (!in) return fail(err, cap, 400, "field input is required");
  int rc;
  if (in->type == MP_JSON_ARRAY && in->len && in->items[0]->type == MP_JSON_NUMBER) { /* one list of ids */
    if (!is_int_array(in)) return fail(err, cap, 400, "field input must be a list of token ids (integers)");
    if ((rc = alloc_inputs(r, 1, 0, a, err, cap))) return rc;
    r->ids = mp_arena_alloc(a, sizeof *r->ids);
    r->n_ids = mp_arena_alloc(a, sizeof *r->n_ids);
    if (!r->ids || !r->n_ids) return fail(err, cap, 500, "out of memory");
    if ((rc = parse_ids(in, "input", r, 0, a, err, cap))) return rc;
    r->batched = 1;
  } else if (in->type == MP_JSON_ARRAY && in->len && in->items[0]->type == MP_JSON_ARRAY) { /* list of id lists */
    if ((rc = check_count(in->len, "input", lim, err, cap))) return rc;
    if ((rc = alloc_inputs(r, in->len, 0, a, err, cap))) return rc;
    r->ids = mp_arena_alloc(a, in->len * sizeof *r->ids);
    r->n_ids = mp_arena_alloc(a, in->len * sizeof *r->n_ids);
    if (!r->ids || !r->n_ids) return fail(err, cap, 500, "out of memory");
    char name[64];
    for (size_t i = 0; i < in->len; i++) {
      snprintf(name, sizeof name, "input[%zu]", i);
      if (!is_int_array(in->items[i]))
        return fail(err, cap, 400, "field %s must be a non-empty list of token ids", name);
      if ((rc = parse_ids(in->items[i], name, r, i, a, err, cap))) return rc;
    }
    r->batched = 1;
  } else {
    if ((rc = parse_texts(in, "input", lim, r, a, err, cap))) return rc;
    r->batched = 1; /* OpenAI always answers a list */
  }
  const char *fmt;
  if ((rc = get_str(root, "encoding_format", lim, &fmt, err, cap))) return rc;
  if (fmt && strcmp(fmt, "float") && strcmp(fmt, "base64"))
    return fail(err, cap, 400, "field encoding_format must be \"float\" or \"base64\", not \"%s\"", fmt);
  r->base64 = fmt && !strcmp(fmt, "base64");
  const mp_json *d = mp_json_get(root, "dimensions");
  r->dimensions = -1;
  if (d && d->type != MP_JSON_NULL) {
    if (d->type != MP_JSON_NUMBER || !d->is_int || d->i < 1)
      return fail(err, cap, 400, "field dimensions must be a positive integer");
    r->dimensions = d->i;
  }
  const char *user;
  if ((rc = get_str(root, "user", lim, &user, err, cap))) return rc;
  return get_bool(root, "truncate", 0, &r->truncate, err, cap);
}

/* TEI /predict: inputs is a Sequence (string | [a, b]) or a batch of Sequences */
static int parse_sequence(const mp_json *v, const char *name, const mp_serve_limits *lim, mp_serve_req *r, size_t k,
                          char *err, size_t cap) {
  char sub[80];
  if (v->type == MP_JSON_STRING) {
    int rc = text_ok(v, name, lim, err, cap);
    if (rc) return rc;
    r->texts[k] = v->str;
    return 0;
  }
  if (v->type == MP_JSON_ARRAY && v->len == 2) {
    for (size_t j = 0; j < 2; j++) {
      snprintf(sub, sizeof sub, "%s[%zu]", name, j);
      int rc = text_ok(v->items[j], sub, lim, err, cap);
      if (rc) return rc;
    }
    r->texts[k] = v->items[0]->str;
    r->pairs[k] = v->items[1]->str;
    return 0;
  }
  return fail(err, cap, 400, "field %s must be a string or a [text, text_pair] list of two strings", name);
}

static int parse_predict(const mp_json *root, const mp_serve_limits *lim, mp_serve_req *r, mp_arena *a, char *err,
                         size_t cap) {
  const mp_json *in = mp_json_get(root, "inputs");
  if (!in) return fail(err, cap, 400, "field inputs is required");
  int rc;
  int single =
      in->type == MP_JSON_STRING || (in->type == MP_JSON_ARRAY && in->len == 2 &&
                                     in->items[0]->type == MP_JSON_STRING && in->items[1]->type == MP_JSON_STRING);
  if (single) {
    if ((rc = alloc_inputs(r, 1, 1, a, err, cap))) return rc;
    if ((rc = parse_sequence(in, "inputs", lim, r, 0, err, cap))) return rc;
    r->batched = 0;
  } else {
    if (in->type != MP_JSON_ARRAY)
      return fail(err, cap, 400, "field inputs must be a string, a [text, text_pair] pair or a list of them, not %s",
                  mp_json_type_name(in->type));
    if ((rc = check_count(in->len, "inputs", lim, err, cap))) return rc;
    if ((rc = alloc_inputs(r, in->len, 1, a, err, cap))) return rc;
    char name[64];
    for (size_t i = 0; i < in->len; i++) {
      snprintf(name, sizeof name, "inputs[%zu]", i);
      const mp_json *s = in->items[i];
      if (s->type == MP_JSON_ARRAY && s->len == 1) s = s->items[0]; /* [[text]] */
      if ((rc = parse_sequence(s, name, lim, r, i, err, cap))) return rc;
    }
    r->batched = 1;
  }
  /* all-single or all-pair: a mixed batch would need two passes of the head; refuse it */
  size_t np = 0;
  for (size_t i = 0; i < r->n; i++)
    np += r->pairs[i] != NULL;
  if (np && np != r->n)
    return fail(err, cap, 400, "field inputs mixes single texts and pairs; send one kind per request");
  if (!np) r->pairs = NULL;
  if ((rc = get_bool(root, "raw_scores", 0, &r->raw_scores, err, cap))) return rc;
  return get_bool(root, "truncate", 0, &r->truncate, err, cap);
}

static int parse_rerank(const mp_json *root, const mp_serve_limits *lim, mp_serve_req *r, mp_arena *a, char *err,
                        size_t cap) {
  const mp_json *q = mp_json_get(root, "query");
  if (!q) return fail(err, cap, 400, "field query is required");
  int rc = text_ok(q, "query", lim, err, cap);
  if (rc) return rc;
  r->query = q->str;
  const mp_json *t = mp_json_get(root, "texts");
  if (!t) return fail(err, cap, 400, "field texts is required");
  if (t->type != MP_JSON_ARRAY)
    return fail(err, cap, 400, "field texts must be a list of strings, not %s", mp_json_type_name(t->type));
  if ((rc = parse_texts(t, "texts", lim, r, a, err, cap))) return rc;
  /* pairs (query, text): texts[i] becomes the second text */
  r->pairs = r->texts;
  r->texts = mp_arena_alloc(a, r->n * sizeof *r->texts);
  if (!r->texts) return fail(err, cap, 500, "out of memory");
  for (size_t i = 0; i < r->n; i++)
    r->texts[i] = r->query;
  if ((rc = get_bool(root, "raw_scores", 0, &r->raw_scores, err, cap))) return rc;
  if ((rc = get_bool(root, "return_text", 0, &r->return_text, err, cap))) return rc;
  return get_bool(root, "truncate", 0, &r->truncate, err, cap);
}

static int parse_zero_shot(const mp_json *root, const mp_serve_limits *lim, mp_serve_req *r, mp_arena *a, char *err,
                           size_t cap) {
  int rc = parse_texts(mp_json_get(root, "inputs"), "inputs", lim, r, a, err, cap);
  if (rc) return rc;
  const mp_json *l = mp_json_get(root, "candidate_labels");
  if (!l) return fail(err, cap, 400, "field candidate_labels is required");
  if (l->type == MP_JSON_STRING) { /* "a,b,c" as the pipeline accepts it */
    if ((rc = text_ok(l, "candidate_labels", lim, err, cap))) return rc;
    size_t n = 1;
    for (const char *p = l->str; *p; p++)
      n += *p == ',';
    r->labels = mp_arena_alloc(a, n * sizeof *r->labels);
    if (!r->labels) return fail(err, cap, 500, "out of memory");
    const char *s = l->str;
    r->n_labels = 0;
    for (;;) {
      const char *e = strchr(s, ',');
      size_t len = e ? (size_t)(e - s) : strlen(s);
      while (len && (*s == ' ' || *s == '\t'))
        s++, len--;
      while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
      if (len) {
        r->labels[r->n_labels] = mp_arena_strndup(a, s, len);
        if (!r->labels[r->n_labels++]) return fail(err, cap, 500, "out of memory");
      }
      if (!e) break;
      s = e + 1;
    }
  } else if (l->type == MP_JSON_ARRAY) {
    r->labels = mp_arena_alloc(a, (l->len ? l->len : 1) * sizeof *r->labels);
    if (!r->labels) return fail(err, cap, 500, "out of memory");
    char name[64];
    for (size_t i = 0; i < l->len; i++) {
      snprintf(name, sizeof name, "candidate_labels[%zu]", i);
      if ((rc = text_ok(l->items[i], name, lim, err, cap))) return rc;
      r->labels[i] = l->items[i]->str;
    }
    r->n_labels = l->len;
  } else {
    return fail(err, cap, 400, "field candidate_labels must be a list of strings or a comma-separated string, not %s",
                mp_json_type_name(l->type));
  }
  if (!r->n_labels) return fail(err, cap, 400, "field candidate_labels must name at least one label");
  if (lim->max_labels && r->n_labels > lim->max_labels)
    return fail(err, cap, 413, "field candidate_labels has %zu labels; the limit is %zu", r->n_labels, lim->max_labels);
  if ((rc = get_str(root, "hypothesis_template", lim, &r->hypothesis_template, err, cap))) return rc;
  if (!r->hypothesis_template) r->hypothesis_template = "This example is {}.";
  if (!strstr(r->hypothesis_template, "{}"))
    return fail(err, cap, 400, "field hypothesis_template must contain {} (where the label goes)");
  if ((rc = get_bool(root, "multi_label", 0, &r->multi_label, err, cap))) return rc;
  return get_bool(root, "truncate", 0, &r->truncate, err, cap);
}

int mp_serve_decode(mp_serve_route route, const char *body, size_t len, const mp_serve_limits *lim, mp_arena *a,
                    mp_serve_req *r, char *err, size_t cap) {
  memset(r, 0, sizeof *r);
  r->route = route;
  r->normalize = 1;
  r->dimensions = -1;
  if (!len) return fail(err, cap, 400, "the request body is empty; send a JSON object");
  mp_json *root;
  if (mp_json_parse(body, len, "request body", a, &root)) {
    snprintf(err, cap, "malformed JSON: %s", mp_last_error());
    return 400;
  }
  if (root->type != MP_JSON_OBJECT)
    return fail(err, cap, 400, "the request body must be a JSON object, not %s", mp_json_type_name(root->type));
  int rc = get_str(root, "model", lim, &r->model, err, cap);
  if (rc) return rc;
  switch (route) {
  case MP_ROUTE_OPENAI_EMBED: return parse_openai(root, lim, r, a, err, cap);
  case MP_ROUTE_EMBED:
    if ((rc = parse_texts(mp_json_get(root, "inputs"), "inputs", lim, r, a, err, cap))) return rc;
    if ((rc = get_bool(root, "normalize", 1, &r->normalize, err, cap))) return rc;
    return get_bool(root, "truncate", 0, &r->truncate, err, cap);
  case MP_ROUTE_PREDICT: return parse_predict(root, lim, r, a, err, cap);
  case MP_ROUTE_RERANK: return parse_rerank(root, lim, r, a, err, cap);
  case MP_ROUTE_ZERO_SHOT: return parse_zero_shot(root, lim, r, a, err, cap);
  default: return fail(err, cap, 404, "unknown route");
  }
}
