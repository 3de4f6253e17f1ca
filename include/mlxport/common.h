/* mlxport public API: versions, the status type, errors, logging and memory returned by the
 * library. Included by every other public header (include/mlxport.h includes them all).
 *
 * Conventions of the whole API (docs/api/README.md):
 *   - every public name starts with mlxport_ / MLXPORT_; nothing else is exported;
 *   - functions that can fail return an mlxport_status; on failure mlxport_last_error() gives a
 *     message naming the file / tensor / line and what to do, kept per thread;
 *   - handles are opaque, opened by *_open and released by *_close (NULL is accepted);
 *   - outputs are caller-owned buffers sized by a query function, or library-allocated results
 *     with their own *_free (or mlxport_free for plain strings);
 *   - the library never prints and never exits; logging goes through mlxport_set_log_callback;
 *   - options structs start with struct_size, set by their *_init function, so that a program
 *     built against an older header keeps working with a newer library. */
#ifndef MLXPORT_COMMON_H
#define MLXPORT_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of these headers. CMakeLists.txt reads the project version from these lines. */
#define MLXPORT_VERSION_MAJOR 0
#define MLXPORT_VERSION_MINOR 1
#define MLXPORT_VERSION_PATCH 0
#define MLXPORT_VERSION_STRING "0.1.0"
/* MAJOR * 10000 + MINOR * 100 + PATCH, for #if comparisons and mlxport_check_version. */
#define MLXPORT_VERSION_NUMBER (MLXPORT_VERSION_MAJOR * 10000 + MLXPORT_VERSION_MINOR * 100 + MLXPORT_VERSION_PATCH)

/* Marks the exported functions. The library is built with -fvisibility=hidden and defines
 * MLXPORT_BUILDING; users see a plain declaration (plus the visibility attribute, harmless). */
#if defined(_WIN32)
#if defined(MLXPORT_BUILDING)
#define MLXPORT_API __declspec(dllexport)
#else
#define MLXPORT_API
#endif
#elif defined(__GNUC__) || defined(__clang__)
#define MLXPORT_API __attribute__((visibility("default")))
#else
#define MLXPORT_API
#endif

/* The one status type of the library. */
typedef enum mlxport_status {
  MLXPORT_OK = 0,
  MLXPORT_ERR_INVALID_ARG = 1, /* the caller passed something unusable */
  MLXPORT_ERR_IO = 2,          /* open/read/write/rename failed */
  MLXPORT_ERR_FORMAT = 3,      /* malformed input file */
  MLXPORT_ERR_UNSUPPORTED = 4, /* well-formed but not something mlxport handles */
  MLXPORT_ERR_NOT_FOUND = 5,   /* file, tensor, model or key absent */
  MLXPORT_ERR_NOMEM = 6,       /* allocation failed or a size is absurd */
  MLXPORT_ERR_SECURITY = 7,    /* input asked for something unsafe (e.g. pickle GLOBAL os.system) */
  MLXPORT_ERR_INTERNAL = 8,
  MLXPORT_ERR_CANCELLED = 9, /* interrupted */
} mlxport_status;

/** mlxport_version: the library's version string ("0.1.0").
 * Returns: a static string (never NULL, never freed).
 * Thread-safety: any thread, any time. */
MLXPORT_API const char *mlxport_version(void);

/** mlxport_version_number: the library's version as MAJOR * 10000 + MINOR * 100 + PATCH.
 * Returns: the number (compare with MLXPORT_VERSION_NUMBER of the headers you built with).
 * Thread-safety: any thread, any time. */
MLXPORT_API int mlxport_version_number(void);

/** mlxport_check_version: runtime check that the loaded library suits the headers a program was
 * built with; call it once at start-up as mlxport_check_version(MLXPORT_VERSION_NUMBER).
 * header_version: MLXPORT_VERSION_NUMBER as seen by the caller's compiler.
 * Returns: MLXPORT_OK when the library has the same major version and is at least as new as the
 *   headers; MLXPORT_ERR_UNSUPPORTED otherwise (mlxport_last_error names both versions).
 * Thread-safety: any thread. */
MLXPORT_API mlxport_status mlxport_check_version(int header_version);

/** mlxport_last_error: the message of the last failed call on this thread.
 * Returns: "" when there is none. Owned by the library: valid until the next failing call on the
 *   same thread; copy it to keep it.
 * Thread-safety: per thread (each thread has its own message). */
MLXPORT_API const char *mlxport_last_error(void);

/** mlxport_status_name: a short constant name of a status ("format error", "not found", ...).
 * Returns: a static string, never NULL ("unknown status" for a value outside the enum).
 * Thread-safety: any thread. */
MLXPORT_API const char *mlxport_status_name(mlxport_status status);

typedef enum mlxport_log_level {
  MLXPORT_LOG_DEBUG = 0,
  MLXPORT_LOG_INFO = 1,
  MLXPORT_LOG_WARN = 2,
  MLXPORT_LOG_ERROR = 3
} mlxport_log_level;
typedef void (*mlxport_log_fn)(mlxport_log_level level, const char *message, void *user);

/** mlxport_set_log_callback: where the library's progress and warning messages go (default:
 * nowhere).
 * fn: called with each message at or above min_level (NULL: messages are dropped); message is
 *   valid during the call only. It may be called from the library's worker threads.
 * user: passed back to fn.
 * Thread-safety: process-wide setting; set it before starting work on other threads. */
MLXPORT_API void mlxport_set_log_callback(mlxport_log_fn fn, void *user, mlxport_log_level min_level);

/** mlxport_free: releases memory the library returned as a plain pointer (JSON strings, decoded
 * text, token embeddings). Results with their own *_free function go through that instead.
 * p: the pointer, or NULL (nothing happens).
 * Thread-safety: any thread. */
MLXPORT_API void mlxport_free(void *p);

#ifdef __cplusplus
}
#endif
#endif /* MLXPORT_COMMON_H */
