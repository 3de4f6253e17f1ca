/* BERT-family encoders (BERT, RoBERTa/XLM-R, DistilBERT) with their heads and pooling.
 * The post-LayerNorm encoder layer is the same in all three; they differ in tensor names,
 * position ids, token types and the classification head, which the binding step records. */
#include "model/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/tensor.h"
#include "format/hf.h"
#include "format/weights.h"
#include "kernels/kernels.h"

typedef struct dense {
  mp_linear_weight w;
  const void *b; /* NULL = no bias */
  mp_dtype bdt;
} dense;

typedef struct lnorm {
  float *g, *b;
} lnorm;

typedef struct layer {
  dense q, k, v, o, inter, out;
  lnorm ln_attn, ln_out;
} layer;

typedef enum head_kind { HK_NONE, HK_BERT_POOLER, HK_ROBERTA, HK_DISTILBERT } head_kind;

struct mp_model {
  char *path;
  mp_model_config cfg;
  mp_weights *w;
  mp_tokenizer *tok;
  mp_pool *pool;
  mp_arena params; /* f32 copies of small vectors (LayerNorm) */
  mp_arena act;    /* per-forward activations */
  char prefix[32]; /* "bert." / "roberta." / "distilbert." / "" */
  mp_linear_weight word, pos, type;
  int has_type;
  lnorm ln_emb;
  layer *layers;
  head_kind hk;
  dense head1, head2; /* BERT: pooler, classifier; RoBERTa: dense, out_proj; DistilBERT: pre_classifier, classifier */
  int has_pooler;     /* BertModel checkpoints that carry pooler.dense (used for cls pooling heads) */
};

/* ---------------------------------------------------------------- binding */

static const mp_tensor *find(const mp_model *m, const char *name) { return mp_weights_find(m->w, name); }

static mp_status missing(const mp_model *m, const char *name) {
  return mp_err(MP_ERR_FORMAT, "%s: tensor \"%s\" is missing (model_type %s, architecture %s)", m->path, name,
                m->cfg.model_type, m->cfg.architecture[0] ? m->cfg.architecture : "?");
}

static mp_status bad_shape(const mp_model *m, const mp_tensor *t, const char *expect) {
  char shp[96];
  mp_shape_str(t->shape, t->ndim, shp, sizeof shp);
  return mp_err(MP_ERR_FORMAT, "%s: tensor \"%s\" has shape %s %s, expected %s", m->path, t->name, shp,
                mp_dtype_name(t->dtype), expect);
}

/* Binds "<name>.weight" (+ .scales/.biases when MLX-quantized) as a [out, in] matrix. */
static mp_status bind_matrix(mp_model *m, const char *name, int64_t out, int64_t in, mp_linear_weight *lw) {
  char buf[256];
  snprintf(buf, sizeof buf, "%s.weight", name);
  const mp_tensor *t = find(m, buf);
  if (!t) return missing(m, buf);
  memset(lw, 0, sizeof *lw);
  lw->name = t->name;
  lw->out = out;
  lw->in = in;
  char expect[96];
  snprintf(expect, sizeof expect, "[%lld, %lld]", (long long)out, (long long)in);
  if (t->dtype == MP_U32) {
    snprintf(buf, sizeof buf, "%s.scales", name);
    const mp_tensor *s = find(m, buf);
    snprintf(buf, sizeof buf, "%s.biases", name);
    const mp_tensor *b = find(m, buf);
    if (!s || !b)
      return mp_err(MP_ERR_FORMAT, "%s: \"%s\" is packed (U32) but \"%s.scales\"/\"%s.biases\" are missing", m->path,
                    t->name, name, name);
    if (t->ndim != 2 || t->shape[0] != out || s->ndim != 2 || s->shape[0] != out || b->ndim != 2 ||
        b->shape[0] != out || b->shape[1] != s->shape[1] || s->shape[1] <= 0 || in % s->shape[1] != 0)
      return bad_shape(m, t, "an MLX-quantized matrix matching its scales/biases");
    int64_t group = in / s->shape[1];
    int64_t bits = t->shape[1] * 32 / in;
    if (t->shape[1] * 32 != bits * in)
      return bad_shape(m, t, "packed columns = in * bits / 32");
    if (s->dtype != b->dtype) return mp_err(MP_ERR_FORMAT, "%s: scales and biases of \"%s\" differ in dtype", m->path, name);
    lw->dtype = MP_U32;
    lw->data = t->data;
    lw->bits = (int)bits;
    lw->group_size = (int)group;
    lw->scale_dtype = s->dtype;
    lw->scales = s->data;
    lw->biases = b->data;
  } else {
    if (t->ndim != 2 || t->shape[0] != out || t->shape[1] != in) return bad_shape(m, t, expect);
    if (t->dtype != MP_F32 && t->dtype != MP_F16 && t->dtype != MP_BF16)
      return mp_err(MP_ERR_UNSUPPORTED, "%s: tensor \"%s\" has dtype %s (F32, F16, BF16 or MLX-quantized U32 expected)",
                    m->path, t->name, mp_dtype_name(t->dtype));
    lw->dtype = t->dtype;
    lw->data = t->data;
  }
  mp_status st = mp_linear_weight_check(lw);
  if (st) return mp_err_prefix(st, "%s", m->path);
  return MP_OK;
}

