/* Where built-in dataset keys are found on this machine. */
#include "eval/data_dirs.h"

#include <dirent.h>
#include <dlfcn.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/fs.h"
#include "format/hf.h"
#include "hub/hub.h"

static const struct {
  const char *key, *rel;
} k_files[] = {
    {"sst2", "sst2/dev.tsv"},
    {"stsb", "stsb/dev.tsv"},
    {"stsb_original", "stsb/original/sts-dev.tsv"},
    {"qnli", "qnli/dev.tsv"},
    {"mrpc", "mrpc/dev.tsv"},
    {"rte", "rte/val.jsonl"},
    {"mnli", "mnli/validation_matched/dev.jsonl"},
    {"snli", "snli/validation/dev.jsonl"},
    {"anli", "anli/R1/dev.jsonl"},
    {"fever_nli", "fever_nli/dev.jsonl"},
};

/* The public Hub dataset repos that `datasets.load_dataset` users know, and the Parquet file of
 * each key's evaluation split in them (docs/hub.md). Labels: GLUE / SuperGLUE / SNLI / ANLI /
 * nli_fever store integer class ids in the order of the built-in label names (entailment,
 * neutral, contradiction; RTE/QNLI entailment, not_entailment; SST-2 negative, positive); SNLI's
 * -1 (no gold label) rows are dropped by the loader. */
static const struct {
  const char *key, *repo, *pattern;
} k_hub[] = {
    {"sst2", "nyu-mll/glue", "sst2/validation-*.parquet"},
    {"stsb", "nyu-mll/glue", "stsb/validation-*.parquet"},
    {"qnli", "nyu-mll/glue", "qnli/validation-*.parquet"},
    {"mrpc", "nyu-mll/glue", "mrpc/validation-*.parquet"},
    {"mnli", "nyu-mll/glue", "mnli/validation_matched-*.parquet"},
    {"rte", "aps/super_glue", "rte/validation-*.parquet"},
    {"snli", "stanfordnlp/snli", "plain_text/validation-*.parquet"},
    {"anli", "facebook/anli", "plain_text/dev_r1-*.parquet"},
    {"fever_nli", "pietrolesci/nli_fever", "data/dev-*.parquet"},
};

int mp_data_hub_source(const char *key, const char **repo, const char **pattern) {
  for (size_t i = 0; i < sizeof k_hub / sizeof *k_hub; i++)
    if (!strcmp(k_hub[i].key, key)) {
      *repo = k_hub[i].repo;
      *pattern = k_hub[i].pattern;
      return 1;
    }
  return 0;
}

/* The first file (by name) of the snapshot matching pattern "<folder>/<file glob>". */
static char *match_in_snapshot(const char *snap, const char *pattern) {
  const char *slash = strrchr(pattern, '/');
  char folder[256];
  snprintf(folder, sizeof folder, "%.*s", slash ? (int)(slash - pattern) : 0, pattern);
  const char *glob = slash ? slash + 1 : pattern;
  char *dir = folder[0] ? mp_path_join(snap, folder) : strdup(snap);
  DIR *d = dir ? opendir(dir) : NULL;
  char best[256] = "";
  struct dirent *e;
  while (d && (e = readdir(d)))
    if (fnmatch(glob, e->d_name, 0) == 0 && (!best[0] || strcmp(e->d_name, best) < 0))
      snprintf(best, sizeof best, "%s", e->d_name);
  if (d) closedir(d);
  char *out = best[0] && dir ? mp_path_join(dir, best) : NULL;
  if (out && !mp_is_file(out)) { /* a dangling snapshot link */
    free(out);
    out = NULL;
  }
  free(dir);
  return out;
}

mp_status mp_data_find_hub(const char *key, int download, char **out) {
  *out = NULL;
  const char *repo, *pattern;
  if (!mp_data_hub_source(key, &repo, &pattern))
    return mp_err(MP_ERR_NOT_FOUND, "dataset \"%s\" has no Hugging Face Hub source", key);
  char *storage = NULL;
  char *snap = mp_hf_cached_snapshot("dataset", repo, "main", &storage);
  char *file = snap ? match_in_snapshot(snap, pattern) : NULL;
  mp_status st = MP_OK;
  if (!file && download && !mp_hub_offline()) {
    const char *inc[1] = {pattern};
    mp_hub_request rq = {0};
    rq.repo_id = repo;
    rq.repo_type = "dataset";
    rq.include = inc;
    rq.n_include = 1;
    mp_log(MP_LOG_INFO, "dataset \"%s\": downloading %s (%s) from the Hugging Face Hub", key, repo, pattern);
    mp_hub_result res;
    st = mp_hub_download(&rq, &res);
    if (!st) {
      file = match_in_snapshot(res.path, pattern);
      mp_hub_result_free(&res);
      if (!file)
        st = mp_err(MP_ERR_NOT_FOUND, "dataset \"%s\": the Hub repo %s has no file matching %s", key, repo, pattern);
    }
  } else if (!file) {
    st = mp_err(MP_ERR_NOT_FOUND, "dataset \"%s\": %s (%s) is not in the Hugging Face cache (%s)%s", key, repo, pattern,
                storage ? storage : "?", mp_hub_offline() ? "; HF_HUB_OFFLINE is set" : "");
  }
  *out = file;
  free(snap);
  free(storage);
  return file ? MP_OK : st;
}

const char *mp_data_relpath(const char *key) {
  for (size_t i = 0; i < sizeof k_files / sizeof *k_files; i++)
    if (!strcmp(k_files[i].key, key)) return k_files[i].rel;
  return NULL;
}

