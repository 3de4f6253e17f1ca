/* kernel_check: runs mlxport kernels on raw input files listed in a JSON manifest and writes
 * the outputs next to them, for tests/py/test_kernels_mlx.py to compare with MLX and torch.
 *
 * Usage: kernel_check MANIFEST.json
 * Manifest: {"threads": N, "cases": [CASE, ...]}; every file name is relative to the manifest's
 * folder and holds raw little-endian values. CASE "op" is one of
 *   "linear":    M, K, N, x (f32 [M,K]), w (data), dtype ("F32"/"F16"/"BF16"/"U32"), bits,
 *                group_size, scales, biases, scale_dtype, bias (optional, bias_dtype), act
 *                (optional: "gelu_erf", ...), out (f32 [M,N]), deq_out (optional, f32 [N,K])
 *   "embedding": the weight fields above plus ids (i32 [n]), n, out (f32 [n,K])
 *   "layernorm": rows, dim, eps, x, gamma, beta (optional), residual (optional), out
 *   "act":       act, n, x, out
 *   "softmax":   rows, cols, x, mask (optional f32 [cols]), out
 *   "attention": batch, seq, heads, head_dim, q, k, v, key_mask (u8 [batch, seq]), out */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "kernels/kernels.h"

static char g_dir[4096];

static void *load(const mp_json *c, const char *key, size_t expect) {
  const char *f = mp_json_get_str(c, key, NULL);
  if (!f) return NULL;
  char path[8192];
  snprintf(path, sizeof path, "%s/%s", g_dir, f);
  char *data;
  size_t n;
  if (mp_read_file(path, &data, &n, (size_t)1 << 32) != MP_OK) {
    fprintf(stderr, "kernel_check: %s\n", mp_last_error());
    exit(3);
  }
  if (expect && n != expect) {
    fprintf(stderr, "kernel_check: %s has %zu bytes, expected %zu\n", path, n, expect);
    exit(3);
  }
  return data;
}

static void save(const mp_json *c, const char *key, const void *p, size_t n) {
  char path[8192];
  snprintf(path, sizeof path, "%s/%s", g_dir, mp_json_get_str(c, key, "out.bin"));
  if (mp_write_file_atomic(path, p, n) != MP_OK) {
    fprintf(stderr, "kernel_check: %s\n", mp_last_error());
    exit(3);
  }
}

static mp_act act_of(const char *s) {
  if (!s || !strcmp(s, "none")) return MP_ACT_NONE;
  if (!strcmp(s, "relu")) return MP_ACT_RELU;
  if (!strcmp(s, "gelu_erf")) return MP_ACT_GELU_ERF;
  if (!strcmp(s, "gelu_tanh")) return MP_ACT_GELU_TANH;
  if (!strcmp(s, "tanh")) return MP_ACT_TANH;
  if (!strcmp(s, "silu")) return MP_ACT_SILU;
  if (!strcmp(s, "sigmoid")) return MP_ACT_SIGMOID;
  fprintf(stderr, "kernel_check: unknown act %s\n", s);
  exit(2);
}

static mp_dtype dt_of(const mp_json *c, const char *key) {
  const char *s = mp_json_get_str(c, key, "F32");
  return mp_dtype_from_name(s, strlen(s));
}