static mp_status bind_vector(mp_model *m, const char *name, int64_t n, const void **data, mp_dtype *dt) {
  const mp_tensor *t = find(m, name);
  if (!t) return missing(m, name);
  if (t->ndim != 1 || t->shape[0] != n || (t->dtype != MP_F32 && t->dtype != MP_F16 && t->dtype != MP_BF16)) {
    char e[64];
    snprintf(e, sizeof e, "[%lld] float", (long long)n);
    return bad_shape(m, t, e);
  }
  *data = t->data;
  *dt = t->dtype;
  return MP_OK;
}

static mp_status bind_dense(mp_model *m, const char *name, int64_t out, int64_t in, dense *d) {
  MP_TRY(bind_matrix(m, name, out, in, &d->w));
  char buf[256];
  snprintf(buf, sizeof buf, "%s.bias", name);
  if (find(m, buf)) return bind_vector(m, buf, out, &d->b, &d->bdt);
  return missing(m, buf);
}

static mp_status f32_vector(mp_model *m, const char *name, int64_t n, float **out) {
  const void *d;
  mp_dtype dt;
  MP_TRY(bind_vector(m, name, n, &d, &dt));
  float *f = mp_arena_alloc_aligned(&m->params, (size_t)n * sizeof(float), 64);
  if (!f) return mp_err(MP_ERR_NOMEM, "out of memory");
  MP_TRY(mp_to_f32(dt, d, n, f));
  *out = f;
  return MP_OK;
}

/* LayerNorm "name.weight"/"name.bias" (old checkpoints: "name.gamma"/"name.beta"). */
static mp_status bind_ln(mp_model *m, const char *name, int64_t n, lnorm *ln) {
  char w[256], b[256];
  snprintf(w, sizeof w, "%s.weight", name);
  snprintf(b, sizeof b, "%s.bias", name);
  if (!find(m, w)) {
    char g[256];
    snprintf(g, sizeof g, "%s.gamma", name);
    if (find(m, g)) {
      snprintf(w, sizeof w, "%s.gamma", name);
      snprintf(b, sizeof b, "%s.beta", name);
    }
  }
  MP_TRY(f32_vector(m, w, n, &ln->g));
  return f32_vector(m, b, n, &ln->b);
}

