/* safetensors reader (mmap + full validation) and writer (atomic, optionally sharded).
 *
 * Validation follows the reference implementation (huggingface/safetensors, Rust crate,
 * Metadata::validate + SafeTensors::read_metadata): header length <= 100,000,000 bytes and
 * inside the file, header is a JSON object, tensors sorted by data_offsets must tile the data
 * block exactly (first at 0, each starting where the previous ended, the last ending at the end of
 * the file), shape x dtype size == end - begin. We are stricter where the reference is silent:
 * unknown keys in a tensor entry, duplicate names and NUL bytes in names are refused. */
#include "format/safetensors.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/strbuf.h"
#include "format/name_index.h"

#define ST_MAX_HEADER 100000000ull /* same cap as the reference implementation */
/* Cap on JSON values in a header. A parsed value costs ~100 bytes while "0," costs 2 bytes of
 * text, so a 100 MB header of tiny values would need ~5 GB of DOM. 2M values is ~150k tensors
 * (a real checkpoint file has at most a few thousand) and bounds the DOM to ~200 MB. */
#define ST_MAX_JSON_VALUES 2000000u

struct mp_safetensors {
  char *what; /* path or caller's label, for messages */
  mp_mmap map;
  int mapped;
  const uint8_t *base;
  size_t size;
  uint64_t header_len;
  mp_arena arena; /* names, tensors, metadata strings */
  mp_tensor *tensors;
  size_t count;
  const char **meta_keys, **meta_vals;
  size_t meta_count;
  mp_name_index index;
};

/* Sets "<what>: <message>" as the error. */
static mp_status st_fail(mp_status s, const char *what, const char *fmt, ...) MP_PRINTF(3, 4);
static mp_status st_fail(mp_status s, const char *what, const char *fmt, ...) {
  char msg[1536];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return mp_err(s, "%s: %s", what, msg);
}

/* dtypes the safetensors format defines that mlxport does not handle (refused as unsupported
 * rather than malformed). */
