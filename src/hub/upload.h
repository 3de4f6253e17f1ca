/* Hub uploads (`mlxport upload`): a local folder -> one commit on a Hub repo, speaking the
 * protocol huggingface_hub speaks (docs/upload.md):
 *   POST {endpoint}/api/repos/create                         {"name","organization","private"[,"type"]}; 409 = exists
 *   GET  {endpoint}/api/{type}s/{repo}/revision/{rev}         -> {"sha"}: the parent commit
 *   POST {endpoint}/api/{type}s/{repo}/preupload/{rev}        {"files":[{path,sample,size}]} ->
 *        {"files":[{path,uploadMode:"lfs"|"regular",shouldIgnore,oid?}]}
 *   POST {endpoint}/[{type}s/]{repo}.git/info/lfs/objects/batch   (Git LFS batch API, transfers basic
 *        and multipart) -> per object: no "actions" (the server has it) or actions.upload (+verify)
 *   PUT  the upload href (basic) or each part URL (multipart: header.chunk_size + "00001".. keys),
 *        then POST the completion {"oid","parts":[{partNumber,etag}]} to the upload href
 *   POST the verify href {"oid","size"}
 *   POST {endpoint}/api/{type}s/{repo}/commit/{rev}[?create_pr=1]   NDJSON: header (summary,
 *        description, parentCommit), file (base64) and lfsFile lines -> {"commitOid","commitUrl"}
 * Files the server already has unchanged (same git blob id / same sha256) are left out; when
 * nothing changed there is no commit. The commit is sent only after a last batch call confirms
 * that the server holds every LFS object the commit names. */
#ifndef MP_HUB_UPLOAD_H
#define MP_HUB_UPLOAD_H
#include <stddef.h>
#include <stdint.h>

#include "core/strbuf.h"
#include "hub/hub.h"
#include "mlxport.h"

typedef struct mp_up_file {
  char *path;  /* inside the repo ('/' separated) */
  char *local; /* on disk */
  int64_t size;
  char sha256[65];
  char git_oid[41];
  unsigned char sample[512]; /* first bytes, sent to preupload */
  size_t sample_len;
  /* from preupload (or the local rule for a dry run of a repo that does not exist) */
  int lfs, ignored;
  char remote_oid[80]; /* "" = not in the repo */
  int changed;         /* differs from the repo's file */
  int on_server;       /* LFS object already stored (no upload needed) */
  int uploaded;        /* LFS object sent by this run */
} mp_up_file;

typedef struct mp_hub_upload_request {
  const char *folder;
  const char *repo_id;
  const char *repo_type;      /* NULL = model */
  const char *revision;       /* NULL = main */
  int private_;               /* when the repo is created */
  const char *commit_message; /* NULL = "Upload folder with mlxport" */
  const char *commit_description;
  int create_pr;
  int dry_run;                 /* nothing created, sent or committed */
  mp_hub_progress_fn progress; /* bytes of LFS content sent */
  void *progress_user;
} mp_hub_upload_request;

typedef struct mp_hub_upload_result {
  mp_up_file *files;
  size_t n_files;
  int repo_existed; /* -1 unknown (dry run without access) */
  int created_repo;
  int committed; /* 0: nothing changed (no commit) or dry run */
  char *parent;  /* the commit the upload was based on ("" for a repo that does not exist yet) */
  char *commit;  /* the new commit, or the unchanged head */
  char *commit_url;
  char *pr_url;
  size_t n_changed, n_lfs_uploaded, n_lfs_present;
  int64_t bytes_uploaded;
} mp_hub_upload_result;

mp_status mp_hub_upload(const mp_hub_upload_request *rq, mp_hub_upload_result *out);
void mp_hub_upload_result_free(mp_hub_upload_result *r);

/* ---- pieces exposed for the unit tests and the fuzzer (server answers are untrusted) */

/* The local rule when the server cannot be asked: LFS for the usual binary suffixes or >= 10 MB. */
int mp_up_local_lfs_rule(const char *path, int64_t size);
/* Lists the files of a folder (sorted; skips .git/ and .cache/huggingface/, as huggingface_hub's
 * upload_folder, and ".*.tmp-*" leftovers of interrupted atomic writes) and hashes them. */
mp_status mp_up_scan_folder(const char *folder, mp_up_file **files, size_t *n);
void mp_up_files_free(mp_up_file *f, size_t n);
/* Applies a preupload answer to files[]: every path must be answered once, with a known mode. */
mp_status mp_up_parse_preupload(const char *body, size_t n, const char *url, mp_up_file *files, size_t nf);

typedef struct mp_up_action {
  const char *oid; /* the object asked for (64 hex) */
  int64_t size;
  int answered;
  int upload;         /* 0: the server already has it */
  char *href;         /* upload href (basic PUT, or the multipart completion URL) */
  int64_t chunk_size; /* > 0: multipart */
  char **parts;       /* part URLs in part order */
  size_t n_parts;
  char *verify; /* verify href or NULL */
} mp_up_action;
/* Applies an LFS batch answer to acts[] (oid/size filled in by the caller). An object error, an
 * unknown object, a missing answer or a part list that does not cover the size is an error. */
mp_status mp_up_parse_batch(const char *body, size_t n, const char *url, mp_up_action *acts, size_t na);
void mp_up_actions_free(mp_up_action *a, size_t n);

/* One line of the commit: a regular file (data, base64-encoded in the line) or an LFS pointer. */
typedef struct mp_up_commit_op {
  const char *path;
  int lfs;
  const unsigned char *data; /* regular */
  size_t len;
  const char *oid; /* lfs: sha256 hex */
  int64_t size;
} mp_up_commit_op;
/* The NDJSON commit body: {"key":"header","value":{summary,description,parentCommit}} then one
 * line per op ({"key":"file",...,"encoding":"base64"} / {"key":"lfsFile",...,"algo":"sha256"}). */
void mp_up_commit_ndjson(mp_sb *sb, const char *summary, const char *description, const char *parent,
                         const mp_up_commit_op *ops, size_t n);
void mp_base64(mp_sb *sb, const unsigned char *data, size_t n);

/* The error for a failed upload request: 401 / 403 / 404 / 409 / 413 / 422 and the rest, naming
 * the URL and the step (`what`) and saying what to do. */
mp_status mp_up_http_error(long status, const char *error_code, const char *message, const char *url, const char *what,
                           const char *repo_id, int have_token);
#endif
