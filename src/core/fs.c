/* File-system services: whole-file reads, read-only mmaps, atomic writes (temp name, fsync,
 * rename), folders and paths (see fs.h). */
#include "core/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

mp_status mp_read_file(const char *path, char **out, size_t *out_len, size_t max_size) {
  *out = NULL;
  if (out_len) *out_len = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return mp_err_errno(errno == ENOENT ? MP_ERR_NOT_FOUND : MP_ERR_IO, "%s: cannot open", path);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    close(fd);
    return mp_err_errno(MP_ERR_IO, "%s: cannot stat", path);
  }
  if (S_ISDIR(st.st_mode)) {
    close(fd);
    return mp_err(MP_ERR_IO, "%s: is a folder, expected a file", path);
  }
  if ((uint64_t)st.st_size > max_size) {
    close(fd);
    return mp_err(MP_ERR_NOMEM, "%s: file too large (%lld bytes, limit %zu)", path, (long long)st.st_size, max_size);
  }
  size_t cap = (size_t)st.st_size + 1, n = 0;
  char *buf = malloc(cap);
  if (!buf) {
    close(fd);
    return mp_err(MP_ERR_NOMEM, "%s: out of memory reading file", path);
  }
  for (;;) {
    if (n + 1 >= cap) { /* file grew or is a pipe */
      if (cap > max_size) {
        free(buf);
        close(fd);
        return mp_err(MP_ERR_NOMEM, "%s: file too large (limit %zu bytes)", path, max_size);
      }
      char *nb = realloc(buf, cap * 2);
      if (!nb) {
        free(buf);
        close(fd);
        return mp_err(MP_ERR_NOMEM, "%s: out of memory reading file", path);
      }
      buf = nb;
      cap *= 2;
    }
    ssize_t r = read(fd, buf + n, cap - 1 - n);
    if (r < 0) {
      if (errno == EINTR) continue;
      free(buf);
      close(fd);
      return mp_err_errno(MP_ERR_IO, "%s: read failed", path);
    }
    if (r == 0) break;
    n += (size_t)r;
  }
  close(fd);
  buf[n] = 0;
  *out = buf;
  if (out_len) *out_len = n;
  return MP_OK;
}

mp_status mp_mmap_open(const char *path, mp_mmap *m) {
  m->data = NULL;
  m->size = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return mp_err_errno(errno == ENOENT ? MP_ERR_NOT_FOUND : MP_ERR_IO, "%s: cannot open", path);
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return mp_err(MP_ERR_IO, "%s: not a regular file", path);
  }
  if (st.st_size == 0) {
    close(fd);
    return MP_OK;
  }
  void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (p == MAP_FAILED) return mp_err_errno(MP_ERR_IO, "%s: mmap failed", path);
  m->data = p;
  m->size = (size_t)st.st_size;
  return MP_OK;
}

void mp_mmap_close(mp_mmap *m) {
  if (m->data) munmap((void *)m->data, m->size);
  m->data = NULL;
  m->size = 0;
}

char *mp_path_join(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  while (la > 1 && a[la - 1] == '/')
    la--;
  char *p = malloc(la + lb + 2);
  if (!p) return NULL;
  memcpy(p, a, la);
  p[la] = '/';
  memcpy(p + la + 1, b, lb + 1);
  return p;
}

char *mp_path_dirname(const char *path) {
  const char *s = strrchr(path, '/');
  if (!s) return strdup(".");
  if (s == path) return strdup("/");
  return strndup(path, (size_t)(s - path));
}

const char *mp_path_basename(const char *path) {
  const char *s = strrchr(path, '/');
  return s ? s + 1 : path;
}

void mp_fsync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
}

mp_status mp_afile_open(mp_afile *f, const char *path) {
  memset(f, 0, sizeof *f);
  char *dir = mp_path_dirname(path);
  if (!dir) return mp_err(MP_ERR_NOMEM, "out of memory");
  const char *base = mp_path_basename(path);
  size_t n = strlen(dir) + strlen(base) + 32;
  f->tmp_path = malloc(n);
  f->path = strdup(path);
  if (!f->tmp_path || !f->path) {
    free(dir);
    mp_afile_abort(f);
    return mp_err(MP_ERR_NOMEM, "out of memory");
  }
  snprintf(f->tmp_path, n, "%s/.%s.tmp-XXXXXX", dir, base);
  free(dir);
  int fd = mkstemp(f->tmp_path);
  if (fd < 0) {
    mp_status s = mp_err_errno(MP_ERR_IO, "%s: cannot create temporary file", path);
    free(f->tmp_path);
    f->tmp_path = NULL;
    mp_afile_abort(f);
    return s;
  }
  fchmod(fd, 0644);
  f->fp = fdopen(fd, "wb");
  if (!f->fp) {
    close(fd);
    mp_status s = mp_err_errno(MP_ERR_IO, "%s: fdopen failed", path);
    mp_afile_abort(f);
    return s;
  }
  return MP_OK;
}