static int known_foreign_dtype(const char *s, size_t n) {
  static const char *const k[] = {"F4",      "F6_E2M3",     "F6_E3M2",     "F8_E5M2", "F8_E4M3",
                                  "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "C64"};
  for (size_t i = 0; i < sizeof k / sizeof *k; i++)
    if (strlen(k[i]) == n && memcmp(k[i], s, n) == 0) return 1;
  return 0;
}

typedef struct {
  const char *name;
  mp_dtype dtype;
  int ndim;
  int64_t shape[MP_MAX_DIMS];
  uint64_t begin, end;
  size_t order; /* position in the header, for a stable sort */
} st_rec;

static int rec_cmp(const void *pa, const void *pb) {
  const st_rec *a = pa, *b = pb;
  if (a->begin != b->begin) return a->begin < b->begin ? -1 : 1;
  if (a->end != b->end) return a->end < b->end ? -1 : 1;
  return a->order < b->order ? -1 : a->order > b->order;
}

static const char *shape_s(const int64_t *shape, int ndim, char *buf, size_t cap) {
  return mp_shape_str(shape, ndim, buf, cap);
}

/* Validates one tensor entry into r. */
static mp_status parse_entry(const char *what, const char *name, const mp_json *v, uint64_t data_size, st_rec *r) {
  if (v->type != MP_JSON_OBJECT)
    return st_fail(MP_ERR_FORMAT, what,
                   "header entry for tensor '%.200s' is a JSON %s, expected an object "
                   "with dtype, shape and data_offsets",
                   name, mp_json_type_name(v->type));
  const mp_json *jd = NULL, *js = NULL, *jo = NULL;
  for (size_t i = 0; i < v->len; i++) {
    const char *k = v->keys[i];
    const mp_json **slot = NULL;
    if (strcmp(k, "dtype") == 0)
      slot = &jd;
    else if (strcmp(k, "shape") == 0)
      slot = &js;
    else if (strcmp(k, "data_offsets") == 0)
      slot = &jo;
    else
      return st_fail(MP_ERR_FORMAT, what,
                     "tensor '%.200s': unknown key '%.100s' (a tensor entry has exactly "
                     "dtype, shape and data_offsets)",
                     name, k);
    if (*slot) return st_fail(MP_ERR_FORMAT, what, "tensor '%.200s': key '%s' appears twice", name, k);
    *slot = v->items[i];
  }
  if (!jd) return st_fail(MP_ERR_FORMAT, what, "tensor '%.200s': missing key 'dtype'", name);
  if (!js) return st_fail(MP_ERR_FORMAT, what, "tensor '%.200s': missing key 'shape'", name);
  if (!jo) return st_fail(MP_ERR_FORMAT, what, "tensor '%.200s': missing key 'data_offsets'", name);

  /* dtype */
  if (jd->type != MP_JSON_STRING)
    return st_fail(MP_ERR_FORMAT, what, "tensor '%.200s': dtype is a JSON %s, expected a string such as \"F32\"", name,
                   mp_json_type_name(jd->type));
  r->dtype = mp_dtype_from_name(jd->str, jd->len);
  if (r->dtype == MP_DTYPE_INVALID) {
    if (known_foreign_dtype(jd->str, jd->len))
      return st_fail(MP_ERR_UNSUPPORTED, what,
                     "tensor '%.200s' has dtype %s, which mlxport does not support "
                     "(supported: F32 F16 BF16 F64 I8 U8 I16 U16 I32 U32 I64 U64 BOOL)",
                     name, jd->str);
    return st_fail(MP_ERR_FORMAT, what,
                   "tensor '%.200s': unknown dtype '%.40s' (expected one of F32 F16 BF16 F64 "
                   "I8 U8 I16 U16 I32 U32 I64 U64 BOOL)",
                   name, jd->str);
  }

  /* shape */
  if (js->type != MP_JSON_ARRAY)
    return st_fail(MP_ERR_FORMAT, what,
                   "tensor '%.200s': shape is a JSON %s, expected a list of non-negative "
                   "integers",
                   name, mp_json_type_name(js->type));
  if (js->len > MP_MAX_DIMS)
    return st_fail(MP_ERR_UNSUPPORTED, what, "tensor '%.200s' has %zu dimensions; mlxport handles at most %d", name,
                   js->len, MP_MAX_DIMS);
  r->ndim = (int)js->len;
  uint64_t numel = 1;
  int overflow = 0;
  for (size_t i = 0; i < js->len; i++) {
    const mp_json *d = js->items[i];
    if (d->type != MP_JSON_NUMBER || !d->is_int || d->i < 0)
      return st_fail(MP_ERR_FORMAT, what,
                     "tensor '%.200s': shape[%zu] is not a non-negative integer "
                     "(header line %u, column %u)",
                     name, i, d->line, d->col);
    r->shape[i] = d->i;
    if (__builtin_mul_overflow(numel, (uint64_t)d->i, &numel)) overflow = 1;
  }
  char sb[256];
  uint64_t nbytes = 0;
  if (overflow || numel > (uint64_t)INT64_MAX ||
      __builtin_mul_overflow(numel, (uint64_t)mp_dtype_size(r->dtype), &nbytes))
    return st_fail(MP_ERR_FORMAT, what, "tensor '%.200s': shape %s is absurd (its byte size overflows 64 bits)", name,
                   shape_s(r->shape, r->ndim, sb, sizeof sb));

  /* data_offsets */
  if (jo->type != MP_JSON_ARRAY || jo->len != 2)
    return st_fail(MP_ERR_FORMAT, what, "tensor '%.200s': data_offsets must be a list of two integers [begin, end]",
                   name);
  for (int i = 0; i < 2; i++) {
    const mp_json *o = jo->items[i];
    if (o->type != MP_JSON_NUMBER || !o->is_int || o->i < 0)
      return st_fail(MP_ERR_FORMAT, what, "tensor '%.200s': data_offsets[%d] is not a non-negative integer", name, i);
  }
  r->begin = (uint64_t)jo->items[0]->i;
  r->end = (uint64_t)jo->items[1]->i;
  if (r->begin > r->end)
    return st_fail(MP_ERR_FORMAT, what, "tensor '%.200s': data_offsets [%llu, %llu] end before they begin", name,
                   (unsigned long long)r->begin, (unsigned long long)r->end);
  if (r->end - r->begin != nbytes)
    return st_fail(MP_ERR_FORMAT, what,
                   "tensor '%.200s': shape %s x %s (%zu bytes each) = %llu bytes, but "
                   "data_offsets [%llu, %llu] span %llu bytes",
                   name, shape_s(r->shape, r->ndim, sb, sizeof sb), mp_dtype_name(r->dtype), mp_dtype_size(r->dtype),
                   (unsigned long long)nbytes, (unsigned long long)r->begin, (unsigned long long)r->end,
                   (unsigned long long)(r->end - r->begin));
  if (r->end > data_size)
    return st_fail(MP_ERR_FORMAT, what,
                   "tensor '%.200s': data_offsets [%llu, %llu] run past the end of the data "
                   "block (%llu bytes): the file is truncated or the header is wrong",
                   name, (unsigned long long)r->begin, (unsigned long long)r->end, (unsigned long long)data_size);
  return MP_OK;
}

static mp_status parse_metadata(mp_safetensors *st, const mp_json *m) {
  const char *what = st->what;
  if (m->type == MP_JSON_NULL) return MP_OK; /* the reference reads null as "no metadata" */
  if (m->type != MP_JSON_OBJECT)
    return st_fail(MP_ERR_FORMAT, what, "__metadata__ is a JSON %s, expected an object of string values",
                   mp_json_type_name(m->type));
  st->meta_keys = mp_arena_alloc(&st->arena, (m->len + 1) * sizeof(char *));
  st->meta_vals = mp_arena_alloc(&st->arena, (m->len + 1) * sizeof(char *));
  if (!st->meta_keys || !st->meta_vals) return st_fail(MP_ERR_NOMEM, what, "out of memory reading __metadata__");
  mp_name_index seen;
  mp_name_index_init(&seen);
  mp_status s = MP_OK;
  for (size_t i = 0; i < m->len && s == MP_OK; i++) {
    const mp_json *v = m->items[i];
    if (strlen(m->keys[i]) != m->key_lens[i])
      s = st_fail(MP_ERR_FORMAT, what, "__metadata__ key '%.100s...' contains a NUL byte", m->keys[i]);
    else if (v->type != MP_JSON_STRING)
      s = st_fail(MP_ERR_FORMAT, what, "__metadata__['%.100s'] is a JSON %s; metadata values must be strings",
                  m->keys[i], mp_json_type_name(v->type));
    else if (strlen(v->str) != v->len)
      s = st_fail(MP_ERR_FORMAT, what, "__metadata__['%.100s'] contains a NUL byte", m->keys[i]);
    else {
      mp_status p = mp_name_index_put(&seen, m->keys[i], i, NULL);
      if (p == MP_ERR_INVALID_ARG)
        s = st_fail(MP_ERR_FORMAT, what, "__metadata__ key '%.100s' appears twice", m->keys[i]);
      else if (p != MP_OK)
        s = p;
    }
    if (s == MP_OK) {
      st->meta_keys[i] = mp_arena_strdup(&st->arena, m->keys[i]);
      st->meta_vals[i] = mp_arena_strdup(&st->arena, v->str);
      if (!st->meta_keys[i] || !st->meta_vals[i]) s = st_fail(MP_ERR_NOMEM, what, "out of memory reading __metadata__");
    }
  }
  mp_name_index_free(&seen);
  if (s == MP_OK) st->meta_count = m->len;
  return s;
}

static mp_status parse_file(mp_safetensors *st) {
  const char *what = st->what;
  if (st->size < 8)
    return st_fail(MP_ERR_FORMAT, what,
                   "file is %zu bytes, too short for safetensors (it starts with an 8-byte "
                   "header length): truncated or not a safetensors file",
                   st->size);
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--)
    n = (n << 8) | st->base[i];
  if (n > ST_MAX_HEADER)
    return st_fail(MP_ERR_FORMAT, what,
                   "header length %llu exceeds the %llu-byte limit: corrupt or not a "
                   "safetensors file",
                   (unsigned long long)n, ST_MAX_HEADER);
  if (n > st->size - 8)
    return st_fail(MP_ERR_FORMAT, what,
                   "header length %llu runs past the end of the file (%zu bytes): the file "
                   "is truncated or not a safetensors file",
                   (unsigned long long)n, st->size);
  st->header_len = n;
  uint64_t data_size = st->size - 8 - n;

  /* bound the DOM before building it: count value separators/openers outside strings */
  {
    const uint8_t *h = st->base + 8;
    size_t values = 1;
    int in_str = 0;
    for (uint64_t i = 0; i < n; i++) {
      uint8_t c = h[i];
      if (in_str) {
        if (c == '\\')
          i++;
        else if (c == '"')
          in_str = 0;
      } else if (c == '"') {
        in_str = 1;
      } else if (c == ',' || c == '[' || c == '{') {
        values++;
      }
    }
    if (values > ST_MAX_JSON_VALUES)
      return st_fail(MP_ERR_UNSUPPORTED, what,
                     "header holds more than %u JSON values (about %zu): too large to "
                     "load safely (a real checkpoint has at most a few thousand tensors per file)",
                     ST_MAX_JSON_VALUES, values);
  }
  mp_arena dom;
  mp_arena_init(&dom, 0);
  char hwhat[600];
  snprintf(hwhat, sizeof hwhat, "%.500s: header", what);
  mp_json *root = NULL;
  st_rec *recs = NULL;
  mp_status s = mp_json_parse((const char *)st->base + 8, (size_t)n, hwhat, &dom, &root);
  if (s != MP_OK) goto done;
  if (root->type != MP_JSON_OBJECT) {
    s = st_fail(MP_ERR_FORMAT, what, "header is a JSON %s, expected an object {name: {dtype, shape, data_offsets}}",
                mp_json_type_name(root->type));
    goto done;
  }
  recs = calloc(root->len ? root->len : 1, sizeof *recs);
  if (!recs) {
    s = st_fail(MP_ERR_NOMEM, what, "out of memory reading the header (%zu entries)", root->len);
    goto done;
  }
  size_t nt = 0;
  int have_meta = 0;
  for (size_t i = 0; i < root->len; i++) {
    const char *k = root->keys[i];
    if (strlen(k) != root->key_lens[i]) {
      s = st_fail(MP_ERR_FORMAT, what, "tensor name '%.200s...' contains a NUL byte", k);
      goto done;
    }
    if (strcmp(k, "__metadata__") == 0) {
      if (have_meta) {
        s = st_fail(MP_ERR_FORMAT, what, "__metadata__ appears twice in the header");
        goto done;
      }
      have_meta = 1;
      s = parse_metadata(st, root->items[i]);
      if (s != MP_OK) goto done;
      continue;
    }
    st_rec *r = &recs[nt];
    r->order = nt;
    r->name = mp_arena_strdup(&st->arena, k);
    if (!r->name) {
      s = st_fail(MP_ERR_NOMEM, what, "out of memory reading the header");
      goto done;
    }
    s = parse_entry(what, k, root->items[i], data_size, r);
    if (s != MP_OK) goto done;
    mp_status p = mp_name_index_put(&st->index, r->name, nt, NULL);
    if (p == MP_ERR_INVALID_ARG) {
      s = st_fail(MP_ERR_FORMAT, what, "tensor '%.200s' appears twice in the header", k);
      goto done;
    }
    if (p != MP_OK) {
      s = p;
      goto done;
    }
    nt++;
  }

  /* layout: sorted by offsets, the tensors must tile [0, data_size) exactly */
  qsort(recs, nt, sizeof *recs, rec_cmp);
  uint64_t expect = 0;
  for (size_t i = 0; i < nt; i++) {
    const st_rec *r = &recs[i];
    if (r->begin < expect) {
      s = st_fail(MP_ERR_FORMAT, what,
                  "tensors '%.200s' [%llu, %llu] and '%.200s' [%llu, %llu] overlap in the data "
                  "block",
                  recs[i - 1].name, (unsigned long long)recs[i - 1].begin, (unsigned long long)recs[i - 1].end, r->name,
                  (unsigned long long)r->begin, (unsigned long long)r->end);
      goto done;
    }
    if (r->begin > expect) {
      if (i == 0)
        s = st_fail(MP_ERR_FORMAT, what,
                    "bytes [0, %llu) of the data block belong to no tensor (first tensor "
                    "'%.200s' starts at %llu); safetensors requires tensors to be contiguous",
                    (unsigned long long)r->begin, r->name, (unsigned long long)r->begin);
      else
        s = st_fail(MP_ERR_FORMAT, what,
                    "bytes [%llu, %llu) of the data block belong to no tensor (gap between "
                    "'%.200s' and '%.200s'); safetensors requires tensors to be contiguous",
                    (unsigned long long)expect, (unsigned long long)r->begin, recs[i - 1].name, r->name);
      goto done;
    }
    expect = r->end;
  }
  if (expect != data_size) {
    s = st_fail(MP_ERR_FORMAT, what,
                "the data block has %llu bytes but the tensors cover only %llu: %llu trailing "
                "bytes belong to no tensor (file corrupt or header incomplete)",
                (unsigned long long)data_size, (unsigned long long)expect, (unsigned long long)(data_size - expect));
    goto done;
  }

  /* tensor views in file order; the name index maps to file positions */
  st->tensors = mp_arena_alloc(&st->arena, (nt ? nt : 1) * sizeof *st->tensors);
  if (!st->tensors) {
    s = st_fail(MP_ERR_NOMEM, what, "out of memory (%zu tensors)", nt);
    goto done;
  }
  mp_name_index_free(&st->index);
  mp_name_index_init(&st->index);
  const uint8_t *data = st->base + 8 + n;
  for (size_t i = 0; i < nt; i++) {
    mp_tensor *t = &st->tensors[i];
    t->name = recs[i].name;
    t->dtype = recs[i].dtype;
    t->ndim = recs[i].ndim;
    memcpy(t->shape, recs[i].shape, sizeof t->shape);
    mp_tensor_set_contiguous(t);
    t->data = data + recs[i].begin;
    t->nbytes = (size_t)(recs[i].end - recs[i].begin);
    s = mp_name_index_put(&st->index, t->name, i, NULL);
    if (s != MP_OK) {
      s = st_fail(MP_ERR_NOMEM, what, "out of memory indexing tensors");
      goto done;
    }
  }
  st->count = nt;
done:
  free(recs);
  mp_arena_free(&dom);
  return s;
}

