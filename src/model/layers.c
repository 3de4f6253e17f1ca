/* Layer math shared by the model families (see layers.h): dense layers on the float or integer
 * kernels, activation buffers, norms (LayerNorm, MobileBERT's NoNorm), the encode prologue, the
 * post-LayerNorm layer tail and the first-token head. */
#include "model/layers.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

float *mp_act_alloc(mp_model *m, size_t n) {
  if (m->dev) return m->dev->alloc(m->dev_ctx, n);
  /* not zeroed: every activation buffer is written before it is read (sanitizer builds fill it
   * with NaN so that a read of an unwritten value shows in the results) */
  float *p = mp_arena_alloc_uninit(&m->act, n * sizeof(float), 64);
#ifdef MP_POISON_ACT
  if (p) memset(p, 0xff, n * sizeof(float));
#endif
  return p;
}

float *mp_act_alloc_compute(mp_model *m, size_t n) {
  if (m->dev) return m->dev->alloc(m->dev_ctx, (n * m->dev_esize + sizeof(float) - 1) / sizeof(float));
  return mp_act_alloc(m, n);
}

/* ---------------------------------------------------------------- device dispatch */

static mp_status dev_dense(mp_model *m, const float *x, int64_t rows, const mp_dense *d, mp_act act, float *y) {
  const void *w = mp_dev_dense_weight(m, d), *bias = NULL;
  if (!w) return MP_ERR_NOMEM;
  if (d->b && !(bias = mp_dev_vector(m, d->b, d->bdt, d->w.out, 1))) return MP_ERR_NOMEM;
  if (m->compute == MP_COMPUTE_FAST && m->dev->fast_act) act = m->dev->fast_act(m->dev_ctx, act);
  return m->dev->dense(m->dev_ctx, x, rows, w, d->w.out, d->w.in, bias, act, y);
}

void mp_ln_run_cpu(mp_model *m, const float *x, const float *residual, int64_t rows, const mp_lnorm *ln, float eps,
                   float *out) {
  mp_layernorm(m->pool, x, residual, rows, m->cfg.hidden, ln->g, ln->b, eps, out);
}

mp_status mp_ln_run(mp_model *m, const float *x, const float *residual, int64_t rows, const mp_lnorm *ln, float eps,
                    float *out) {
  const int64_t H = m->cfg.hidden;
  if (!m->dev) {
    mp_ln_run_cpu(m, x, residual, rows, ln, eps, out);
    return MP_OK;
  }
  const void *g = mp_dev_vector(m, ln->g, MP_F32, H, 0), *bb = NULL;
  if (!g || (ln->b && !(bb = mp_dev_vector(m, ln->b, MP_F32, H, 0)))) return MP_ERR_NOMEM;
  return m->dev->layernorm(m->dev_ctx, x, residual, rows, H, g, bb, eps, out);
}

typedef struct nonorm_task {
  const float *x, *res;
  float *out;
  int64_t rows, dim;
  const float *g, *b;
} nonorm_task;

#define NONORM_ROWS 64
typedef float v4f __attribute__((vector_size(16)));

static void nonorm_fill(void *ctx, int64_t task, int thread) {
  (void)thread;
  const nonorm_task *a = ctx;
  int64_t r0 = task * NONORM_ROWS, r1 = r0 + NONORM_ROWS < a->rows ? r0 + NONORM_ROWS : a->rows;
  const int64_t D = a->dim;
  const float *g = a->g, *b = a->b;
  for (int64_t r = r0; r < r1; r++) {
    const float *x = a->x + r * D;
    float *o = a->out + r * D;
    const float *res = a->res ? a->res + r * D : NULL;
    int64_t i = 0;
    /* torch: (input [+ residual]) * weight, rounded, then + bias; 4 lanes at a time (no FMA: the
     * file is built for the base ISA, so products are rounded before the add) */
    for (; i + 4 <= D; i += 4) {
      v4f xv, rv, gv, bv;
      memcpy(&xv, x + i, sizeof xv);
      if (res) {
        memcpy(&rv, res + i, sizeof rv);
        xv = xv + rv;
      }
      memcpy(&gv, g + i, sizeof gv);
      memcpy(&bv, b + i, sizeof bv);
      xv = xv * gv;
      xv = xv + bv;
      memcpy(o + i, &xv, sizeof xv);
    }
    for (; i < D; i++) {
      float v = res ? x[i] + res[i] : x[i];
      float p = v * g[i];
      o[i] = p + b[i];
    }
  }
}

