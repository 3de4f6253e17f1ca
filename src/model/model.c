/* Models: open a folder, pick the family, bind weights, run forward passes; pooling, batching
 * and the high-level embed/classify entry points shared by every family. */
#include "model/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/tensor.h"
#include "format/hf.h"
#include "model/model_internal.h"

static const mp_family_ops *family_ops(mp_family f) {
  switch (f) {
  case MP_FAMILY_BERT:
  case MP_FAMILY_ROBERTA:
  case MP_FAMILY_DISTILBERT: return &mp_family_bert;
  case MP_FAMILY_DEBERTA_V2: return &mp_family_deberta;
  case MP_FAMILY_BART: return &mp_family_bart;
  case MP_FAMILY_MOBILEBERT: return &mp_family_mobilebert;
  case MP_FAMILY_MPNET: return &mp_family_mpnet;
  case MP_FAMILY_MODERNBERT: return &mp_family_modernbert;
  default: return NULL;
  }
}

/* ---------------------------------------------------------------- open / close */

mp_status mp_model_open(const char *ref, const mp_model_options *opt, mp_model **out) {
  *out = NULL;
  mp_model *m = calloc(1, sizeof *m);
  if (!m) return mp_err(MP_ERR_NOMEM, "out of memory");
  mp_arena_init(&m->params, 1 << 16);
  mp_arena_init(&m->act, 1 << 20);
  m->compute = opt ? opt->compute : MP_COMPUTE_FAST;
  m->weight_hook = opt ? opt->weight_hook : NULL;
  m->weight_hook_ctx = opt ? opt->weight_hook_ctx : NULL;
  if (m->compute != MP_COMPUTE_FAST && m->compute != MP_COMPUTE_FAITHFUL) {
    mp_status e = mp_err(MP_ERR_INVALID_ARG, "model options: unknown compute mode %d", (int)m->compute);
    mp_model_close(m);
    return e;
  }
  mp_status st = mp_hf_resolve(ref, &m->path);
  if (!st && !mp_is_dir(m->path))
    st = mp_err(MP_ERR_INVALID_ARG, "%s: a model folder is needed (config.json, weights, tokenizer)", m->path);
  if (!st) st = mp_model_config_load(m->path, &m->cfg);
  mp_arena_init(&m->cfg_arena, 0);
  if (!st) st = mp_hf_load_config(m->path, &m->cfg_arena, &m->cfg_json);
  if (!st && !(m->ops = family_ops(m->cfg.family)))
    st = mp_err(MP_ERR_UNSUPPORTED, "%s: model family %s has no runtime yet", m->path, mp_family_name(m->cfg.family));
  mp_device_spec dspec;
  if (!st) st = mp_device_parse(opt ? opt->device : NULL, &dspec);
  if (!st) st = mp_model_device_open(m, &dspec, opt ? opt->device_dtype : 0);
  /* a device without a fast mode (no 8-bit GEMM, MP_CUDA_FAST8=0, fp32) computes faithfully */
  if (!st && m->dev && m->compute == MP_COMPUTE_FAST &&
      !(m->dev->fast8_ok && m->dev->upload_fast8 && m->dev->fast8_ok(m->dev_ctx, 16, 16, 0)))
    m->compute = MP_COMPUTE_FAITHFUL;
  if (!st) st = mp_weights_open(m->path, &m->w);
  if (!st) st = mp_tokenizer_open(m->path, &m->tok);
  if (!st) st = m->ops->bind(m);
  if (!st) st = mp_pool_create(opt ? opt->threads : 0, &m->pool);
  if (!st && m->n_fp && m->compute == MP_COMPUTE_FAST)
    mp_log(MP_LOG_INFO,
           "%s: %d layer(s) in MLX's mxfp4/nvfp4/mxfp8 modes run as in faithful mode (the fast integer kernels "
           "apply to affine layers only)",
           m->path, m->n_fp);
  if (st) {
    mp_model_close(m);
    return st;
  }
  *out = m;
  return MP_OK;
}