static mp_status st_new(const char *what, mp_safetensors **out) {
  mp_safetensors *st = calloc(1, sizeof *st);
  if (!st) return mp_err(MP_ERR_NOMEM, "%s: out of memory", what);
  st->what = strdup(what);
  if (!st->what) {
    free(st);
    return mp_err(MP_ERR_NOMEM, "%s: out of memory", what);
  }
  mp_arena_init(&st->arena, 0);
  mp_name_index_init(&st->index);
  *out = st;
  return MP_OK;
}

mp_status mp_safetensors_open(const char *path, mp_safetensors **out) {
  *out = NULL;
  if (!path) return mp_err(MP_ERR_INVALID_ARG, "mp_safetensors_open: no path");
  mp_safetensors *st;
  MP_TRY(st_new(path, &st));
  mp_status s = mp_mmap_open(path, &st->map);
  if (s != MP_OK) {
    mp_safetensors_close(st);
    return s;
  }
  st->mapped = 1;
  st->base = st->map.data;
  st->size = st->map.size;
  s = parse_file(st);
  if (s != MP_OK) {
    mp_safetensors_close(st);
    return s;
  }
  *out = st;
  return MP_OK;
}

mp_status mp_safetensors_open_memory(const void *data, size_t size, const char *what, mp_safetensors **out) {
  *out = NULL;
  if (!what) what = "<memory>";
  if (!data && size) return mp_err(MP_ERR_INVALID_ARG, "%s: NULL buffer", what);
  mp_safetensors *st;
  MP_TRY(st_new(what, &st));
  st->base = data;
  st->size = size;
  mp_status s = parse_file(st);
  if (s != MP_OK) {
    mp_safetensors_close(st);
    return s;
  }
  *out = st;
  return MP_OK;
}

