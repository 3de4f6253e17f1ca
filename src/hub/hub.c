/* Hugging Face Hub client: settings, revision and tree listing, per-file HEAD + GET into the
 * huggingface_hub cache layout (blobs, snapshots, refs, .no_exist, .locks) with resume, size and
 * sha256 checks, retries, several files in parallel, and the offline / unreachable fallback. */
#include "hub/hub.h"
#include "core/clock.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/sha256.h"
#include "core/strbuf.h"
#include "format/hf.h"
#include "hub/hub_internal.h"

static _Thread_local int t_network_error;
int mp_hub_last_error_was_network(void) { return t_network_error; }

/* ------------------------------------------------------------------ settings */

static int env_true(const char *v) {
  return v && (!strcasecmp(v, "1") || !strcasecmp(v, "on") || !strcasecmp(v, "yes") || !strcasecmp(v, "true"));
}

int mp_hub_offline(void) {
  const char *v = getenv("HF_HUB_OFFLINE");
  if (v) return env_true(v);
  return env_true(getenv("TRANSFORMERS_OFFLINE"));
}

static long env_long(const char *name, long dflt) {
  const char *v = getenv(name);
  if (!v || !*v) return dflt;
  char *end;
  long x = strtol(v, &end, 10);
  return (*end || x <= 0) ? dflt : x;
}

static char *hf_home(void) {
  const char *e = getenv("HF_HOME");
  if (e && *e) return strdup(e);
  e = getenv("XDG_CACHE_HOME");
  if (e && *e) return mp_path_join(e, "huggingface");
  e = getenv("HOME");
  return mp_path_join(e && *e ? e : "/", ".cache/huggingface");
}

static char *strip_dup(const char *s) {
  while (*s && isspace((unsigned char)*s))
    s++;
  size_t n = strlen(s);
  while (n && isspace((unsigned char)s[n - 1]))
    n--;
  return n ? strndup(s, n) : NULL;
}

mp_status mp_hub_settings_load(mp_hub_settings *s) {
  memset(s, 0, sizeof *s);
  const char *e = getenv("HF_ENDPOINT");
  s->endpoint = strdup(e && *e ? e : "https://huggingface.co");
  if (!s->endpoint) return mp_err(MP_ERR_NOMEM, "out of memory");
  size_t n = strlen(s->endpoint);
  while (n && s->endpoint[n - 1] == '/')
    s->endpoint[--n] = 0;
  e = getenv("HF_TOKEN");
  if (e) s->token = strip_dup(e);
  if (!s->token && (e = getenv("HUGGING_FACE_HUB_TOKEN"))) s->token = strip_dup(e);
  if (!s->token) {
    char *path = NULL;
    e = getenv("HF_TOKEN_PATH");
    if (e && *e)
      path = strdup(e);
    else {
      char *home = hf_home();
      path = home ? mp_path_join(home, "token") : NULL;
      free(home);
    }
    char *buf = NULL;
    if (path && mp_read_file(path, &buf, NULL, 1 << 16) == MP_OK) {
      s->token = strip_dup(buf);
      free(buf);
    }
    mp_err_clear();
    free(path);
  }
  s->cache_dir = mp_hf_cache_dir();
  if (!s->cache_dir) {
    mp_hub_settings_free(s);
    return mp_err(MP_ERR_NOMEM, "out of memory");
  }
  s->offline = mp_hub_offline();
  s->etag_timeout = env_long("HF_HUB_ETAG_TIMEOUT", 10);
  s->download_timeout = env_long("HF_HUB_DOWNLOAD_TIMEOUT", 10);
  s->max_attempts = (int)env_long("MP_HUB_MAX_ATTEMPTS", 5);
  if (s->max_attempts > 100) s->max_attempts = 100;
  return MP_OK;
}

void mp_hub_settings_free(mp_hub_settings *s) {
  free(s->endpoint);
  free(s->token);
  free(s->cache_dir);
  memset(s, 0, sizeof *s);
}

/* ------------------------------------------------------------------ names and paths */

static int valid_part(const char *s, size_t n) {
  if (n == 0 || n > 96 || s[0] == '.' || s[0] == '-') return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!(isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.')) return 0;
    if (c == '.' && i + 1 < n && s[i + 1] == '.') return 0;
  }
  return 1;
}

int mp_hub_valid_repo_id(const char *id) {
  if (!id) return 0;
  const char *slash = strchr(id, '/');
  if (!slash) return valid_part(id, strlen(id));
  return valid_part(id, (size_t)(slash - id)) && !strchr(slash + 1, '/') && valid_part(slash + 1, strlen(slash + 1));
}

int mp_hub_safe_repo_path(const char *p) {
  if (!p || !*p || p[0] == '/' || strlen(p) > 4000) return 0;
  const char *c = p;
  for (;;) {
    const char *e = strchr(c, '/');
    size_t n = e ? (size_t)(e - c) : strlen(c);
    if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.')) return 0;
    for (size_t i = 0; i < n; i++)
      if ((unsigned char)c[i] < 32 || c[i] == '\\' || c[i] == 127) return 0;
    if (!e) break;
    c = e + 1;
  }
  return 1;
}

static const char *type_or_model(const char *t) { return t && *t ? t : "model"; }

char *mp_hub_repo_folder(const char *repo_type, const char *repo_id) {
  mp_sb sb;
  mp_sb_init(&sb);
  mp_sb_printf(&sb, "%ss--", type_or_model(repo_type));
  for (const char *p = repo_id; *p; p++) {
    if (*p == '/')
      mp_sb_puts(&sb, "--");
    else
      mp_sb_putc(&sb, *p);
  }
  if (sb.oom) {
    mp_sb_free(&sb);
    return NULL;
  }
  return mp_sb_steal(&sb);
}

static int is_commit_hash(const char *s) {
  if (strlen(s) != 40) return 0;
  for (int i = 0; i < 40; i++)
    if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])) return 0;
  return 1;
}

static int is_sha256_hex(const char *s) {
  if (strlen(s) != 64) return 0;
  for (int i = 0; i < 64; i++)
    if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])) return 0;
  return 1;
}

