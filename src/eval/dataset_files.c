/* Where a dataset's files are: a file as given, the split's file in a dataset folder (GLUE
 * folders, <split>.jsonl/.tsv/.csv, <split>/dev.*), or the Parquet files of a split in a Hugging
 * Face dataset snapshot (<config>/<split>-*.parquet, data/, <split>/), found in the HF cache
 * through format/hf.h (docs/datasets.md). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fs.h"
#include "core/str.h"
#include "eval/dataset_internal.h"
#include "format/hf.h"

mp_ds_format mp_ds_format_from_ext(const char *p) {
  if (mp_str_ends_with(p, ".tsv") || mp_str_ends_with(p, ".txt")) return MP_DS_TSV;
  if (mp_str_ends_with(p, ".csv")) return MP_DS_CSV;
  if (mp_str_ends_with(p, ".jsonl") || mp_str_ends_with(p, ".json") || mp_str_ends_with(p, ".ndjson"))
    return MP_DS_JSONL;
  if (mp_str_ends_with(p, ".parquet")) return MP_DS_PARQUET;
  return MP_DS_AUTO;
}

static int sl_push(mp_ds_files *l, char *s) {
  if (!s) return -1;
  if (l->n == l->cap) {
    size_t nc = l->cap ? l->cap * 2 : 8;
    char **nv = realloc(l->v, nc * sizeof *nv);
    if (!nv) {
      free(s);
      return -1;
    }
    l->v = nv;
    l->cap = nc;
  }
  l->v[l->n++] = s;
  return 0;
}

void mp_ds_files_free(mp_ds_files *l) {
  for (size_t i = 0; i < l->n; i++)
    free(l->v[i]);
  free(l->v);
  memset(l, 0, sizeof *l);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Parquet files in `dir` whose name starts with prefix (NULL = any) and ends with .parquet. */
static void list_parquet(const char *dir, const char *prefix, mp_ds_files *out) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    if (!mp_str_ends_with(e->d_name, ".parquet")) continue;
    if (prefix) {
      size_t pl = strlen(prefix);
      if (strncmp(e->d_name, prefix, pl) != 0) continue;
      char c = e->d_name[pl];
      if (c != '-' && c != '.' && c != '_') continue;
      /* "validation-..." must not match "validation_matched-..." */
      if (c == '_' && strncmp(e->d_name + pl, "_0", 2) != 0) continue;
    }
    char *p = mp_path_join(dir, e->d_name);
    if (p && mp_is_file(p))
      sl_push(out, p);
    else
      free(p);
  }
  closedir(d);
  if (out->n > 1) qsort(out->v, out->n, sizeof(char *), cmp_str);
}

/* HF split aliases: the GLUE/files "dev" is the hub's "validation". */
static const char *split_alt(const char *split) {
  if (strcmp(split, "validation") == 0) return "dev";
  if (strcmp(split, "dev") == 0) return "validation";
  if (strcmp(split, "validation_matched") == 0) return "dev_matched";
  if (strcmp(split, "validation_mismatched") == 0) return "dev_mismatched";
  return NULL;
}

/* Finds the Parquet files of a split in an HF dataset snapshot folder. */
static void find_parquet_split(const char *root, const char *config, const char *split, mp_ds_files *out) {
  const char *splits[2] = {split, split_alt(split)};
  for (int si = 0; si < 2 && !out->n; si++) {
    const char *s = splits[si];
    if (!s) continue;
    const char *subs[3] = {config, config ? NULL : "data", NULL};
    for (int k = 0; k < 3 && !out->n; k++) {
      if (k == 1 && config) continue;
      char *dir = subs[k] ? mp_path_join(root, subs[k]) : strdup(root);
      if (!dir) continue;
      list_parquet(dir, s, out); /* <dir>/<split>-*.parquet */
      if (!out->n) {             /* <dir>/<split>/ *.parquet */
        char *sd = mp_path_join(dir, s);
        if (sd) list_parquet(sd, NULL, out);
        free(sd);
      }
      free(dir);
    }
  }
  if (out->n || config) return;
  /* no config given: a single config folder holding the split */
  DIR *d = opendir(root);
  if (!d) return;
  struct dirent *e;
  char *found = NULL;
  int many = 0;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char *sub = mp_path_join(root, e->d_name);
    if (!sub || !mp_is_dir(sub)) {
      free(sub);
      continue;
    }
    mp_ds_files t = {0};
    list_parquet(sub, split, &t);
    if (!t.n) {
      char *sd = mp_path_join(sub, split);
      if (sd) list_parquet(sd, NULL, &t);
      free(sd);
    }
    if (t.n) {
      if (found) many = 1;
      free(found);
      found = strdup(e->d_name);
    }
    mp_ds_files_free(&t);
    free(sub);
  }
  closedir(d);
  if (found && !many) find_parquet_split(root, found, split, out);
  free(found);
}