mp_status mp_model_config_param_count(const char *dir, int64_t *n, int *cls_head) {
  *n = -1;
  if (cls_head) *cls_head = 0;
  mp_model_config cfg;
  MP_TRY(mp_model_config_load(dir, &cfg));
  mp_arena a;
  mp_arena_init(&a, 0);
  mp_json *cj = NULL;
  mp_status st = mp_hf_load_config(dir, &a, &cj);
  const mp_family_ops *ops = st ? NULL : family_ops(cfg.family);
  if (!st && (!ops || !ops->param_count))
    st = mp_err(MP_ERR_UNSUPPORTED, "%s: no parameter count for model family %s", dir, mp_family_name(cfg.family));
  if (!st) {
    *n = ops->param_count(&cfg, cj);
    if (*n < 0)
      st = mp_err(MP_ERR_UNSUPPORTED, "%s/config.json: cannot count the parameters of this configuration", dir);
    if (cls_head) *cls_head = cfg.head == MP_HEAD_SEQ_CLS;
  }
  mp_arena_free(&a);
  mp_model_config_free(&cfg);
  return st;
}

void mp_model_close(mp_model *m) {
  if (!m) return;
  mp_pool_free(m->pool);
  mp_tokenizer_close(m->tok);
  mp_weights_close(m->w);
  if (m->ops && m->ops->release) m->ops->release(m);
  mp_model_device_close(m);
  for (size_t i = 0; i < m->n_packs; i++)
    mp_qweight_free(m->packs[i]);
  free(m->packs);
  for (size_t i = 0; i < m->n_bpacks; i++)
    mp_bfweight_free(m->bpacks[i]);
  free(m->bpacks);
  mp_model_config_free(&m->cfg);
  mp_arena_free(&m->cfg_arena);
  mp_arena_free(&m->params);
  mp_arena_free(&m->act);
  free(m->path);
  free(m);
}

const char *mp_compute_name(mp_compute c) { return c == MP_COMPUTE_FAITHFUL ? "faithful" : "fast"; }

mp_status mp_compute_parse(const char *s, mp_compute *out) {
  if (s && !strcmp(s, "fast"))
    *out = MP_COMPUTE_FAST;
  else if (s && !strcmp(s, "faithful"))
    *out = MP_COMPUTE_FAITHFUL;
  else
    return mp_err(MP_ERR_INVALID_ARG, "compute mode '%s': use fast (integer kernels) or faithful (as MLX computes)",
                  s ? s : "");
  return MP_OK;
}

mp_compute mp_model_compute(const mp_model *m, size_t *n_int_layers) {
  if (n_int_layers) *n_int_layers = m->n_packs + m->n_dev8;
  return m->compute;
}

size_t mp_model_bf16_layers(const mp_model *m) { return m->n_bpacks; }

int mp_model_has_quantized(const mp_model *m) { return m->n_quant > 0; }
int mp_model_fp_quantized(const mp_model *m) { return m->n_fp; }

const mp_model_config *mp_model_get_config(const mp_model *m) { return &m->cfg; }
const mp_tokenizer *mp_model_get_tokenizer(const mp_model *m) { return m->tok; }
const char *mp_model_path(const mp_model *m) { return m->path; }
size_t mp_model_hidden(const mp_model *m) { return (size_t)m->cfg.hidden; }
/* (mp_model_device_name is in device.c) */

size_t mp_model_max_positions(const mp_model *m) {
  int64_t p = m->cfg.max_positions;
  if (m->cfg.family == MP_FAMILY_ROBERTA) p -= m->cfg.pad_token_id + 1;
  if (m->cfg.family == MP_FAMILY_MPNET) p -= 2; /* positions start after padding_idx 1 */
  return p > 0 ? (size_t)p : 0;
}

