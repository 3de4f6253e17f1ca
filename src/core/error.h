/* Thread-local error messages. Set once, where the problem is found. */
#ifndef MP_CORE_ERROR_H
#define MP_CORE_ERROR_H
#include "mlxport.h"

#if defined(__GNUC__)
#define MP_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define MP_PRINTF(a, b)
#endif

/* Formats the message into the thread's error buffer and returns s (for `return mp_err(...)`). */
mp_status mp_err(mp_status s, const char *fmt, ...) MP_PRINTF(2, 3);
/* Like mp_err, appending ": strerror(errno)". */
mp_status mp_err_errno(mp_status s, const char *fmt, ...) MP_PRINTF(2, 3);
/* Prefixes the current message with "prefix: " (adds context on the way up). */
mp_status mp_err_prefix(mp_status s, const char *fmt, ...) MP_PRINTF(2, 3);
void mp_err_clear(void);

/* internal logging */
void mp_log(mp_log_level level, const char *fmt, ...) MP_PRINTF(2, 3);

#define MP_TRY(expr)                                                                                                   \
  do {                                                                                                                 \
    mp_status mp_try_s_ = (expr);                                                                                      \
    if (mp_try_s_ != MP_OK) return mp_try_s_;                                                                          \
  } while (0)

#endif
