/* Internal base definitions shared by every library source: the status codes (the public
 * mlxport_status under its internal name mp_status), element types and internal logging.
 * Reached through "mlxport.h" when MLXPORT_BUILDING is defined (the library's own build, its
 * CLI, tests and tools); never installed. The public API is include/mlxport.h. */
#ifndef MP_CORE_BASE_H
#define MP_CORE_BASE_H
#include "mlxport/common.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MP_VERSION_STRING MLXPORT_VERSION_STRING

/* The one status type: internal code calls it mp_status and its values MP_*; they are the
 * public mlxport_status and MLXPORT_* (include/mlxport/common.h). */
typedef mlxport_status mp_status;
#define MP_OK MLXPORT_OK
#define MP_ERR_INVALID_ARG MLXPORT_ERR_INVALID_ARG
#define MP_ERR_IO MLXPORT_ERR_IO
#define MP_ERR_FORMAT MLXPORT_ERR_FORMAT
#define MP_ERR_UNSUPPORTED MLXPORT_ERR_UNSUPPORTED
#define MP_ERR_NOT_FOUND MLXPORT_ERR_NOT_FOUND
#define MP_ERR_NOMEM MLXPORT_ERR_NOMEM
#define MP_ERR_SECURITY MLXPORT_ERR_SECURITY
#define MP_ERR_INTERNAL MLXPORT_ERR_INTERNAL
#define MP_ERR_CANCELLED MLXPORT_ERR_CANCELLED

/* Last error message of this thread ("" when none). Valid until the next failing call. */
const char *mp_last_error(void);
/* Short constant name of a status ("format error", ...). */
const char *mp_status_name(mp_status s);

/* Element types, the union of what safetensors, PyTorch and MLX store. */
typedef enum mp_dtype {
  MP_DTYPE_INVALID = 0,
  MP_F32,
  MP_F16,
  MP_BF16,
  MP_F64,
  MP_I8,
  MP_U8,
  MP_I16,
  MP_U16,
  MP_I32,
  MP_U32,
  MP_I64,
  MP_U64,
  MP_BOOL,
  MP_DTYPE_COUNT
} mp_dtype;

size_t mp_dtype_size(mp_dtype d);
/* safetensors spelling: "F32", "BF16", "BOOL", ... */
const char *mp_dtype_name(mp_dtype d);
/* Parses the safetensors spelling; returns MP_DTYPE_INVALID when unknown. */
mp_dtype mp_dtype_from_name(const char *name, size_t len);

/* Logging: the library reports progress and warnings through this callback (default: none). */
typedef enum mp_log_level { MP_LOG_DEBUG, MP_LOG_INFO, MP_LOG_WARN, MP_LOG_ERROR } mp_log_level;
typedef void (*mp_log_fn)(mp_log_level level, const char *msg, void *user);
void mp_set_log_callback(mp_log_fn fn, void *user, mp_log_level min_level);

#ifdef __cplusplus
}
#endif
#endif /* MP_CORE_BASE_H */