/* A git ref name usable as a file below refs/ (branches like "refs/pr/1" make folders). */
int mp_hub_valid_revision(const char *r) { return r && *r && strlen(r) < 256 && mp_hub_safe_repo_path(r); }

/* percent-encoding as Python's urllib.parse.quote (safe = "/" or none) */
static void url_quote(mp_sb *sb, const char *s, int keep_slash) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~' || (keep_slash && *p == '/'))
      mp_sb_putc(sb, (char)*p);
    else
      mp_sb_printf(sb, "%%%02X", *p);
  }
}

/* ------------------------------------------------------------------ the download job */

typedef struct hfile {
  char *path;
  int64_t size; /* from the listing (-1 unknown) */
} hfile;

typedef struct job {
  const mp_hub_request *rq;
  const mp_hub_settings *s;
  const char *type;  /* model / dataset */
  char *storage;     /* cache/<repo folder> */
  char *repo_folder; /* models--org--name */
  char *commit;
  char *snapshot;
  hfile *files;
  size_t n_files;
  /* shared between workers */
  pthread_mutex_t mu;
  size_t next;
  size_t files_done;
  int64_t bytes_done, bytes_total, bytes_fetched;
  size_t n_fetched;
  int failed;
  mp_status first_status;
  char first_error[2048];
  double last_progress;
} job;

static void progress(job *j, int64_t add_bytes, int file_done, int force) {
  pthread_mutex_lock(&j->mu);
  j->bytes_done += add_bytes;
  if (file_done) j->files_done++;
  double t = mp_now_s();
  if (j->rq->progress && (force || file_done || t - j->last_progress >= 0.1)) {
    j->last_progress = t;
    j->rq->progress(j->rq->progress_user, j->bytes_done, j->bytes_total, j->files_done, j->n_files);
  }
  pthread_mutex_unlock(&j->mu);
}

static char *resolve_url(const job *j, const char *revision, const char *path) {
  mp_sb sb;
  mp_sb_init(&sb);
  mp_sb_printf(&sb, "%s/%s%s/resolve/", j->s->endpoint, strcmp(j->type, "dataset") ? "" : "datasets/", j->rq->repo_id);
  url_quote(&sb, revision, 0);
  mp_sb_putc(&sb, '/');
  url_quote(&sb, path, 1);
  if (sb.oom) {
    mp_sb_free(&sb);
    return NULL;
  }
  return mp_sb_steal(&sb);
}

/* GET of a JSON API answer, with retries. */
static mp_status api_get_json(hh_conn *c, const job *j, const char *url, const char *revision, mp_arena *arena,
                              mp_json **out, hh_resp *r) {
  for (int attempt = 0;; attempt++) {
    hh_perform(c, "GET", url, HH_FOLLOW_ALL, c->s->etag_timeout, -1, NULL, NULL, (size_t)64 << 20, r);
    if (r->curl_code == CURLE_OK && r->status >= 200 && r->status < 300) break;
    if (attempt + 1 < c->s->max_attempts && hh_retryable(r)) {
      mp_log(MP_LOG_DEBUG, "%s: %s, retrying", url, r->curl_code ? r->curl_err : "HTTP error");
      hh_backoff(attempt, r);
      continue;
    }
    if (r->curl_code != CURLE_OK) t_network_error = 1;
    return hh_error(c, r, url, j->type, j->rq->repo_id, revision);
  }
  return mp_json_parse(r->body.buf ? r->body.buf : "", r->body.len, url, arena, out);
}

/* `<url>; rel="next"` among the comma-separated links of a Link header. */
static char *link_next(const char *link) {
  if (!link) return NULL;
  const char *p = link;
  while ((p = strchr(p, '<'))) {
    const char *e = strchr(p, '>');
    if (!e) return NULL;
    const char *params = e + 1, *end = strchr(params, ',');
    /* a URL may contain commas; the next link starts with '<' after a comma */
    while (end && end[1] && !strchr(end + 1, '<'))
      end = strchr(end + 1, ',');
    size_t plen = end ? (size_t)(end - params) : strlen(params);
    char pb[256];
    snprintf(pb, sizeof pb, "%.*s", (int)(plen < 255 ? plen : 255), params);
    if (strstr(pb, "rel=\"next\"") || strstr(pb, "rel=next")) return strndup(p + 1, (size_t)(e - p - 1));
    p = e + 1;
  }
  return NULL;
}

static int wanted(const mp_hub_request *rq, const char *path) {
  char pat[1024];
  if (rq->n_include) {
    int any = 0;
    for (size_t i = 0; i < rq->n_include && !any; i++) {
      size_t n = strlen(rq->include[i]);
      snprintf(pat, sizeof pat, "%s%s", rq->include[i], n && rq->include[i][n - 1] == '/' ? "*" : "");
      any = fnmatch(pat, path, 0) == 0;
    }
    if (!any) return 0;
  }
  for (size_t i = 0; i < rq->n_exclude; i++) {
    size_t n = strlen(rq->exclude[i]);
    snprintf(pat, sizeof pat, "%s%s", rq->exclude[i], n && rq->exclude[i][n - 1] == '/' ? "*" : "");
    if (fnmatch(pat, path, 0) == 0) return 0;
  }
  return 1;
}

static mp_status add_file(job *j, size_t *cap, const char *path, int64_t size) {
  if (j->n_files == *cap) {
    *cap = *cap ? *cap * 2 : 64;
    hfile *nf = realloc(j->files, *cap * sizeof *nf);
    if (!nf) return mp_err(MP_ERR_NOMEM, "out of memory");
    j->files = nf;
  }
  j->files[j->n_files].path = strdup(path);
  j->files[j->n_files].size = size;
  if (!j->files[j->n_files].path) return mp_err(MP_ERR_NOMEM, "out of memory");
  j->n_files++;
  return MP_OK;
}

/* Recursive tree listing at the commit, paged by Link: rel="next". Every path is checked before
 * anything is downloaded. */
