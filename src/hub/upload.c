/* Hub uploads: folder scan and hashing, repo creation, preupload, the Git LFS batch API (basic
 * and multipart transfers, verify), the confirmation that every LFS object is stored, and the
 * NDJSON commit with parentCommit. Shares the HTTP layer of the download side (hub_http.c:
 * settings, token only to the endpoint's origin, retries with Retry-After). See upload.h. */
#include "hub/upload.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/sha1.h"
#include "core/sha256.h"
#include "core/str.h"
#include "hub/hub_internal.h"

#define LFS_CT "application/vnd.git-lfs+json"
#define PREUPLOAD_CHUNK 256
#define BATCH_CHUNK 100

/* ------------------------------------------------------------------ small helpers */

void mp_base64(mp_sb *sb, const unsigned char *d, size_t n) {
  static const char tb[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
    char q[4] = {tb[v >> 18], tb[(v >> 12) & 63], tb[(v >> 6) & 63], tb[v & 63]};
    mp_sb_append(sb, q, 4);
  }
  if (n - i == 1) {
    uint32_t v = (uint32_t)d[i] << 16;
    char q[4] = {tb[v >> 18], tb[(v >> 12) & 63], '=', '='};
    mp_sb_append(sb, q, 4);
  } else if (n - i == 2) {
    uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8;
    char q[4] = {tb[v >> 18], tb[(v >> 12) & 63], tb[(v >> 6) & 63], '='};
    mp_sb_append(sb, q, 4);
  }
}

static void quote(mp_sb *sb, const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~')
      mp_sb_putc(sb, (char)*p);
    else
      mp_sb_printf(sb, "%%%02X", *p);
  }
}

static int is_hex(const char *s, size_t n) {
  if (!s || strlen(s) != n) return 0;
  for (size_t i = 0; i < n; i++)
    if (!isxdigit((unsigned char)s[i])) return 0;
  return 1;
}

int mp_up_local_lfs_rule(const char *path, int64_t size) {
  static const char *const sfx[] = {".safetensors", ".bin",  ".pt",      ".pth",   ".ckpt", ".h5",
                                    ".msgpack",     ".onnx", ".parquet", ".arrow", ".npz",  ".npy",
                                    ".gguf",        ".zip",  ".tar",     ".gz",    ".model"};
  for (size_t i = 0; i < sizeof sfx / sizeof *sfx; i++)
    if (mp_str_ends_with(path, sfx[i])) return 1;
  return size >= 10 * 1000 * 1000;
}

/* ------------------------------------------------------------------ folder scan */

typedef struct scan {
  mp_up_file *f;
  size_t n, cap;
} scan;

static mp_status hash_file(mp_up_file *f) {
  int fd = open(f->local, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return mp_err_errno(MP_ERR_IO, "%s: cannot open", f->local);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    close(fd);
    return mp_err_errno(MP_ERR_IO, "%s: cannot stat", f->local);
  }
  f->size = st.st_size;
  mp_sha256 s2;
  mp_sha1 s1;
  mp_sha256_init(&s2);
  mp_sha1_init(&s1);
  char hdr[40];
  int k = snprintf(hdr, sizeof hdr, "blob %lld", (long long)f->size);
  mp_sha1_update(&s1, hdr, (size_t)k + 1);
  size_t cap = 1 << 20;
  unsigned char *buf = malloc(cap);
  if (!buf) {
    close(fd);
    return mp_err(MP_ERR_NOMEM, "out of memory");
  }
  int64_t total = 0;
  mp_status s = MP_OK;
  for (;;) {
    ssize_t got = read(fd, buf, cap);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      s = mp_err_errno(MP_ERR_IO, "%s: read failed", f->local);
      break;
    }
    if (got == 0) break;
    if (total < (int64_t)sizeof f->sample) {
      size_t take = (size_t)got < sizeof f->sample - (size_t)total ? (size_t)got : sizeof f->sample - (size_t)total;
      memcpy(f->sample + total, buf, take);
      f->sample_len = (size_t)total + take;
    }
    mp_sha256_update(&s2, buf, (size_t)got);
    mp_sha1_update(&s1, buf, (size_t)got);
    total += got;
  }
  free(buf);
  close(fd);
  if (s) return s;
  if (total != f->size)
    return mp_err(MP_ERR_IO, "%s: changed while being read (%lld of %lld bytes)", f->local, (long long)total,
                  (long long)f->size);
  uint8_t d[32];
  mp_sha256_final(&s2, d);
  for (int i = 0; i < 32; i++)
    snprintf(f->sha256 + 2 * i, 3, "%02x", d[i]);
  uint8_t d1[20];
  mp_sha1_final(&s1, d1);
  for (int i = 0; i < 20; i++)
    snprintf(f->git_oid + 2 * i, 3, "%02x", d1[i]);
  return MP_OK;
}

static mp_status walk(scan *sc, const char *root, const char *rel, int depth) {
  if (depth > 64) return mp_err(MP_ERR_UNSUPPORTED, "%s/%s: folders nested deeper than 64 levels", root, rel);
  char *dir = *rel ? mp_path_join(root, rel) : strdup(root);
  if (!dir) return mp_err(MP_ERR_NOMEM, "out of memory");
  DIR *d = opendir(dir);
  if (!d) {
    mp_status s = mp_err_errno(MP_ERR_IO, "%s: cannot list", dir);
    free(dir);
    return s;
  }
  mp_status s = MP_OK;
  struct dirent *e;
  while (!s && (e = readdir(d))) {
    const char *nm = e->d_name;
    if (!strcmp(nm, ".") || !strcmp(nm, "..") || !strcmp(nm, ".git")) continue;
    if (!*rel && !strcmp(nm, ".cache")) continue; /* .cache/huggingface/ download metadata */
    if (nm[0] == '.' && strstr(nm, ".tmp-")) {    /* a leftover of an interrupted atomic write (core/fs.c) */
      mp_log(MP_LOG_WARN,
             "%s/%s%s%s: skipped (a temporary file left by an interrupted write; `mlxport clean` "
             "removes such files)",
             root, rel, *rel ? "/" : "", nm);
      continue;
    }
    mp_sb p;
    mp_sb_init(&p);
    mp_sb_printf(&p, "%s%s%s", rel, *rel ? "/" : "", nm);
    char *relp = mp_sb_steal(&p);
    char *full = relp ? mp_path_join(root, relp) : NULL;
    struct stat st;
    if (!relp || !full)
      s = mp_err(MP_ERR_NOMEM, "out of memory");
    else if (stat(full, &st) != 0)
      s = mp_err_errno(MP_ERR_IO, "%s: cannot stat (a dangling symlink?)", full);
    else if (S_ISDIR(st.st_mode))
      s = walk(sc, root, relp, depth + 1);
    else if (S_ISREG(st.st_mode)) {
      if (!mp_hub_safe_repo_path(relp))
        s = mp_err(MP_ERR_INVALID_ARG, "%s: the name cannot be a path inside a repo (control characters or '\\')",
                   full);
      else if (sc->n == sc->cap) {
        sc->cap = sc->cap ? sc->cap * 2 : 32;
        mp_up_file *nf = realloc(sc->f, sc->cap * sizeof *nf);
        if (!nf)
          s = mp_err(MP_ERR_NOMEM, "out of memory");
        else
          sc->f = nf;
      }
      if (!s) {
        mp_up_file *f = &sc->f[sc->n++];
        memset(f, 0, sizeof *f);
        f->path = relp;
        f->local = full;
        relp = full = NULL;
      }
    }
    free(relp);
    free(full);
  }
  closedir(d);
  free(dir);
  return s;
}