size_t mp_model_default_max_length(const mp_model *m) {
  size_t mp = mp_model_max_positions(m);
  if (m->cfg.st_max_seq_length > 0 && (size_t)m->cfg.st_max_seq_length < mp) return (size_t)m->cfg.st_max_seq_length;
  size_t tm = mp_tokenizer_model_max_length(m->tok);
  if (tm > 0 && tm < mp) return tm;
  return mp;
}

/* ---------------------------------------------------------------- forward */

mp_status mp_model_forward(mp_model *m, const mp_model_batch *b, const mp_forward_out *out) {
  const mp_model_config *c = &m->cfg;
  const int64_t B = (int64_t)b->n, T = (int64_t)b->seq, H = c->hidden;
  if (B <= 0 || T <= 0) return mp_err(MP_ERR_INVALID_ARG, "empty batch");
  if ((size_t)T > mp_model_max_positions(m))
    return mp_err(MP_ERR_UNSUPPORTED,
                  "%s: input of %lld tokens is longer than the model accepts (max_position_embeddings allows %zu); "
                  "enable truncation or lower --max-length",
                  m->path, (long long)T, mp_model_max_positions(m));
  if (out->logits && !m->has_head)
    return mp_err(MP_ERR_INVALID_ARG, "%s: this model has no classification head (architecture %s)", m->path,
                  c->architecture[0] ? c->architecture : "?");
  mp_arena_reset(&m->act);
  if (m->dev) {
    MP_TRY(m->dev->begin(m->dev_ctx));
    m->dev_kmask_h = m->dev_kmask_d = NULL;
    for (int i = 0; i < 3; i++)
      m->dev_idx_h[i] = m->dev_idx_d[i] = NULL, m->dev_idx_n[i] = 0;
  }
  float *x = NULL;
  MP_TRY(m->ops->encode(m, b, out, &x));
  if (m->dev) { /* x is device memory: results come back through the backend */
    if (out->hidden) MP_TRY(m->dev->download(m->dev_ctx, x, (size_t)(B * T * H), out->hidden));
    if (out->embedding) {
      mp_pooling p = c->pooling != MP_POOL_NONE ? c->pooling : MP_POOL_MEAN;
      const int32_t *dmask = NULL;
      if (b->mask && !(dmask = m->dev->upload_act(m->dev_ctx, b->mask, (size_t)(B * T) * 4))) return MP_ERR_NOMEM;
      MP_TRY(m->dev->pool(m->dev_ctx, x, B, T, H, dmask, (int)p, c->normalize, out->embedding));
    }
    if (out->logits) MP_TRY(m->ops->classify(m, b, x, out->logits));
    return MP_OK;
  }
  if (out->hidden) memcpy(out->hidden, x, (size_t)(B * T * H) * 4);
  if (out->embedding) {
    mp_pooling p = c->pooling != MP_POOL_NONE ? c->pooling : MP_POOL_MEAN;
    for (int64_t r = 0; r < B; r++) {
      float *e = out->embedding + r * H;
      const float *hr = x + r * T * H;
      const int32_t *mk = b->mask ? b->mask + r * T : NULL;
      if (p == MP_POOL_CLS) {
        memcpy(e, hr, (size_t)H * 4);
      } else if (p == MP_POOL_MAX) {
        for (int64_t d = 0; d < H; d++)
          e[d] = -INFINITY;
        int any = 0;
        for (int64_t t = 0; t < T; t++)
          if (!mk || mk[t]) {
            any = 1;
            for (int64_t d = 0; d < H; d++)
              e[d] = hr[t * H + d] > e[d] ? hr[t * H + d] : e[d];
          }
        if (!any) memset(e, 0, (size_t)H * 4);
      } else {
        /* sentence-transformers: sum(h * mask) / clamp(sum(mask), 1e-9) (sqrt for mean_sqrt_len) */
        memset(e, 0, (size_t)H * 4);
        float cnt = 0;
        for (int64_t t = 0; t < T; t++)
          if (!mk || mk[t]) {
            cnt += 1.0f;
            for (int64_t d = 0; d < H; d++)
              e[d] += hr[t * H + d];
          }
        if (cnt < 1e-9f) cnt = 1e-9f;
        float div = p == MP_POOL_MEAN_SQRT_LEN ? sqrtf(cnt) : cnt;
        for (int64_t d = 0; d < H; d++)
          e[d] /= div;
      }
      if (c->normalize) {
        double ss = 0;
        for (int64_t d = 0; d < H; d++)
          ss += (double)e[d] * e[d];
        float nrm = (float)sqrt(ss);
        if (nrm < 1e-12f) nrm = 1e-12f;
        for (int64_t d = 0; d < H; d++)
          e[d] /= nrm;
      }
    }
  }
  if (out->logits) MP_TRY(m->ops->classify(m, b, x, out->logits));
  return MP_OK;
}