mp_status mp_norm_run(mp_model *m, const float *x, const float *residual, int64_t rows, int64_t dim, const float *g,
                      const float *b, float eps, int no_norm, float *out) {
  if (!m->dev) {
    if (!no_norm) {
      mp_layernorm(m->pool, x, residual, rows, dim, g, b, eps, out);
    } else {
      if (!b) return mp_err(MP_ERR_INTERNAL, "NoNorm without a bias");
      nonorm_task t = {.x = x, .res = residual, .out = out, .rows = rows, .dim = dim, .g = g, .b = b};
      mp_pool_run(m->pool, (rows + NONORM_ROWS - 1) / NONORM_ROWS, nonorm_fill, &t);
    }
    return MP_OK;
  }
  const void *dg = mp_dev_vector(m, g, MP_F32, dim, 0), *db = NULL;
  if (!dg || (b && !(db = mp_dev_vector(m, b, MP_F32, dim, 0)))) return MP_ERR_NOMEM;
  if (no_norm) return m->dev->affine(m->dev_ctx, x, residual, rows, dim, dg, db, out);
  return m->dev->layernorm(m->dev_ctx, x, residual, rows, dim, dg, db, eps, out);
}

mp_status mp_embed_sum_ln(mp_model *m, int n, const mp_linear_weight *const *tables, const int32_t *const *ids,
                          int64_t N, const mp_lnorm *ln, float eps, float *x) {
  return mp_embed_sum(m, n, tables, ids, N, m->cfg.hidden, ln, eps, x);
}

mp_status mp_embed_sum(mp_model *m, int n, const mp_linear_weight *const *tables, const int32_t *const *ids, int64_t N,
                       int64_t dim, const mp_lnorm *ln, float eps, float *x) {
  return mp_embed_sum_scaled(m, n, tables, ids, N, dim, 1.0f, ln, eps, x);
}

mp_status mp_embed_sum_scaled(mp_model *m, int n, const mp_linear_weight *const *tables, const int32_t *const *ids,
                              int64_t N, int64_t dim, float scale0, const mp_lnorm *ln, float eps, float *x) {
  const int64_t H = dim;
  if (!m->dev && scale0 != 1.0f) return mp_err(MP_ERR_INTERNAL, "embeddings: a scaled table is device-only");
  if (n < 1 || n > 4) return mp_err(MP_ERR_INTERNAL, "embeddings: %d tables", n);
  if (ln && dim != m->cfg.hidden)
    return mp_err(MP_ERR_INTERNAL, "embeddings: LayerNorm over %lld columns", (long long)dim);
  if (!m->dev) { /* table 0, then += each other table (the order the families always used) */
    MP_TRY(mp_embedding_rows(tables[0], ids[0], N, x));
    if (n > 1) {
      float *t = mp_arena_alloc_aligned(&m->act, (size_t)(N * H) * sizeof(float), 64);
      if (!t) return mp_err(MP_ERR_NOMEM, "out of memory for %lld x %lld embeddings", (long long)N, (long long)H);
      for (int i = 1; i < n; i++) {
        MP_TRY(mp_embedding_rows(tables[i], ids[i], N, t));
        mp_add_inplace(x, t, N * H);
      }
    }
    if (ln) mp_ln_run_cpu(m, x, NULL, N, ln, eps, x);
    return MP_OK;
  }
  const void *dt[4];
  const int32_t *di[4];
  for (int i = 0; i < n; i++) {
    const mp_linear_weight *t = tables[i];
    for (int64_t r = 0; r < N; r++)
      if (ids[i][r] < 0 || ids[i][r] >= t->out)
        return mp_err(MP_ERR_INVALID_ARG,
                      "%s: token id %d at position %lld is outside the vocabulary [0, %lld); the tokenizer does not "
                      "match the model",
                      t->name ? t->name : "embeddings", ids[i][r], (long long)r, (long long)t->out);
    if (!(dt[i] = mp_dev_weight(m, t))) return MP_ERR_NOMEM;
    if (!(di[i] = m->dev->upload_act(m->dev_ctx, ids[i], (size_t)N * 4))) return MP_ERR_NOMEM;
  }
  const void *g = NULL, *bb = NULL;
  if (ln) {
    if (!(g = mp_dev_vector(m, ln->g, MP_F32, H, 0))) return MP_ERR_NOMEM;
    if (ln->b && !(bb = mp_dev_vector(m, ln->b, MP_F32, H, 0))) return MP_ERR_NOMEM;
  }
  return m->dev->embed_sum_ln(m->dev_ctx, n, dt, di, N, H, scale0, g, bb, eps, x);
}