mp_status mp_afile_write(mp_afile *f, const void *data, size_t n) {
  if (f->failed) return MP_ERR_IO;
  if (n && fwrite(data, 1, n, f->fp) != n) {
    f->failed = 1;
    return mp_err_errno(MP_ERR_IO, "%s: write failed", f->path);
  }
  return MP_OK;
}

mp_status mp_afile_commit(mp_afile *f) {
  mp_status s = MP_OK;
  if (f->failed) s = mp_err(MP_ERR_IO, "%s: earlier write failed", f->path);
  if (!s && fflush(f->fp) != 0) s = mp_err_errno(MP_ERR_IO, "%s: flush failed", f->path);
  if (!s && fsync(fileno(f->fp)) != 0) s = mp_err_errno(MP_ERR_IO, "%s: fsync failed", f->path);
  if (fclose(f->fp) != 0 && !s) s = mp_err_errno(MP_ERR_IO, "%s: close failed", f->path);
  f->fp = NULL;
  if (!s && rename(f->tmp_path, f->path) != 0) s = mp_err_errno(MP_ERR_IO, "%s: rename into place failed", f->path);
  if (s) {
    unlink(f->tmp_path);
  } else {
    char *dir = mp_path_dirname(f->path);
    if (dir) mp_fsync_dir(dir);
    free(dir);
  }
  free(f->tmp_path);
  free(f->path);
  f->tmp_path = f->path = NULL;
  return s;
}

void mp_afile_abort(mp_afile *f) {
  if (f->fp) fclose(f->fp);
  if (f->tmp_path) unlink(f->tmp_path);
  free(f->tmp_path);
  free(f->path);
  memset(f, 0, sizeof *f);
}

mp_status mp_write_file_atomic(const char *path, const void *data, size_t n) {
  mp_afile f;
  MP_TRY(mp_afile_open(&f, path));
  mp_status s = mp_afile_write(&f, data, n);
  if (s) {
    mp_afile_abort(&f);
    return s;
  }
  return mp_afile_commit(&f);
}

mp_status mp_mkdirs(const char *path) {
  char *p = strdup(path);
  if (!p) return mp_err(MP_ERR_NOMEM, "out of memory");
  size_t n = strlen(p);
  for (size_t i = 1; i <= n; i++) {
    if (p[i] == '/' || p[i] == 0) {
      char c = p[i];
      p[i] = 0;
      if (mkdir(p, 0755) != 0 && errno != EEXIST) {
        mp_status s = mp_err_errno(MP_ERR_IO, "%s: cannot create folder", p);
        free(p);
        return s;
      }
      p[i] = c;
    }
  }
  free(p);
  if (!mp_is_dir(path)) return mp_err(MP_ERR_IO, "%s: exists and is not a folder", path);
  return MP_OK;
}

mp_status mp_remove_tree(const char *path) {
  if (!path || !*path || strcmp(path, "/") == 0)
    return mp_err(MP_ERR_INVALID_ARG, "refusing to remove '%s'", path ? path : "");
  struct stat st;
  if (lstat(path, &st) != 0) return errno == ENOENT ? MP_OK : mp_err_errno(MP_ERR_IO, "%s: stat failed", path);
  if (!S_ISDIR(st.st_mode)) {
    if (unlink(path) != 0) return mp_err_errno(MP_ERR_IO, "%s: cannot remove", path);
    return MP_OK;
  }
  DIR *d = opendir(path);
  if (!d) return mp_err_errno(MP_ERR_IO, "%s: cannot open folder", path);
  struct dirent *e;
  mp_status s = MP_OK;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    char *c = mp_path_join(path, e->d_name);
    if (!c) {
      s = mp_err(MP_ERR_NOMEM, "out of memory");
      break;
    }
    s = mp_remove_tree(c);
    free(c);
    if (s) break;
  }
  closedir(d);
  if (!s && rmdir(path) != 0) s = mp_err_errno(MP_ERR_IO, "%s: cannot remove folder", path);
  return s;
}

int mp_path_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}
int mp_is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}
int mp_is_file(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}
int64_t mp_file_size(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) return -1;
  return (int64_t)st.st_size;
}

int64_t mp_tree_size(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) return -1;
  if (!S_ISDIR(st.st_mode)) return S_ISREG(st.st_mode) ? (int64_t)st.st_size : 0;
  DIR *d = opendir(path);
  if (!d) return -1;
  int64_t total = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    char *c = mp_path_join(path, e->d_name);
    if (!c) break;
    int64_t s = mp_tree_size(c);
    if (s > 0) total += s;
    free(c);
  }
  closedir(d);
  return total;
}

mp_status mp_copy_file(const char *src, const char *dst) {
  mp_mmap m;
  MP_TRY(mp_mmap_open(src, &m));
  mp_status s = mp_write_file_atomic(dst, m.data ? (const void *)m.data : "", m.size);
  mp_mmap_close(&m);
  return s;
}