static int cmp_file(const void *a, const void *b) {
  return strcmp(((const mp_up_file *)a)->path, ((const mp_up_file *)b)->path);
}

void mp_up_files_free(mp_up_file *f, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(f[i].path);
    free(f[i].local);
  }
  free(f);
}

mp_status mp_up_scan_folder(const char *folder, mp_up_file **files, size_t *n) {
  *files = NULL;
  *n = 0;
  if (!mp_is_dir(folder)) return mp_err(MP_ERR_NOT_FOUND, "%s: not a folder", folder);
  scan sc = {0};
  mp_status s = walk(&sc, folder, "", 0);
  if (!s && sc.n == 0) s = mp_err(MP_ERR_INVALID_ARG, "%s: no files to upload", folder);
  if (!s) qsort(sc.f, sc.n, sizeof *sc.f, cmp_file);
  for (size_t i = 0; !s && i < sc.n; i++)
    s = hash_file(&sc.f[i]);
  if (s) {
    mp_up_files_free(sc.f, sc.n);
    return s;
  }
  *files = sc.f;
  *n = sc.n;
  return MP_OK;
}

/* ------------------------------------------------------------------ answers (untrusted) */

mp_status mp_up_parse_preupload(const char *body, size_t n, const char *url, mp_up_file *files, size_t nf) {
  mp_arena a;
  mp_arena_init(&a, 0);
  mp_json *j = NULL;
  mp_status s = mp_json_parse(body ? body : "", n, url, &a, &j);
  const mp_json *arr = s ? NULL : mp_json_get(j, "files");
  if (!s && (!arr || arr->type != MP_JSON_ARRAY))
    s = mp_err(MP_ERR_FORMAT, "%s: the preupload answer has no \"files\" array", url);
  char *seen = s ? NULL : calloc(nf ? nf : 1, 1);
  if (!s && !seen) s = mp_err(MP_ERR_NOMEM, "out of memory");
  for (size_t i = 0; !s && i < arr->len; i++) {
    const mp_json *e = arr->items[i];
    const char *p = mp_json_get_str(e, "path", NULL), *mode = mp_json_get_str(e, "uploadMode", NULL);
    if (!p || !mode) {
      s = mp_err(MP_ERR_FORMAT, "%s: preupload entry %zu has no \"path\" or \"uploadMode\"", url, i);
      break;
    }
    size_t k = 0;
    while (k < nf && strcmp(files[k].path, p) != 0)
      k++;
    if (k == nf) {
      s = mp_err(MP_ERR_FORMAT, "%s: preupload answered for '%.200s', a file that was not asked about", url, p);
      break;
    }
    if (seen[k]++) {
      s = mp_err(MP_ERR_FORMAT, "%s: preupload answered twice for '%.200s'", url, p);
      break;
    }
    if (!strcmp(mode, "lfs"))
      files[k].lfs = 1;
    else if (!strcmp(mode, "regular"))
      files[k].lfs = 0;
    else {
      s = mp_err(MP_ERR_UNSUPPORTED,
                 "%s: upload mode '%.40s' for '%.200s' (mlxport sends \"lfs\" and \"regular\"; a "
                 "Xet-only repo is not supported)",
                 url, mode, p);
      break;
    }
    const mp_json *ign = mp_json_get(e, "shouldIgnore");
    files[k].ignored = ign && ign->type == MP_JSON_BOOL && ign->boolean;
    const char *oid = mp_json_get_str(e, "oid", NULL);
    files[k].remote_oid[0] = 0;
    if (oid && (is_hex(oid, 40) || is_hex(oid, 64)))
      snprintf(files[k].remote_oid, sizeof files[k].remote_oid, "%s", oid);
  }
  for (size_t k = 0; !s && k < nf; k++)
    if (!seen[k]) s = mp_err(MP_ERR_FORMAT, "%s: preupload did not answer for '%.200s'", url, files[k].path);
  free(seen);
  mp_arena_free(&a);
  return s;
}

void mp_up_actions_free(mp_up_action *a, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(a[i].href);
    free(a[i].verify);
    for (size_t k = 0; k < a[i].n_parts; k++)
      free(a[i].parts[k]);
    free(a[i].parts);
    a[i].href = a[i].verify = NULL;
    a[i].parts = NULL;
    a[i].n_parts = 0;
  }
}

static int http_url(const char *u) { return u && (!strncmp(u, "http://", 7) || !strncmp(u, "https://", 8)); }

