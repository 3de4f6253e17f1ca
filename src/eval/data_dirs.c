/* Where built-in dataset keys are found on this machine. */
#include "eval/data_dirs.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/fs.h"

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

const char *mp_data_relpath(const char *key) {
  for (size_t i = 0; i < sizeof k_files / sizeof *k_files; i++)
    if (!strcmp(k_files[i].key, key)) return k_files[i].rel;
  return NULL;
}

size_t mp_data_dirs(const char *explicit_dir, char dirs[][1024], size_t cap) {
  size_t n = 0;
  /* <checkout> from <checkout>/build/mlxport; one slot is kept for the demo set (searched last) */
  char *root = NULL;
  char exe[PATH_MAX];
  ssize_t l = readlink("/proc/self/exe", exe, sizeof exe - 1);
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
  /* the shared data folder beside the checkout: <root>/build/mlxport -> <root>/../shared/datasets */
  if (root && n + keep < cap) snprintf(dirs[n++], 1024, "%s/../shared/datasets", root);
  if (n + keep < cap) snprintf(dirs[n++], 1024, "../shared/datasets");
  if (n + keep < cap) snprintf(dirs[n++], 1024, "shared/datasets");
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

mp_status mp_data_find(const char *key, const char *explicit_dir, char **out) {
  *out = NULL;
  const char *rel = mp_data_relpath(key);
  if (!rel) return mp_err(MP_ERR_NOT_FOUND, "no built-in location for dataset key \"%s\"", key);
  char dirs[8][1024];
  size_t n = mp_data_dirs(explicit_dir, dirs, 8);
  char looked[2048] = "";
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    char *p = mp_path_join(dirs[i], rel);
    if (p && mp_is_file(p)) {
      *out = p;
      return MP_OK;
    }
    if (o < sizeof looked) o += (size_t)snprintf(looked + o, sizeof looked - o, "%s%s", i ? ", " : "", p ? p : "?");
    free(p);
  }
  return mp_err(MP_ERR_NOT_FOUND,
                "dataset \"%s\" is not available locally (looked for %s); put the file there, set MLXPORT_DATA to a "
                "folder holding %s, or pass the file path",
                key, looked, rel);
}
