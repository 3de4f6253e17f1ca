/* Public API (include/mlxport/tokenizer.h): the tokenizer handle over tokenizer/tokenizer.h
 * (model folders and cached repo ids resolved by format/hf.h). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/strbuf.h"
#include "format/hf.h"
#include "mlxport.h"
#include "tokenizer/tokenizer.h"

struct mlxport_tokenizer {
  mp_tokenizer *t;
  char **tokens;        /* NUL-terminated copies for mlxport_tokenizer_id_to_token, made on demand */
  pthread_mutex_t lock; /* guards tokens */
};

MLXPORT_API void mlxport_encode_options_init(mlxport_encode_options *o) {
  if (!o) return;
  memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
  o->add_special_tokens = 1;
  o->truncation = MLXPORT_TRUNCATE_NONE;
  o->padding = MLXPORT_PAD_LONGEST;
}

MLXPORT_API mlxport_status mlxport_tokenizer_open(const char *path_or_repo, mlxport_tokenizer **out) {
  if (!out) return mp_err(MP_ERR_INVALID_ARG, "mlxport_tokenizer_open: out is NULL");
  *out = NULL;
  if (!path_or_repo || !*path_or_repo) return mp_err(MP_ERR_INVALID_ARG, "mlxport_tokenizer_open: no path given");
  char *dir = NULL;
  MP_TRY(mp_hf_resolve(path_or_repo, &dir));
  mlxport_tokenizer *h = calloc(1, sizeof *h);
  mp_status s = h ? mp_tokenizer_open(dir, &h->t) : mp_err(MP_ERR_NOMEM, "out of memory");
  if (h) pthread_mutex_init(&h->lock, NULL);
  free(dir);
  if (s) {
    if (h) pthread_mutex_destroy(&h->lock);
    free(h);
    return s;
  }
  *out = h;
  return MP_OK;
}

MLXPORT_API void mlxport_tokenizer_close(mlxport_tokenizer *tok) {
  if (!tok) return;
  if (tok->tokens) {
    size_t n = mp_tokenizer_vocab_size(tok->t);
    for (size_t i = 0; i < n; i++)
      free(tok->tokens[i]);
    free(tok->tokens);
  }
  mp_tokenizer_close(tok->t);
  pthread_mutex_destroy(&tok->lock);
  free(tok);
}

static mp_status to_internal(const mlxport_encode_options *in, mp_tok_options *o, int batch) {
  mlxport_encode_options d;
  mlxport_encode_options_init(&d);
  if (in) {
    if (in->struct_size < offsetof(mlxport_encode_options, add_special_tokens) || in->struct_size > sizeof d)
      return mp_err(MP_ERR_INVALID_ARG,
                    "encode options: struct_size %zu is not valid: initialise them with "
                    "mlxport_encode_options_init",
                    in->struct_size);
    memcpy(&d, in, in->struct_size);
  }
  mp_tok_options_init(o);
  o->add_special_tokens = d.add_special_tokens != 0;
  o->max_length = d.max_length;
  if ((int)d.truncation < 0 || d.truncation > MLXPORT_TRUNCATE_ONLY_SECOND)
    return mp_err(MP_ERR_INVALID_ARG, "encode options: unknown truncation %d", (int)d.truncation);
  o->truncation = (mp_trunc_strategy)d.truncation;
  if (d.padding == MLXPORT_PAD_MAX_LENGTH) {
    if (!d.max_length) return mp_err(MP_ERR_INVALID_ARG, "encode options: MLXPORT_PAD_MAX_LENGTH needs max_length");
    o->padding = MP_PAD_MAX_LENGTH;
  } else if (d.padding == MLXPORT_PAD_LONGEST) {
    o->padding = batch ? MP_PAD_LONGEST : MP_PAD_NONE;
  } else {
    return mp_err(MP_ERR_INVALID_ARG, "encode options: unknown padding %d", (int)d.padding);
  }
  if (o->truncation != MP_TRUNC_NONE && !o->max_length)
    return mp_err(MP_ERR_INVALID_ARG, "encode options: truncation needs max_length");
  return MP_OK;
}