static mp_status parse_action(const mp_json *o, const char *url, mp_up_action *act) {
  const mp_json *actions = mp_json_get(o, "actions");
  if (!actions || actions->type == MP_JSON_NULL) return MP_OK; /* already stored */
  if (actions->type != MP_JSON_OBJECT)
    return mp_err(MP_ERR_FORMAT, "%s: object %s: \"actions\" is not an object", url, act->oid);
  const mp_json *up = mp_json_get(actions, "upload"), *ver = mp_json_get(actions, "verify");
  if (ver) {
    const char *h = mp_json_get_str(ver, "href", NULL);
    if (!http_url(h))
      return mp_err(MP_ERR_FORMAT, "%s: object %s: verify action without an http(s) \"href\"", url, act->oid);
    if (!(act->verify = strdup(h))) return mp_err(MP_ERR_NOMEM, "out of memory");
  }
  if (!up) return MP_OK; /* only verify: stored */
  const char *href = mp_json_get_str(up, "href", NULL);
  if (!http_url(href))
    return mp_err(MP_ERR_FORMAT, "%s: object %s: upload action without an http(s) \"href\"", url, act->oid);
  act->upload = 1;
  if (!(act->href = strdup(href))) return mp_err(MP_ERR_NOMEM, "out of memory");
  const mp_json *hd = mp_json_get(up, "header");
  if (!hd || hd->type == MP_JSON_NULL) return MP_OK;
  if (hd->type != MP_JSON_OBJECT)
    return mp_err(MP_ERR_FORMAT, "%s: object %s: upload \"header\" is not an object", url, act->oid);
  const mp_json *cs = mp_json_get(hd, "chunk_size");
  if (!cs) return MP_OK; /* basic */
  int64_t chunk = -1;
  if (cs->type == MP_JSON_NUMBER && cs->is_int)
    chunk = cs->i;
  else if (cs->type == MP_JSON_STRING) {
    char *end;
    long long v = strtoll(cs->str, &end, 10);
    if (end != cs->str && !*end) chunk = v;
  }
  if (chunk <= 0)
    return mp_err(MP_ERR_FORMAT, "%s: object %s: \"chunk_size\" is not a positive integer", url, act->oid);
  /* size / chunk rounded up without forming size + chunk (chunk may be near INT64_MAX) */
  int64_t want = act->size / chunk + (act->size % chunk != 0);
  if (want > 100000)
    return mp_err(MP_ERR_FORMAT, "%s: object %s: %lld parts are too many", url, act->oid, (long long)want);
  act->chunk_size = chunk;
  act->parts = calloc((size_t)(want ? want : 1), sizeof *act->parts);
  if (!act->parts) return mp_err(MP_ERR_NOMEM, "out of memory");
  act->n_parts = (size_t)want;
  size_t got = 0;
  for (size_t i = 0; i < hd->len; i++) {
    const char *k = hd->keys[i];
    if (!*k || strspn(k, "0123456789") != strlen(k)) continue;
    long long num = strtoll(k, NULL, 10);
    const mp_json *v = hd->items[i];
    if (num < 1 || num > want || strlen(k) > 12)
      return mp_err(MP_ERR_FORMAT, "%s: object %s: part '%.20s' outside 1..%lld (size %lld, chunk %lld)", url, act->oid,
                    k, (long long)want, (long long)act->size, (long long)chunk);
    if (v->type != MP_JSON_STRING || !http_url(v->str))
      return mp_err(MP_ERR_FORMAT, "%s: object %s: part %lld has no http(s) URL", url, act->oid, num);
    if (act->parts[num - 1]) return mp_err(MP_ERR_FORMAT, "%s: object %s: part %lld given twice", url, act->oid, num);
    if (!(act->parts[num - 1] = strdup(v->str))) return mp_err(MP_ERR_NOMEM, "out of memory");
    got++;
  }
  if ((int64_t)got != want)
    return mp_err(MP_ERR_FORMAT, "%s: object %s: %zu part URLs for %lld parts of %lld bytes", url, act->oid, got,
                  (long long)want, (long long)chunk);
  return MP_OK;
}

mp_status mp_up_parse_batch(const char *body, size_t n, const char *url, mp_up_action *acts, size_t na) {
  mp_arena a;
  mp_arena_init(&a, 0);
  mp_json *j = NULL;
  mp_status s = mp_json_parse(body ? body : "", n, url, &a, &j);
  const mp_json *objs = s ? NULL : mp_json_get(j, "objects");
  if (!s && (!objs || objs->type != MP_JSON_ARRAY))
    s = mp_err(MP_ERR_FORMAT, "%s: the LFS batch answer has no \"objects\" array", url);
  const char *tr = s ? NULL : mp_json_get_str(j, "transfer", NULL);
  if (!s && tr && strcmp(tr, "basic") && strcmp(tr, "multipart"))
    s = mp_err(MP_ERR_UNSUPPORTED, "%s: LFS transfer '%.40s' (mlxport speaks basic and multipart)", url, tr);
  for (size_t i = 0; !s && i < objs->len; i++) {
    const mp_json *o = objs->items[i];
    const char *oid = mp_json_get_str(o, "oid", NULL);
    int64_t size = mp_json_get_int(o, "size", -1);
    if (!oid) {
      s = mp_err(MP_ERR_FORMAT, "%s: LFS batch object %zu has no \"oid\"", url, i);
      break;
    }
    size_t k = 0;
    while (k < na && (strcmp(acts[k].oid, oid) != 0 || acts[k].answered))
      k++;
    if (k == na) {
      s = mp_err(MP_ERR_FORMAT, "%s: LFS batch answered for object '%.80s' that was not asked for (or twice)", url,
                 oid);
      break;
    }
    mp_up_action *act = &acts[k];
    act->answered = 1;
    if (size != act->size) {
      s = mp_err(MP_ERR_FORMAT, "%s: LFS object %s: size %lld, expected %lld", url, oid, (long long)size,
                 (long long)act->size);
      break;
    }
    const mp_json *err = mp_json_get(o, "error");
    if (err && err->type != MP_JSON_NULL) {
      s = mp_err(MP_ERR_IO, "%s: the server refuses LFS object %s (%lld bytes): error %lld: %.300s", url, oid,
                 (long long)size, (long long)mp_json_get_int(err, "code", 0), mp_json_get_str(err, "message", "?"));
      break;
    }
    s = parse_action(o, url, act);
  }
  for (size_t k = 0; !s && k < na; k++)
    if (!acts[k].answered) s = mp_err(MP_ERR_FORMAT, "%s: the LFS batch answer leaves out object %s", url, acts[k].oid);
  mp_arena_free(&a);
  return s;
}

/* ------------------------------------------------------------------ commit payload */

