/* MLX's floating-point quantization modes — mxfp4, nvfp4, mxfp8 — bit-identical to
 * mx.quantize(w, mode=...) / mx.dequantize(..., mode=...) on MLX's CPU backend (MLX 0.32), and
 * the quantization-mode vocabulary shared by convert, the runtime and the pipeline.
 * See docs/quantization.md ("Floating-point modes") for the algorithm as read from MLX.
 *
 * Layout (MLX): a weight [..., K] is cut into groups of `group_size` values along the last
 * axis; each value is an fp4 (e2m1, 4 bits) or fp8 (e4m3, 8 bits) code, packed LSB-first into
 * uint32 words ([..., K*bits/32]); each group has one uint8 scale ([..., K/group_size]):
 *   mxfp4: group 32, fp4 codes, e8m0 scale (2^(s-127));
 *   nvfp4: group 16, fp4 codes, fp8 e4m3 scale;
 *   mxfp8: group 32, fp8 e4m3 codes, e8m0 scale.
 * There are no biases. */
#ifndef MP_QUANT_MLX_FP_H
#define MP_QUANT_MLX_FP_H
#include <stddef.h>
#include <stdint.h>

#include "mlxport.h"
#include "quant/mlx_affine.h"

typedef enum mp_qmode { MP_QMODE_AFFINE = 0, MP_QMODE_MXFP4, MP_QMODE_NVFP4, MP_QMODE_MXFP8 } mp_qmode;

/* "affine", "mxfp4", "nvfp4", "mxfp8" */
const char *mp_qmode_name(mp_qmode m);
/* name -> mode; MP_ERR_INVALID_ARG (no message set) for anything else. */
mp_status mp_qmode_parse(const char *name, mp_qmode *out);
/* MLX's defaults (quantization_params_from_mode): affine 4 bits / 64, mxfp4 4 / 32,
 * nvfp4 4 / 16, mxfp8 8 / 32. */
int mp_qmode_default_bits(mp_qmode m);
int mp_qmode_default_group(mp_qmode m);
/* 1 when MLX accepts (mode, bits, group_size): affine bits 2,3,4,5,6,8 x groups 32/64/128;
 * the fp modes only their own bits and group size. */
int mp_mlx_quant_supported(mp_qmode m, int bits, int group_size);
/* Writes into buf a sentence saying what MLX allows for mode m (for error messages). */
void mp_qmode_allowed(mp_qmode m, char *buf, size_t n);

/* fp8 e4m3 ("fn": no inf, 0x7F/0xFF = NaN in OCP, decoded by MLX as ±480) as MLX's ToFP8 /
 * FromFP8 compute it: round to nearest even, |x| > 448 (and NaN, inf) saturates to ±448. */
uint8_t mp_fp8_e4m3_from_f32(float x);
float mp_fp8_e4m3_to_f32(uint8_t b);

/* Bytes of the packed codes and number of (uint8) scales for numel values. */
size_t mp_mlx_fp_packed_bytes(size_t numel, mp_qmode m);
size_t mp_mlx_fp_groups(size_t numel, mp_qmode m);

/* Quantizes numel values (numel % group == 0) of src (dtype sdt) after casting them to dt (the
 * dtype MLX would see: the converted model's float dtype), exactly as mx.quantize(w.astype(dt),
 * mode=m) on CPU. Writes packed codes and uint8 scales. NaN/±inf (also after the cast) are
 * refused with MP_ERR_FORMAT naming `name` and the flat index. err (may be NULL) accumulates
 * the error of the dequantized values (float32, exact) against the source. */
mp_status mp_mlx_fp_quantize(const void *src, mp_dtype sdt, size_t numel, mp_dtype dt, mp_qmode m, const char *name,
                             uint8_t *wq, uint8_t *scales, mp_qerr *err);

/* Dequantizes like mx.dequantize(w, scales, mode=m, dtype=dt) on CPU (every step rounded to dt),
 * writing numel values of dtype dt. */
mp_status mp_mlx_fp_dequantize(const uint8_t *wq, const uint8_t *scales, mp_qmode m, mp_dtype dt, size_t numel,
                               void *out);
/* Value i as float32: code value x scale, exact in float32 (and in bfloat16) for every code and
 * scale MLX produces from finite weights (the products have at most 7 significant bits). */
float mp_mlx_fp_value(const uint8_t *wq, const uint8_t *scales, mp_qmode m, size_t i);
#endif
