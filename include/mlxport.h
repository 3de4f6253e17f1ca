/* mlxport public API.
 *
 * libmlxport converts Hugging Face models to MLX format, runs original and converted models
 * natively and evaluates them. Conventions:
 *   - every function that can fail returns an mp_status; on failure mp_last_error() gives a
 *     thread-local message naming the file / tensor / line and what to do;
 *   - every *_open / *_create has its *_close / *_free, which accept NULL;
 *   - the library never prints and never exits; logging goes through mp_set_log_callback().
 */
#ifndef MLXPORT_H
#define MLXPORT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MP_VERSION_STRING "0.1.0"

typedef enum mp_status {
  MP_OK = 0,
  MP_ERR_INVALID_ARG = 1, /* caller passed something unusable (usage error) */
  MP_ERR_IO = 2,          /* open/read/write/rename failed */
  MP_ERR_FORMAT = 3,      /* malformed input file */
  MP_ERR_UNSUPPORTED = 4, /* well-formed but not something mlxport handles */
  MP_ERR_NOT_FOUND = 5,   /* file, tensor, model or key absent */
  MP_ERR_NOMEM = 6,       /* allocation failed or a size is absurd */
  MP_ERR_SECURITY = 7,    /* input asked for something unsafe (e.g. pickle GLOBAL os.system) */
  MP_ERR_INTERNAL = 8,
  MP_ERR_CANCELLED = 9, /* interrupted (SIGINT/SIGTERM) */
} mp_status;

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
#endif /* MLXPORT_H */