#define CHK(expr)                                                                                                      \
  do {                                                                                                                 \
    if ((expr) != MP_OK) {                                                                                             \
      fprintf(stderr, "kernel_check: %s\n", mp_last_error());                                                          \
      exit(3);                                                                                                         \
    }                                                                                                                  \
  } while (0)

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: kernel_check MANIFEST.json\n");
    return 2;
  }
  snprintf(g_dir, sizeof g_dir, "%s", argv[1]);
  char *slash = strrchr(g_dir, '/');
  if (slash)
    *slash = 0;
  else
    snprintf(g_dir, sizeof g_dir, ".");
  mp_arena arena;
  mp_arena_init(&arena, 1 << 16);
  mp_json *root;
  CHK(mp_json_parse_file(argv[1], &arena, &root));
  mp_pool *pool;
  CHK(mp_pool_create((int)mp_json_get_int(root, "threads", 1), &pool));
  const mp_json *cases = mp_json_get(root, "cases");
  for (size_t i = 0; cases && i < cases->len; i++) {
    const mp_json *c = cases->items[i];
    const char *op = mp_json_get_str(c, "op", "");
    if (!strcmp(op, "linear") || !strcmp(op, "embedding")) {
      int64_t K = mp_json_get_int(c, "K", 0), N = mp_json_get_int(c, "N", 0);
      mp_linear_weight w = {.name = mp_json_get_str(c, "name", "w"),
                            .out = N,
                            .in = K,
                            .dtype = dt_of(c, "dtype"),
                            .bits = (int)mp_json_get_int(c, "bits", 0),
                            .group_size = (int)mp_json_get_int(c, "group_size", 0),
                            .scale_dtype = dt_of(c, "scale_dtype")};
      w.data = load(c, "w", 0);
      w.scales = load(c, "scales", 0);
      w.biases = load(c, "biases", 0);
      if (!strcmp(op, "linear")) {
        int64_t M = mp_json_get_int(c, "M", 0);
        float *x = load(c, "x", (size_t)(M * K) * 4);
        void *bias = load(c, "bias", 0);
        float *y = malloc((size_t)(M * N) * 4);
        CHK(mp_linear_act(pool, x, M, &w, bias, dt_of(c, "bias_dtype"), act_of(mp_json_get_str(c, "act", NULL)), y));
        save(c, "out", y, (size_t)(M * N) * 4);
        if (mp_json_get_str(c, "deq_out", NULL)) {
          float *d = malloc((size_t)(N * K) * 4);
          CHK(mp_weight_rows_f32(&w, 0, N, d));
          save(c, "deq_out", d, (size_t)(N * K) * 4);
          free(d);
        }
        free(x);
        free(bias);
        free(y);
      } else {
        int64_t n = mp_json_get_int(c, "n", 0);
        int32_t *ids = load(c, "ids", (size_t)n * 4);
        float *y = malloc((size_t)(n * K) * 4);
        CHK(mp_embedding_rows(&w, ids, n, y));
        save(c, "out", y, (size_t)(n * K) * 4);
        free(ids);
        free(y);
      }
      free((void *)w.data);
      free((void *)w.scales);
      free((void *)w.biases);
    } else if (!strcmp(op, "layernorm")) {
      int64_t R = mp_json_get_int(c, "rows", 0), D = mp_json_get_int(c, "dim", 0);
      float *x = load(c, "x", (size_t)(R * D) * 4), *g = load(c, "gamma", (size_t)D * 4),
            *b = load(c, "beta", (size_t)D * 4), *r = load(c, "residual", (size_t)(R * D) * 4);
      float *y = malloc((size_t)(R * D) * 4);
      mp_layernorm(pool, x, r, R, D, g, b, (float)mp_json_get_num(c, "eps", 1e-12), y);
      save(c, "out", y, (size_t)(R * D) * 4);
      free(x);
      free(g);
      free(b);
      free(r);
      free(y);
    } else if (!strcmp(op, "act")) {
      int64_t n = mp_json_get_int(c, "n", 0);
      float *x = load(c, "x", (size_t)n * 4);
      mp_activation(pool, act_of(mp_json_get_str(c, "act", NULL)), x, n);
      save(c, "out", x, (size_t)n * 4);
      free(x);
    } else if (!strcmp(op, "softmax")) {
      int64_t R = mp_json_get_int(c, "rows", 0), C = mp_json_get_int(c, "cols", 0);
      float *x = load(c, "x", (size_t)(R * C) * 4), *m = load(c, "mask", (size_t)C * 4);
      mp_softmax_rows(pool, x, R, C, m);
      save(c, "out", x, (size_t)(R * C) * 4);
      free(x);
      free(m);
    } else if (!strcmp(op, "attention")) {
      int64_t B = mp_json_get_int(c, "batch", 0), S = mp_json_get_int(c, "seq", 0), H = mp_json_get_int(c, "heads", 0),
              D = mp_json_get_int(c, "head_dim", 0);
      size_t sz = (size_t)(B * S * H * D) * 4;
      float *q = load(c, "q", sz), *k = load(c, "k", sz), *v = load(c, "v", sz), *o = malloc(sz);
      uint8_t *km = load(c, "key_mask", (size_t)(B * S));
      mp_attention_args a = {.batch = B,
                             .seq_q = S,
                             .seq_k = S,
                             .heads = H,
                             .head_dim = D,
                             .q = q,
                             .k = k,
                             .v = v,
                             .out = o,
                             .scale = (float)mp_json_get_num(c, "scale", 1.0),
                             .key_mask = km};
      CHK(mp_attention(pool, &a));
      save(c, "out", o, sz);
      free(q);
      free(k);
      free(v);
      free(o);
      free(km);
    } else {
      fprintf(stderr, "kernel_check: unknown op '%s'\n", op);
      return 2;
    }
  }
  mp_pool_free(pool);
  mp_arena_free(&arena);
  return 0;
}