void mp_up_commit_ndjson(mp_sb *sb, const char *summary, const char *description, const char *parent,
                         const mp_up_commit_op *ops, size_t n) {
  mp_sb_puts(sb, "{\"key\": \"header\", \"value\": {\"summary\": ");
  mp_sb_json_str(sb, summary, strlen(summary));
  mp_sb_puts(sb, ", \"description\": ");
  mp_sb_json_str(sb, description ? description : "", description ? strlen(description) : 0);
  if (parent && *parent) {
    mp_sb_puts(sb, ", \"parentCommit\": ");
    mp_sb_json_str(sb, parent, strlen(parent));
  }
  mp_sb_puts(sb, "}}\n");
  for (size_t i = 0; i < n; i++) {
    const mp_up_commit_op *o = &ops[i];
    if (o->lfs) {
      mp_sb_puts(sb, "{\"key\": \"lfsFile\", \"value\": {\"path\": ");
      mp_sb_json_str(sb, o->path, strlen(o->path));
      mp_sb_printf(sb, ", \"algo\": \"sha256\", \"oid\": \"%s\", \"size\": %lld}}\n", o->oid, (long long)o->size);
    } else {
      mp_sb_puts(sb, "{\"key\": \"file\", \"value\": {\"content\": \"");
      mp_base64(sb, o->data, o->len);
      mp_sb_puts(sb, "\", \"path\": ");
      mp_sb_json_str(sb, o->path, strlen(o->path));
      mp_sb_puts(sb, ", \"encoding\": \"base64\"}}\n");
    }
  }
}

/* ------------------------------------------------------------------ errors */

mp_status mp_up_http_error(long status, const char *code, const char *message, const char *url, const char *what,
                           const char *repo_id, int have_token) {
  const char *m = message && *message ? message : "";
  const char *sep = *m ? ": " : "";
  if (status == 401)
    return mp_err(MP_ERR_SECURITY,
                  "%s: %s: not authorized (HTTP 401)%s%s. The token is %s; set HF_TOKEN (or --token) to a token with "
                  "write access (huggingface.co/settings/tokens)",
                  url, what, sep, m, have_token ? "invalid or expired" : "missing");
  if (status == 403)
    return mp_err(
        MP_ERR_SECURITY,
        "%s: %s: forbidden (HTTP 403)%s%s. The token cannot write to '%s' (a read-only token, or not a member "
        "of the organization); use a write token of an account that owns the repo",
        url, what, sep, m, repo_id);
  if (status == 404)
    return mp_err(MP_ERR_NOT_FOUND,
                  "%s: %s: not found (HTTP 404%s%s)%s%s. Check the repo id and that the token can see it", url, what,
                  code ? ", " : "", code ? code : "", sep, m);
  if (status == 409)
    return mp_err(MP_ERR_IO,
                  "%s: %s: conflict (HTTP 409)%s%s. The branch moved while uploading (its head is no longer the parent "
                  "commit this upload was based on); nothing was committed. Run the upload again: it commits on top "
                  "of the new head and does not send the LFS files again",
                  url, what, sep, m);
  if (status == 413)
    return mp_err(MP_ERR_UNSUPPORTED,
                  "%s: %s: too large (HTTP 413)%s%s. The server refuses the request size: regular (non-LFS) files "
                  "must stay below 10 MB (larger ones go through LFS), and very large commits must be split",
                  url, what, sep, m);
  if (status == 422 || status == 400)
    return mp_err(MP_ERR_FORMAT, "%s: %s: the server rejected the request (HTTP %ld)%s%s", url, what, status, sep, m);
  return mp_err(MP_ERR_IO, "%s: %s: HTTP %ld%s%s", url, what, status, sep, m);
}

/* ------------------------------------------------------------------ the upload */

typedef struct up {
  const mp_hub_upload_request *rq;
  mp_hub_settings s;
  hh_conn c;
  const char *type, *rev;
  mp_hub_upload_result *out;
  int64_t bytes_total, bytes_base, bytes_cur;
  size_t files_total, files_done;
  double last_tick;
  int last_attempts; /* attempts the last request() made */
  long last_status;  /* its last HTTP status */
} up;

static const char *resp_message(const hh_resp *r, char *buf, size_t cap) {
  if (r->h[HH_ERROR_MESSAGE]) return r->h[HH_ERROR_MESSAGE];
  size_t j = 0;
  /* the Hub's JSON errors: {"error": "..."}; else the start of the body */
  const char *b = r->body.buf ? r->body.buf : "";
  const char *e = strstr(b, "\"error\"");
  if (e) {
    const char *q = strchr(e + 7, '"');
    if (q) b = q + 1;
  }
  for (size_t i = 0; b[i] && j + 1 < cap && i < 400; i++) {
    if (e && b[i] == '"') break;
    unsigned char ch = (unsigned char)b[i];
    buf[j++] = (ch < 32 || ch == 127) ? ' ' : (char)ch;
  }
  buf[j] = 0;
  return buf;
}

static mp_status fail(up *u, const hh_resp *r, const char *url, const char *what) {
  if (r->curl_code != CURLE_OK) {
    mp_status s = hh_error(&u->c, r, url, u->type, u->rq->repo_id, u->rev);
    return mp_err_prefix(s, "%s", what);
  }
  char b[420];
  return mp_up_http_error(r->status, r->h[HH_ERROR_CODE], resp_message(r, b, sizeof b), url, what, u->rq->repo_id,
                          u->s.token != NULL);
}

static void on_sent(void *user, int64_t sent) {
  up *u = user;
  u->bytes_cur = sent;
  double t = mp_now_s();
  if (u->rq->progress && t - u->last_tick >= 0.1) {
    u->last_tick = t;
    u->rq->progress(u->rq->progress_user, u->bytes_base + sent, u->bytes_total, u->files_done, u->files_total);
  }
}

/* One request with retries (408/429/5xx, broken connections) as the download side does. `ok`
 * lists extra statuses that are answers, not errors (e.g. 409 for repo creation). */
