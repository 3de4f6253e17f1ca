/* File-system services: whole-file reads, read-only mmaps, atomic writes, folders. */
#ifndef MP_CORE_FS_H
#define MP_CORE_FS_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mlxport.h"

/* Reads a whole file into a malloc'd, NUL-terminated buffer (refuses files > max_size). */
mp_status mp_read_file(const char *path, char **out, size_t *out_len, size_t max_size);

/* Read-only memory map of a whole file (empty files map to a NULL pointer with size 0). */
typedef struct mp_mmap {
  const uint8_t *data;
  size_t size;
} mp_mmap;
mp_status mp_mmap_open(const char *path, mp_mmap *m);
void mp_mmap_close(mp_mmap *m);

/* Atomic file: data goes to "<dir>/.<name>.tmp-XXXXXX"; commit fsyncs, renames over the final
 * name and fsyncs the folder; abort (or a crash) leaves the final name untouched. */
typedef struct mp_afile {
  FILE *fp;
  char *path;     /* final path */
  char *tmp_path; /* temporary path */
  int failed;
} mp_afile;
mp_status mp_afile_open(mp_afile *f, const char *path);
mp_status mp_afile_write(mp_afile *f, const void *data, size_t n);
mp_status mp_afile_commit(mp_afile *f);
void mp_afile_abort(mp_afile *f);
/* One-shot: write `n` bytes atomically to path. */
mp_status mp_write_file_atomic(const char *path, const void *data, size_t n);

/* mkdir -p (mode 0755). */
mp_status mp_mkdirs(const char *path);
/* rm -rf (refuses "/" and ""). */
mp_status mp_remove_tree(const char *path);
int mp_path_exists(const char *path);
int mp_is_dir(const char *path);
int mp_is_file(const char *path);
/* Size of a file in bytes, or -1. */
int64_t mp_file_size(const char *path);
/* Sum of the sizes of all regular files below a folder (or the file's size). */
int64_t mp_tree_size(const char *path);
/* fsync a folder (after renames in it). */
void mp_fsync_dir(const char *dir);
/* malloc'd "a/b" (handles a trailing slash in a). */
char *mp_path_join(const char *a, const char *b);
/* malloc'd folder part of a path ("." when none). */
char *mp_path_dirname(const char *path);
/* pointer to the last component inside `path`. */
const char *mp_path_basename(const char *path);
/* Copies a file (atomically at dst). */
mp_status mp_copy_file(const char *src, const char *dst);
#endif
