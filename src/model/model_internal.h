/* Internals shared by the model families (src/model/<family>.c) and model.c.
 * A family binds its tensors (bind), runs its encoder (encode: final hidden states [n*seq*H]
 * in the model's activation arena, calling out->hook per layer) and its classification head
 * (classify). Pooling, batching, tokenization and the commands are shared. */
#ifndef MP_MODEL_INTERNAL_H
#define MP_MODEL_INTERNAL_H
#include "core/arena.h"
#include "core/json.h"
#include "format/weights.h"
#include "kernels/kernels.h"
#include "model/device.h"
#include "model/model.h"

/* y = act(x W^T + b): a linear layer with its optional bias. */
typedef struct mp_dense {
  mp_linear_weight w;
  const mp_qweight *qw;  /* integer form (fast mode, quantized w), owned by the model; else NULL */
  const mp_bfweight *bw; /* bf16-tile form (fast mode, F16/BF16 w, AMX-BF16), owned by the model; else NULL */
  const void *b;         /* NULL = no bias */
  mp_dtype bdt;
  /* On a device, whether the input comes with the fast mode's 8-bit copy (mp_input_copy; the
   * LayerNorm writes it beside its output, attention and the feed-forward activation do not). Set
   * before mp_bind_dense; read when the layer's weight is uploaded, where the device is known
   * (mp_dev_fast8); the backend decides (mp_device_ops.fast8_ok). */
  unsigned char raw_input;
} mp_dense;

/* mp_dense.raw_input */
enum mp_input_copy {
  MP_INPUT_COPIED = 0,   /* its producer writes the copy (a LayerNorm) */
  MP_INPUT_RAW = 1,      /* none does: an attention output projection, a feed-forward output layer */
  MP_INPUT_KEPT = 2,     /* the device's keep_copy makes it, where it has one (BART's cross-attention k / v) */
  MP_INPUT_MUL_ROWS = 3, /* the device's mul_rows writes it, where it has one (ModernBERT's mlp.Wo) */
};

/* LayerNorm parameters converted to f32 (b may be NULL: no bias). */
typedef struct mp_lnorm {
  float *g, *b;
} mp_lnorm;

typedef struct mp_family_ops {
  const char *name;
  mp_status (*bind)(mp_model *m);
  /* Runs the encoder; *hidden receives [n*seq*hidden] f32 in m->act (valid until the next call). */
  mp_status (*encode)(mp_model *m, const mp_model_batch *b, const mp_forward_out *out, float **hidden);
  /* Classification head over the final hidden states; NULL when the family has none. */
  mp_status (*classify)(mp_model *m, const mp_model_batch *b, const float *hidden, float *logits);
  void (*release)(mp_model *m); /* frees m->fam (may be NULL) */
  /* Parameter count from config.json alone (no weights): what transformers' num_parameters()
   * gives for the class in `architectures` (the *ForSequenceClassification head included when
   * cfg->head == MP_HEAD_SEQ_CLS, the bare model with its pooler otherwise). -1 when a field it
   * needs is missing. NULL: not implemented for the family. */
  int64_t (*param_count)(const mp_model_config *cfg, const mp_json *cfg_json);
  /* 1 when encode/classify only use the device-aware helpers of layers.h (mp_act_alloc,
   * mp_dense_run, mp_ln_run, mp_attention_run, mp_embed_sum_ln, mp_layer_report, ...), so the
   * family runs on a device backend (docs/cuda.md); 0: CPU only, opening it on a device is an error. */
  int cuda;
} mp_family_ops;

typedef struct mp_dev_cache mp_dev_cache;

struct mp_model {
  char *path;
  mp_model_config cfg;
  mp_arena cfg_arena;
  mp_json *cfg_json; /* the parsed config.json (family-specific fields) */
  mp_weights *w;
  mp_tokenizer *tok;
  mp_pool *pool;
  mp_arena params; /* f32 copies of small vectors (LayerNorm, ...) */
  mp_arena act;    /* per-forward activations, reset at each forward */
  const mp_family_ops *ops;
  void *fam; /* family state */
  int has_head;
  mp_compute compute;
  int n_quant; /* MLX-quantized matrices bound (any mode) */
  int n_fp;    /* of which in an fp mode (mxfp4/nvfp4/mxfp8): expanded to bf16 at load */
  const float *(*weight_hook)(void *, const char *, int64_t, int64_t, mp_dtype, const void *);
  void *weight_hook_ctx;
  mp_qweight **packs; /* integer forms of the quantized dense layers (fast mode) */
  size_t n_packs, cap_packs;
  size_t n_dev8;        /* quantized dense layers in the device's fast mode (mp_dev_fast8, counted at bind) */
  mp_bfweight **bpacks; /* bf16-tile forms of the F16/BF16 dense layers (fast mode, AMX-BF16) */
  size_t n_bpacks, cap_bpacks;
  /* the compute device (model/device.h): dev NULL = the CPU kernels */
  mp_device_spec device;
  const mp_device_ops *dev;
  void *dev_ctx;
  mp_dev_cache *dev_cache;    /* host weight -> its device copy (uploaded once, on first use) */
  const uint8_t *dev_kmask_h; /* the key mask uploaded in this forward pass (host, device) */
  const uint8_t *dev_kmask_d;
  /* the index tables of relative attention (cix, pix, bidx) uploaded in this forward pass: the
   * same host arrays serve every layer, so they go to the device once (host, bytes, device) */
  const void *dev_idx_h[3];
  size_t dev_idx_n[3];
  const void *dev_idx_d[3];
  size_t dev_esize; /* bytes per activation value on the device (2: fp16/bf16, 4: f32) */
  int dev_fuse;     /* fused Q/K/V projections on the device (MP_CUDA_FUSED_QKV=0 turns them off) */
  /* every dense layer counts as mp_dense.raw_input: a family none of whose normalizations writes
   * the 8-bit copy (MobileBERT's NoNorm) */
  int dense_all_raw;
};