static mp_status list_tree(hh_conn *c, job *j) {
  mp_sb sb;
  mp_sb_init(&sb);
  mp_sb_printf(&sb, "%s/api/%ss/%s/tree/", j->s->endpoint, j->type, j->rq->repo_id);
  url_quote(&sb, j->commit, 0);
  mp_sb_puts(&sb, "?recursive=true");
  if (sb.oom) return mp_err(MP_ERR_NOMEM, "out of memory");
  char *url = mp_sb_steal(&sb);
  size_t cap = 0;
  mp_status st = MP_OK;
  hh_resp r = {0};
  for (int page = 0; url && !st; page++) {
    if (page >= 100000) {
      st = mp_err(MP_ERR_FORMAT, "%s: more than 100000 pages in a tree listing", url);
      break;
    }
    mp_arena a;
    mp_arena_init(&a, 0);
    mp_json *arr = NULL;
    st = api_get_json(c, j, url, j->commit, &a, &arr, &r);
    if (!st && arr->type != MP_JSON_ARRAY) st = mp_err(MP_ERR_FORMAT, "%s: tree listing is not a JSON array", url);
    for (size_t i = 0; !st && i < arr->len; i++) {
      const mp_json *e = arr->items[i];
      const char *t = mp_json_get_str(e, "type", NULL), *p = mp_json_get_str(e, "path", NULL);
      if (!t || !p) {
        st = mp_err(MP_ERR_FORMAT, "%s: tree entry %zu has no \"type\" or \"path\"", url, i);
        break;
      }
      if (!mp_hub_safe_repo_path(p)) {
        st = mp_err(MP_ERR_SECURITY,
                    "%s: refusing the tree listing: entry '%.200s' is not a safe relative path (absolute, '..', '.' "
                    "or empty parts); nothing was downloaded",
                    url, p);
        break;
      }
      if (!strcmp(t, "directory")) continue;
      if (strcmp(t, "file") != 0) {
        st = mp_err(
            MP_ERR_SECURITY,
            "%s: refusing the tree listing: entry '%.200s' has type '%.40s' (only files and folders are downloaded)",
            url, p, t);
        break;
      }
      if (!wanted(j->rq, p)) continue;
      const mp_json *lfs = mp_json_get(e, "lfs");
      int64_t size = lfs ? mp_json_get_int(lfs, "size", -1) : mp_json_get_int(e, "size", -1);
      st = add_file(j, &cap, p, size);
    }
    char *next = st ? NULL : link_next(r.h[HH_LINK]);
    char *abs_next = next ? hh_resolve_url(url, next) : NULL;
    free(next);
    free(url);
    url = abs_next;
    mp_arena_free(&a);
  }
  free(url);
  hh_resp_free(&r);
  return st;
}

/* ------------------------------------------------------------------ cache files */

static mp_status mkdirs_parent(const char *path) {
  char *d = mp_path_dirname(path);
  if (!d) return mp_err(MP_ERR_NOMEM, "out of memory");
  mp_status st = mp_mkdirs(d);
  free(d);
  return st;
}

/* Writes a small file by a temporary file in tmp_dir (the cache's .locks/, which scan_cache_dir
 * skips) + rename: nothing half-written ever appears in refs/ (scan_cache_dir reads every file
 * there as a ref). */
static mp_status write_small_atomic(const char *tmp_dir, const char *path, const char *text) {
  MP_TRY(mkdirs_parent(path));
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s/.mlxport-tmp-%ld-%lx", tmp_dir, (long)getpid(), (unsigned long)pthread_self());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return mp_err_errno(MP_ERR_IO, "%s: cannot create", tmp);
  size_t n = strlen(text);
  int ok = write(fd, text, n) == (ssize_t)n && fsync(fd) == 0;
  ok = (close(fd) == 0) && ok;
  if (!ok || rename(tmp, path) != 0) {
    mp_status st = mp_err_errno(MP_ERR_IO, "%s: cannot write", path);
    unlink(tmp);
    return st;
  }
  return MP_OK;
}

/* refs/<revision> = commit, when the revision is a branch or tag (as huggingface_hub does). */
static mp_status cache_ref(const job *j, const char *revision, const char *commit) {
  if (!strcmp(revision, commit)) return MP_OK;
  char *ref = NULL;
  mp_sb sb;
  mp_sb_init(&sb);
  mp_sb_printf(&sb, "%s/refs/%s", j->storage, revision);
  ref = mp_sb_steal(&sb);
  if (!ref) return mp_err(MP_ERR_NOMEM, "out of memory");
  char *cur = NULL;
  mp_status st = MP_OK;
  if (mp_read_file(ref, &cur, NULL, 4096) == MP_OK && !strcmp(cur, commit)) {
  } else {
    mp_err_clear();
    char *locks = mp_path_join(j->s->cache_dir, ".locks");
    st = locks ? mp_mkdirs(locks) : mp_err(MP_ERR_NOMEM, "out of memory");
    if (!st) st = write_small_atomic(locks, ref, commit);
    free(locks);
  }
  free(cur);
  free(ref);
  return st;
}

static int lock_take(const char *path) {
  if (mkdirs_parent(path) != MP_OK) return -1;
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    mp_err_errno(MP_ERR_IO, "%s: cannot open the lock file", path);
    return -1;
  }
  while (flock(fd, LOCK_EX) != 0) {
    if (errno != EINTR) {
      mp_err_errno(MP_ERR_IO, "%s: flock failed", path);
      close(fd);
      return -1;
    }
  }
  return fd;
}

static void lock_release(int fd) {
  if (fd < 0) return;
  flock(fd, LOCK_UN);
  close(fd);
}