void mp_safetensors_close(mp_safetensors *st) {
  if (!st) return;
  if (st->mapped) mp_mmap_close(&st->map);
  mp_arena_free(&st->arena);
  mp_name_index_free(&st->index);
  free(st->what);
  free(st);
}

size_t mp_safetensors_count(const mp_safetensors *st) { return st ? st->count : 0; }

const mp_tensor *mp_safetensors_at(const mp_safetensors *st, size_t i) {
  return st && i < st->count ? &st->tensors[i] : NULL;
}

const mp_tensor *mp_safetensors_find(const mp_safetensors *st, const char *name) {
  size_t i;
  if (!st || !name || !mp_name_index_get(&st->index, name, &i)) return NULL;
  return &st->tensors[i];
}

size_t mp_safetensors_metadata_count(const mp_safetensors *st) { return st ? st->meta_count : 0; }

void mp_safetensors_metadata_at(const mp_safetensors *st, size_t i, const char **key, const char **value) {
  int ok = st && i < st->meta_count;
  if (key) *key = ok ? st->meta_keys[i] : NULL;
  if (value) *value = ok ? st->meta_vals[i] : NULL;
}

const char *mp_safetensors_metadata(const mp_safetensors *st, const char *key) {
  if (!st || !key) return NULL;
  for (size_t i = 0; i < st->meta_count; i++)
    if (strcmp(st->meta_keys[i], key) == 0) return st->meta_vals[i];
  return NULL;
}

