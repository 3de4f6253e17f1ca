/* The dtype table: element sizes and safetensors names of mp_dtype (core/base.h). */
#include <string.h>

#include "mlxport.h"

static const struct {
  const char *name;
  size_t size;
} k_dtypes[MP_DTYPE_COUNT] = {
    [MP_DTYPE_INVALID] = {"INVALID", 0},
    [MP_F32] = {"F32", 4},
    [MP_F16] = {"F16", 2},
    [MP_BF16] = {"BF16", 2},
    [MP_F64] = {"F64", 8},
    [MP_I8] = {"I8", 1},
    [MP_U8] = {"U8", 1},
    [MP_I16] = {"I16", 2},
    [MP_U16] = {"U16", 2},
    [MP_I32] = {"I32", 4},
    [MP_U32] = {"U32", 4},
    [MP_I64] = {"I64", 8},
    [MP_U64] = {"U64", 8},
    [MP_BOOL] = {"BOOL", 1},
};

size_t mp_dtype_size(mp_dtype d) { return (d > 0 && d < MP_DTYPE_COUNT) ? k_dtypes[d].size : 0; }

const char *mp_dtype_name(mp_dtype d) { return (d > 0 && d < MP_DTYPE_COUNT) ? k_dtypes[d].name : "INVALID"; }

mp_dtype mp_dtype_from_name(const char *name, size_t len) {
  for (int d = 1; d < MP_DTYPE_COUNT; d++)
    if (strlen(k_dtypes[d].name) == len && memcmp(k_dtypes[d].name, name, len) == 0) return (mp_dtype)d;
  return MP_DTYPE_INVALID;
}