/* The device copy of a forward pass's key mask (host bytes [n]); one upload per forward pass. */
static const uint8_t *dev_kmask(mp_model *m, const uint8_t *host, int64_t n) {
  if (m->dev_kmask_h != host) {
    uint8_t *d = m->dev->upload_act(m->dev_ctx, host, (size_t)n);
    if (!d) return NULL;
    m->dev_kmask_h = host, m->dev_kmask_d = d;
  }
  return m->dev_kmask_d;
}

static mp_status dev_attention_args(mp_model *m, const mp_attention_args *a, mp_dev_attention *da) {
  const uint8_t *km = NULL;
  if (a->key_mask && !(km = dev_kmask(m, a->key_mask, a->batch * a->seq_k))) return MP_ERR_NOMEM;
  memset(da, 0, sizeof *da);
  da->batch = a->batch, da->seq_q = a->seq_q, da->seq_k = a->seq_k, da->heads = a->heads;
  da->head_dim = a->head_dim, da->q = a->q, da->k = a->k, da->v = a->v;
  da->ldq = a->ldq, da->ldk = a->ldk, da->ldv = a->ldv, da->ldo = a->ldo;
  da->out = a->out, da->scale = a->scale, da->key_mask = km;
  return MP_OK;
}

mp_status mp_attention_run(mp_model *m, const mp_attention_args *a) {
  if (!m->dev) return mp_attention(m->pool, a);
  if (a->bias) return mp_err(MP_ERR_UNSUPPORTED, "%s: attention score biases are not supported on CUDA yet", m->path);
  mp_dev_attention da;
  MP_TRY(dev_attention_args(m, a, &da));
  return m->dev->attention(m->dev_ctx, &da);
}

mp_status mp_gather_rows_at(mp_model *m, const float *x, int64_t n, const int32_t *rows, int64_t dim, float *out) {
  if (!m->dev) {
    for (int64_t r = 0; r < n; r++) {
      if (rows[r] < 0)
        memset(out + r * dim, 0, (size_t)dim * sizeof(float));
      else
        memcpy(out + r * dim, x + (int64_t)rows[r] * dim, (size_t)dim * sizeof(float));
    }
    return MP_OK;
  }
  const int32_t *d = m->dev->upload_act(m->dev_ctx, rows, (size_t)n * 4);
  if (!d) return MP_ERR_NOMEM;
  return m->dev->gather_idx(m->dev_ctx, x, n, d, dim, out);
}

mp_status mp_logits_to_host(mp_model *m, const float *x, int64_t n, float *host) {
  if (!m->dev) {
    if (x != host) memcpy(host, x, (size_t)n * sizeof(float));
    return MP_OK;
  }
  return m->dev->download(m->dev_ctx, x, (size_t)n, host);
}

/* The device copy of one of relative attention's index tables (slot 0 cix, 1 pix, 2 bidx): the
 * families fill them once before the layer loop, so one upload per forward pass serves every
 * layer (reset with the key mask at the start of the pass). */