const char *mp_safetensors_path(const mp_safetensors *st) { return st ? st->what : NULL; }

uint64_t mp_safetensors_data_offset(const mp_safetensors *st) { return st ? 8 + st->header_len : 0; }

uint64_t mp_safetensors_file_size(const mp_safetensors *st) { return st ? st->size : 0; }

/* ------------------------------------------------------------------------------------------ */
/* writer */

typedef struct {
  char *name;
  mp_dtype dtype;
  int ndim;
  int64_t shape[MP_MAX_DIMS];
  const void *data;
  size_t nbytes;
  void *owned;
} st_went;

struct mp_st_writer {
  st_went *e;
  size_t n, cap;
  char **mkeys, **mvals;
  size_t mn, mcap;
  mp_name_index ix;
  uint64_t total;
};

mp_status mp_st_writer_create(mp_st_writer **out) {
  *out = calloc(1, sizeof **out);
  if (!*out) return mp_err(MP_ERR_NOMEM, "out of memory creating a safetensors writer");
  mp_name_index_init(&(*out)->ix);
  return MP_OK;
}

void mp_st_writer_free(mp_st_writer *w) {
  if (!w) return;
  for (size_t i = 0; i < w->n; i++) {
    free(w->e[i].name);
    free(w->e[i].owned);
  }
  free(w->e);
  for (size_t i = 0; i < w->mn; i++) {
    free(w->mkeys[i]);
    free(w->mvals[i]);
  }
  free(w->mkeys);
  free(w->mvals);
  mp_name_index_free(&w->ix);
  free(w);
}

mp_status mp_st_writer_set_metadata(mp_st_writer *w, const char *key, const char *value) {
  if (!w || !key || !value) return mp_err(MP_ERR_INVALID_ARG, "safetensors writer: metadata key and value required");
  for (size_t i = 0; i < w->mn; i++) {
    if (strcmp(w->mkeys[i], key) == 0) {
      char *v = strdup(value);
      if (!v) return mp_err(MP_ERR_NOMEM, "out of memory");
      free(w->mvals[i]);
      w->mvals[i] = v;
      return MP_OK;
    }
  }
  if (w->mn == w->mcap) {
    size_t nc = w->mcap ? w->mcap * 2 : 8;
    char **nk = realloc(w->mkeys, nc * sizeof *nk);
    if (!nk) return mp_err(MP_ERR_NOMEM, "out of memory");
    w->mkeys = nk;
    char **nv = realloc(w->mvals, nc * sizeof *nv);
    if (!nv) return mp_err(MP_ERR_NOMEM, "out of memory");
    w->mvals = nv;
    w->mcap = nc;
  }
  char *k = strdup(key), *v = strdup(value);
  if (!k || !v) {
    free(k);
    free(v);
    return mp_err(MP_ERR_NOMEM, "out of memory");
  }
  w->mkeys[w->mn] = k;
  w->mvals[w->mn] = v;
  w->mn++;
  return MP_OK;
}

