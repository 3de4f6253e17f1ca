/* MLX affine quantization, bit-identical to mx.quantize / mx.dequantize on MLX's CPU backend,
 * and float casts bit-identical to MLX's astype (see docs/quantization.md).
 *
 * Layout (MLX): a weight [..., K] is cut into groups of `group_size` consecutive values along
 * the last axis. Per group, scale and bias are stored in the weight's float dtype (shape
 * [..., K/group_size]) and w ~= scale*q + bias with q an unsigned `bits`-bit integer. The q of
 * a row form a little-endian bit stream (value i at bit i*bits), stored as uint32 words
 * (shape [..., K*bits/32]); for 2/4/8 bits this is "q packed LSB-first into uint32", for 3/5/6
 * bits it is MLX's byte layout (8 values in 3 or 5 bytes, 4 values in 3 bytes). */
#ifndef MP_QUANT_MLX_AFFINE_H
#define MP_QUANT_MLX_AFFINE_H
#include <stddef.h>
#include <stdint.h>

#include "mlxport.h"

/* Which MLX kernel to reproduce. CPU is the reference (bit-exact, tested against mx.quantize);
 * METAL follows MLX's Metal kernel as read from its source (round-half-away-from-zero, group
 * max starting at 0): untested on Apple hardware, see docs/quantization.md. */
typedef enum mp_qcompat { MP_QCOMPAT_CPU = 0, MP_QCOMPAT_METAL = 1 } mp_qcompat;

/* 1 when (bits, group_size) is something MLX affine supports: bits 2,3,4,5,6,8; groups 32/64/128. */
int mp_mlx_affine_supported(int bits, int group_size);
/* 1 for F32, F16, BF16. */
int mp_mlx_is_float(mp_dtype dt);
/* "float16"/"bfloat16"/"float32" (also "f16", "bf16", "f32", "F16", ...) -> dtype; else
 * MP_ERR_INVALID_ARG (no message set). */
mp_status mp_mlx_dtype_parse(const char *name, mp_dtype *out);
/* MLX / torch spelling: "float16", "bfloat16", "float32" (else the safetensors spelling). */
const char *mp_mlx_dtype_name(mp_dtype dt);

/* ---- casts exactly as MLX's astype (CPU): round to nearest even; NaN: f32->f16 gives
 * sign|0x7D00, f32->bf16 gives 0x7FC0, f16->f32 quiets (sets bit 22), bf16->f32 is exact;
 * f16<->bf16 goes through f32. */
float mp_mlx_f16_to_f32(uint16_t h);
uint16_t mp_mlx_f32_to_f16(float f);
float mp_mlx_bf16_to_f32(uint16_t b);
uint16_t mp_mlx_f32_to_bf16(float f);
/* n elements of src (F32/F16/BF16) to dst (F32/F16/BF16); src and dst must not overlap unless
 * they are the same dtype and pointer. Returns MP_ERR_UNSUPPORTED for other dtypes. */
mp_status mp_mlx_astype(const void *src, mp_dtype sdt, void *dst, mp_dtype ddt, size_t n);
/* One element of src (F32/F16/BF16) as float32. */
float mp_mlx_load_f32(const void *src, mp_dtype sdt, size_t i);

/* Sizes for a tensor of `numel` values (numel % group_size == 0): packed bytes = numel*bits/8
 * (a multiple of 4 because group_size >= 32), number of groups = numel/group_size. */
size_t mp_mlx_affine_packed_bytes(size_t numel, int bits);
size_t mp_mlx_affine_groups(size_t numel, int group_size);

/* Quantizes numel values (numel % group_size == 0; rows are implied: groups never cross a row
 * because the row length is a multiple of group_size) from `src` (dtype sdt) after casting
 * them to `dt` (the output float dtype). Writes packed q (mp_mlx_affine_packed_bytes bytes,
 * little-endian), and scales/biases (mp_mlx_affine_groups elements of dtype dt).
 * Rejects NaN/±inf with MP_ERR_FORMAT naming `name` and the flat index. */
mp_status mp_mlx_affine_quantize(const void *src, mp_dtype sdt, size_t numel, mp_dtype dt, int bits, int group_size,
                                 mp_qcompat compat, const char *name, uint8_t *wq, void *scales, void *biases);

typedef struct mp_qerr mp_qerr;
/* Same, also accumulating into `err` (may be NULL) the error of the dequantized values (exactly
 * as mp_mlx_affine_dequantize would produce them) against the source values. */
mp_status mp_mlx_affine_quantize_ex(const void *src, mp_dtype sdt, size_t numel, mp_dtype dt, int bits, int group_size,
                                    mp_qcompat compat, const char *name, uint8_t *wq, void *scales, void *biases,
                                    mp_qerr *err);

/* Dequantizes like mx.dequantize on CPU: out = dt(dt(q*scale) + bias), written as dtype dt. */
mp_status mp_mlx_affine_dequantize(const uint8_t *wq, const void *scales, const void *biases, mp_dtype dt, size_t numel,
                                   int bits, int group_size, void *out);
/* Unpacks q value i of a packed stream. */
unsigned mp_mlx_affine_q_at(const uint8_t *wq, size_t i, int bits);

/* Error of an approximation `b` (dtype bdt) against reference `a` (dtype adt), accumulated
 * over calls (for streaming); finish with mp_qerr_finish. */
typedef struct mp_qerr {
  double sum_sq_err, sum_sq_ref, max_abs;
  uint64_t n;
  /* results after mp_qerr_finish */
  double rms, rel_rms, snr_db; /* snr_db: +inf (stored as 999) when the error is exactly zero */
} mp_qerr;
void mp_qerr_init(mp_qerr *e);
void mp_qerr_add(mp_qerr *e, const void *a, mp_dtype adt, const void *b, mp_dtype bdt, size_t n);
void mp_qerr_finish(mp_qerr *e);
#endif
