/* Tensor views: typed, shaped windows onto memory someone else owns (an mmap, an arena). */
#ifndef MP_CORE_TENSOR_H
#define MP_CORE_TENSOR_H
#include <stddef.h>
#include <stdint.h>

#include "mlxport.h"

#define MP_MAX_DIMS 8

typedef struct mp_tensor {
  const char *name;
  mp_dtype dtype;
  int ndim;
  int64_t shape[MP_MAX_DIMS];
  int64_t strides[MP_MAX_DIMS]; /* in elements; row-major contiguous unless noted */
  const void *data;
  size_t nbytes; /* bytes spanned by the (contiguous) data */
} mp_tensor;

/* Number of elements (1 for a scalar). Returns -1 on overflow or negative dims. */
int64_t mp_tensor_numel(const mp_tensor *t);
/* Fills row-major contiguous strides from the shape. */
void mp_tensor_set_contiguous(mp_tensor *t);
int mp_tensor_is_contiguous(const mp_tensor *t);
/* "[384, 1536]" into buf. */
const char *mp_shape_str(const int64_t *shape, int ndim, char *buf, size_t cap);

/* IEEE half / bfloat16 conversions (round-to-nearest-even, NaN preserved as quiet NaN). */
float mp_f16_to_f32(uint16_t h);
uint16_t mp_f32_to_f16(float f);
float mp_bf16_to_f32(uint16_t b);
uint16_t mp_f32_to_bf16(float f);
#endif