static mp_status bind_all(mp_model *m) {
  const mp_model_config *c = &m->cfg;
  const char *root = c->family == MP_FAMILY_DISTILBERT ? "distilbert." : c->family == MP_FAMILY_ROBERTA ? "roberta." : "bert.";
  /* base model saved alone (sentence-transformers, BertModel) has no prefix */
  char probe[128];
  snprintf(probe, sizeof probe, "%sembeddings.word_embeddings.weight", root);
  if (find(m, probe)) snprintf(m->prefix, sizeof m->prefix, "%s", root);
  else m->prefix[0] = 0;
  const char *P = m->prefix;
  char n[256];
  int64_t H = c->hidden, I = c->intermediate;
  snprintf(n, sizeof n, "%sembeddings.word_embeddings", P);
  MP_TRY(bind_matrix(m, n, c->vocab_size, H, &m->word));
  snprintf(n, sizeof n, "%sembeddings.position_embeddings", P);
  MP_TRY(bind_matrix(m, n, c->max_positions, H, &m->pos));
  if (c->family != MP_FAMILY_DISTILBERT && c->type_vocab_size > 0) {
    snprintf(n, sizeof n, "%sembeddings.token_type_embeddings", P);
    MP_TRY(bind_matrix(m, n, c->type_vocab_size, H, &m->type));
    m->has_type = 1;
  }
  snprintf(n, sizeof n, "%sembeddings.LayerNorm", P);
  MP_TRY(bind_ln(m, n, H, &m->ln_emb));
  m->layers = calloc((size_t)c->layers, sizeof *m->layers);
  if (!m->layers) return mp_err(MP_ERR_NOMEM, "out of memory");
  for (int64_t l = 0; l < c->layers; l++) {
    layer *L = &m->layers[l];
    char base[128];
    if (c->family == MP_FAMILY_DISTILBERT) {
      snprintf(base, sizeof base, "%stransformer.layer.%lld.", P, (long long)l);
      snprintf(n, sizeof n, "%sattention.q_lin", base); MP_TRY(bind_dense(m, n, H, H, &L->q));
      snprintf(n, sizeof n, "%sattention.k_lin", base); MP_TRY(bind_dense(m, n, H, H, &L->k));
      snprintf(n, sizeof n, "%sattention.v_lin", base); MP_TRY(bind_dense(m, n, H, H, &L->v));
      snprintf(n, sizeof n, "%sattention.out_lin", base); MP_TRY(bind_dense(m, n, H, H, &L->o));
      snprintf(n, sizeof n, "%ssa_layer_norm", base); MP_TRY(bind_ln(m, n, H, &L->ln_attn));
      snprintf(n, sizeof n, "%sffn.lin1", base); MP_TRY(bind_dense(m, n, I, H, &L->inter));
      snprintf(n, sizeof n, "%sffn.lin2", base); MP_TRY(bind_dense(m, n, H, I, &L->out));
      snprintf(n, sizeof n, "%soutput_layer_norm", base); MP_TRY(bind_ln(m, n, H, &L->ln_out));
    } else {
      snprintf(base, sizeof base, "%sencoder.layer.%lld.", P, (long long)l);
      snprintf(n, sizeof n, "%sattention.self.query", base); MP_TRY(bind_dense(m, n, H, H, &L->q));
      snprintf(n, sizeof n, "%sattention.self.key", base); MP_TRY(bind_dense(m, n, H, H, &L->k));
      snprintf(n, sizeof n, "%sattention.self.value", base); MP_TRY(bind_dense(m, n, H, H, &L->v));
      snprintf(n, sizeof n, "%sattention.output.dense", base); MP_TRY(bind_dense(m, n, H, H, &L->o));
      snprintf(n, sizeof n, "%sattention.output.LayerNorm", base); MP_TRY(bind_ln(m, n, H, &L->ln_attn));
      snprintf(n, sizeof n, "%sintermediate.dense", base); MP_TRY(bind_dense(m, n, I, H, &L->inter));
      snprintf(n, sizeof n, "%soutput.dense", base); MP_TRY(bind_dense(m, n, H, I, &L->out));
      snprintf(n, sizeof n, "%soutput.LayerNorm", base); MP_TRY(bind_ln(m, n, H, &L->ln_out));
    }
  }
  if (c->head == MP_HEAD_SEQ_CLS) {
    int64_t L = c->num_labels;
    if (c->family == MP_FAMILY_BERT) {
      m->hk = HK_BERT_POOLER;
      snprintf(n, sizeof n, "%spooler.dense", P); MP_TRY(bind_dense(m, n, H, H, &m->head1));
      MP_TRY(bind_dense(m, "classifier", L, H, &m->head2));
    } else if (c->family == MP_FAMILY_ROBERTA) {
      m->hk = HK_ROBERTA;
      MP_TRY(bind_dense(m, "classifier.dense", H, H, &m->head1));
      MP_TRY(bind_dense(m, "classifier.out_proj", L, H, &m->head2));
    } else {
      m->hk = HK_DISTILBERT;
      MP_TRY(bind_dense(m, "pre_classifier", H, H, &m->head1));
      MP_TRY(bind_dense(m, "classifier", L, H, &m->head2));
    }
  }
  return MP_OK;
}

/* ---------------------------------------------------------------- open / close */

