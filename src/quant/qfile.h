/* Tensor-file level quantization (`mlxport quantize`): one safetensors file in, one out.
 *
 * Modes:
 *   QUANTIZE   every float tensor with >= 2 dims whose last dim is a multiple of the group size
 *              is MLX-affine quantized; the other float tensors are cast to the dtype; the rest
 *              is copied. Output names follow MLX: "P.weight" -> "P.weight", "P.scales",
 *              "P.biases"; any other name N -> "N", "N.scales", "N.biases".
 *   DEQUANTIZE the inverse: every tensor with companion scales/biases is dequantized (dtype of
 *              its scales); other tensors are copied.
 *   CAST       every float tensor is cast to the dtype (MLX astype semantics).
 * Streams tensor by tensor: memory stays at about one tensor. */
#ifndef MP_QUANT_QFILE_H
#define MP_QUANT_QFILE_H
#include <stddef.h>
#include <stdint.h>

#include "mlxport.h"
#include "quant/mlx_affine.h"
#include "quant/mlx_fp.h"

typedef enum mp_qfile_mode { MP_QFILE_QUANTIZE = 0, MP_QFILE_DEQUANTIZE, MP_QFILE_CAST } mp_qfile_mode;

typedef struct mp_qfile_opts {
  mp_qfile_mode mode;
  int bits, group_size;
  mp_dtype dtype; /* MP_DTYPE_INVALID: keep each tensor's own float dtype */
  mp_qcompat compat;
  mp_qmode qmode; /* affine (default), mxfp4, nvfp4, mxfp8: bits/group_size must be the mode's own;
                     fp modes write "N.scales" (uint8) and no biases; dequantizing them gives
                     --dtype (default bfloat16, as mx.dequantize) */
} mp_qfile_opts;

typedef struct mp_qfile_report {
  size_t n_in, n_out, n_quantized, n_cast, n_copied, n_dequantized;
  uint64_t in_bytes, out_bytes;
} mp_qfile_report;

/* "P.weight" -> "P.scales"/"P.biases"; other names N -> "N.scales"/"N.biases" (malloc'd). */
char *mp_quant_companion_name(const char *weight_name, const char *suffix);

mp_status mp_qfile_run(const char *in_path, const char *out_path, const mp_qfile_opts *opts, mp_qfile_report *rep);

/* Drops the resident pages of a read-only file mapping range (after a tensor was consumed) so
 * peak memory stays near one tensor; harmless otherwise (pages are re-read on access). */
void mp_quant_release_pages(const void *p, size_t n);
#endif