static const int32_t *dev_idx(mp_model *m, int slot, const int32_t *host, size_t bytes) {
  if (m->dev_idx_h[slot] != host || m->dev_idx_n[slot] != bytes) {
    const void *d = m->dev->upload_act(m->dev_ctx, host, bytes);
    if (!d) return NULL;
    m->dev_idx_h[slot] = host, m->dev_idx_n[slot] = bytes, m->dev_idx_d[slot] = d;
  }
  return m->dev_idx_d[slot];
}

mp_status mp_attention_rel_run(mp_model *m, const mp_attention_args *a, const mp_attn_rel *r) {
  if (!m->dev) return mp_err(MP_ERR_INTERNAL, "relative attention terms are device-only");
  if (a->seq_q != a->seq_k) return mp_err(MP_ERR_INTERNAL, "relative attention needs seq_q == seq_k");
  mp_dev_attention da;
  MP_TRY(dev_attention_args(m, a, &da));
  const size_t nd = (size_t)(2 * a->seq_k - 1) * 4;
  da.pos_k = r->pos_k, da.pos_q = r->pos_q, da.ldp = r->ldp, da.bias_tab = r->bias_tab, da.causal = r->causal;
  da.window = r->window;
  if (r->cix || r->pix) { /* the position rows the terms reach (the backend's table products) */
    int64_t lo = INT64_MAX, hi = -1;
    for (int64_t dd = 0; dd < 2 * a->seq_k - 1; dd++) {
      if (r->cix) lo = r->cix[dd] < lo ? r->cix[dd] : lo, hi = r->cix[dd] > hi ? r->cix[dd] : hi;
      if (r->pix) lo = r->pix[dd] < lo ? r->pix[dd] : lo, hi = r->pix[dd] > hi ? r->pix[dd] : hi;
    }
    da.pos_lo = lo, da.n_pos = hi - lo + 1;
  }
  if (r->cix && !(da.cix = dev_idx(m, 0, r->cix, nd))) return MP_ERR_NOMEM;
  if (r->pix && !(da.pix = dev_idx(m, 1, r->pix, nd))) return MP_ERR_NOMEM;
  if (r->bidx && !(da.bidx = dev_idx(m, 2, r->bidx, nd))) return MP_ERR_NOMEM;
  return m->dev->attention(m->dev_ctx, &da);
}

mp_status mp_mul_rows_run(mp_model *m, float *x, const float *y, int64_t rows, int64_t dim) {
  if (m->dev && m->dev->mul_rows) return m->dev->mul_rows(m->dev_ctx, x, y, rows, dim);
  return mp_binary_run(m, x, y, rows * dim, 1);
}

mp_status mp_keep_copy_run(mp_model *m, const float *x, int64_t rows, int64_t dim) {
  if (m->dev && m->dev->keep_copy) return m->dev->keep_copy(m->dev_ctx, x, rows, dim);
  return MP_OK;
}

mp_status mp_binary_run(mp_model *m, float *x, const float *y, int64_t n, int op) {
  if (m->dev) return m->dev->binary(m->dev_ctx, x, y, n, op);
  if (op == 0) {
    mp_add_inplace(x, y, n);
  } else {
    for (int64_t i = 0; i < n; i++)
      x[i] *= y[i];
  }
  return MP_OK;
}

mp_status mp_zero_rows(mp_model *m, float *x, int64_t rows, int64_t dim, const uint8_t *keep) {
  if (!m->dev) {
    for (int64_t i = 0; i < rows; i++)
      if (!keep[i]) memset(x + i * dim, 0, (size_t)dim * sizeof(float));
    return MP_OK;
  }
  const uint8_t *dk = dev_kmask(m, keep, rows);
  if (!dk) return MP_ERR_NOMEM;
  return m->dev->zero_rows(m->dev_ctx, x, rows, dim, dk);
}