/* Refuses when a folder between the snapshot and the file is a symlink (or not a folder). */
static mp_status check_no_symlink_parents(const char *snapshot, const char *rel) {
  char buf[4200];
  size_t sl = strlen(snapshot);
  if (sl + strlen(rel) + 2 >= sizeof buf) return mp_err(MP_ERR_INVALID_ARG, "%s/%s: path too long", snapshot, rel);
  memcpy(buf, snapshot, sl);
  buf[sl] = '/';
  strcpy(buf + sl + 1, rel);
  for (char *p = buf + sl + 1; (p = strchr(p, '/')); p++) {
    *p = 0;
    struct stat st;
    if (lstat(buf, &st) == 0 && !S_ISDIR(st.st_mode)) {
      *p = '/';
      return mp_err(MP_ERR_SECURITY, "%s: refusing to write through '%s', which is a symlink or a file", buf, rel);
    }
    *p = '/';
  }
  return MP_OK;
}

/* snapshots/<commit>/<path> -> ../../blobs/<etag> (relative, as huggingface_hub makes it). */
static mp_status make_pointer(const char *pointer, const char *path_in_repo, const char *etag) {
  MP_TRY(mkdirs_parent(pointer));
  mp_sb sb;
  mp_sb_init(&sb);
  for (const char *p = path_in_repo; *p; p++)
    if (*p == '/') mp_sb_puts(&sb, "../");
  mp_sb_printf(&sb, "../../blobs/%s", etag);
  if (sb.oom) return mp_err(MP_ERR_NOMEM, "out of memory");
  mp_status st = MP_OK;
  if (symlink(sb.buf, pointer) != 0) {
    if (errno == EEXIST) { /* made by another process meanwhile: keep it if it is the same link */
      char cur[4200];
      ssize_t n = readlink(pointer, cur, sizeof cur - 1);
      if (n < 0 || (size_t)n != sb.len || memcmp(cur, sb.buf, sb.len) != 0) {
        unlink(pointer);
        if (symlink(sb.buf, pointer) != 0) st = mp_err_errno(MP_ERR_IO, "%s: cannot create the symlink", pointer);
      }
    } else {
      st = mp_err_errno(MP_ERR_IO, "%s: cannot create the symlink", pointer);
    }
  }
  mp_sb_free(&sb);
  return st;
}

/* The repo folder appears whole: a new one is made as <cache>/.locks/<tmp>/snapshots/<commit>
 * and renamed into place, so a kill at any moment never leaves a repo folder without snapshots/
 * (which scan_cache_dir reports as corrupted); leftovers stay in .locks/, which it skips. */
static mp_status ensure_repo_folder(job *j) {
  char *snaps = mp_path_join(j->storage, "snapshots");
  if (!snaps) return mp_err(MP_ERR_NOMEM, "out of memory");
  int have = mp_is_dir(snaps) || mp_is_dir(j->storage);
  free(snaps);
  if (!have) {
    mp_sb sb;
    mp_sb_init(&sb);
    mp_sb_printf(&sb, "%s/.locks/.mlxport-new-%ld-%lx", j->s->cache_dir, (long)getpid(), (unsigned long)pthread_self());
    char *tmp = mp_sb_steal(&sb);
    mp_sb_printf(&sb, "%s/snapshots/%s", tmp ? tmp : "", j->commit);
    char *tmp_snap = mp_sb_steal(&sb);
    mp_status st = tmp && tmp_snap ? mp_mkdirs(tmp_snap) : mp_err(MP_ERR_NOMEM, "out of memory");
    if (!st && rename(tmp, j->storage) != 0) {
      int e = errno;
      mp_remove_tree(tmp); /* EEXIST/ENOTEMPTY: another process made it first */
      mp_err_clear();
      if (e != EEXIST && e != ENOTEMPTY) {
        errno = e;
        st = mp_err_errno(MP_ERR_IO, "%s: cannot create", j->storage);
      }
    }
    if (!st) mp_fsync_dir(j->s->cache_dir);
    free(tmp);
    free(tmp_snap);
    if (st) return st;
  }
  return mp_mkdirs(j->snapshot);
}

/* ------------------------------------------------------------------ one file */

typedef struct dl_state {
  job *j;
  int fd;
  int64_t have, expected;
  int verify;
  mp_sha256 sha;
  int started; /* first body byte of this response seen */
  int bad_range, over;
  int io_errno;
  char *buf; /* libcurl hands over 16 KiB at a time: written in 1 MiB blocks */
  size_t buf_len;
} dl_state;

#define DL_BUF (1u << 20)

static int flush_buf(dl_state *d) {
  size_t off = 0;
  while (off < d->buf_len) {
    ssize_t w = write(d->fd, d->buf + off, d->buf_len - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      d->io_errno = errno;
      return 0;
    }
    off += (size_t)w;
  }
  d->buf_len = 0;
  return 1;
}

static int restart_file(dl_state *d) {
  d->buf_len = 0;
  if (ftruncate(d->fd, 0) != 0 || lseek(d->fd, 0, SEEK_SET) != 0) {
    d->io_errno = errno;
    return 0;
  }
  progress(d->j, -d->have, 0, 0);
  d->have = 0;
  mp_sha256_init(&d->sha);
  return 1;
}

static int dl_sink(void *user, const char *data, size_t n, const hh_resp *r) {
  dl_state *d = user;
  if (!d->started) {
    d->started = 1;
    if (r->status == 206) {
      const char *cr = r->h[HH_CONTENT_RANGE];
      long long start = -1;
      if (!cr || sscanf(cr, "bytes %lld-", &start) != 1 || start != d->have) {
        d->bad_range = 1;
        return 0;
      }
    } else if (d->have > 0) { /* 200 to a Range request: the server sends the whole file again */
      if (!restart_file(d)) return 0;
    }
  }
  if (d->have + (int64_t)n > d->expected) {
    d->over = 1;
    return 0;
  }
  if (d->buf_len + n > DL_BUF && !flush_buf(d)) return 0;
  if (n > DL_BUF) { /* never with libcurl's 16 KiB pieces; kept correct anyway (buffer flushed above) */
    size_t off = 0;
    while (off < n) {
      ssize_t w = write(d->fd, data + off, n - off);
      if (w < 0) {
        if (errno == EINTR) continue;
        d->io_errno = errno;
        return 0;
      }
      off += (size_t)w;
    }
  } else {
    memcpy(d->buf + d->buf_len, data, n);
    d->buf_len += n;
  }
  if (d->verify) mp_sha256_update(&d->sha, data, n);
  d->have += (int64_t)n;
  progress(d->j, (int64_t)n, 0, 0);
  return 1;
}