static mp_status request(up *u, const char *method, const char *url, const hh_body *body, const char *what,
                         long ok_status, hh_resp *r) {
  /* a request with a body waits longer for its answer: the server may check the whole upload or
   * commit before answering (huggingface_hub sets no timeout there at all) */
  long body_timeout = u->s.download_timeout > u->s.etag_timeout ? u->s.download_timeout : u->s.etag_timeout;
  if (body_timeout < 60) body_timeout = 60;
  for (int attempt = 0;; attempt++) {
    u->last_attempts = attempt + 1;
    if (body)
      hh_perform_body(&u->c, method, url, body, body_timeout, (size_t)16 << 20, r);
    else
      hh_perform(&u->c, method, url, HH_FOLLOW_ALL, u->s.etag_timeout, -1, NULL, NULL, (size_t)16 << 20, r);
    u->last_status = r->curl_code == CURLE_OK ? r->status : 0;
    if (r->curl_code == CURLE_OK && ((r->status >= 200 && r->status < 300) || r->status == ok_status)) return MP_OK;
    if (attempt + 1 < u->s.max_attempts && hh_retryable(r)) {
      mp_log(MP_LOG_WARN, "%s: %s (%s); retrying (%d of %d)", url, what,
             r->curl_code ? r->curl_err : (r->status == 429 ? "HTTP 429" : "server error"), attempt + 2,
             u->s.max_attempts);
      hh_backoff(attempt, r);
      continue;
    }
    return fail(u, r, url, what);
  }
}

static char *api_url(const up *u, const char *what, int with_rev) {
  mp_sb sb;
  mp_sb_init(&sb);
  mp_sb_printf(&sb, "%s/api/%ss/%s/%s", u->s.endpoint, u->type, u->rq->repo_id, what);
  if (with_rev) {
    mp_sb_putc(&sb, '/');
    quote(&sb, u->rev);
  }
  if (sb.oom) {
    mp_sb_free(&sb);
    return NULL;
  }
  return mp_sb_steal(&sb);
}

static mp_status json_body(const hh_resp *r, const char *url, mp_arena *a, mp_json **j) {
  return mp_json_parse(r->body.buf ? r->body.buf : "", r->body.len, url, a, j);
}

static mp_status create_repo(up *u) {
  mp_sb b, url;
  mp_sb_init(&b);
  mp_sb_init(&url);
  const char *id = u->rq->repo_id, *slash = strchr(id, '/');
  mp_sb_puts(&b, "{\"name\": ");
  mp_sb_json_str(&b, slash ? slash + 1 : id, strlen(slash ? slash + 1 : id));
  mp_sb_puts(&b, ", \"organization\": ");
  if (slash)
    mp_sb_json_str(&b, id, (size_t)(slash - id));
  else
    mp_sb_puts(&b, "null");
  mp_sb_printf(&b, ", \"private\": %s", u->rq->private_ ? "true" : "false");
  if (strcmp(u->type, "model")) mp_sb_printf(&b, ", \"type\": \"%s\"", u->type);
  mp_sb_puts(&b, "}");
  mp_sb_printf(&url, "%s/api/repos/create", u->s.endpoint);
  hh_resp r = {0};
  hh_body body = {b.buf, b.len, -1, 0, 0, "application/json", NULL, NULL, NULL};
  mp_status s = (b.oom || url.oom) ? mp_err(MP_ERR_NOMEM, "out of memory")
                                   : request(u, "POST", url.buf, &body, "creating the repo", 409, &r);
  if (!s) {
    u->out->created_repo = r.status != 409;
    u->out->repo_existed = r.status == 409;
  }
  hh_resp_free(&r);
  mp_sb_free(&b);
  mp_sb_free(&url);
  return s;
}

/* The head of the revision; *missing = 1 (no error) when the repo or revision does not exist. */
static mp_status head_commit(up *u, char **sha, int *missing_repo, int *missing_rev) {
  *sha = NULL;
  *missing_repo = *missing_rev = 0;
  char *url = api_url(u, "revision", 1);
  if (!url) return mp_err(MP_ERR_NOMEM, "out of memory");
  hh_resp r = {0};
  mp_status s = MP_OK;
  for (int attempt = 0;; attempt++) {
    hh_perform(&u->c, "GET", url, HH_FOLLOW_ALL, u->s.etag_timeout, -1, NULL, NULL, (size_t)16 << 20, &r);
    if (r.curl_code == CURLE_OK && r.status >= 200 && r.status < 300) break;
    if (attempt + 1 < u->s.max_attempts && hh_retryable(&r)) {
      hh_backoff(attempt, &r);
      continue;
    }
    const char *code = r.h[HH_ERROR_CODE];
    if (r.curl_code == CURLE_OK && code && !strcmp(code, "RevisionNotFound"))
      *missing_rev = 1;
    else if (r.curl_code == CURLE_OK && (r.status == 404 || (code && !strcmp(code, "RepoNotFound"))))
      *missing_repo = 1;
    else
      s = fail(u, &r, url, "reading the branch head");
    goto out;
  }
  {
    mp_arena a;
    mp_arena_init(&a, 0);
    mp_json *j = NULL;
    s = json_body(&r, url, &a, &j);
    const char *h = s ? NULL : mp_json_get_str(j, "sha", NULL);
    if (!s && !is_hex(h, 40)) s = mp_err(MP_ERR_FORMAT, "%s: the answer has no 40-hex \"sha\" (the branch head)", url);
    if (!s && !(*sha = strdup(h))) s = mp_err(MP_ERR_NOMEM, "out of memory");
    mp_arena_free(&a);
  }
out:
  hh_resp_free(&r);
  free(url);
  return s;
}

static mp_status create_branch(up *u) {
  char *url = api_url(u, "branch", 1);
  if (!url) return mp_err(MP_ERR_NOMEM, "out of memory");
  hh_resp r = {0};
  hh_body body = {"{}", 2, -1, 0, 0, "application/json", NULL, NULL, NULL};
  mp_status s = request(u, "POST", url, &body, "creating the branch", 409, &r);
  hh_resp_free(&r);
  free(url);
  return s;
}