mp_status mp_layer_report(mp_model *m, const mp_forward_out *out, int layer, const float *x, const mp_model_batch *b,
                          int64_t H) {
  if (!out->hook) return MP_OK;
  if (!m->dev) {
    mp_report_layer(out, layer, x, b, H);
    return MP_OK;
  }
  size_t n = b->n * b->seq * (size_t)H;
  float *h = malloc(n * sizeof *h);
  if (!h) return mp_err(MP_ERR_NOMEM, "out of memory");
  mp_status st = m->dev->download(m->dev_ctx, x, n, h);
  if (!st) out->hook(out->hook_user, layer, h, b->n, b->seq, (size_t)H);
  free(h);
  return st;
}

/* ---------------------------------------------------------------- dense layers */

mp_status mp_dense_run(mp_model *m, const float *x, int64_t rows, const mp_dense *d, mp_act act, float *y) {
  if (m->dev) return dev_dense(m, x, rows, d, act, y);
  if (d->qw) {
    int64_t qo, qi;
    mp_qweight_shape(d->qw, &qo, &qi);
    if (qo != d->w.out || qi != d->w.in) /* a dense layer changed after packing: a bug, not bad input */
      return mp_err(MP_ERR_INTERNAL, "%s: integer form [%lld, %lld] does not match the layer [%lld, %lld]",
                    d->w.name ? d->w.name : "dense", (long long)qo, (long long)qi, (long long)d->w.out,
                    (long long)d->w.in);
    return mp_qlinear_act(m->pool, x, rows, d->qw, d->b, d->bdt, act, y);
  }
  if (d->bw) {
    int64_t bo, bi;
    mp_bfweight_shape(d->bw, &bo, &bi);
    if (bo != d->w.out || bi != d->w.in)
      return mp_err(MP_ERR_INTERNAL, "%s: bf16-tile form [%lld, %lld] does not match the layer [%lld, %lld]",
                    d->w.name ? d->w.name : "dense", (long long)bo, (long long)bi, (long long)d->w.out,
                    (long long)d->w.in);
    return mp_bflinear_act(m->pool, x, rows, d->bw, d->b, d->bdt, act, y);
  }
  return mp_linear_act(m->pool, x, rows, &d->w, d->b, d->bdt, act, y);
}

mp_status mp_dense_run_chain(mp_model *m, const float *x, int64_t rows, const mp_dense *d1, mp_act act,
                             const mp_dense *d2, float *big, float *y) {
  if (!m->dev && d1->qw && d2->qw && mp_qlinear_chain_ok(d1->qw, d2->qw))
    return mp_qlinear_chain(m->pool, x, rows, d1->qw, d1->b, d1->bdt, act, d2->qw, d2->b, d2->bdt, y);
  MP_TRY(mp_dense_run(m, x, rows, d1, act, big));
  return mp_dense_run(m, big, rows, d2, MP_ACT_NONE, y);
}

mp_status mp_dense_run_many(mp_model *m, const float *x, int64_t rows, int n, const mp_dense *const *d,
                            float *const *y) {
  const mp_qweight *qw[4];
  const void *b[4];
  mp_dtype bdt[4];
  int all_int = n >= 1 && n <= 4 && !m->dev;
  for (int i = 0; all_int && i < n; i++) {
    int64_t qo = 0, qi = 0;
    if (d[i]->qw) mp_qweight_shape(d[i]->qw, &qo, &qi);
    all_int = d[i]->qw && qo == d[i]->w.out && qi == d[i]->w.in && d[i]->w.in == d[0]->w.in &&
              d[i]->w.group_size == d[0]->w.group_size;
    qw[i] = d[i]->qw, b[i] = d[i]->b, bdt[i] = d[i]->bdt;
  }
  if (all_int) return mp_qlinear_multi(m->pool, x, rows, n, qw, b, bdt, MP_ACT_NONE, y);
  int all_float = n >= 1 && n <= 4 && !m->dev;
  const mp_linear_weight *fw[4];
  for (int i = 0; all_float && i < n; i++) {
    all_float = !d[i]->qw && !d[i]->bw && d[i]->w.in == d[0]->w.in;
    fw[i] = &d[i]->w, b[i] = d[i]->b, bdt[i] = d[i]->bdt;
  }
  if (all_float) return mp_linear_multi(m->pool, x, rows, n, fw, b, bdt, y);
  for (int i = 0; i < n; i++)
    MP_TRY(mp_dense_run(m, x, rows, d[i], MP_ACT_NONE, y[i]));
  return MP_OK;
}