/* Downloads `location` into `incomplete` (resuming what is there), checks size and sha256, and
 * renames it to `blob`. The caller holds the blob's lock. */
static mp_status download_blob(hh_conn *c, job *j, const char *location, const char *incomplete, const char *blob,
                               int64_t expected, const char *etag) {
  dl_state d = {0};
  d.j = j;
  d.expected = expected;
  d.verify = is_sha256_hex(etag);
  mp_sha256_init(&d.sha);
  d.buf = malloc(DL_BUF);
  if (!d.buf) return mp_err(MP_ERR_NOMEM, "out of memory");
  d.fd = open(incomplete, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (d.fd < 0) {
    free(d.buf);
    return mp_err_errno(MP_ERR_IO, "%s: cannot create", incomplete);
  }
  mp_status st = MP_OK;
  struct stat sb;
  if (fstat(d.fd, &sb) != 0) {
    st = mp_err_errno(MP_ERR_IO, "%s: cannot stat", incomplete);
    goto out;
  }
  d.have = sb.st_size;
  if (d.have > expected) {
    if (!restart_file(&d)) {
      st = mp_err_errno(MP_ERR_IO, "%s: cannot truncate", incomplete);
      goto out;
    }
  } else if (d.have > 0) { /* resume: hash what an earlier run wrote */
    if (d.verify) {
      char buf[1 << 16];
      int64_t left = d.have;
      if (lseek(d.fd, 0, SEEK_SET) != 0) left = -1;
      while (left > 0) {
        ssize_t n = read(d.fd, buf, left < (int64_t)sizeof buf ? (size_t)left : sizeof buf);
        if (n <= 0) break;
        mp_sha256_update(&d.sha, buf, (size_t)n);
        left -= n;
      }
      if (left != 0) {
        st = mp_err_errno(MP_ERR_IO, "%s: cannot read the partial download", incomplete);
        goto out;
      }
    }
    if (lseek(d.fd, 0, SEEK_END) != d.have) {
      st = mp_err_errno(MP_ERR_IO, "%s: cannot seek", incomplete);
      goto out;
    }
    progress(j, d.have, 0, 0);
    mp_log(MP_LOG_DEBUG, "%s: resuming at byte %lld", incomplete, (long long)d.have);
  }
  hh_resp r = {0};
  int attempt = 0;
  while (d.have < expected) {
    d.started = 0;
    hh_perform(c, "GET", location, HH_FOLLOW_ALL, j->s->download_timeout, d.have, dl_sink, &d, 0, &r);
    if (!d.io_errno) flush_buf(&d); /* the file holds exactly d.have bytes from here on */
    if (d.io_errno) {
      errno = d.io_errno;
      st = mp_err_errno(MP_ERR_IO, "%s: write failed", incomplete);
      break;
    }
    if (d.over) {
      st = mp_err(MP_ERR_FORMAT,
                  "%s: the server sent more than the %lld bytes it announced (X-Linked-Size/Content-Length); the "
                  "partial file was removed",
                  r.url ? r.url : location, (long long)expected);
      unlink(incomplete);
      break;
    }
    if (d.bad_range) {
      st = mp_err(MP_ERR_FORMAT, "%s: answer to 'Range: bytes=%lld-' starts elsewhere (Content-Range: %s)",
                  r.url ? r.url : location, (long long)d.have, r.h[HH_CONTENT_RANGE] ? r.h[HH_CONTENT_RANGE] : "none");
      break;
    }
    int ok_reply = r.curl_code == CURLE_OK && r.status >= 200 && r.status < 300;
    if (ok_reply && d.have == expected) break;
    int transient;
    char why[400];
    if (r.status == 416 && r.curl_code == CURLE_OK) { /* our partial file does not fit the server's: restart */
      if (!restart_file(&d)) {
        st = mp_err_errno(MP_ERR_IO, "%s: cannot truncate", incomplete);
        break;
      }
      transient = 1;
      snprintf(why, sizeof why, "HTTP 416 to a Range request");
    } else if (ok_reply) {
      transient = 1;
      snprintf(why, sizeof why, "body ended after %lld of %lld bytes", (long long)d.have, (long long)expected);
    } else {
      transient = hh_retryable(&r);
      snprintf(why, sizeof why, "%s", r.curl_code ? r.curl_err : "HTTP error");
    }
    if (!transient || attempt + 1 >= j->s->max_attempts) {
      if (ok_reply || r.status == 416) {
        st = mp_err(MP_ERR_FORMAT,
                    "%s: size mismatch after %d attempts: %s (the server announced %lld bytes); the partial file was "
                    "removed",
                    r.url ? r.url : location, attempt + 1, why, (long long)expected);
        unlink(incomplete);
      } else {
        if (r.curl_code != CURLE_OK) t_network_error = 1;
        st = hh_error(c, &r, r.url ? r.url : location, j->type, j->rq->repo_id, j->commit);
        if (r.curl_code != CURLE_OK)
          mp_err_prefix(st, "after %d attempts (%lld of %lld bytes kept in %s; run again to resume)", attempt + 1,
                        (long long)d.have, (long long)expected, incomplete);
      }
      break;
    }
    mp_log(MP_LOG_DEBUG, "%s: %s; retrying from byte %lld", location, why, (long long)d.have);
    hh_backoff(attempt, &r);
    attempt++;
  }
  hh_resp_free(&r);
  if (st) goto out;
  if (d.verify) {
    uint8_t dig[32];
    char hex[65];
    mp_sha256_final(&d.sha, dig);
    for (int i = 0; i < 32; i++)
      snprintf(hex + 2 * i, 3, "%02x", dig[i]);
    if (strcmp(hex, etag) != 0) {
      st = mp_err(MP_ERR_FORMAT,
                  "%s: content does not match its etag: sha256 %s, expected %s; the download was removed, run again "
                  "(if it persists the server is serving a corrupt file)",
                  location, hex, etag);
      unlink(incomplete);
      goto out;
    }
  }
  if (fsync(d.fd) != 0) {
    st = mp_err_errno(MP_ERR_IO, "%s: fsync failed", incomplete);
    goto out;
  }
  if (rename(incomplete, blob) != 0) {
    st = mp_err_errno(MP_ERR_IO, "%s: cannot rename to %s", incomplete, blob);
    goto out;
  }
  {
    char *dir = mp_path_dirname(blob);
    if (dir) mp_fsync_dir(dir);
    free(dir);
  }
out:
  if (d.fd >= 0) close(d.fd);
  free(d.buf);
  return st;
}

static char *strip_etag(const char *e) {
  if (!e) return NULL;
  if (!strncmp(e, "W/", 2)) e += 2;
  size_t n = strlen(e);
  while (n && *e == '"')
    e++, n--;
  while (n && e[n - 1] == '"')
    n--;
  return strndup(e, n);
}

static int safe_etag(const char *e) {
  size_t n = strlen(e);
  if (n == 0 || n > 200 || e[0] == '.') return 0;
  for (size_t i = 0; i < n; i++)
    if (!(isalnum((unsigned char)e[i]) || e[i] == '-' || e[i] == '_' || e[i] == '.')) return 0;
  return 1;
}

static mp_status fetch_one(hh_conn *c, job *j, const hfile *f) {
  char *pointer = mp_path_join(j->snapshot, f->path);
  char *url = resolve_url(j, j->commit, f->path);
  char *etag = NULL, *location = NULL, *blob = NULL, *incomplete = NULL, *lockp = NULL;
  hh_resp r = {0};
  mp_status st = MP_OK;
  int lock_fd = -1;
  if (!pointer || !url) {
    st = mp_err(MP_ERR_NOMEM, "out of memory");
    goto out;
  }
  if ((st = check_no_symlink_parents(j->snapshot, f->path))) goto out;
  struct stat sb;
  if (!j->rq->force && stat(pointer, &sb) == 0 && S_ISREG(sb.st_mode)) { /* already in this snapshot */
    progress(j, sb.st_size, 1, 0);
    goto out;
  }
  /* HEAD: metadata (only relative redirects are followed, the Location is where the bytes are) */
  for (int attempt = 0;; attempt++) {
    hh_perform(c, "HEAD", url, HH_FOLLOW_RELATIVE, j->s->etag_timeout, -1, NULL, NULL, 0, &r);
    if (r.curl_code == CURLE_OK && r.status >= 200 && r.status < 400) break;
    if (attempt + 1 < j->s->max_attempts && hh_retryable(&r)) {
      hh_backoff(attempt, &r);
      continue;
    }
    if (r.curl_code != CURLE_OK) t_network_error = 1;
    if (r.curl_code == CURLE_OK && r.h[HH_ERROR_CODE] && !strcmp(r.h[HH_ERROR_CODE], "EntryNotFound")) {
      const char *commit = r.h[HH_REPO_COMMIT] && is_commit_hash(r.h[HH_REPO_COMMIT]) ? r.h[HH_REPO_COMMIT] : j->commit;
      mp_sb p;
      mp_sb_init(&p);
      mp_sb_printf(&p, "%s/.no_exist/%s/%s", j->storage, commit, f->path);
      if (!p.oom && mkdirs_parent(p.buf) == MP_OK) {
        int fd = open(p.buf, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd >= 0) close(fd);
      }
      mp_sb_free(&p);
    }
    st = hh_error(c, &r, url, j->type, j->rq->repo_id, j->commit);
    goto out;
  }
  const char *commit = r.h[HH_REPO_COMMIT];
  if (!commit || strcmp(commit, j->commit) != 0) {
    st = mp_err(MP_ERR_FORMAT, "%s: the server answered for commit '%s', expected %s (X-Repo-Commit)", url,
                commit ? commit : "(none)", j->commit);
    goto out;
  }
  etag = strip_etag(r.h[HH_LINKED_ETAG] ? r.h[HH_LINKED_ETAG] : r.h[HH_ETAG]);
  if (!etag || !safe_etag(etag)) {
    st = mp_err(MP_ERR_SECURITY, "%s: missing or unusable etag '%s' (X-Linked-Etag/ETag)", url, etag ? etag : "");
    goto out;
  }
  const char *size_s = r.h[HH_LINKED_SIZE] ? r.h[HH_LINKED_SIZE] : r.h[HH_CONTENT_LENGTH];
  char *end = NULL;
  long long size = size_s ? strtoll(size_s, &end, 10) : -1;
  if (!size_s || *end || size < 0) {
    st = mp_err(MP_ERR_FORMAT, "%s: missing or bad file size '%s' (X-Linked-Size/Content-Length)", url,
                size_s ? size_s : "");
    goto out;
  }
  location = r.h[HH_LOCATION] ? hh_resolve_url(r.url, r.h[HH_LOCATION]) : strdup(r.url);
  mp_sb p;
  mp_sb_init(&p);
  mp_sb_printf(&p, "%s/blobs/%s", j->storage, etag);
  blob = mp_sb_steal(&p);
  mp_sb_printf(&p, "%s.incomplete", blob ? blob : "");
  incomplete = mp_sb_steal(&p);
  mp_sb_printf(&p, "%s/.locks/%s/%s.lock", j->s->cache_dir, j->repo_folder, etag);
  lockp = mp_sb_steal(&p);
  if (!location || !blob || !incomplete || !lockp) {
    st = mp_err(MP_ERR_NOMEM, "out of memory");
    goto out;
  }
  if ((st = mkdirs_parent(blob)) || (st = mkdirs_parent(pointer))) goto out;
  if ((lock_fd = lock_take(lockp)) < 0) {
    st = MP_ERR_IO;
    goto out;
  }
  int fetched = 0;
  if (j->rq->force) unlink(incomplete); /* --force-download: from byte 0, then renamed over the blob */
  if (j->rq->force || !mp_is_file(blob)) {
    if ((st = download_blob(c, j, location, incomplete, blob, size, etag))) goto out;
    fetched = 1;
  } else {
    progress(j, size, 0, 0);
  }
  if ((st = make_pointer(pointer, f->path, etag))) goto out;
  pthread_mutex_lock(&j->mu);
  if (fetched) {
    j->n_fetched++;
    j->bytes_fetched += size;
  }
  pthread_mutex_unlock(&j->mu);
  progress(j, 0, 1, 0);
out:
  lock_release(lock_fd);
  hh_resp_free(&r);
  free(pointer);
  free(url);
  free(etag);
  free(location);
  free(blob);
  free(incomplete);
  free(lockp);
  return st;
}

static void *worker_main(void *arg) {
  job *j = arg;
  hh_conn c;
  mp_status st = hh_init(&c, j->s);
  for (;;) {
    pthread_mutex_lock(&j->mu);
    size_t i = j->next < j->n_files && !j->failed ? j->next++ : (size_t)-1;
    pthread_mutex_unlock(&j->mu);
    if (i == (size_t)-1) break;
    if (!st) st = fetch_one(&c, j, &j->files[i]);
    if (st) {
      pthread_mutex_lock(&j->mu);
      if (!j->failed) {
        j->failed = 1;
        j->first_status = st;
        snprintf(j->first_error, sizeof j->first_error, "%s", mp_last_error());
      }
      pthread_mutex_unlock(&j->mu);
      break;
    }
  }
  if (c.curl) hh_free(&c);
  return NULL;
}

/* ------------------------------------------------------------------ cache-only answer */

char *mp_hub_cached_snapshot(const char *storage, const char *revision, char **commit_out) {
  *commit_out = NULL;
  if (!mp_hub_valid_revision(revision)) return NULL;
  char *commit = NULL;
  mp_sb sb;
  mp_sb_init(&sb);
  mp_sb_printf(&sb, "%s/refs/%s", storage, revision);
  char *buf = NULL;
  if (!sb.oom && mp_read_file(sb.buf, &buf, NULL, 4096) == MP_OK) {
    size_t n = strlen(buf);
    while (n && isspace((unsigned char)buf[n - 1]))
      buf[--n] = 0;
    commit = buf;
  } else {
    commit = strdup(revision); /* a commit given directly */
  }
  mp_err_clear();
  mp_sb_free(&sb);
  if (!commit || !mp_hub_safe_repo_path(commit) || strchr(commit, '/')) {
    free(commit);
    return NULL;
  }
  mp_sb_printf(&sb, "%s/snapshots/%s", storage, commit);
  char *snap = mp_sb_steal(&sb);
  if (!snap || !mp_is_dir(snap)) {
    free(snap);
    free(commit);
    return NULL;
  }
  *commit_out = commit;
  return snap;
}

static mp_status use_cache(job *j, const char *revision, const char *why, mp_hub_result *out) {
  char *commit = NULL;
  char *snap = mp_hub_cached_snapshot(j->storage, revision, &commit);
  if (!snap)
    return mp_err(MP_ERR_NOT_FOUND, "%s '%s' revision '%s' is not in the cache (%s) and %s", j->type, j->rq->repo_id,
                  revision, j->storage, why);
  for (size_t i = 0; i < j->rq->n_files; i++) {
    char *p = mp_path_join(snap, j->rq->files[i]);
    int ok = p && mp_is_file(p);
    free(p);
    if (!ok) {
      mp_status st = mp_err(MP_ERR_NOT_FOUND, "%s/%s: not in the cache and %s", snap, j->rq->files[i], why);
      free(snap);
      free(commit);
      return st;
    }
  }
  out->path = snap;
  out->commit = commit;
  out->n_files = j->rq->n_files;
  out->used_cache_only = 1;
  return MP_OK;
}

/* ------------------------------------------------------------------ local_dir copy */

static mp_status copy_to_local_dir(const job *j, const char *local_dir) {
  for (size_t i = 0; i < j->n_files; i++) {
    const char *rel = j->files[i].path;
    char *src = mp_path_join(j->snapshot, rel), *dst = mp_path_join(local_dir, rel);
    mp_sb sb;
    mp_sb_init(&sb);
    mp_sb_printf(&sb, "%s/.cache/huggingface/download/%s.metadata", local_dir, rel);
    char *meta = mp_sb_steal(&sb);
    mp_status st = (!src || !dst || !meta) ? mp_err(MP_ERR_NOMEM, "out of memory") : MP_OK;
    char link[4200] = "";
    if (!st) {
      ssize_t n = readlink(src, link, sizeof link - 1);
      link[n > 0 ? n : 0] = 0;
      st = check_no_symlink_parents(local_dir, rel);
    }
    if (!st) st = mkdirs_parent(dst);
    if (!st) st = mp_copy_file(src, dst);
    if (!st) {
      char text[600];
      snprintf(text, sizeof text, "%s\n%s\n%.6f\n", j->commit, mp_path_basename(link), (double)time(NULL));
      st = mkdirs_parent(meta);
      if (!st) st = mp_write_file_atomic(meta, text, strlen(text));
    }
    free(src);
    free(dst);
    free(meta);
    if (st) return st;
  }
  char *gi = mp_path_join(local_dir, ".cache/huggingface/.gitignore");
  if (gi && !mp_is_file(gi)) mp_write_file_atomic(gi, "*", 1);
  mp_err_clear();
  free(gi);
  return MP_OK;
}

/* ------------------------------------------------------------------ entry point */

void mp_hub_result_free(mp_hub_result *r) {
  free(r->path);
  free(r->commit);
  memset(r, 0, sizeof *r);
}

static void job_free(job *j) {
  for (size_t i = 0; i < j->n_files; i++)
    free(j->files[i].path);
  free(j->files);
  free(j->storage);
  free(j->repo_folder);
  free(j->commit);
  free(j->snapshot);
  pthread_mutex_destroy(&j->mu);
}

mp_status mp_hub_download(const mp_hub_request *rq, mp_hub_result *out) {
  memset(out, 0, sizeof *out);
  t_network_error = 0;
  const char *type = type_or_model(rq->repo_type);
  const char *revision = rq->revision && *rq->revision ? rq->revision : "main";
  if (strcmp(type, "model") && strcmp(type, "dataset"))
    return mp_err(MP_ERR_INVALID_ARG, "repo type '%s': expected model or dataset", type);
  if (!mp_hub_valid_repo_id(rq->repo_id))
    return mp_err(MP_ERR_INVALID_ARG, "'%s' is not a Hugging Face repo id (org/name of letters, digits, '-', '_', '.')",
                  rq->repo_id ? rq->repo_id : "");
  if (!mp_hub_valid_revision(revision)) return mp_err(MP_ERR_INVALID_ARG, "revision '%s' is not usable", revision);
  for (size_t i = 0; i < rq->n_files; i++)
    if (!mp_hub_safe_repo_path(rq->files[i]))
      return mp_err(MP_ERR_SECURITY, "'%s' is not a safe path inside a repo (absolute, '..', '.' or empty parts)",
                    rq->files[i]);
  mp_hub_settings s;
  MP_TRY(mp_hub_settings_load(&s));
  job j;
  memset(&j, 0, sizeof j);
  pthread_mutex_init(&j.mu, NULL);
  j.rq = rq;
  j.s = &s;
  j.type = type;
  j.repo_folder = mp_hub_repo_folder(type, rq->repo_id);
  j.storage = j.repo_folder ? mp_path_join(s.cache_dir, j.repo_folder) : NULL;
  mp_status st = MP_OK;
  hh_conn c = {0};
  mp_arena a;
  mp_arena_init(&a, 0);
  if (!j.storage) {
    st = mp_err(MP_ERR_NOMEM, "out of memory");
    goto out;
  }
  if (s.offline) {
    st = use_cache(&j, revision, "HF_HUB_OFFLINE is set (unset it to download)", out);
    goto out;
  }
  if ((st = hh_init(&c, &s))) goto out;
  /* revision -> commit */
  {
    mp_sb sb;
    mp_sb_init(&sb);
    mp_sb_printf(&sb, "%s/api/%ss/%s/revision/", s.endpoint, type, rq->repo_id);
    url_quote(&sb, revision, 0);
    char *url = mp_sb_steal(&sb);
    hh_resp r = {0};
    mp_json *info = NULL;
    st = url ? api_get_json(&c, &j, url, revision, &a, &info, &r) : mp_err(MP_ERR_NOMEM, "out of memory");
    if (st && t_network_error) { /* unreachable: the cache may have it (huggingface_hub does the same) */
      char msg[2048];
      snprintf(msg, sizeof msg, "%s", mp_last_error());
      char why[2200];
      snprintf(why, sizeof why, "the Hub is unreachable: %s", msg);
      mp_status st2 = use_cache(&j, revision, why, out);
      if (!st2) {
        mp_log(MP_LOG_WARN, "%s; using the cached snapshot %s", msg, out->path);
        st = MP_OK;
      } else {
        t_network_error = 1;
        st = st2;
      }
      hh_resp_free(&r);
      free(url);
      goto out;
    }
    const char *sha = st ? NULL : mp_json_get_str(info, "sha", NULL);
    if (!st && (!sha || !is_commit_hash(sha)))
      st = mp_err(MP_ERR_FORMAT, "%s: the answer has no 40-hex \"sha\" (commit)", url);
    if (!st && !(j.commit = strdup(sha))) st = mp_err(MP_ERR_NOMEM, "out of memory");
    hh_resp_free(&r);
    free(url);
    if (st) goto out;
  }
  {
    mp_sb sb;
    mp_sb_init(&sb);
    mp_sb_printf(&sb, "%s/snapshots/%s", j.storage, j.commit);
    j.snapshot = mp_sb_steal(&sb);
    if (!j.snapshot) {
      st = mp_err(MP_ERR_NOMEM, "out of memory");
      goto out;
    }
  }
  /* the file list: explicit files, or the tree listing (checked whole before any write) */
  if (rq->n_files) {
    size_t cap = 0;
    for (size_t i = 0; i < rq->n_files && !st; i++)
      st = add_file(&j, &cap, rq->files[i], -1);
  } else {
    st = list_tree(&c, &j);
  }
  if (st) goto out;
  if ((st = ensure_repo_folder(&j))) goto out;
  if ((st = cache_ref(&j, revision, j.commit))) goto out;
  for (size_t i = 0; i < j.n_files; i++)
    j.bytes_total += j.files[i].size > 0 ? j.files[i].size : 0;
  hh_free(&c);
  {
    int nw = rq->workers > 0 ? rq->workers : 8;
    if ((size_t)nw > j.n_files) nw = (int)j.n_files;
    pthread_t th[64];
    if (nw > 64) nw = 64;
    int started = 0;
    for (int i = 0; i < nw; i++)
      if (pthread_create(&th[i], NULL, worker_main, &j) == 0)
        started++;
      else
        break;
    if (nw > 0 && started == 0) worker_main(&j);
    for (int i = 0; i < started; i++)
      pthread_join(th[i], NULL);
  }
  progress(&j, 0, 0, 1);
  if (j.failed) {
    st = mp_err(j.first_status, "%s", j.first_error);
    goto out;
  }
  if (rq->local_dir) {
    if ((st = mp_mkdirs(rq->local_dir)) || (st = copy_to_local_dir(&j, rq->local_dir))) goto out;
    out->path = strdup(rq->local_dir);
  } else {
    out->path = j.snapshot;
    j.snapshot = NULL;
  }
  out->commit = j.commit;
  j.commit = NULL;
  out->n_files = j.n_files;
  out->n_downloaded = j.n_fetched;
  out->bytes_downloaded = j.bytes_fetched;
out:
  if (c.curl) hh_free(&c);
  mp_arena_free(&a);
  job_free(&j);
  mp_hub_settings_free(&s);
  if (st) mp_hub_result_free(out);
  return st;
}