static mp_status preupload(up *u, mp_up_file *f, size_t n) {
  char *base = api_url(u, "preupload", 1);
  if (!base) return mp_err(MP_ERR_NOMEM, "out of memory");
  mp_sb url;
  mp_sb_init(&url);
  mp_sb_printf(&url, "%s%s", base, u->rq->create_pr ? "?create_pr=1" : "");
  free(base);
  mp_status s = MP_OK;
  for (size_t at = 0; !s && at < n; at += PREUPLOAD_CHUNK) {
    size_t k = n - at < PREUPLOAD_CHUNK ? n - at : PREUPLOAD_CHUNK;
    mp_sb b;
    mp_sb_init(&b);
    mp_sb_puts(&b, "{\"files\": [");
    for (size_t i = 0; i < k; i++) {
      const mp_up_file *x = &f[at + i];
      mp_sb_puts(&b, i ? ", {\"path\": " : "{\"path\": ");
      mp_sb_json_str(&b, x->path, strlen(x->path));
      mp_sb_puts(&b, ", \"sample\": \"");
      mp_base64(&b, x->sample, x->sample_len);
      mp_sb_printf(&b, "\", \"size\": %lld}", (long long)x->size);
    }
    mp_sb_puts(&b, "]}");
    hh_resp r = {0};
    hh_body body = {b.buf, b.len, -1, 0, 0, "application/json", NULL, NULL, NULL};
    s = (b.oom || url.oom) ? mp_err(MP_ERR_NOMEM, "out of memory")
                           : request(u, "POST", url.buf, &body, "asking which files go through LFS (preupload)", 0, &r);
    if (!s) s = mp_up_parse_preupload(r.body.buf, r.body.len, url.buf, f + at, k);
    hh_resp_free(&r);
    mp_sb_free(&b);
  }
  mp_sb_free(&url);
  return s;
}

static char *batch_url(const up *u) {
  mp_sb sb;
  mp_sb_init(&sb);
  mp_sb_printf(&sb, "%s/%s%s.git/info/lfs/objects/batch", u->s.endpoint,
               strcmp(u->type, "model") ? (strcmp(u->type, "dataset") ? "spaces/" : "datasets/") : "", u->rq->repo_id);
  if (sb.oom) {
    mp_sb_free(&sb);
    return NULL;
  }
  return mp_sb_steal(&sb);
}

static mp_status batch(up *u, mp_up_action *acts, size_t n) {
  char *url = batch_url(u);
  if (!url) return mp_err(MP_ERR_NOMEM, "out of memory");
  mp_status s = MP_OK;
  for (size_t at = 0; !s && at < n; at += BATCH_CHUNK) {
    size_t k = n - at < BATCH_CHUNK ? n - at : BATCH_CHUNK;
    mp_sb b;
    mp_sb_init(&b);
    mp_sb_puts(&b, "{\"operation\": \"upload\", \"transfers\": [\"basic\", \"multipart\"], \"objects\": [");
    for (size_t i = 0; i < k; i++)
      mp_sb_printf(&b, "%s{\"oid\": \"%s\", \"size\": %lld}", i ? ", " : "", acts[at + i].oid,
                   (long long)acts[at + i].size);
    mp_sb_puts(&b, "], \"hash_algo\": \"sha256\", \"ref\": {\"name\": ");
    mp_sb_json_str(&b, u->rev, strlen(u->rev));
    mp_sb_puts(&b, "}}");
    hh_resp r = {0};
    hh_body body = {b.buf, b.len, -1, 0, 0, LFS_CT, LFS_CT, NULL, NULL};
    s = b.oom ? mp_err(MP_ERR_NOMEM, "out of memory") : request(u, "POST", url, &body, "LFS batch", 0, &r);
    if (!s) s = mp_up_parse_batch(r.body.buf, r.body.len, url, acts + at, k);
    hh_resp_free(&r);
    mp_sb_free(&b);
  }
  free(url);
  return s;
}

static mp_status put_range(up *u, const char *url, int fd, int64_t off, int64_t len, const char *what, char **etag) {
  hh_resp r = {0};
  hh_body body = {NULL, 0, fd, off, len, NULL, NULL, on_sent, u};
  mp_status s = request(u, "PUT", url, &body, what, 0, &r);
  if (!s && etag) {
    const char *e = r.h[HH_ETAG];
    if (!e || !*e)
      s = mp_err(MP_ERR_FORMAT, "%s: %s: the answer has no ETag (needed to complete the multipart upload)", url, what);
    else if (!(*etag = strdup(e)))
      s = mp_err(MP_ERR_NOMEM, "out of memory");
  }
  hh_resp_free(&r);
  return s;
}