size_t mp_data_dirs(const char *explicit_dir, char dirs[][1024], size_t cap) {
  size_t n = 0;
  /* <checkout> from <checkout>/build/mlxport or <checkout>/build/libmlxport.so.N: the file that
   * holds this code (the CLI links the library statically; a host program loads the shared
   * library), else the running program; one slot is kept for the demo set (searched last) */
  char *root = NULL;
  char exe[PATH_MAX];
  ssize_t l = -1;
  Dl_info di;
  if (dladdr((void *)mp_data_dirs, &di) && di.dli_fname && di.dli_fname[0] == '/' && strlen(di.dli_fname) < sizeof exe)
    l = (ssize_t)strlen(strcpy(exe, di.dli_fname));
  if (l <= 0) l = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (l > 0) {
    exe[l] = 0;
    char *d1 = mp_path_dirname(exe);
    root = d1 ? mp_path_dirname(d1) : NULL;
    free(d1);
  }
  size_t keep = root && cap > 0 ? 1 : 0;
  if (explicit_dir && n + keep < cap) snprintf(dirs[n++], 1024, "%s", explicit_dir);
  const char *env = getenv("MLXPORT_DATA");
  if (env) {
    char *copy = strdup(env), *save = NULL;
    for (char *t = copy ? strtok_r(copy, ":", &save) : NULL; t && n + keep < cap; t = strtok_r(NULL, ":", &save))
      snprintf(dirs[n++], 1024, "%s", t);
    free(copy);
  }
  /* the test data folder's dev sets, by the rule of scripts/test-data.sh (docs/testing.md):
   * $MLXPORT_TEST_DATA, the shared folder beside the checkout (<root>/build/mlxport ->
   * <root>/../shared/datasets), then the copy `make test` fetched into $MP_CACHE/test-data */
  const char *td = getenv("MLXPORT_TEST_DATA");
  if (td && *td && n + keep < cap) snprintf(dirs[n++], 1024, "%s/datasets", td);
  if (root && n + keep < cap) snprintf(dirs[n++], 1024, "%s/../shared/datasets", root);
  if (n + keep < cap) snprintf(dirs[n++], 1024, "../shared/datasets");
  if (n + keep < cap) snprintf(dirs[n++], 1024, "shared/datasets");
  const char *cache = getenv("MP_CACHE");
  if (cache && *cache && n + keep < cap)
    snprintf(dirs[n++], 1024, "%s/test-data/datasets", cache);
  else if (root && n + keep < cap)
    snprintf(dirs[n++], 1024, "%s/.cache/test-data/datasets", root);
  /* last: the small evaluation set the project ships (data/demo/README.md), a fallback only */
  if (root && n < cap) snprintf(dirs[n++], 1024, "%s/" MP_DATA_DEMO_DIR, root);
  free(root);
  return n;
}

int mp_data_find_is_fallback(const char *path) {
  if (!path) return 0;
  if (!strncmp(path, MP_DATA_DEMO_DIR "/", strlen(MP_DATA_DEMO_DIR "/"))) return 1;
  return strstr(path, "/" MP_DATA_DEMO_DIR "/") != NULL;
}

/* Called for each candidate path; when it is the demo set's (the last resort), the Hub is tried
 * first: real data in the Hugging Face cache, else downloaded (unless offline). Returns 1 with
 * *out set when the Hub answered. */
static int hub_before_demo(const char *p, const char *key, int download, char **out, char *err, size_t cap) {
  if (!mp_data_find_is_fallback(p) || err[0]) return 0;
  const char *repo, *pattern;
  if (!mp_data_hub_source(key, &repo, &pattern)) {
    snprintf(err, cap, "no Hub source for \"%s\"", key);
    return 0;
  }
  if (mp_data_find_hub(key, download, out) == MP_OK) return 1;
  snprintf(err, cap, "%s", mp_last_error());
  mp_err_clear();
  return 0;
}

mp_status mp_data_find(const char *key, const char *explicit_dir, char **out) {
  return mp_data_find_ex(key, explicit_dir, 1, out);
}

mp_status mp_data_find_ex(const char *key, const char *explicit_dir, int download, char **out) {
  *out = NULL;
  const char *rel = mp_data_relpath(key);
  if (!rel) return mp_err(MP_ERR_NOT_FOUND, "no built-in location for dataset key \"%s\"", key);
  char dirs[12][1024];
  size_t n = mp_data_dirs(explicit_dir, dirs, 12);
  char looked[2048] = "";
  size_t o = 0;
  char hub_err[1024] = "";
  for (size_t i = 0; i < n; i++) {
    char *p = mp_path_join(dirs[i], rel);
    if (p && hub_before_demo(p, key, download, out, hub_err, sizeof hub_err)) {
      free(p);
      return MP_OK;
    }
    if (p && mp_is_file(p)) {
      *out = p;
      return MP_OK;
    }
    if (o < sizeof looked) o += (size_t)snprintf(looked + o, sizeof looked - o, "%s%s", i ? ", " : "", p ? p : "?");
    free(p);
  }
  if (!hub_err[0] && mp_data_find_hub(key, download, out) == MP_OK) return MP_OK;
  if (!hub_err[0]) snprintf(hub_err, sizeof hub_err, "%s", mp_last_error());
  return mp_err(MP_ERR_NOT_FOUND,
                "dataset \"%s\" is not available locally (looked for %s); put the file there, set MLXPORT_DATA to a "
                "folder holding %s, or pass the file path (from the Hub: %s)",
                key, looked, rel, hub_err);
}