int mp_dense_fusable(mp_model *m, int n, const mp_dense *const *d) {
  if (!m->dev || !m->dev_fuse || n < 2 || n > 4) return 0;
  for (int i = 1; i < n; i++)
    if (d[i]->w.in != d[0]->w.in || d[i]->w.out != d[0]->w.out) return 0;
  /* each part starts 16-byte aligned in the fused rows (the tensor-core attention loads 16 bytes) */
  return d[0]->w.out > 0 && d[0]->w.out % 8 == 0;
}

mp_status mp_dense_fused_run(mp_model *m, const float *x, int64_t rows, int n, const mp_dense *const *d, float *y,
                             float **parts) {
  if (!mp_dense_fusable(m, n, d))
    return mp_err(MP_ERR_INTERNAL, "%s: %d dense layers cannot run fused here", d[0]->w.name ? d[0]->w.name : "dense",
                  n);
  const int64_t out = d[0]->w.out;
  const void *w = mp_dev_weight_cat(m, n, d), *bias = NULL;
  if (!w) return MP_ERR_NOMEM;
  MP_TRY(mp_dev_bias_cat(m, n, d, &bias));
  MP_TRY(m->dev->dense(m->dev_ctx, x, rows, w, n * out, d[0]->w.in, bias, MP_ACT_NONE, y));
  for (int i = 0; i < n; i++)
    parts[i] = (float *)(void *)((char *)y + (size_t)(i * out) * m->dev_esize);
  return MP_OK;
}

int mp_qkv_fusable(mp_model *m, const mp_dense *q, const mp_dense *k, const mp_dense *v) {
  const mp_dense *d[3] = {q, k, v};
  return mp_dense_fusable(m, v ? 3 : 2, d);
}

mp_status mp_qkv_run(mp_model *m, const float *x, int64_t rows, const mp_dense *q, const mp_dense *k, const mp_dense *v,
                     float *qkv, float *yq, float *yk, float *yv, mp_attention_args *a) {
  const mp_dense *d[3] = {q, k, v};
  if (qkv) {
    float *p[3];
    MP_TRY(mp_dense_fused_run(m, x, rows, 3, d, qkv, p));
    a->q = p[0], a->k = p[1], a->v = p[2];
    a->ldq = a->ldk = a->ldv = 3 * q->w.out;
    return MP_OK;
  }
  float *const ys[3] = {yq, yk, yv};
  MP_TRY(mp_dense_run_many(m, x, rows, 3, d, ys));
  a->q = yq, a->k = yk, a->v = yv;
  a->ldq = a->ldk = a->ldv = 0;
  return MP_OK;
}

mp_status mp_batch_nomem(const mp_model_batch *b) {
  return mp_err(MP_ERR_NOMEM, "out of memory for a batch of %lld x %lld tokens", (long long)b->n, (long long)b->seq);
}