static mp_status writer_add(mp_st_writer *w, const char *name, mp_dtype dtype, int ndim, const int64_t *shape,
                            const void *data, size_t nbytes, int copy) {
  if (!w || !name) return mp_err(MP_ERR_INVALID_ARG, "safetensors writer: tensor name required");
  if (strcmp(name, "__metadata__") == 0)
    return mp_err(MP_ERR_INVALID_ARG, "safetensors writer: '__metadata__' is reserved and cannot name a tensor");
  if (mp_dtype_size(dtype) == 0)
    return mp_err(MP_ERR_INVALID_ARG, "safetensors writer: tensor '%.200s' has an invalid dtype", name);
  if (ndim < 0 || ndim > MP_MAX_DIMS || (ndim > 0 && !shape))
    return mp_err(MP_ERR_INVALID_ARG, "safetensors writer: tensor '%.200s' has %d dimensions (0..%d allowed)", name,
                  ndim, MP_MAX_DIMS);
  uint64_t numel = 1, want;
  for (int i = 0; i < ndim; i++)
    if (shape[i] < 0 || __builtin_mul_overflow(numel, (uint64_t)shape[i], &numel))
      return mp_err(MP_ERR_INVALID_ARG, "safetensors writer: tensor '%.200s' has a negative or overflowing shape",
                    name);
  if (__builtin_mul_overflow(numel, (uint64_t)mp_dtype_size(dtype), &want) || want != nbytes) {
    char sb[256];
    return mp_err(MP_ERR_INVALID_ARG, "safetensors writer: tensor '%.200s': shape %s x %s needs %llu bytes, got %zu",
                  name, mp_shape_str(shape, ndim, sb, sizeof sb), mp_dtype_name(dtype), (unsigned long long)want,
                  nbytes);
  }
  if (nbytes && !data) return mp_err(MP_ERR_INVALID_ARG, "safetensors writer: tensor '%.200s' has no data", name);
  if (w->n == w->cap) {
    size_t nc = w->cap ? w->cap * 2 : 64;
    st_went *ne = realloc(w->e, nc * sizeof *ne);
    if (!ne) return mp_err(MP_ERR_NOMEM, "out of memory");
    w->e = ne;
    w->cap = nc;
  }
  st_went *e = &w->e[w->n];
  memset(e, 0, sizeof *e);
  e->name = strdup(name);
  if (!e->name) return mp_err(MP_ERR_NOMEM, "out of memory");
  if (copy && nbytes) {
    e->owned = malloc(nbytes);
    if (!e->owned) {
      free(e->name);
      return mp_err(MP_ERR_NOMEM, "out of memory copying tensor '%.200s' (%zu bytes)", name, nbytes);
    }
    memcpy(e->owned, data, nbytes);
    data = e->owned;
  }
  mp_status s = mp_name_index_put(&w->ix, e->name, w->n, NULL);
  if (s != MP_OK) {
    free(e->name);
    free(e->owned);
    if (s == MP_ERR_INVALID_ARG)
      return mp_err(MP_ERR_INVALID_ARG, "safetensors writer: tensor '%.200s' added twice", name);
    return s;
  }
  e->dtype = dtype;
  e->ndim = ndim;
  for (int i = 0; i < ndim; i++)
    e->shape[i] = shape[i];
  e->data = data;
  e->nbytes = nbytes;
  w->n++;
  w->total += nbytes;
  return MP_OK;
}

mp_status mp_st_writer_add(mp_st_writer *w, const char *name, mp_dtype dtype, int ndim, const int64_t *shape,
                           const void *data, size_t nbytes) {
  return writer_add(w, name, dtype, ndim, shape, data, nbytes, 0);
}

mp_status mp_st_writer_add_copy(mp_st_writer *w, const char *name, mp_dtype dtype, int ndim, const int64_t *shape,
                                const void *data, size_t nbytes) {
  return writer_add(w, name, dtype, ndim, shape, data, nbytes, 1);
}

uint64_t mp_st_writer_total_bytes(const mp_st_writer *w) { return w ? w->total : 0; }

/* Writes entries idx[0..k) to path. Data order: stable by descending element size, so that
 * every tensor starts at a multiple of its element size (the data block starts 8-aligned). */
static mp_status write_one(const mp_st_writer *w, const size_t *idx, size_t k, const char *path) {
  size_t *ord = malloc((k ? k : 1) * sizeof *ord);
  if (!ord) return mp_err(MP_ERR_NOMEM, "%s: out of memory", path);
  size_t m = 0;
  for (size_t sz = 8; sz >= 1; sz /= 2)
    for (size_t i = 0; i < k; i++)
      if (mp_dtype_size(w->e[idx[i]].dtype) == sz) ord[m++] = idx[i];
  if (m != k) { /* a dtype size that is not 1/2/4/8: cannot happen with the current dtypes */
    free(ord);
    return mp_err(MP_ERR_INTERNAL, "%s: unexpected dtype size", path);
  }
  mp_sb h;
  mp_sb_init(&h);
  mp_sb_putc(&h, '{');
  int first = 1;
  if (w->mn) {
    mp_sb_puts(&h, "\"__metadata__\":{");
    for (size_t i = 0; i < w->mn; i++) {
      if (i) mp_sb_putc(&h, ',');
      mp_sb_json_str(&h, w->mkeys[i], strlen(w->mkeys[i]));
      mp_sb_putc(&h, ':');
      mp_sb_json_str(&h, w->mvals[i], strlen(w->mvals[i]));
    }
    mp_sb_putc(&h, '}');
    first = 0;
  }
  uint64_t off = 0;
  for (size_t i = 0; i < k; i++) {
    const st_went *e = &w->e[ord[i]];
    if (!first) mp_sb_putc(&h, ',');
    first = 0;
    mp_sb_json_str(&h, e->name, strlen(e->name));
    mp_sb_printf(&h, ":{\"dtype\":\"%s\",\"shape\":[", mp_dtype_name(e->dtype));
    for (int d = 0; d < e->ndim; d++)
      mp_sb_printf(&h, d ? ",%lld" : "%lld", (long long)e->shape[d]);
    mp_sb_printf(&h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off, (unsigned long long)(off + e->nbytes));
    off += e->nbytes;
  }
  mp_sb_putc(&h, '}');
  while (!h.oom && h.len % 8)
    mp_sb_putc(&h, ' ');
  mp_status s = MP_OK;
  if (h.oom)
    s = mp_err(MP_ERR_NOMEM, "%s: out of memory building the header", path);
  else if (h.len > ST_MAX_HEADER)
    s = mp_err(MP_ERR_INVALID_ARG, "%s: the header would be %zu bytes, over the %llu-byte safetensors limit", path,
               h.len, ST_MAX_HEADER);
  mp_afile f;
  if (s == MP_OK) s = mp_afile_open(&f, path);
  if (s == MP_OK) {
    uint8_t len8[8];
    for (int i = 0; i < 8; i++)
      len8[i] = (uint8_t)((uint64_t)h.len >> (8 * i));
    s = mp_afile_write(&f, len8, 8);
    if (s == MP_OK) s = mp_afile_write(&f, h.buf, h.len);
    for (size_t i = 0; i < k && s == MP_OK; i++) {
      const st_went *e = &w->e[ord[i]];
      if (e->nbytes) s = mp_afile_write(&f, e->data, e->nbytes);
    }
    if (s == MP_OK)
      s = mp_afile_commit(&f);
    else
      mp_afile_abort(&f);
  }
  mp_sb_free(&h);
  free(ord);
  return s;
}

