/* Public API (include/mlxport/common.h): versions, errors, logging, mlxport_free. Thin
 * wrappers over core/error.c; the only code here is the version check and the log adapter. */
#include <stdlib.h>

#include "core/error.h"
#include "mlxport.h"

MLXPORT_API const char *mlxport_version(void) { return MLXPORT_VERSION_STRING; }

MLXPORT_API int mlxport_version_number(void) { return MLXPORT_VERSION_NUMBER; }

MLXPORT_API mlxport_status mlxport_check_version(int header_version) {
  int major = header_version / 10000;
  if (major != MLXPORT_VERSION_MAJOR || header_version > MLXPORT_VERSION_NUMBER)
    return mp_err(MP_ERR_UNSUPPORTED,
                  "libmlxport %s is loaded, but the program was built with the headers of version %d.%d.%d: "
                  "install a libmlxport %d.x at least as new as those headers, or rebuild the program",
                  MLXPORT_VERSION_STRING, major, header_version / 100 % 100, header_version % 100, major);
  return MP_OK;
}

MLXPORT_API const char *mlxport_last_error(void) { return mp_last_error(); }

MLXPORT_API const char *mlxport_status_name(mlxport_status status) { return mp_status_name(status); }

/* the public callback type has its own enum; adapt instead of casting the function pointer */
static mlxport_log_fn g_user_fn;
static void *g_user_data;
static void log_adapter(mp_log_level level, const char *msg, void *user) {
  (void)user;
  if (g_user_fn) g_user_fn((mlxport_log_level)level, msg, g_user_data);
}

MLXPORT_API void mlxport_set_log_callback(mlxport_log_fn fn, void *user, mlxport_log_level min_level) {
  g_user_fn = fn;
  g_user_data = user;
  mp_set_log_callback(fn ? log_adapter : NULL, NULL, (mp_log_level)min_level);
}

MLXPORT_API void mlxport_free(void *p) { free(p); }