extern const mp_family_ops mp_family_deberta;    /* deberta-v2 (DeBERTa-v2/v3) */
extern const mp_family_ops mp_family_bart;       /* bart (BartModel / BartForSequenceClassification) */
extern const mp_family_ops mp_family_mobilebert; /* mobilebert */
extern const mp_family_ops mp_family_mpnet;      /* mpnet */
extern const mp_family_ops mp_family_modernbert; /* modernbert */
extern const mp_family_ops mp_family_bert;       /* bert, roberta/xlm-roberta/camembert, distilbert */

/* ---- the device (device.c) */
/* Opens the backend of spec for m (after its family is known). CPU: nothing to do. Without the
 * CUDA build, or for a family not yet on the device: MP_ERR_UNSUPPORTED saying so. */
mp_status mp_model_device_open(mp_model *m, const mp_device_spec *spec, mp_dtype dt);
void mp_model_device_close(mp_model *m);
/* Makes m run on backend ops with context ctx (compute dtype dt), which mp_model_device_close
 * closes: what mp_model_device_open does once the CUDA backend is open (and what a test does with
 * a backend of its own). */
mp_status mp_model_device_attach(mp_model *m, const mp_device_ops *ops, void *ctx, mp_dtype dt);
/* The device copy of a matrix (MLX-quantized: dequantized as mx.dequantize, then the compute
 * dtype) or of a vector (f32 or the compute dtype), uploaded on first use. NULL = error set. */
const void *mp_dev_weight(mp_model *m, const mp_linear_weight *w);
/* The device weight of a dense layer: in the fast mode an MLX affine matrix goes up through the
 * backend's 8-bit form (mp_dev_fast8, mp_device_ops.upload_fast8); in the faithful mode one the
 * backend can keep quantized (upload_qweight) stays quantized; anything else is mp_dev_weight. */
const void *mp_dev_dense_weight(mp_model *m, const mp_dense *d);
/* 1 when dense layer d runs in the device's fast mode: a device model in MP_COMPUTE_FAST, an MLX
 * affine matrix (2-8 bits), a backend whose fast8_ok takes its shape. */
int mp_dev_fast8(const mp_model *m, const mp_dense *d);
const void *mp_dev_vector(mp_model *m, const void *host, mp_dtype dt, int64_t n, int as_compute);
/* The device copy of n dense layers' weights stacked into one [n * out, in] matrix (the rows of
 * d[0], then d[1], ...; each as mp_dev_dense_weight converts it), uploaded on first use and cached under
 * d[0]'s weight and n. The layers must share in and out. NULL = error set. */
const void *mp_dev_weight_cat(mp_model *m, int n, const mp_dense *const *d);
/* Their biases stacked into one [n * out] vector in the compute dtype (a layer without a bias
 * contributes zeros); *out = NULL when none of them has a bias. */
mp_status mp_dev_bias_cat(mp_model *m, int n, const mp_dense *const *d, const void **out);

/* ---- binding helpers (errors name the tensor and the model folder) */
const mp_tensor *mp_model_tensor(const mp_model *m, const char *name);
mp_status mp_model_missing(const mp_model *m, const char *name);
/* "<name>.weight" (+ .scales/.biases when MLX-quantized) as an [out, in] matrix. */
mp_status mp_bind_matrix(mp_model *m, const char *name, int64_t out, int64_t in, mp_linear_weight *lw);
mp_status mp_bind_vector(mp_model *m, const char *name, int64_t n, const void **data, mp_dtype *dt);
/* matrix + "<name>.bias" (required unless bias_optional) */
mp_status mp_bind_dense(mp_model *m, const char *name, int64_t out, int64_t in, int bias_optional, mp_dense *d);
mp_status mp_bind_f32(mp_model *m, const char *name, int64_t n, float **out);
/* LayerNorm "name.weight"/"name.bias" (or .gamma/.beta); bias optional when bias_optional. */
mp_status mp_bind_ln(mp_model *m, const char *name, int64_t n, int bias_optional, mp_lnorm *ln);
/* "<base>intermediate.dense" [I, H], "<base>output.dense" [H, I], "<base>output.LayerNorm" [H]. */
mp_status mp_bind_bert_ffn(mp_model *m, const char *base, int64_t H, int64_t I, mp_dense *inter, mp_dense *out,
                           mp_lnorm *ln_out);
/* "<base><names[i]>" for i = query, key, value, output: four [H, H] dense layers with biases. */
mp_status mp_bind_qkvo(mp_model *m, const char *base, const char *const names[4], int64_t H, mp_dense *q, mp_dense *k,
                       mp_dense *v, mp_dense *o);
/* Fast mode: packs d->w for the integer kernels (d->qw, owned by the model) when it is
 * MLX-quantized, or into bf16 tiles (d->bw) when it is F16/BF16 and the CPU has AMX-BF16;
 * otherwise sets both to NULL. mp_bind_dense calls it; call it again after
 * changing d->w (e.g. taking a slice of its rows). */
mp_status mp_dense_pack(mp_model *m, mp_dense *d);
/* Frees d's integer form (a layer only used through slices packed on their own). */
void mp_dense_drop_pack(mp_model *m, mp_dense *d);
/* *acc += a * b for parameter counts; *ok = 0 on int64 overflow. */
static inline void mp_count_mac(int64_t *acc, int64_t a, int64_t b, int *ok) {
  int64_t p;
  if (__builtin_mul_overflow(a, b, &p) || __builtin_add_overflow(*acc, p, acc)) *ok = 0;
}
#endif