mp_status mp_st_writer_finish(mp_st_writer *w, const char *path) {
  if (!w || !path) return mp_err(MP_ERR_INVALID_ARG, "safetensors writer: no output path");
  size_t *idx = malloc((w->n ? w->n : 1) * sizeof *idx);
  if (!idx) return mp_err(MP_ERR_NOMEM, "%s: out of memory", path);
  for (size_t i = 0; i < w->n; i++)
    idx[i] = i;
  mp_status s = write_one(w, idx, w->n, path);
  free(idx);
  return s;
}

/* 1 when `name` is "<stem>-DDDDD-of-DDDDD.safetensors" (5 or more digits each). */
static int is_shard_name(const char *name, const char *stem) {
  size_t ls = strlen(stem);
  if (strncmp(name, stem, ls) != 0 || name[ls] != '-') return 0;
  const char *p = name + ls + 1;
  for (int part = 0; part < 2; part++) {
    size_t d = 0;
    while (p[d] >= '0' && p[d] <= '9')
      d++;
    if (d < 5) return 0;
    p += d;
    const char *sep = part == 0 ? "-of-" : ".safetensors";
    if (strncmp(p, sep, strlen(sep)) != 0) return 0;
    p += strlen(sep);
  }
  return *p == 0;
}

/* After a successful write, removes what an earlier write with the same stem left in `dir` and
 * the new output does not contain (as transformers' save_pretrained does): otherwise a stale
 * <stem>.safetensors would shadow a new sharded set (the weights table prefers it), or stale
 * shards would linger. `keep_single`: the new output is <stem>.safetensors. */
static void remove_stale(const char *dir, const char *stem, int keep_single, size_t nshards) {
  char single[512], index[512];
  snprintf(single, sizeof single, "%s.safetensors", stem);
  snprintf(index, sizeof index, "%s.safetensors.index.json", stem);
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    const char *n = e->d_name;
    int stale = 0;
    if (strcmp(n, single) == 0)
      stale = !keep_single;
    else if (strcmp(n, index) == 0)
      stale = keep_single;
    else if (is_shard_name(n, stem)) {
      char want[64];
      snprintf(want, sizeof want, "-of-%05zu.safetensors", nshards);
      size_t ln = strlen(n), lw = strlen(want);
      stale = keep_single || ln < lw || strcmp(n + ln - lw, want) != 0;
      if (!stale) { /* same total: stale only if its number is beyond the new count */
        unsigned long k = strtoul(n + strlen(stem) + 1, NULL, 10);
        stale = k < 1 || k > nshards;
      }
    }
    if (!stale) continue;
    char *p = mp_path_join(dir, n);
    if (p && mp_is_file(p)) {
      if (remove(p) == 0)
        mp_log(MP_LOG_INFO, "%s: removed stale weight file from an earlier write", p);
      else
        mp_log(MP_LOG_WARN, "%s: could not remove stale weight file", p);
    }
    free(p);
  }
  closedir(d);
  mp_fsync_dir(dir);
}

typedef struct {
  const char *name;
  size_t idx;
} st_named;

static int cmp_named(const void *a, const void *b) {
  return strcmp(((const st_named *)a)->name, ((const st_named *)b)->name);
}