/* Known file names of a split inside a dataset folder. */
static mp_status resolve_folder(const char *dir, const mp_dataset_def *d, mp_ds_files *files) {
  const char *split = d->split ? d->split : "validation";
  /* key-specific file names first: the STS Benchmark copy sits in GLUE STS-B's original/ */
  const char *bk = d->key ? mp_ds_builtin_key(d->key, NULL) : NULL;
  if (bk && strcmp(bk, "stsb_original") == 0) {
    static const char *const sts[] = {"original/sts-dev.tsv", "sts-dev.tsv", "sts-dev.csv", "stsbenchmark/sts-dev.csv",
                                      NULL};
    for (int k = 0; sts[k]; k++) {
      char *p = mp_path_join(dir, sts[k]);
      if (p && mp_is_file(p)) return sl_push(files, p) == 0 ? MP_OK : mp_err(MP_ERR_NOMEM, "out of memory");
      free(p);
    }
  }
  /* Parquet layouts (HF hub snapshots) */
  find_parquet_split(dir, d->config, split, files);
  if (files->n) return MP_OK;
  static const char *const dev_names[] = {"dev.tsv",     "dev.jsonl",        "val.jsonl",      "validation.jsonl",
                                          "dev.csv",     "validation.tsv",   "validation.csv", "sts-dev.tsv",
                                          "sts-dev.csv", "dev_fitems.jsonl", "dev.json",       NULL};
  const char *bases[3] = {dir, NULL, NULL};
  char *cdir = d->config ? mp_path_join(dir, d->config) : NULL;
  if (cdir) {
    bases[0] = cdir;
    bases[1] = dir;
  }
  const char *splits[3] = {split, split_alt(split), NULL};
  for (int b = 0; bases[b]; b++) {
    for (int si = 0; splits[si]; si++) {
      const char *s = splits[si];
      const char *exts[] = {".jsonl", ".tsv", ".csv", ".parquet", ".json", NULL};
      for (int e = 0; exts[e]; e++) { /* <base>/<split>.<ext> */
        char name[512];
        snprintf(name, sizeof name, "%s%s", s, exts[e]);
        char *p = mp_path_join(bases[b], name);
        if (p && mp_is_file(p)) {
          sl_push(files, p);
          free(cdir);
          return MP_OK;
        }
        free(p);
      }
      /* <base>/<split>/<dev file> */
      char *sd = mp_path_join(bases[b], s);
      if (sd && mp_is_dir(sd)) {
        for (int k = 0; dev_names[k]; k++) {
          char *p = mp_path_join(sd, dev_names[k]);
          if (p && mp_is_file(p)) {
            sl_push(files, p);
            free(sd);
            free(cdir);
            return MP_OK;
          }
          free(p);
        }
      }
      free(sd);
    }
    if (strcmp(split, "validation") == 0 || strcmp(split, "dev") == 0 || strcmp(split, "val") == 0) {
      for (int k = 0; dev_names[k]; k++) {
        char *p = mp_path_join(bases[b], dev_names[k]);
        if (p && mp_is_file(p)) {
          sl_push(files, p);
          free(cdir);
          return MP_OK;
        }
        free(p);
      }
    }
  }
  free(cdir);
  return mp_err(MP_ERR_NOT_FOUND,
                "%s: no file for split '%s'%s%s found (looked for <split>.jsonl/.tsv/.csv/.parquet, "
                "<split>/dev.*, dev.tsv, dev.jsonl, val.jsonl and HF Parquet layouts); give the file path",
                dir, split, d->config ? " of config " : "", d->config ? d->config : "");
}

mp_status mp_ds_list_files(const mp_dataset_def *d, mp_ds_files *files) {
  memset(files, 0, sizeof *files);
  char *snap = NULL;
  mp_status st = MP_OK;
  const char *path = d->path;
  if (!path) {
    if (!d->hf_dataset)
      return mp_err(MP_ERR_INVALID_ARG, "dataset %s: no path given; set the file or folder (or hf_dataset)",
                    d->key ? d->key : "?");
    MP_TRY(mp_hf_dataset_snapshot(d->hf_dataset, &snap));
    path = snap;
  }
  if (mp_is_dir(path)) {
    st = resolve_folder(path, d, files);
  } else if (mp_is_file(path)) {
    if (sl_push(files, strdup(path)) != 0) st = mp_err(MP_ERR_NOMEM, "out of memory");
  } else {
    st = mp_err(MP_ERR_NOT_FOUND, "%s: no such file or folder; check the dataset path", path);
  }
  free(snap);
  if (st != MP_OK) mp_ds_files_free(files);
  return st;
}