MLXPORT_API mlxport_status mlxport_tokenizer_encode_batch(const mlxport_tokenizer *tok, size_t n,
                                                          const char *const *texts, const char *const *pairs,
                                                          const mlxport_encode_options *options,
                                                          mlxport_encoding **out) {
  if (!out) return mp_err(MP_ERR_INVALID_ARG, "mlxport_tokenizer_encode_batch: out is NULL");
  *out = NULL;
  if (!tok || (n && !texts)) return mp_err(MP_ERR_INVALID_ARG, "mlxport_tokenizer_encode_batch: NULL argument");
  for (size_t i = 0; i < n; i++)
    if (!texts[i] || (pairs && !pairs[i]))
      return mp_err(MP_ERR_INVALID_ARG, "mlxport_tokenizer_encode_batch: text %zu is NULL", i);
  mp_tok_options o;
  MP_TRY(to_internal(options, &o, 1));
  mp_tok_batch b;
  MP_TRY(mp_tokenizer_encode_batch(tok->t, n, texts, pairs, &o, &b));
  mlxport_encoding *e = calloc(1, sizeof *e);
  if (!e) {
    mp_tok_batch_free(&b);
    return mp_err(MP_ERR_NOMEM, "out of memory");
  }
  /* the batch's arrays move into the public struct; lens (the HF lengths) is not exposed */
  e->n = b.n;
  e->seq_len = b.seq_len;
  e->input_ids = b.input_ids;
  e->attention_mask = b.attention_mask;
  e->token_type_ids = b.token_type_ids;
  e->n_tokens = b.n_real;
  free(b.lens);
  *out = e;
  return MP_OK;
}

MLXPORT_API void mlxport_encoding_free(mlxport_encoding *enc) {
  if (!enc) return;
  free(enc->input_ids);
  free(enc->attention_mask);
  free(enc->token_type_ids);
  free(enc->n_tokens);
  free(enc);
}

MLXPORT_API mlxport_status mlxport_tokenizer_encode(const mlxport_tokenizer *tok, const char *text, const char *pair,
                                                    const mlxport_encode_options *options, int32_t *ids, size_t cap,
                                                    size_t *n_ids) {
  if (!tok || !text || !n_ids || (cap && !ids))
    return mp_err(MP_ERR_INVALID_ARG, "mlxport_tokenizer_encode: NULL argument");
  *n_ids = 0;
  mp_tok_options o;
  MP_TRY(to_internal(options, &o, 0));
  mp_tok_encoding e;
  MP_TRY(mp_tokenizer_encode(tok->t, text, strlen(text), pair, pair ? strlen(pair) : 0, &o, &e));
  memcpy(ids, e.input_ids, (e.len < cap ? e.len : cap) * sizeof *ids);
  *n_ids = e.len;
  mp_tok_encoding_free(&e);
  return MP_OK;
}

MLXPORT_API mlxport_status mlxport_tokenizer_decode(const mlxport_tokenizer *tok, const int32_t *ids, size_t n,
                                                    int skip_special_tokens, char **text) {
  if (!tok || !text || (n && !ids)) return mp_err(MP_ERR_INVALID_ARG, "mlxport_tokenizer_decode: NULL argument");
  *text = NULL;
  mp_sb sb;
  mp_sb_init(&sb);
  mp_status s = mp_tokenizer_decode(tok->t, ids, n, skip_special_tokens != 0, &sb);
  if (!s && sb.oom) s = mp_err(MP_ERR_NOMEM, "out of memory");
  if (s) {
    mp_sb_free(&sb);
    return s;
  }
  mp_sb_putc(&sb, 0); /* an empty text still gets a buffer */
  *text = mp_sb_steal(&sb);
  return *text ? MP_OK : mp_err(MP_ERR_NOMEM, "out of memory");
}

MLXPORT_API size_t mlxport_tokenizer_vocab_size(const mlxport_tokenizer *tok) {
  return tok ? mp_tokenizer_vocab_size(tok->t) : 0;
}

MLXPORT_API int32_t mlxport_tokenizer_token_to_id(const mlxport_tokenizer *tok, const char *token) {
  return tok && token ? mp_tokenizer_token_to_id(tok->t, token, strlen(token)) : -1;
}

MLXPORT_API const char *mlxport_tokenizer_id_to_token(const mlxport_tokenizer *tok, int32_t id) {
  if (!tok) return NULL;
  size_t len = 0;
  const char *s = mp_tokenizer_id_to_token(tok->t, id, &len);
  if (!s) return NULL;
  /* the internal strings are length-delimited: hand out NUL-terminated copies, kept for the
   * tokenizer's lifetime (the handle is otherwise immutable, so this is the one lazy part) */
  struct mlxport_tokenizer *mt = (struct mlxport_tokenizer *)tok;
  const char *r = NULL;
  pthread_mutex_lock(&mt->lock);
  if (!mt->tokens) mt->tokens = calloc(mp_tokenizer_vocab_size(tok->t), sizeof *mt->tokens);
  if (mt->tokens && !mt->tokens[id]) {
    char *c = malloc(len + 1);
    if (c) {
      memcpy(c, s, len);
      c[len] = 0;
      mt->tokens[id] = c;
    }
  }
  if (mt->tokens) r = mt->tokens[id];
  pthread_mutex_unlock(&mt->lock);
  return r;
}