mp_status mp_model_open(const char *ref, const mp_model_options *opt, mp_model **out) {
  *out = NULL;
  mp_model *m = calloc(1, sizeof *m);
  if (!m) return mp_err(MP_ERR_NOMEM, "out of memory");
  mp_arena_init(&m->params, 1 << 16);
  mp_arena_init(&m->act, 1 << 20);
  mp_status st = mp_hf_resolve(ref, &m->path);
  if (!st && !mp_is_dir(m->path)) st = mp_err(MP_ERR_INVALID_ARG, "%s: a model folder is needed (config.json, weights, tokenizer)", m->path);
  if (!st) st = mp_model_config_load(m->path, &m->cfg);
  if (!st) st = mp_weights_open(m->path, &m->w);
  if (!st) st = mp_tokenizer_open(m->path, &m->tok);
  if (!st) st = bind_all(m);
  if (!st) st = mp_pool_create(opt ? opt->threads : 0, &m->pool);
  if (st) {
    mp_model_close(m);
    return st;
  }
  *out = m;
  return MP_OK;
}

void mp_model_close(mp_model *m) {
  if (!m) return;
  mp_pool_free(m->pool);
  mp_tokenizer_free(m->tok);
  mp_weights_close(m->w);
  mp_model_config_free(&m->cfg);
  free(m->layers);
  mp_arena_free(&m->params);
  mp_arena_free(&m->act);
  free(m->path);
  free(m);
}

const mp_model_config *mp_model_get_config(const mp_model *m) { return &m->cfg; }
const mp_tokenizer *mp_model_get_tokenizer(const mp_model *m) { return m->tok; }
const char *mp_model_path(const mp_model *m) { return m->path; }
size_t mp_model_hidden(const mp_model *m) { return (size_t)m->cfg.hidden; }