static mp_status upload_object(up *u, const mp_up_file *f, const mp_up_action *act) {
  int fd = open(f->local, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return mp_err_errno(MP_ERR_IO, "%s: cannot open", f->local);
  char what[300];
  snprintf(what, sizeof what, "uploading %s (LFS %.12s)", f->path, f->sha256);
  mp_status s = MP_OK;
  if (!act->chunk_size) {
    s = put_range(u, act->href, fd, 0, f->size, what, NULL);
    u->bytes_base += f->size;
  } else {
    char **etags = calloc(act->n_parts ? act->n_parts : 1, sizeof *etags);
    if (!etags) s = mp_err(MP_ERR_NOMEM, "out of memory");
    for (size_t p = 0; !s && p < act->n_parts; p++) {
      int64_t off = (int64_t)p * act->chunk_size;
      int64_t len = f->size - off < act->chunk_size ? f->size - off : act->chunk_size;
      char pw[400];
      snprintf(pw, sizeof pw, "%s, part %zu of %zu", what, p + 1, act->n_parts);
      s = put_range(u, act->parts[p], fd, off, len, pw, &etags[p]);
      u->bytes_base += len;
    }
    if (!s) { /* completion: the parts' ETags, in order */
      mp_sb b;
      mp_sb_init(&b);
      mp_sb_printf(&b, "{\"oid\": \"%s\", \"parts\": [", f->sha256);
      for (size_t p = 0; p < act->n_parts; p++) {
        mp_sb_printf(&b, "%s{\"partNumber\": %zu, \"etag\": ", p ? ", " : "", p + 1);
        mp_sb_json_str(&b, etags[p], strlen(etags[p]));
        mp_sb_puts(&b, "}");
      }
      mp_sb_puts(&b, "]}");
      hh_resp r = {0};
      hh_body body = {b.buf, b.len, -1, 0, 0, LFS_CT, LFS_CT, NULL, NULL};
      snprintf(what, sizeof what, "completing the multipart upload of %s", f->path);
      s = b.oom ? mp_err(MP_ERR_NOMEM, "out of memory") : request(u, "POST", act->href, &body, what, 0, &r);
      hh_resp_free(&r);
      mp_sb_free(&b);
    }
    for (size_t p = 0; etags && p < act->n_parts; p++)
      free(etags[p]);
    free(etags);
  }
  close(fd);
  u->bytes_cur = 0;
  if (!s && act->verify) {
    mp_sb b;
    mp_sb_init(&b);
    mp_sb_printf(&b, "{\"oid\": \"%s\", \"size\": %lld}", f->sha256, (long long)f->size);
    hh_resp r = {0};
    hh_body body = {b.buf, b.len, -1, 0, 0, LFS_CT, LFS_CT, NULL, NULL};
    snprintf(what, sizeof what, "verifying the LFS upload of %s", f->path);
    s = b.oom ? mp_err(MP_ERR_NOMEM, "out of memory") : request(u, "POST", act->verify, &body, what, 0, &r);
    hh_resp_free(&r);
    mp_sb_free(&b);
  }
  return s;
}

/* Distinct LFS objects of the changed files (two paths may share one object). */
static mp_status lfs_objects(const mp_up_file *f, size_t n, mp_up_action **acts, size_t **owner, size_t *na) {
  *acts = calloc(n ? n : 1, sizeof **acts);
  *owner = calloc(n ? n : 1, sizeof **owner);
  *na = 0;
  if (!*acts || !*owner) return mp_err(MP_ERR_NOMEM, "out of memory");
  for (size_t i = 0; i < n; i++) {
    if (!f[i].changed || !f[i].lfs || f[i].ignored) continue;
    size_t k = 0;
    while (k < *na && strcmp((*acts)[k].oid, f[i].sha256))
      k++;
    if (k < *na) continue;
    (*acts)[*na].oid = f[i].sha256;
    (*acts)[*na].size = f[i].size;
    (*owner)[*na] = i;
    (*na)++;
  }
  return MP_OK;
}

static mp_status send_lfs(up *u) {
  mp_hub_upload_result *o = u->out;
  mp_up_action *acts = NULL;
  size_t *owner = NULL, na = 0;
  mp_status s = lfs_objects(o->files, o->n_files, &acts, &owner, &na);
  if (!s && na) s = batch(u, acts, na);
  for (size_t k = 0; !s && k < na; k++) {
    if (acts[k].upload)
      u->bytes_total += acts[k].size, u->files_total++;
    else
      o->n_lfs_present++, o->files[owner[k]].on_server = 1;
  }
  for (size_t k = 0; !s && k < na; k++) {
    if (!acts[k].upload) continue;
    mp_up_file *f = &o->files[owner[k]];
    mp_log(MP_LOG_DEBUG, "%s: uploading %lld bytes (%s)", f->path, (long long)f->size,
           acts[k].chunk_size ? "multipart" : "basic");
    s = upload_object(u, f, &acts[k]);
    if (!s) {
      f->uploaded = 1;
      o->n_lfs_uploaded++;
      o->bytes_uploaded += f->size;
      u->files_done++;
      if (u->rq->progress)
        u->rq->progress(u->rq->progress_user, u->bytes_base, u->bytes_total, u->files_done, u->files_total);
    }
  }
  /* confirmation: the server must now hold every object the commit will name */
  if (!s && na) {
    mp_up_actions_free(acts, na);
    for (size_t k = 0; k < na; k++)
      acts[k].answered = acts[k].upload = 0, acts[k].chunk_size = 0;
    s = batch(u, acts, na);
    for (size_t k = 0; !s && k < na; k++)
      if (acts[k].upload)
        s = mp_err(MP_ERR_IO,
                   "the server does not confirm LFS object %s (%s) after its upload; nothing was committed. Run the "
                   "upload again",
                   acts[k].oid, o->files[owner[k]].path);
  }
  mp_up_actions_free(acts, na);
  free(acts);
  free(owner);
  return s;
}

static mp_status commit(up *u) {
  mp_hub_upload_result *o = u->out;
  mp_up_commit_op *ops = calloc(o->n_files ? o->n_files : 1, sizeof *ops);
  char **bufs = calloc(o->n_files ? o->n_files : 1, sizeof *bufs);
  size_t nops = 0;
  mp_status s = (!ops || !bufs) ? mp_err(MP_ERR_NOMEM, "out of memory") : MP_OK;
  for (size_t i = 0; !s && i < o->n_files; i++) {
    mp_up_file *f = &o->files[i];
    if (!f->changed || f->ignored) continue;
    mp_up_commit_op *op = &ops[nops++];
    op->path = f->path;
    op->lfs = f->lfs;
    op->oid = f->sha256;
    op->size = f->size;
    if (!f->lfs) {
      size_t len = 0;
      s = mp_read_file(f->local, &bufs[i], &len, (size_t)1 << 30);
      if (!s && (int64_t)len != f->size)
        s = mp_err(MP_ERR_IO, "%s: changed during the upload (%zu bytes, %lld when hashed); run again", f->local, len,
                   (long long)f->size);
      char oid[41];
      if (!s) {
        mp_git_blob_oid(bufs[i], len, oid);
        if (strcmp(oid, f->git_oid)) s = mp_err(MP_ERR_IO, "%s: changed during the upload; run again", f->local);
      }
      op->data = (const unsigned char *)bufs[i];
      op->len = len;
    }
  }
  mp_sb body, url;
  mp_sb_init(&body);
  mp_sb_init(&url);
  if (!s) {
    const char *msg =
        u->rq->commit_message && *u->rq->commit_message ? u->rq->commit_message : "Upload folder with mlxport";
    mp_up_commit_ndjson(&body, msg, u->rq->commit_description, o->parent, ops, nops);
    char *base = api_url(u, "commit", 1);
    mp_sb_printf(&url, "%s%s", base ? base : "", u->rq->create_pr ? "?create_pr=1" : "");
    free(base);
    if (body.oom || url.oom) s = mp_err(MP_ERR_NOMEM, "out of memory");
  }
  hh_resp r = {0};
  if (!s) {
    hh_body b = {body.buf, body.len, -1, 0, 0, "application/x-ndjson", NULL, NULL, NULL};
    s = request(u, "POST", url.buf, &b, "committing", 0, &r);
  }
  if (!s) {
    mp_arena a;
    mp_arena_init(&a, 0);
    mp_json *j = NULL;
    s = json_body(&r, url.buf, &a, &j);
    const char *oid = s ? NULL : mp_json_get_str(j, "commitOid", NULL);
    if (!s && !is_hex(oid, 40)) s = mp_err(MP_ERR_FORMAT, "%s: the commit answer has no 40-hex \"commitOid\"", url.buf);
    if (!s) {
      const char *cu = mp_json_get_str(j, "commitUrl", NULL), *pr = mp_json_get_str(j, "pullRequestUrl", NULL);
      o->commit = strdup(oid);
      o->commit_url = cu ? strdup(cu) : NULL;
      o->pr_url = pr ? strdup(pr) : NULL;
      o->committed = 1;
    }
    mp_arena_free(&a);
  }
  hh_resp_free(&r);
  mp_sb_free(&body);
  mp_sb_free(&url);
  for (size_t i = 0; bufs && i < o->n_files; i++)
    free(bufs[i]);
  free(bufs);
  free(ops);
  return s;
}

void mp_hub_upload_result_free(mp_hub_upload_result *r) {
  mp_up_files_free(r->files, r->n_files);
  free(r->parent);
  free(r->commit);
  free(r->commit_url);
  free(r->pr_url);
  memset(r, 0, sizeof *r);
}

mp_status mp_hub_upload(const mp_hub_upload_request *rq, mp_hub_upload_result *out) {
  memset(out, 0, sizeof *out);
  out->repo_existed = -1;
  up u;
  memset(&u, 0, sizeof u);
  u.rq = rq;
  u.out = out;
  u.type = rq->repo_type && *rq->repo_type ? rq->repo_type : "model";
  u.rev = rq->revision && *rq->revision ? rq->revision : "main";
  if (strcmp(u.type, "model") && strcmp(u.type, "dataset"))
    return mp_err(MP_ERR_INVALID_ARG, "repo type '%s': expected model or dataset", u.type);
  if (!mp_hub_valid_repo_id(rq->repo_id))
    return mp_err(MP_ERR_INVALID_ARG, "'%s' is not a Hugging Face repo id (org/name of letters, digits, '-', '_', '.')",
                  rq->repo_id ? rq->repo_id : "");
  if (!mp_hub_valid_revision(u.rev)) return mp_err(MP_ERR_INVALID_ARG, "revision '%s' is not usable", u.rev);
  if (rq->create_pr && strcmp(u.rev, "main"))
    return mp_err(MP_ERR_INVALID_ARG,
                  "--create-pr opens a pull request against main; it cannot be combined with --revision %s", u.rev);
  MP_TRY(mp_hub_settings_load(&u.s));
  mp_status s = MP_OK;
  if (u.s.offline) {
    s = mp_err(MP_ERR_INVALID_ARG, "HF_HUB_OFFLINE is set: uploading needs the Hub (unset HF_HUB_OFFLINE)");
    goto out;
  }
  if ((s = mp_up_scan_folder(rq->folder, &out->files, &out->n_files))) goto out;
  if ((s = hh_init(&u.c, &u.s))) goto out;
  if (!rq->dry_run && (s = create_repo(&u))) goto out;
  int missing_repo = 0, missing_rev = 0;
  if ((s = head_commit(&u, &out->parent, &missing_repo, &missing_rev))) goto out;
  if (missing_rev && !missing_repo && !rq->dry_run) {
    if ((s = create_branch(&u))) goto out;
    if ((s = head_commit(&u, &out->parent, &missing_repo, &missing_rev))) goto out;
  }
  if (missing_repo && !rq->dry_run) {
    s = mp_err(MP_ERR_NOT_FOUND, "%s/%s: the repo does not exist after creating it, or the token cannot see it",
               u.s.endpoint, rq->repo_id);
    goto out;
  }
  if (!rq->dry_run && !out->parent) {
    s = mp_err(MP_ERR_NOT_FOUND, "%s: revision '%s' of '%s' cannot be read after creating it", u.s.endpoint, u.rev,
               rq->repo_id);
    goto out;
  }
  if (rq->dry_run && (missing_repo || missing_rev)) { /* what a first upload would send */
    out->repo_existed = !missing_repo;
    for (size_t i = 0; i < out->n_files; i++) {
      out->files[i].lfs = mp_up_local_lfs_rule(out->files[i].path, out->files[i].size);
      out->files[i].changed = 1;
      out->n_changed++;
    }
    out->parent = strdup("");
    goto out;
  }
  if (rq->dry_run) out->repo_existed = 1;
  if ((s = preupload(&u, out->files, out->n_files))) goto out;
  for (size_t i = 0; i < out->n_files; i++) {
    mp_up_file *f = &out->files[i];
    f->changed = !f->ignored && strcmp(f->remote_oid, f->lfs ? f->sha256 : f->git_oid) != 0;
    out->n_changed += (size_t)f->changed;
  }
  if (out->n_changed == 0) { /* nothing to send: no commit */
    out->commit = strdup(out->parent);
    goto out;
  }
  if (rq->dry_run) goto out;
  if ((s = send_lfs(&u))) goto out;
  s = commit(&u);
  if (s && u.last_status == 409) {
    /* refused as a conflict: a resent commit (by us or by libcurl on a dropped connection) whose
     * first copy landed with its answer lost looks like this. When the branch head now holds
     * exactly this folder, the upload is done. */
    char msg[2048];
    snprintf(msg, sizeof msg, "%s", mp_last_error());
    char *head = NULL;
    int mr = 0, mv = 0;
    int ours = head_commit(&u, &head, &mr, &mv) == MP_OK && head && preupload(&u, out->files, out->n_files) == MP_OK;
    for (size_t i = 0; ours && i < out->n_files; i++) {
      const mp_up_file *f = &out->files[i];
      ours = f->ignored || !strcmp(f->remote_oid, f->lfs ? f->sha256 : f->git_oid);
    }
    if (ours) {
      mp_log(MP_LOG_WARN,
             "%s: the commit was refused as a conflict, but the branch head %s holds exactly this "
             "folder (the first copy of a resent commit landed): done",
             rq->repo_id, head);
      free(out->commit);
      out->commit = head;
      head = NULL;
      out->committed = 1;
      s = MP_OK;
    } else {
      s = mp_err(s, "%s", msg);
    }
    free(head);
  }
out:
  if (u.c.curl) hh_free(&u.c);
  mp_hub_settings_free(&u.s);
  return s;
}
