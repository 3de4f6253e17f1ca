/* Thread-local error messages (set once, where the problem is found), status names and the
 * library's logging callback (see error.h). */
#include "core/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MP_ERR_CAP 2048
static _Thread_local char g_err[MP_ERR_CAP];

const char *mp_last_error(void) { return g_err; }

void mp_err_clear(void) { g_err[0] = 0; }

mp_status mp_err(mp_status s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_err, sizeof g_err, fmt, ap);
  va_end(ap);
  return s;
}

mp_status mp_err_errno(mp_status s, const char *fmt, ...) {
  int e = errno;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(g_err, sizeof g_err, fmt, ap);
  va_end(ap);
  if (n >= 0 && (size_t)n < sizeof g_err - 1) {
    const char *es = strerror(e);
    size_t used = (size_t)n, room = sizeof g_err - 1 - used, el = strlen(es);
    if (room >= 2) {
      memcpy(g_err + used, ": ", 2);
      used += 2, room -= 2;
      if (el > room) el = room;
      memcpy(g_err + used, es, el);
      g_err[used + el] = 0;
    }
  }
  return s;
}

mp_status mp_err_prefix(mp_status s, const char *fmt, ...) {
  char old[MP_ERR_CAP];
  memcpy(old, g_err, sizeof old);
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(g_err, sizeof g_err, fmt, ap);
  va_end(ap);
  size_t used = n < 0 ? 0 : (size_t)n < sizeof g_err ? (size_t)n : sizeof g_err - 1;
  size_t room = sizeof g_err - 1 - used, ol = strlen(old);
  if (room >= 2) {
    memcpy(g_err + used, ": ", 2);
    used += 2, room -= 2;
    if (ol > room) ol = room;
    memcpy(g_err + used, old, ol);
    used += ol;
  }
  g_err[used] = 0;
  return s;
}

const char *mp_status_name(mp_status s) {
  switch (s) {
  case MP_OK: return "ok";
  case MP_ERR_INVALID_ARG: return "invalid argument";
  case MP_ERR_IO: return "I/O error";
  case MP_ERR_FORMAT: return "format error";
  case MP_ERR_UNSUPPORTED: return "unsupported";
  case MP_ERR_NOT_FOUND: return "not found";
  case MP_ERR_NOMEM: return "out of memory";
  case MP_ERR_SECURITY: return "refused (unsafe input)";
  case MP_ERR_INTERNAL: return "internal error";
  case MP_ERR_CANCELLED: return "cancelled";
  }
  return "unknown status";
}

/* ---- logging ---- */
static mp_log_fn g_log_fn;
static void *g_log_user;
static mp_log_level g_log_min = MP_LOG_INFO;

void mp_set_log_callback(mp_log_fn fn, void *user, mp_log_level min_level) {
  g_log_fn = fn;
  g_log_user = user;
  g_log_min = min_level;
}

void mp_log(mp_log_level level, const char *fmt, ...) {
  if (!g_log_fn || level < g_log_min) return;
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  g_log_fn(level, buf, g_log_user);
}