size_t mp_model_max_positions(const mp_model *m) {
  int64_t p = m->cfg.max_positions;
  if (m->cfg.family == MP_FAMILY_ROBERTA) p -= m->cfg.pad_token_id + 1;
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

static mp_status run_dense(mp_model *m, const float *x, int64_t rows, const dense *d, mp_act act, float *y) {
  return mp_linear_act(m->pool, x, rows, &d->w, d->b, d->bdt, act, y);
}

mp_status mp_model_forward(mp_model *m, const mp_model_batch *b, const mp_forward_out *out) {
  const mp_model_config *c = &m->cfg;
  const int64_t B = (int64_t)b->n, T = (int64_t)b->seq, H = c->hidden, I = c->intermediate, N = B * T;
  if (B <= 0 || T <= 0) return mp_err(MP_ERR_INVALID_ARG, "empty batch");
  if ((size_t)T > mp_model_max_positions(m))
    return mp_err(MP_ERR_UNSUPPORTED,
                  "%s: input of %lld tokens is longer than the model accepts (max_position_embeddings allows %zu); "
                  "enable truncation or lower --max-length",
                  m->path, (long long)T, mp_model_max_positions(m));
  mp_arena_reset(&m->act);
  float *x = mp_arena_alloc_aligned(&m->act, (size_t)(N * H) * 4, 64);
  float *q = mp_arena_alloc_aligned(&m->act, (size_t)(N * H) * 4, 64);
  float *k = mp_arena_alloc_aligned(&m->act, (size_t)(N * H) * 4, 64);
  float *v = mp_arena_alloc_aligned(&m->act, (size_t)(N * H) * 4, 64);
  float *ctx = mp_arena_alloc_aligned(&m->act, (size_t)(N * H) * 4, 64);
  float *big = mp_arena_alloc_aligned(&m->act, (size_t)(N * (I > H ? I : H)) * 4, 64);
  int32_t *pos = mp_arena_alloc(&m->act, (size_t)N * 4);
  int32_t *types = mp_arena_alloc(&m->act, (size_t)N * 4);
  uint8_t *kmask = mp_arena_alloc(&m->act, (size_t)N);
  if (!x || !q || !k || !v || !ctx || !big || !pos || !types || !kmask)
    return mp_err(MP_ERR_NOMEM, "out of memory for a batch of %lld x %lld tokens", (long long)B, (long long)T);
  for (int64_t i = 0; i < N; i++) {
    kmask[i] = b->mask ? (b->mask[i] != 0) : 1;
    types[i] = b->types ? b->types[i] : 0;
    if (m->has_type && (types[i] < 0 || types[i] >= c->type_vocab_size))
      return mp_err(MP_ERR_INVALID_ARG, "token type id %d out of range (type_vocab_size %lld)", types[i],
                    (long long)c->type_vocab_size);
  }
  /* position ids */
  for (int64_t r = 0; r < B; r++) {
    if (c->family == MP_FAMILY_ROBERTA) {
      /* create_position_ids_from_input_ids: cumsum over non-pad tokens, offset by padding_idx */
      int32_t run = 0;
      for (int64_t t = 0; t < T; t++) {
        int np = b->ids[r * T + t] != c->pad_token_id;
        run += np;
        pos[r * T + t] = np ? run + (int32_t)c->pad_token_id : (int32_t)c->pad_token_id;
      }
    } else {
      for (int64_t t = 0; t < T; t++) pos[r * T + t] = (int32_t)t;
    }
  }
  /* embeddings: (word + type) + position, then LayerNorm */
  MP_TRY(mp_embedding_rows(&m->word, b->ids, N, x));
  if (m->has_type) {
    MP_TRY(mp_embedding_rows(&m->type, types, N, q));
    mp_add_inplace(x, q, N * H);
  }
  MP_TRY(mp_embedding_rows(&m->pos, pos, N, q));
  mp_add_inplace(x, q, N * H);
  mp_layernorm(m->pool, x, NULL, N, H, m->ln_emb.g, m->ln_emb.b, c->layer_norm_eps, x);
  if (out->hook) out->hook(out->hook_user, 0, x, (size_t)B, (size_t)T, (size_t)H);

  mp_attention_args aa = {.batch = B, .seq_q = T, .seq_k = T, .heads = c->heads, .head_dim = H / c->heads,
                          .q = q, .k = k, .v = v, .out = ctx, .scale = 1.0f / sqrtf((float)(H / c->heads)),
                          .key_mask = kmask};
  for (int64_t l = 0; l < c->layers; l++) {
    const layer *L = &m->layers[l];
    aa.q = q;
    MP_TRY(run_dense(m, x, N, &L->q, MP_ACT_NONE, q));
    MP_TRY(run_dense(m, x, N, &L->k, MP_ACT_NONE, k));
    MP_TRY(run_dense(m, x, N, &L->v, MP_ACT_NONE, v));
    MP_TRY(mp_attention(m->pool, &aa));
    /* LayerNorm(sublayer + residual) written over the sublayer buffer, then the buffers swap */
    float *t;
    MP_TRY(run_dense(m, ctx, N, &L->o, MP_ACT_NONE, q));
    mp_layernorm(m->pool, q, x, N, H, L->ln_attn.g, L->ln_attn.b, c->layer_norm_eps, q);
    t = x, x = q, q = t;
    MP_TRY(run_dense(m, x, N, &L->inter, c->act, big));
    MP_TRY(run_dense(m, big, N, &L->out, MP_ACT_NONE, q));
    mp_layernorm(m->pool, q, x, N, H, L->ln_out.g, L->ln_out.b, c->layer_norm_eps, q);
    t = x, x = q, q = t;
    if (out->hook) out->hook(out->hook_user, (int)l + 1, x, (size_t)B, (size_t)T, (size_t)H);
  }
  if (out->hidden) memcpy(out->hidden, x, (size_t)(N * H) * 4);

  if (out->embedding) {
    mp_pooling p = c->pooling != MP_POOL_NONE ? c->pooling : MP_POOL_MEAN;
    for (int64_t r = 0; r < B; r++) {
      float *e = out->embedding + r * H;
      const float *hr = x + r * T * H;
      if (p == MP_POOL_CLS) {
        memcpy(e, hr, (size_t)H * 4);
      } else if (p == MP_POOL_MAX) {
        for (int64_t d = 0; d < H; d++) e[d] = -INFINITY;
        int any = 0;
        for (int64_t t = 0; t < T; t++)
          if (kmask[r * T + t]) {
            any = 1;
            for (int64_t d = 0; d < H; d++) e[d] = hr[t * H + d] > e[d] ? hr[t * H + d] : e[d];
          }
        if (!any) memset(e, 0, (size_t)H * 4);
      } else {
        /* sentence-transformers: sum(h * mask) / clamp(sum(mask), 1e-9) (or sqrt for mean_sqrt_len),
         * summed in float over tokens in order */
        memset(e, 0, (size_t)H * 4);
        float cnt = 0;
        for (int64_t t = 0; t < T; t++)
          if (kmask[r * T + t]) {
            cnt += 1.0f;
            for (int64_t d = 0; d < H; d++) e[d] += hr[t * H + d];
          }
        if (cnt < 1e-9f) cnt = 1e-9f;
        float div = p == MP_POOL_MEAN_SQRT_LEN ? sqrtf(cnt) : cnt;
        for (int64_t d = 0; d < H; d++) e[d] /= div;
      }
      if (c->normalize) {
        double ss = 0;
        for (int64_t d = 0; d < H; d++) ss += (double)e[d] * e[d];
        float nrm = (float)sqrt(ss);
        if (nrm < 1e-12f) nrm = 1e-12f;
        for (int64_t d = 0; d < H; d++) e[d] /= nrm;
      }
    }
  }

  if (out->logits) {
    if (m->hk == HK_NONE)
      return mp_err(MP_ERR_INVALID_ARG, "%s: this model has no classification head (architecture %s)", m->path,
                    m->cfg.architecture[0] ? m->cfg.architecture : "?");
    /* first token of every row */
    for (int64_t r = 0; r < B; r++) memcpy(ctx + r * H, x + r * T * H, (size_t)H * 4);
    mp_act a1 = m->hk == HK_DISTILBERT ? MP_ACT_RELU : MP_ACT_TANH;
    MP_TRY(run_dense(m, ctx, B, &m->head1, a1, q));
    MP_TRY(run_dense(m, q, B, &m->head2, MP_ACT_NONE, out->logits));
  }
  return MP_OK;
}

/* ---------------------------------------------------------------- high level */

void mp_run_options_init(mp_run_options *o) {
  o->batch_size = 32;
  o->max_length = 0;
  o->truncation = MP_TRUNC_LONGEST_FIRST;
}

typedef struct {
  size_t idx, len;
} len_idx;

static int cmp_len(const void *a, const void *b) {
  const len_idx *x = a, *y = b;
  if (x->len != y->len) return x->len < y->len ? 1 : -1; /* longest first */
  return x->idx < y->idx ? -1 : x->idx > y->idx;
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
    if (st) mp_err_prefix(st, "input %zu", i + 1);
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
  if (!st) {
    size_t maxlen = order[0].len ? order[0].len : 1;
    ids = malloc(bs * maxlen * 4), mask = malloc(bs * maxlen * 4), types = malloc(bs * maxlen * 4);
    e_tmp = emb ? malloc(bs * H * 4) : NULL;
    l_tmp = logits ? malloc(bs * (L ? L : 1) * 4) : NULL;
    h_tmp = tok_out ? malloc(bs * maxlen * H * 4) : NULL;
    if (!ids || !mask || !types || (emb && !e_tmp) || (logits && !l_tmp) || (tok_out && !h_tmp))
      st = mp_err(MP_ERR_NOMEM, "out of memory");
  }
  for (size_t s = 0; !st && s < n; s += bs) {
    size_t cnt = n - s < bs ? n - s : bs;
    size_t T = order[s].len ? order[s].len : 1;
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
  for (size_t i = 0; enc && i < n; i++) mp_tok_encoding_free(&enc[i]);
  free(enc);
  free(order);
  free(ids), free(mask), free(types), free(e_tmp), free(l_tmp), free(h_tmp);
  return st;
}

mp_status mp_model_embed(mp_model *m, size_t n, const char *const *texts, const mp_run_options *o, float *emb,
                         uint64_t *n_tokens) {
  return run_texts(m, n, texts, NULL, o, emb, NULL, n_tokens, NULL, NULL);
}

mp_status mp_model_classify(mp_model *m, size_t n, const char *const *a, const char *const *b,
                            const mp_run_options *o, float *logits, uint64_t *n_tokens) {
  if (m->hk == HK_NONE)
    return mp_err(MP_ERR_INVALID_ARG, "%s: this model has no classification head (architecture %s); use embed instead",
                  m->path, m->cfg.architecture[0] ? m->cfg.architecture : "?");
  return run_texts(m, n, a, b, o, NULL, logits, n_tokens, NULL, NULL);
}

mp_status mp_model_token_embeddings(mp_model *m, size_t n, const char *const *texts, const mp_run_options *o,
                                    float **out, size_t *lens) {
  memset(out, 0, n * sizeof *out);
  mp_status st = run_texts(m, n, texts, NULL, o, NULL, NULL, NULL, out, lens);
  if (st)
    for (size_t i = 0; i < n; i++) free(out[i]), out[i] = NULL;
  return st;
}
