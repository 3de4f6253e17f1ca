/* Hugging Face Hub client over libcurl: downloads repo snapshots into the cache that
 * huggingface_hub shares (same layout, same lock files), speaking huggingface_hub's protocol.
 *
 * Protocol (as huggingface_hub speaks it):
 *   GET  {endpoint}/api/{models|datasets}/{repo}/revision/{rev}      -> {"sha": commit, ...}
 *   GET  {endpoint}/api/{type}s/{repo}/tree/{commit}?recursive=true  -> [{type,path,size,lfs}], paged
 *        by a `Link: <url>; rel="next"` header
 *   HEAD {endpoint}/[datasets/]{repo}/resolve/{commit}/{path}        -> X-Repo-Commit,
 *        X-Linked-Etag|ETag, X-Linked-Size|Content-Length, Location (only relative redirects followed)
 *   GET  the Location (redirects followed; Authorization dropped outside the endpoint's origin)
 *
 * Cache ({HF_HUB_CACHE}/{models|datasets}--org--name/):
 *   blobs/<etag>                 file contents (written as <etag>.incomplete, then renamed)
 *   snapshots/<commit>/<path>    relative symlinks to ../../blobs/<etag>
 *   refs/<revision>              the commit a branch/tag resolved to
 *   .no_exist/<commit>/<path>    empty markers for files the Hub says do not exist
 *   {HF_HUB_CACHE}/.locks/<repo folder>/<etag>.lock   flock'd around each blob write
 *
 * Settings are read from the environment as huggingface_hub reads them: HF_ENDPOINT, HF_TOKEN,
 * HUGGING_FACE_HUB_TOKEN, HF_TOKEN_PATH / $HF_HOME/token, HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE
 * (or TRANSFORMERS_OFFLINE), HF_HUB_ETAG_TIMEOUT, HF_HUB_DOWNLOAD_TIMEOUT (seconds, default 10). */
#ifndef MP_HUB_HUB_H
#define MP_HUB_HUB_H
#include <stddef.h>
#include <stdint.h>

#include "mlxport.h"

typedef struct mp_hub_settings {
  char *endpoint;        /* without a trailing slash */
  char *token;           /* NULL when none */
  char *cache_dir;       /* the hub cache folder */
  int offline;           /* HF_HUB_OFFLINE */
  long etag_timeout;     /* seconds: API calls and HEAD */
  long download_timeout; /* seconds without data before a download is abandoned */
  int max_attempts; /* per request: 1 + retries on 408/429/5xx and broken transfers (MP_HUB_MAX_ATTEMPTS, default 5) */
} mp_hub_settings;

mp_status mp_hub_settings_load(mp_hub_settings *s);
void mp_hub_settings_free(mp_hub_settings *s);
/* HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE is one of 1, ON, YES, TRUE (any case). */
int mp_hub_offline(void);

/* Called from download threads (serialized by the client), at most ~10 times a second. */
typedef void (*mp_hub_progress_fn)(void *user, int64_t bytes_done, int64_t bytes_total, size_t files_done,
                                   size_t files_total);

typedef struct mp_hub_request {
  const char *repo_id;      /* "org/name" or "name" */
  const char *repo_type;    /* "model" (default when NULL) or "dataset" */
  const char *revision;     /* branch, tag or commit; NULL = "main" */
  const char *const *files; /* explicit files (no tree listing); NULL/0 = whole repo */
  size_t n_files;
  const char *const *include; /* fnmatch patterns (as huggingface_hub's allow_patterns) */
  size_t n_include;
  const char *const *exclude; /* as ignore_patterns */
  size_t n_exclude;
  const char *local_dir; /* also copy the files there (hf download --local-dir); NULL = cache only */
  int workers;           /* parallel downloads; 0 = 8 */
  int force;             /* download again even when cached (hf download --force-download) */
  mp_hub_progress_fn progress;
  void *progress_user;
} mp_hub_request;

typedef struct mp_hub_result {
  char *path;          /* the snapshot folder (or local_dir when given) */
  char *commit;        /* the commit the revision resolved to */
  size_t n_files;      /* files in the selection */
  size_t n_downloaded; /* files whose contents were fetched by this call */
  int64_t bytes_downloaded;
  int used_cache_only; /* offline, or the Hub was unreachable and the cache had the revision */
} mp_hub_result;

/* Downloads (or finds in the cache) a snapshot. Errors name the URL or file and say what to do:
 * RepoNotFound / RevisionNotFound / EntryNotFound -> MP_ERR_NOT_FOUND; GatedRepo or missing
 * credentials -> MP_ERR_SECURITY; path traversal in a listing -> MP_ERR_SECURITY; network -> MP_ERR_IO;
 * size or sha256 mismatch -> MP_ERR_FORMAT. */
mp_status mp_hub_download(const mp_hub_request *rq, mp_hub_result *out);
void mp_hub_result_free(mp_hub_result *r);

/* 1 when the last failed mp_hub_download on this thread could not reach the server at all. */
int mp_hub_last_error_was_network(void);

/* "models--org--name" (malloc'd); repo_type NULL = model. */
char *mp_hub_repo_folder(const char *repo_type, const char *repo_id);
/* A repo id: "name" or "org/name" of [A-Za-z0-9._-], no "..", no leading '.'/'-'. */
int mp_hub_valid_repo_id(const char *id);
/* A branch, tag or commit usable as a file below refs/ ("refs/pr/1" included). */
int mp_hub_valid_revision(const char *rev);
/* The snapshot folder (malloc'd) of a revision in a repo's cache folder (storage =
 * <cache>/models--org--name): refs/<revision> names the commit, else the revision itself is the
 * commit; NULL when that snapshot folder does not exist. *commit_out gets the commit (malloc'd). */
char *mp_hub_cached_snapshot(const char *storage, const char *revision, char **commit_out);
/* A path inside a repo that is safe to create under a snapshot folder: relative, no "." / ".."
 * or empty components, no backslash or control characters. */
int mp_hub_safe_repo_path(const char *p);
#endif