/* ---------------------------------------------------------------- high level */

void mp_run_options_init(mp_run_options *o) {
  o->batch_size = 32;
  o->max_length = 0;
  o->truncation = MP_TRUNC_LONGEST_FIRST;
  o->max_batch_tokens = 0;
}

typedef struct {
  size_t idx, len;
} len_idx;

static int cmp_len(const void *a, const void *b) {
  const len_idx *x = a, *y = b;
  if (x->len != y->len) return x->len < y->len ? 1 : -1; /* longest first */
  return x->idx < y->idx ? -1 : x->idx > y->idx;
}

size_t mp_batch_rows(size_t remaining, size_t batch_size, size_t longest, size_t max_batch_tokens) {
  size_t cnt = remaining < batch_size ? remaining : batch_size;
  if (max_batch_tokens && longest && cnt * longest > max_batch_tokens)
    cnt = max_batch_tokens / longest > 0 ? max_batch_tokens / longest : 1;
  return cnt;
}

static mp_status run_texts(mp_model *m, size_t n, const char *const *a, const char *const *bb, const mp_run_options *o,
                           float *emb, float *logits, uint64_t *n_tokens, float **tok_out, size_t *tok_lens) {
  mp_run_options def;
  if (!o) mp_run_options_init(&def), o = &def;
  size_t bs = o->batch_size ? o->batch_size : 32;
  mp_tok_options to;
  mp_tok_options_init(&to);
  to.max_length = o->max_length ? o->max_length : mp_model_default_max_length(m);
  to.truncation = o->truncation;
  if (n_tokens) *n_tokens = 0;
  if (n == 0) return MP_OK;
  mp_tok_encoding *enc = calloc(n, sizeof *enc);
  len_idx *order = calloc(n, sizeof *order);
  mp_status st = (!enc || !order) ? mp_err(MP_ERR_NOMEM, "out of memory") : MP_OK;
  for (size_t i = 0; !st && i < n; i++) {
    st = mp_tokenizer_encode(m->tok, a[i], strlen(a[i]), bb ? bb[i] : NULL, bb ? strlen(bb[i]) : 0, &to, &enc[i]);
    if (st)
      mp_err_prefix(st, "input %zu", i + 1);
    else if (enc[i].len > mp_model_max_positions(m))
      st = mp_err(MP_ERR_UNSUPPORTED,
                  "input %zu has %zu tokens but the model accepts at most %zu (max_position_embeddings); enable "
                  "truncation or lower --max-length",
                  i + 1, enc[i].len, mp_model_max_positions(m));
    order[i].idx = i;
    order[i].len = enc[i].len;
  }
  if (!st) qsort(order, n, sizeof *order, cmp_len);
  size_t H = (size_t)m->cfg.hidden, L = (size_t)m->cfg.num_labels;
  int32_t *ids = NULL, *mask = NULL, *types = NULL;
  float *e_tmp = NULL, *l_tmp = NULL, *h_tmp = NULL;
  const size_t budget = o->max_batch_tokens;
  if (!st) {
    size_t maxlen = order[0].len ? order[0].len : 1;
    /* the most tokens a batch can hold: rows x longest, and with a budget no more than it (or one row) */
    size_t cap = bs * maxlen;
    if (budget && cap > (budget > maxlen ? budget : maxlen)) cap = budget > maxlen ? budget : maxlen;
    ids = malloc(cap * 4), mask = malloc(cap * 4), types = malloc(cap * 4);
    e_tmp = emb ? malloc(bs * H * 4) : NULL;
    l_tmp = logits ? malloc(bs * (L ? L : 1) * 4) : NULL;
    h_tmp = tok_out ? malloc(cap * H * 4) : NULL;
    if (!ids || !mask || !types || (emb && !e_tmp) || (logits && !l_tmp) || (tok_out && !h_tmp))
      st = mp_err(MP_ERR_NOMEM, "out of memory");
  }
  for (size_t s = 0, cnt = 0; !st && s < n; s += cnt) {
    size_t T = order[s].len ? order[s].len : 1; /* the batch's longest input: sorted longest first */
    cnt = mp_batch_rows(n - s, bs, T, budget);
    int32_t pad = mp_tokenizer_special_id(m->tok, MP_TOK_PAD);
    if (pad < 0) pad = (int32_t)m->cfg.pad_token_id;
    for (size_t r = 0; r < cnt; r++) {
      const mp_tok_encoding *e = &enc[order[s + r].idx];
      for (size_t t = 0; t < T; t++) {
        int in = t < e->len;
        ids[r * T + t] = in ? e->input_ids[t] : pad;
        mask[r * T + t] = in ? e->attention_mask[t] : 0;
        types[r * T + t] = in ? e->token_type_ids[t] : 0;
      }
      if (n_tokens) *n_tokens += e->n_real;
    }
    mp_model_batch mb = {.n = cnt, .seq = T, .ids = ids, .mask = mask, .types = types};
    mp_forward_out fo = {.embedding = e_tmp, .logits = l_tmp, .hidden = h_tmp};
    st = mp_model_forward(m, &mb, &fo);
    for (size_t r = 0; !st && r < cnt; r++) {
      size_t i = order[s + r].idx;
      if (tok_out) {
        size_t nr = enc[i].n_real;
        tok_lens[i] = nr;
        tok_out[i] = malloc((nr ? nr : 1) * H * 4);
        if (!tok_out[i]) {
          st = mp_err(MP_ERR_NOMEM, "out of memory");
          break;
        }
        memcpy(tok_out[i], h_tmp + r * T * H, nr * H * 4);
      }
      if (emb) memcpy(emb + i * H, e_tmp + r * H, H * 4);
      if (logits) memcpy(logits + i * L, l_tmp + r * L, L * 4);
    }
  }
  for (size_t i = 0; enc && i < n; i++)
    mp_tok_encoding_free(&enc[i]);
  free(enc);
  free(order);
  free(ids), free(mask), free(types), free(e_tmp), free(l_tmp), free(h_tmp);
  return st;
}

mp_status mp_model_embed(mp_model *m, size_t n, const char *const *texts, const mp_run_options *o, float *emb,
                         uint64_t *n_tokens) {
  return run_texts(m, n, texts, NULL, o, emb, NULL, n_tokens, NULL, NULL);
}

mp_status mp_model_classify(mp_model *m, size_t n, const char *const *a, const char *const *b, const mp_run_options *o,
                            float *logits, uint64_t *n_tokens) {
  if (!m->has_head)
    return mp_err(MP_ERR_INVALID_ARG, "%s: this model has no classification head (architecture %s); use embed instead",
                  m->path, m->cfg.architecture[0] ? m->cfg.architecture : "?");
  return run_texts(m, n, a, b, o, NULL, logits, n_tokens, NULL, NULL);
}

mp_status mp_model_token_embeddings(mp_model *m, size_t n, const char *const *texts, const mp_run_options *o,
                                    float **out, size_t *lens) {
  memset(out, 0, n * sizeof *out);
  mp_status st = run_texts(m, n, texts, NULL, o, NULL, NULL, NULL, out, lens);
  if (st)
    for (size_t i = 0; i < n; i++)
      free(out[i]), out[i] = NULL;
  return st;
}