mp_status mp_st_writer_finish_sharded(mp_st_writer *w, const char *dir, const char *stem, uint64_t max_shard_bytes,
                                      int *out_files) {
  if (out_files) *out_files = 0;
  if (!w || !dir || !stem || !*stem || strchr(stem, '/'))
    return mp_err(MP_ERR_INVALID_ARG, "safetensors writer: a folder and a file stem without '/' are required");
  MP_TRY(mp_mkdirs(dir));
  /* Shard assignment exactly as huggingface_hub's split_state_dict_into_shards_factory:
   * insertion order; a tensor larger than the limit gets a shard of its own (appended at once);
   * otherwise a new shard starts when the current one would exceed the limit. */
  size_t n = w->n;
  size_t *shard_of = calloc(n ? n : 1, sizeof *shard_of);
  size_t *order = calloc(n ? n : 1, sizeof *order); /* entries grouped by shard */
  size_t *start = calloc(n + 2, sizeof *start);
  mp_status s = MP_OK;
  if (!shard_of || !order || !start) {
    s = mp_err(MP_ERR_NOMEM, "%s: out of memory", dir);
    goto out;
  }
  size_t nshards = 0;
  if (max_shard_bytes == 0) {
    nshards = 1;
  } else {
    /* temporary shard ids in creation order; final numbers in the order the hub appends shards
     * to its list (a big tensor's shard at once, the open shard when it is closed) */
    size_t *final = calloc(n + 1, sizeof *final);
    if (!final) {
      s = mp_err(MP_ERR_NOMEM, "%s: out of memory", dir);
      goto out;
    }
    size_t ntmp = 0, open = (size_t)-1;
    uint64_t open_size = 0;
    for (size_t i = 0; i < n; i++) {
      uint64_t sz = w->e[i].nbytes;
      if (sz > max_shard_bytes) {
        final[ntmp] = nshards++;
        shard_of[i] = ntmp++;
        continue;
      }
      if (open == (size_t)-1 || open_size + sz > max_shard_bytes) {
        if (open != (size_t)-1) final[open] = nshards++;
        open = ntmp++;
        open_size = 0;
      }
      shard_of[i] = open;
      open_size += sz;
    }
    if (open != (size_t)-1) final[open] = nshards++;
    for (size_t i = 0; i < n; i++)
      shard_of[i] = final[shard_of[i]];
    free(final);
    if (nshards == 0) nshards = 1;
  }
  /* counting sort by shard, keeping insertion order inside a shard */
  for (size_t i = 0; i < n; i++)
    start[shard_of[i] + 1]++;
  for (size_t k = 0; k < nshards; k++)
    start[k + 1] += start[k];
  {
    size_t *fill = calloc(nshards + 1, sizeof *fill);
    if (!fill) {
      s = mp_err(MP_ERR_NOMEM, "%s: out of memory", dir);
      goto out;
    }
    for (size_t i = 0; i < n; i++)
      order[start[shard_of[i]] + fill[shard_of[i]]++] = i;
    free(fill);
  }
  if (nshards == 1) {
    char name[512];
    snprintf(name, sizeof name, "%s.safetensors", stem);
    char *path = mp_path_join(dir, name);
    if (!path) {
      s = mp_err(MP_ERR_NOMEM, "out of memory");
      goto out;
    }
    s = write_one(w, order, n, path);
    free(path);
    if (s == MP_OK) remove_stale(dir, stem, 1, 0);
    if (s == MP_OK && out_files) *out_files = 1;
    goto out;
  }
  char **fname = calloc(nshards, sizeof *fname);
  if (!fname) {
    s = mp_err(MP_ERR_NOMEM, "out of memory");
    goto out;
  }
  for (size_t k = 0; k < nshards && s == MP_OK; k++) {
    char name[512];
    snprintf(name, sizeof name, "%s-%05zu-of-%05zu.safetensors", stem, k + 1, nshards);
    fname[k] = strdup(name);
    char *path = mp_path_join(dir, name);
    if (!fname[k] || !path)
      s = mp_err(MP_ERR_NOMEM, "out of memory");
    else
      s = write_one(w, order + start[k], start[k + 1] - start[k], path);
    free(path);
  }
  if (s == MP_OK) {
    /* index: json.dumps(index, indent=2, sort_keys=True) + "\n", as transformers writes it */
    st_named *names = malloc((n ? n : 1) * sizeof *names);
    if (!names)
      s = mp_err(MP_ERR_NOMEM, "out of memory");
    else {
      for (size_t i = 0; i < n; i++)
        names[i] = (st_named){w->e[i].name, i};
      qsort(names, n, sizeof *names, cmp_named);
      mp_sb j;
      mp_sb_init(&j);
      mp_sb_printf(&j, "{\n  \"metadata\": {\n    \"total_size\": %llu\n  },\n  \"weight_map\": {\n",
                   (unsigned long long)w->total);
      for (size_t i = 0; i < n; i++) {
        size_t ei = names[i].idx;
        mp_sb_puts(&j, "    ");
        mp_sb_json_str(&j, w->e[ei].name, strlen(w->e[ei].name));
        mp_sb_puts(&j, ": ");
        mp_sb_json_str(&j, fname[shard_of[ei]], strlen(fname[shard_of[ei]]));
        mp_sb_puts(&j, i + 1 < n ? ",\n" : "\n");
      }
      mp_sb_puts(&j, "  }\n}\n");
      if (j.oom)
        s = mp_err(MP_ERR_NOMEM, "out of memory writing the shard index");
      else {
        char name[512];
        snprintf(name, sizeof name, "%s.safetensors.index.json", stem);
        char *path = mp_path_join(dir, name);
        if (!path)
          s = mp_err(MP_ERR_NOMEM, "out of memory");
        else
          s = mp_write_file_atomic(path, j.buf, j.len);
        free(path);
      }
      mp_sb_free(&j);
      free(names);
    }
  }
  if (s == MP_OK) remove_stale(dir, stem, 0, nshards);
  if (s == MP_OK && out_files) *out_files = (int)nshards;
  for (size_t k = 0; k < nshards; k++)
    free(fname[k]);
  free(fname);
out:
  free(shard_of);
  free(order);
  free(start);
  return s;
}