mp_status mp_encode_inputs(mp_model *m, const mp_model_batch *b, mp_pos_ids pos, int64_t pos_arg, int flags,
                           mp_enc_inputs *in) {
  const mp_model_config *c = &m->cfg;
  const int64_t B = (int64_t)b->n, T = (int64_t)b->seq, N = B * T;
  memset(in, 0, sizeof *in);
  in->kmask = mp_arena_alloc(&m->act, (size_t)N);
  if (pos != MP_POS_NONE) in->pos = mp_arena_alloc(&m->act, (size_t)N * 4);
  if (flags & MP_ENC_TYPES) in->types = mp_arena_alloc(&m->act, (size_t)N * 4);
  if (!in->kmask || (pos != MP_POS_NONE && !in->pos) || ((flags & MP_ENC_TYPES) && !in->types))
    return mp_batch_nomem(b);
  for (int64_t i = 0; i < N; i++) {
    in->kmask[i] = b->mask ? (b->mask[i] != 0) : 1;
    if (!in->types) continue;
    in->types[i] = b->types ? b->types[i] : 0;
    if ((flags & MP_ENC_CHECK_TYPES) && (in->types[i] < 0 || in->types[i] >= c->type_vocab_size))
      return mp_err(MP_ERR_INVALID_ARG, "token type id %d out of range (type_vocab_size %lld)", in->types[i],
                    (long long)c->type_vocab_size);
  }
  if (pos == MP_POS_INDEX) {
    for (int64_t i = 0; i < N; i++)
      in->pos[i] = (int32_t)(i % T + pos_arg);
  } else if (pos == MP_POS_FROM_IDS) {
    for (int64_t r = 0; r < B; r++) {
      int32_t run = 0;
      for (int64_t t = 0; t < T; t++) {
        int np = b->ids[r * T + t] != pos_arg;
        run += np;
        in->pos[r * T + t] = np ? run + (int32_t)pos_arg : (int32_t)pos_arg;
      }
    }
  }
  return MP_OK;
}

/* The second half of a post-LayerNorm encoder layer (BERT, RoBERTa, DistilBERT, DeBERTa, ...):
 * x = LN(ctx·Oᵀ + x); x = LN(act(x·Iᵀ)·Outᵀ + x). Results are written over the scratch buffer
 * *q, which then swaps with *x, so *x always holds the layer's output. */
mp_status mp_post_ln_ffn(mp_model *m, int64_t N, const float *ctx, const mp_post_ln_layer *L, mp_act act, float eps,
                         float **x, float **q, float *big) {
  const int64_t H = m->cfg.hidden;
  float *t;
  (void)H;
  MP_TRY(mp_dense_run(m, ctx, N, L->o, MP_ACT_NONE, *q));
  MP_TRY(mp_ln_run(m, *q, *x, N, L->ln_attn, eps, *q));
  t = *x, *x = *q, *q = t;
  MP_TRY(mp_dense_run_chain(m, *x, N, L->inter, act, L->out, big, *q));
  MP_TRY(mp_ln_run(m, *q, *x, N, L->ln_out, eps, *q));
  t = *x, *x = *q, *q = t;
  return MP_OK;
}

/* logits = d2(act(d1(hidden of each row's first token))): the BERT-style sequence head. */
mp_status mp_first_token_head(mp_model *m, const mp_model_batch *b, const float *hidden, const mp_dense *d1, mp_act act,
                              const mp_dense *d2, float *logits) {
  const int64_t B = (int64_t)b->n, T = (int64_t)b->seq, H = m->cfg.hidden;
  float *cls = mp_act_alloc(m, (size_t)(B * H)), *h1 = mp_act_alloc(m, (size_t)(B * H));
  if (!cls || !h1) return mp_err(MP_ERR_NOMEM, "out of memory");
  if (m->dev) {
    const int64_t NL = d2->w.out;
    float *dl = mp_act_alloc(m, (size_t)(B * NL));
    if (!dl) return MP_ERR_NOMEM;
    MP_TRY(m->dev->gather_rows(m->dev_ctx, hidden, B, T, H, cls));
    MP_TRY(mp_dense_run(m, cls, B, d1, act, h1));
    MP_TRY(mp_dense_run(m, h1, B, d2, MP_ACT_NONE, dl));
    return m->dev->download(m->dev_ctx, dl, (size_t)(B * NL), logits);
  }
  for (int64_t r = 0; r < B; r++)
    memcpy(cls + r * H, hidden + r * T * H, (size_t)H * sizeof(float));
  MP_TRY(mp_dense_run(m, cls, B, d1, act, h1));
  return mp_dense_run(m, h1, B, d2, MP_ACT_NONE, logits);
}
