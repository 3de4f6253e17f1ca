/* Evaluation dataset loading (see dataset.h and docs/datasets.md). */
#include "eval/dataset.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/str.h"
#include "core/strbuf.h"
#include "core/utf8.h"
#include "eval/parquet.h"
#include "format/hf.h"

#define MP_DS_MAX_FILE ((size_t)4 << 30)

/* ------------------------------------------------------------------ formats */

static const char *const fmt_names[] = {"auto", "glue_tsv", "tsv", "csv", "jsonl", "parquet"};

const char *mp_ds_format_name(mp_ds_format f) {
  return (unsigned)f < sizeof fmt_names / sizeof *fmt_names ? fmt_names[f] : "?";
}

mp_status mp_ds_format_parse(const char *name, mp_ds_format *out) {
  for (size_t i = 0; i < sizeof fmt_names / sizeof *fmt_names; i++)
    if (name && strcmp(name, fmt_names[i]) == 0) {
      *out = (mp_ds_format)i;
      return MP_OK;
    }
  if (name && strcmp(name, "json") == 0) {
    *out = MP_DS_JSONL;
    return MP_OK;
  }
  return mp_err(MP_ERR_INVALID_ARG, "unknown dataset format '%s' (use auto, glue_tsv, tsv, csv, jsonl or parquet)",
                name ? name : "(null)");
}

/* ------------------------------------------------------------------ PRNG */

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void mp_rng_seed(mp_rng *r, uint64_t seed) {
  uint64_t x = seed;
  for (int i = 0; i < 4; i++)
    r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t mp_rng_next(mp_rng *r) {
  uint64_t *s = r->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

/* ------------------------------------------------------------------ sampling */

static int cmp_size(const void *a, const void *b) {
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  return (x > y) - (x < y);
}

static void sample_positions(size_t n, size_t k, uint64_t seed, size_t *perm /* n entries */) {
  for (size_t i = 0; i < n; i++)
    perm[i] = i;
  mp_rng r;
  mp_rng_seed(&r, seed);
  for (size_t i = 0; i < k; i++) {
    size_t j = i + (size_t)(mp_rng_next(&r) % (uint64_t)(n - i));
    size_t t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  qsort(perm, k, sizeof(size_t), cmp_size);
}

void mp_sample_indices(size_t n, size_t max_samples, uint64_t seed, size_t *out) {
  size_t k = (max_samples == 0 || max_samples > n) ? n : max_samples;
  if (k == n) {
    for (size_t i = 0; i < n; i++)
      out[i] = i;
    return;
  }
  size_t *perm = malloc((n ? n : 1) * sizeof(size_t));
  if (!perm) { /* degrade deterministically: first k */
    for (size_t i = 0; i < k; i++)
      out[i] = i;
    return;
  }
  sample_positions(n, k, seed, perm);
  memcpy(out, perm, k * sizeof(size_t));
  free(perm);
}

mp_status mp_dataset_sample(mp_dataset *ds, size_t max_samples, uint64_t seed) {
  if (max_samples == 0 || max_samples >= ds->n) return MP_OK;
  size_t n = ds->n, k = max_samples;
  size_t *perm = malloc(n * sizeof(size_t));
  mp_example *nx = malloc(k * sizeof(mp_example));
  if (!perm || !nx) {
    free(perm);
    free(nx);
    return mp_err(MP_ERR_NOMEM, "%s: out of memory sampling %zu of %zu examples", ds->name, k, n);
  }
  sample_positions(n, k, seed, perm);
  for (size_t i = 0; i < k; i++)
    nx[i] = ds->ex[perm[i]];
  free(perm);
  free(ds->ex);
  ds->ex = nx;
  ds->n = k;
  return MP_OK;
}

void mp_dataset_label_counts(const mp_dataset *ds, size_t *counts) {
  for (size_t i = 0; i < ds->n_labels; i++)
    counts[i] = 0;
  for (size_t i = 0; i < ds->n; i++)
    if (ds->ex[i].label >= 0 && (size_t)ds->ex[i].label < ds->n_labels) counts[ds->ex[i].label]++;
}

/* ------------------------------------------------------------------ built-in layouts */

static const char *const nli3[] = {"entailment", "neutral", "contradiction"};
static const char *const nli2[] = {"entailment", "not_entailment"};
static const char *const sst2_names[] = {"negative", "positive"};
static const char *const mrpc_names[] = {"not_equivalent", "equivalent"};
static const mp_label_alias mnli_alias[] = {{"-", -1}, {"", -1}};
static const mp_label_alias anli_alias[] = {{"e", 0}, {"n", 1}, {"c", 2}, {"hidden", -1}};
static const mp_label_alias fever_alias[] = {{"SUPPORTS", 0}, {"NOT ENOUGH INFO", 1}, {"REFUTES", 2}, {"hidden", -1}};

typedef struct builtin {
  const char *key;
  mp_ds_format format;
  const char *split;
  const char *text_a, *text_b, *label, *score;
  int text_a_col, text_b_col, label_col, score_col;
  const char *const *names;
  size_t n_names;
  const mp_label_alias *aliases;
  size_t n_aliases;
  int header, quoting, min_columns;
} builtin;

#define N(a) (sizeof(a) / sizeof *(a))
static const builtin builtins[] = {
    {"sst2", MP_DS_GLUE_TSV, "validation", "sentence", NULL, "label", NULL, -1, -1, -1, -1, sst2_names, N(sst2_names),
     NULL, 0, 1, 0, 0},
    {"stsb", MP_DS_GLUE_TSV, "validation", "sentence1", "sentence2", NULL, "score|label", -1, -1, -1, -1, NULL, 0, NULL,
     0, 1, 0, 0},
    {"stsb_original", MP_DS_TSV, "validation", NULL, NULL, NULL, NULL, 5, 6, -1, 4, NULL, 0, NULL, 0, 0, 0, 7},
    {"qnli", MP_DS_GLUE_TSV, "validation", "question", "sentence", "label", NULL, -1, -1, -1, -1, nli2, N(nli2), NULL,
     0, 1, 0, 0},
    {"mrpc", MP_DS_GLUE_TSV, "validation", "#1 String|sentence1", "#2 String|sentence2", "Quality|label", NULL, -1, -1,
     -1, -1, mrpc_names, N(mrpc_names), NULL, 0, 1, 0, 0},
    {"rte", MP_DS_JSONL, "validation", "premise|sentence1", "hypothesis|sentence2", "label", NULL, -1, -1, -1, -1, nli2,
     N(nli2), NULL, 0, 1, 0, 0},
    {"mnli", MP_DS_JSONL, "validation_matched", "premise|sentence1", "hypothesis|sentence2", "label|gold_label", NULL,
     -1, -1, -1, -1, nli3, N(nli3), mnli_alias, N(mnli_alias), 1, 0, 0},
    {"snli", MP_DS_JSONL, "validation", "premise|sentence1", "hypothesis|sentence2", "label|gold_label", NULL, -1, -1,
     -1, -1, nli3, N(nli3), mnli_alias, N(mnli_alias), 1, 0, 0},
    {"anli", MP_DS_JSONL, "validation", "context|premise", "hypothesis", "label", NULL, -1, -1, -1, -1, nli3, N(nli3),
     anli_alias, N(anli_alias), 1, 0, 0},
    /* nli_fever: premise = context (evidence), hypothesis = query (claim). The HF copy
     * pietrolesci/nli_fever renamed query->premise and context->hypothesis, so there the evidence
     * is its "hypothesis" column: read in the same direction as the original. */
    {"fever_nli", MP_DS_JSONL, "validation", "context|hypothesis", "query|premise", "label", NULL, -1, -1, -1, -1, nli3,
     N(nli3), fever_alias, N(fever_alias), 1, 0, 0},
};

static const char *const builtin_keys[] = {"sst2", "stsb", "stsb_original", "qnli",      "mrpc", "rte",
                                           "mnli", "snli", "anli",          "fever_nli", NULL};

const char *const *mp_dataset_builtin_keys(void) { return builtin_keys; }

static const builtin *find_builtin(const char *key);

const char *mp_dataset_key_for(const char *name, const char *subset) {
  if (!name) return NULL;
  const char *base = strrchr(name, '/');
  base = base ? base + 1 : name;
  if (strcmp(base, "glue") == 0 || strcmp(base, "super_glue") == 0) {
    if (!subset) return NULL;
    if (strcmp(subset, "mnli") == 0 || strcmp(subset, "mnli_matched") == 0) return "mnli";
    const builtin *b = find_builtin(subset);
    return b ? b->key : NULL;
  }
  if (strcmp(base, "nli_fever") == 0 || strcmp(base, "fever_nli") == 0 || strcmp(base, "fever") == 0)
    return "fever_nli";
  if (strcmp(base, "stsbenchmark-sts") == 0 || strcmp(base, "stsb_multi_mt") == 0) return "stsb";
  if (strcmp(base, "multi_nli") == 0) return "mnli";
  const builtin *b = find_builtin(base);
  if (b) return b->key;
  if (subset) {
    b = find_builtin(subset);
    if (b) return b->key;
  }
  return NULL;
}

void mp_dataset_def_init(mp_dataset_def *d) {
  memset(d, 0, sizeof *d);
  d->format = MP_DS_AUTO;
  d->text_a_col = d->text_b_col = d->label_col = d->score_col = -1;
  d->numeric_labels = MP_DS_UNSET;
  d->header = MP_DS_UNSET;
  d->quoting = MP_DS_UNSET;
  d->min_columns = MP_DS_UNSET;
}

static const builtin *find_builtin(const char *key) {
  if (!key) return NULL;
  for (size_t i = 0; i < N(builtins); i++)
    if (strcmp(builtins[i].key, key) == 0) return &builtins[i];
  /* tolerated spellings */
  if (strcmp(key, "sst-2") == 0 || strcmp(key, "sst") == 0) return &builtins[0];
  if (strcmp(key, "sts-b") == 0 || strcmp(key, "sts") == 0) return &builtins[1];
  if (strcmp(key, "stsbenchmark") == 0 || strcmp(key, "sts_benchmark") == 0) return &builtins[2];
  if (strcmp(key, "fever") == 0 || strcmp(key, "fever-nli") == 0 || strcmp(key, "nli_fever") == 0) return &builtins[9];
  if (strcmp(key, "multi_nli") == 0 || strcmp(key, "multinli") == 0) return &builtins[6];
  return NULL;
}

mp_status mp_dataset_builtin(const char *key, mp_dataset_def *d) {
  const builtin *b = find_builtin(key);
  if (!b) {
    mp_sb sb;
    mp_sb_init(&sb);
    for (size_t i = 0; builtin_keys[i]; i++)
      mp_sb_printf(&sb, "%s%s", i ? ", " : "", builtin_keys[i]);
    mp_status s =
        mp_err(MP_ERR_NOT_FOUND, "unknown dataset key '%s' (built-in: %s); give the file's format and fields instead",
               key ? key : "(null)", sb.buf ? sb.buf : "");
    mp_sb_free(&sb);
    return s;
  }
  if (d->format == MP_DS_AUTO) {
    /* the key's format only applies when the file's extension does not say otherwise */
  }
  if (!d->split) d->split = b->split;
  int explicit_fields = d->text_a || d->text_a_col >= 0;
  if (!explicit_fields) {
    d->text_a = b->text_a;
    d->text_a_col = b->text_a_col;
    if (!d->text_b && d->text_b_col < 0) {
      d->text_b = b->text_b;
      d->text_b_col = b->text_b_col;
    }
  }
  if (!d->label && d->label_col < 0 && !d->score && d->score_col < 0) {
    d->label = b->label;
    d->label_col = b->label_col;
    d->score = b->score;
    d->score_col = b->score_col;
  }
  if (!d->label_names && b->names) {
    d->label_names = b->names;
    d->n_label_names = b->n_names;
  }
  if (!d->aliases && b->aliases) {
    d->aliases = b->aliases;
    d->n_aliases = b->n_aliases;
  }
  if (d->header == MP_DS_UNSET) d->header = b->header;
  if (d->quoting == MP_DS_UNSET) d->quoting = b->quoting;
  if (d->min_columns == MP_DS_UNSET) d->min_columns = b->min_columns;
  return MP_OK;
}

mp_status mp_dataset_task_fields(mp_dataset_def *d, const char *task) {
  int nli = !strcmp(task, "nli"), bin = !strcmp(task, "binary-nli");
  int sim = !strcmp(task, "semantic-similarity") || !strcmp(task, "sentence-similarity");
  int cls = !strcmp(task, "text-classification") || !strcmp(task, "sentiment-analysis") ||
            !strcmp(task, "zero-shot-classification") || !strcmp(task, "zero-shot");
  if (!nli && !bin && !sim && !cls)
    return mp_err(MP_ERR_INVALID_ARG,
                  "task \"%s\" does not say which columns a dataset file has (nli, binary-nli, semantic-similarity, "
                  "text-classification, zero-shot-classification); name them (text fields, label or score field)",
                  task);
  if (d->text_a || d->text_a_col >= 0) return MP_OK; /* the caller named the fields */
  if (nli || bin) {
    d->text_a = "premise|sentence1|question";
    if (!d->text_b && d->text_b_col < 0) d->text_b = "hypothesis|sentence2|sentence";
  } else if (sim) {
    d->text_a = "sentence1";
    if (!d->text_b && d->text_b_col < 0) d->text_b = "sentence2";
  } else {
    d->text_a = "sentence|text";
  }
  if (!d->label && d->label_col < 0 && !d->score && d->score_col < 0) {
    if (sim)
      d->score = "score|label";
    else
      d->label = "label|gold_label";
  }
  if ((nli || bin) && !d->label_names) {
    d->label_names = bin ? nli2 : nli3;
    d->n_label_names = bin ? N(nli2) : N(nli3);
  }
  if ((nli || bin) && !d->aliases) {
    d->aliases = mnli_alias;
    d->n_aliases = N(mnli_alias);
  }
  return MP_OK;
}

/* ------------------------------------------------------------------ path resolution */

static mp_ds_format format_from_ext(const char *p) {
  if (mp_str_ends_with(p, ".tsv") || mp_str_ends_with(p, ".txt")) return MP_DS_TSV;
  if (mp_str_ends_with(p, ".csv")) return MP_DS_CSV;
  if (mp_str_ends_with(p, ".jsonl") || mp_str_ends_with(p, ".json") || mp_str_ends_with(p, ".ndjson"))
    return MP_DS_JSONL;
  if (mp_str_ends_with(p, ".parquet")) return MP_DS_PARQUET;
  return MP_DS_AUTO;
}

typedef struct strlist {
  char **v;
  size_t n, cap;
} strlist;

static int sl_push(strlist *l, char *s) {
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

static void sl_free(strlist *l) {
  for (size_t i = 0; i < l->n; i++)
    free(l->v[i]);
  free(l->v);
  memset(l, 0, sizeof *l);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Parquet files in `dir` whose name starts with prefix (NULL = any) and ends with .parquet. */
static void list_parquet(const char *dir, const char *prefix, strlist *out) {
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
static void find_parquet_split(const char *root, const char *config, const char *split, strlist *out) {
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
    strlist t = {0};
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
    sl_free(&t);
    free(sub);
  }
  closedir(d);
  if (found && !many) find_parquet_split(root, found, split, out);
  free(found);
}

/* Known file names of a split inside a dataset folder. */
static mp_status resolve_folder(const char *dir, const mp_dataset_def *d, strlist *files) {
  const char *split = d->split ? d->split : "validation";
  /* key-specific file names first: the STS Benchmark copy sits in GLUE STS-B's original/ */
  if (d->key && find_builtin(d->key) == &builtins[2]) {
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

/* ------------------------------------------------------------------ loader state */

typedef enum { V_NONE, V_NULL, V_STR, V_INT, V_NUM, V_BOOL } vkind;
typedef struct val {
  vkind kind;
  const char *s;
  size_t len;
  int64_t i;
  double d;
} val;

typedef struct loader {
  mp_dataset_def d;
  mp_dataset *ds;
  const char *file; /* current file (for messages) */
  size_t cap;
  int need_label, need_score, need_b;
} loader;

static mp_status push_example(loader *L, const val *a, const val *b, const val *lab, const val *sc, uint32_t line,
                              const char *where_a, const char *where_b, const char *where_l, const char *where_s);

/* Splits "a|b|c" candidates; returns the number written (max 8). */
static size_t split_alts(const char *spec, const char *out[8], size_t lens[8]) {
  size_t n = 0;
  const char *p = spec;
  while (p && n < 8) {
    const char *bar = strchr(p, '|');
    out[n] = p;
    lens[n] = bar ? (size_t)(bar - p) : strlen(p);
    n++;
    p = bar ? bar + 1 : NULL;
  }
  return n;
}

static int name_eq(const char *a, size_t alen, const char *b, size_t blen) {
  return alen == blen && memcmp(a, b, alen) == 0;
}

/* ------------------------------------------------------------------ label / score mapping */

static int parse_int_str(const char *s, size_t len, int64_t *out) {
  size_t i = 0;
  int neg = 0;
  if (len == 0) return 0;
  if (s[0] == '-' || s[0] == '+') {
    neg = s[0] == '-';
    i = 1;
  }
  if (i == len) return 0;
  int64_t v = 0;
  for (; i < len; i++) {
    if (s[i] < '0' || s[i] > '9') return 0;
    if (v > (INT64_MAX - 9) / 10) return 0;
    v = v * 10 + (s[i] - '0');
  }
  *out = neg ? -v : v;
  return 1;
}

/* returns 1 = label index in *idx, 0 = drop (no gold), -1 = error set */
static int map_label(loader *L, const val *v, uint32_t line, const char *where, int *idx) {
  const mp_dataset_def *d = &L->d;
  if (v->kind == V_NULL) return 0;
  char num[32];
  const char *s = v->s;
  size_t len = v->len;
  if (v->kind == V_INT) {
    snprintf(num, sizeof num, "%lld", (long long)v->i);
    s = num;
    len = strlen(num);
  } else if (v->kind == V_BOOL) {
    s = v->i ? "true" : "false";
    len = strlen(s);
  } else if (v->kind == V_NUM) {
    if (v->d == floor(v->d) && fabs(v->d) < 1e15) {
      snprintf(num, sizeof num, "%lld", (long long)v->d);
      s = num;
      len = strlen(num);
    } else {
      snprintf(num, sizeof num, "%g", v->d);
      s = num;
      len = strlen(num);
    }
  }
  for (size_t i = 0; i < d->n_aliases; i++)
    if (name_eq(s, len, d->aliases[i].value, strlen(d->aliases[i].value))) {
      if (d->aliases[i].index < 0) return 0;
      if ((size_t)d->aliases[i].index >= L->ds->n_labels) break;
      *idx = d->aliases[i].index;
      return 1;
    }
  for (size_t i = 0; i < L->ds->n_labels; i++)
    if (name_eq(s, len, L->ds->labels[i], strlen(L->ds->labels[i]))) {
      *idx = (int)i;
      return 1;
    }
  int64_t k;
  if (d->numeric_labels != 0 && parse_int_str(s, len, &k)) {
    if (k < 0) return 0;
    if ((uint64_t)k < L->ds->n_labels) {
      *idx = (int)k;
      return 1;
    }
  }
  mp_sb sb;
  mp_sb_init(&sb);
  for (size_t i = 0; i < L->ds->n_labels; i++)
    mp_sb_printf(&sb, "%s%s", i ? ", " : "", L->ds->labels[i]);
  for (size_t i = 0; i < d->n_aliases; i++)
    mp_sb_printf(&sb, ", %s", d->aliases[i].value);
  mp_err(MP_ERR_FORMAT,
         "%s:%u: %s: unknown label value '%.*s' (known: %s%s); fix the row or declare the value in the "
         "dataset's label names/aliases",
         L->file, line, where, (int)(len > 80 ? 80 : len), s, sb.buf ? sb.buf : "",
         d->numeric_labels != 0 ? ", or an index 0..n-1" : "");
  mp_sb_free(&sb);
  return -1;
}

static mp_status map_score(loader *L, const val *v, uint32_t line, const char *where, double *out) {
  if (v->kind == V_INT) {
    *out = (double)v->i;
    return MP_OK;
  }
  if (v->kind == V_NUM) {
    *out = v->d;
    if (!isfinite(*out)) return mp_err(MP_ERR_FORMAT, "%s:%u: %s: score is not finite", L->file, line, where);
    return MP_OK;
  }
  if (v->kind == V_STR && v->len > 0 && v->len < 64) {
    char buf[64];
    memcpy(buf, v->s, v->len);
    buf[v->len] = 0;
    char *end;
    errno = 0;
    double x = strtod(buf, &end);
    while (*end == ' ')
      end++;
    if (end != buf && !*end && errno == 0 && isfinite(x) && buf[0] != ' ') {
      *out = x;
      return MP_OK;
    }
  }
  return mp_err(MP_ERR_FORMAT, "%s:%u: %s: score '%.*s' is not a number; fix the row or pick the right score column",
                L->file, line, where, (int)(v->kind == V_STR ? (v->len > 40 ? 40 : v->len) : 4),
                v->kind == V_STR ? v->s : "null");
}

static mp_status text_value(loader *L, const val *v, uint32_t line, const char *where, const char **out) {
  if (v->kind != V_STR)
    return mp_err(MP_ERR_FORMAT, "%s:%u: %s: expected text, found %s; check the text field names", L->file, line, where,
                  v->kind == V_NULL   ? "null"
                  : v->kind == V_BOOL ? "a boolean"
                  : v->kind == V_NONE ? "nothing"
                                      : "a number");
  size_t bad = mp_utf8_invalid_at(v->s, v->len);
  if (bad != (size_t)-1)
    return mp_err(MP_ERR_FORMAT,
                  "%s:%u: %s: invalid UTF-8 at byte %zu of the field (0x%02x); re-encode the file as UTF-8 "
                  "(e.g. iconv -f latin1 -t utf-8)",
                  L->file, line, where, bad, (unsigned char)v->s[bad]);
  if (memchr(v->s, 0, v->len))
    return mp_err(MP_ERR_FORMAT, "%s:%u: %s: text contains a NUL byte; fix the file", L->file, line, where);
  char *c = mp_arena_strndup(&L->ds->arena, v->s, v->len);
  if (!c) return mp_err(MP_ERR_NOMEM, "%s: out of memory", L->file);
  *out = c;
  return MP_OK;
}

static mp_status push_example(loader *L, const val *a, const val *b, const val *lab, const val *sc, uint32_t line,
                              const char *where_a, const char *where_b, const char *where_l, const char *where_s) {
  mp_example e;
  memset(&e, 0, sizeof e);
  e.label = -1;
  e.score = NAN;
  e.line = line;
  if (L->need_label) {
    int idx = -1;
    int r = map_label(L, lab, line, where_l, &idx);
    if (r < 0) return MP_ERR_FORMAT;
    if (r == 0) {
      L->ds->n_dropped++;
      return MP_OK;
    }
    e.label = idx;
  }
  if (L->need_score) MP_TRY(map_score(L, sc, line, where_s, &e.score));
  MP_TRY(text_value(L, a, line, where_a, &e.text_a));
  if (L->need_b) MP_TRY(text_value(L, b, line, where_b, &e.text_b));
  mp_dataset *ds = L->ds;
  if (ds->n >= UINT32_MAX) return mp_err(MP_ERR_UNSUPPORTED, "%s: more than 2^32 examples", L->file);
  if (ds->n == L->cap) {
    size_t nc = L->cap ? L->cap * 2 : 1024;
    mp_example *nx = realloc(ds->ex, nc * sizeof *nx);
    if (!nx) return mp_err(MP_ERR_NOMEM, "%s: out of memory (%zu examples)", L->file, ds->n);
    ds->ex = nx;
    L->cap = nc;
  }
  e.index = (uint32_t)ds->n;
  ds->ex[ds->n++] = e;
  return MP_OK;
}

/* ------------------------------------------------------------------ delimited text */

typedef struct field {
  const char *s;
  size_t len;
  char *owned; /* unescaped copy when quoted */
} field;

typedef struct row {
  field *f;
  size_t n, cap;
} row;

static void row_clear(row *r) {
  for (size_t i = 0; i < r->n; i++)
    free(r->f[i].owned);
  r->n = 0;
}

static int row_push(row *r, const char *s, size_t len, char *owned) {
  if (r->n == r->cap) {
    size_t nc = r->cap ? r->cap * 2 : 16;
    if (nc > 1u << 20) {
      free(owned);
      return -1;
    }
    field *nf = realloc(r->f, nc * sizeof *nf);
    if (!nf) {
      free(owned);
      return -1;
    }
    r->f = nf;
    r->cap = nc;
  }
  r->f[r->n].s = s;
  r->f[r->n].len = len;
  r->f[r->n].owned = owned;
  r->n++;
  return 0;
}

/* Reads one record starting at *pos. Returns 1 with a record, 0 at end, -1 on error (set).
 * *line is the record's first line; *next_line is updated past it. */
static int read_record(loader *L, const char *buf, size_t n, size_t *pos, char delim, int quoting, uint32_t *line,
                       row *r) {
  row_clear(r);
  size_t p = *pos;
  if (p >= n) return 0;
  uint32_t start_line = *line;
  for (;;) {
    if (quoting && p < n && buf[p] == '"') {
      /* quoted field */
      mp_sb sb;
      mp_sb_init(&sb);
      size_t q = p + 1;
      uint32_t ln = *line;
      for (;;) {
        if (q >= n) {
          mp_sb_free(&sb);
          mp_err(MP_ERR_FORMAT,
                 "%s:%u: column %zu: quoted field never closed (unbalanced '\"'); fix the quote or read the "
                 "file with quoting off",
                 L->file, start_line, r->n + 1);
          return -1;
        }
        if (buf[q] == '"') {
          if (q + 1 < n && buf[q + 1] == '"') {
            mp_sb_putc(&sb, '"');
            q += 2;
            continue;
          }
          q++;
          break;
        }
        if (buf[q] == '\n') ln++;
        mp_sb_putc(&sb, buf[q]);
        q++;
      }
      if (q < n && buf[q] != delim && buf[q] != '\n' && !(buf[q] == '\r' && (q + 1 == n || buf[q + 1] == '\n'))) {
        mp_sb_free(&sb);
        mp_err(MP_ERR_FORMAT, "%s:%u: column %zu: unexpected character after a closing quote; fix the quoting", L->file,
               ln, r->n + 1);
        return -1;
      }
      *line = ln;
      if (sb.oom) {
        mp_sb_free(&sb);
        mp_err(MP_ERR_NOMEM, "%s: out of memory", L->file);
        return -1;
      }
      size_t len = sb.len;
      char *owned = mp_sb_steal(&sb);
      if (!owned) owned = calloc(1, 1);
      if (!owned || row_push(r, owned, len, owned) != 0) {
        mp_err(MP_ERR_NOMEM, "%s:%u: out of memory or too many columns", L->file, start_line);
        return -1;
      }
      p = q;
    } else {
      size_t q = p;
      while (q < n && buf[q] != delim && buf[q] != '\n')
        q++;
      size_t len = q - p;
      if (q < n && buf[q] == '\n' && len && buf[q - 1] == '\r')
        len--;
      else if (q == n && len && buf[q - 1] == '\r')
        len--;
      if (row_push(r, buf + p, len, NULL) != 0) {
        mp_err(MP_ERR_NOMEM, "%s:%u: out of memory or too many columns", L->file, start_line);
        return -1;
      }
      p = q;
    }
    if (p < n && buf[p] == '\r' && (p + 1 == n || buf[p + 1] == '\n')) p++;
    if (p >= n) break;
    if (buf[p] == delim) {
      p++;
      continue;
    }
    /* newline */
    p++;
    break;
  }
  *pos = p;
  (*line)++;
  return 1;
}

static int resolve_header_field(const row *hdr, const char *spec, int *col) {
  const char *alt[8];
  size_t lens[8];
  size_t na = split_alts(spec, alt, lens);
  for (size_t a = 0; a < na; a++)
    for (size_t i = 0; i < hdr->n; i++)
      if (name_eq(hdr->f[i].s, hdr->f[i].len, alt[a], lens[a])) {
        *col = (int)i;
        return 1;
      }
  return 0;
}

static mp_status missing_column(loader *L, const row *hdr, const char *what, const char *spec) {
  mp_sb sb;
  mp_sb_init(&sb);
  for (size_t i = 0; i < hdr->n && i < 40; i++) {
    mp_sb_printf(&sb, "%s'", i ? ", " : "");
    mp_sb_append(&sb, hdr->f[i].s, hdr->f[i].len > 60 ? 60 : hdr->f[i].len);
    mp_sb_putc(&sb, '\'');
  }
  mp_status s = mp_err(MP_ERR_FORMAT,
                       "%s:1: no %s column '%s' in the header (columns: %s); set the dataset's field names or "
                       "format",
                       L->file, what, spec, sb.buf ? sb.buf : "");
  mp_sb_free(&sb);
  return s;
}

static mp_status load_delimited(loader *L, const char *buf, size_t n, char delim) {
  const mp_dataset_def *d = &L->d;
  size_t pos = 0;
  if (n >= 3 && (unsigned char)buf[0] == 0xEF && (unsigned char)buf[1] == 0xBB && (unsigned char)buf[2] == 0xBF)
    pos = 3; /* UTF-8 byte-order mark (MRPC) */
  int quoting = d->quoting == MP_DS_UNSET ? (delim == ',') : d->quoting;
  int header = d->header == MP_DS_UNSET ? 1 : d->header;
  uint32_t line = 1;
  row r = {0};
  mp_status st = MP_OK;
  int ca = d->text_a_col, cb = d->text_b_col, cl = d->label_col, cs = d->score_col;
  size_t expect = 0; /* exact column count (header files) */
  size_t minc = d->min_columns > 0 ? (size_t)d->min_columns : 0;
  char wa[160], wb[160], wl[160], ws[160];
  if (header) {
    int k = read_record(L, buf, n, &pos, delim, quoting, &line, &r);
    if (k < 0) {
      st = MP_ERR_FORMAT;
      goto done;
    }
    if (k == 0) {
      st = mp_err(MP_ERR_FORMAT, "%s: empty file (no header line); give a file with a header and data rows", L->file);
      goto done;
    }
    for (size_t i = 0; i < r.n; i++) {
      size_t bad = mp_utf8_invalid_at(r.f[i].s, r.f[i].len);
      if (bad != (size_t)-1) {
        st = mp_err(MP_ERR_FORMAT, "%s:1: column %zu: header is not valid UTF-8; re-encode the file as UTF-8", L->file,
                    i + 1);
        goto done;
      }
    }
    expect = r.n;
    if (d->text_a && !resolve_header_field(&r, d->text_a, &ca)) {
      st = missing_column(L, &r, "text", d->text_a);
      goto done;
    }
    if (d->text_b && !resolve_header_field(&r, d->text_b, &cb)) {
      st = missing_column(L, &r, "second text", d->text_b);
      goto done;
    }
    if (L->need_label && d->label && !resolve_header_field(&r, d->label, &cl)) {
      st = missing_column(L, &r, "label", d->label);
      goto done;
    }
    if (L->need_score && d->score && !resolve_header_field(&r, d->score, &cs)) {
      st = missing_column(L, &r, "score", d->score);
      goto done;
    }
  }
  if (ca < 0 || (L->need_b && cb < 0) || (L->need_label && cl < 0) || (L->need_score && cs < 0)) {
    st = mp_err(MP_ERR_INVALID_ARG,
                "%s: header-less file needs column indices for text%s%s; set them in the dataset definition", L->file,
                L->need_b ? ", second text" : "",
                L->need_label   ? ", label"
                : L->need_score ? ", score"
                                : "");
    goto done;
  }
  int maxc = ca;
  if (L->need_b && cb > maxc) maxc = cb;
  if (L->need_label && cl > maxc) maxc = cl;
  if (L->need_score && cs > maxc) maxc = cs;
  if ((size_t)maxc + 1 > minc) minc = (size_t)maxc + 1;
  snprintf(wa, sizeof wa, "column %d", ca + 1);
  snprintf(wb, sizeof wb, "column %d", cb + 1);
  snprintf(wl, sizeof wl, "column %d", cl + 1);
  snprintf(ws, sizeof ws, "column %d", cs + 1);
  size_t rows = 0;
  for (;;) {
    size_t save = pos;
    uint32_t rec_line = line;
    int k = read_record(L, buf, n, &pos, delim, quoting, &line, &r);
    if (k < 0) {
      st = MP_ERR_FORMAT;
      goto done;
    }
    if (k == 0) break;
    if (r.n == 1 && r.f[0].len == 0) {
      /* empty line: allowed only as trailing lines */
      size_t q = save;
      while (q < n && (buf[q] == '\n' || buf[q] == '\r'))
        q++;
      if (q >= n) break;
      st = mp_err(MP_ERR_FORMAT, "%s:%u: empty line inside the data; remove it", L->file, rec_line);
      goto done;
    }
    if ((expect && r.n != expect) || r.n < minc) {
      st = mp_err(MP_ERR_FORMAT, "%s:%u: wrong column count: expected %s%zu, found %zu; fix the row%s", L->file,
                  rec_line, expect ? "" : "at least ", expect ? expect : minc, r.n,
                  quoting ? "" : " (or the delimiter / quoting setting)");
      goto done;
    }
    val va = {V_STR, r.f[ca].s, r.f[ca].len, 0, 0}, vb = {V_NONE, NULL, 0, 0, 0}, vl = vb, vs = vb;
    if (L->need_b) vb = (val){V_STR, r.f[cb].s, r.f[cb].len, 0, 0};
    if (L->need_label) vl = (val){V_STR, r.f[cl].s, r.f[cl].len, 0, 0};
    if (L->need_score) vs = (val){V_STR, r.f[cs].s, r.f[cs].len, 0, 0};
    st = push_example(L, &va, &vb, &vl, &vs, rec_line, wa, wb, wl, ws);
    if (st != MP_OK) goto done;
    rows++;
  }
  if (rows == 0 && L->ds->n_dropped == 0)
    st = mp_err(MP_ERR_FORMAT, "%s: empty file (%s); give a file with data rows", L->file,
                header ? "a header but no data rows" : "no data rows");
done:
  row_clear(&r);
  free(r.f);
  return st;
}

/* ------------------------------------------------------------------ JSON Lines */

static const mp_json *json_field(const mp_json *obj, const char *spec, const char **which, size_t *wlen) {
  const char *alt[8];
  size_t lens[8];
  size_t na = split_alts(spec, alt, lens);
  for (size_t a = 0; a < na; a++)
    for (size_t i = 0; i < obj->len; i++)
      if (name_eq(obj->keys[i], obj->key_lens[i], alt[a], lens[a])) {
        *which = alt[a];
        *wlen = lens[a];
        return obj->items[i];
      }
  return NULL;
}

static val json_val(const mp_json *j) {
  val v = {V_NONE, NULL, 0, 0, 0};
  switch (j->type) {
  case MP_JSON_NULL: v.kind = V_NULL; break;
  case MP_JSON_BOOL:
    v.kind = V_BOOL;
    v.i = j->boolean;
    break;
  case MP_JSON_NUMBER:
    if (j->is_int) {
      v.kind = V_INT;
      v.i = j->i;
    } else {
      v.kind = V_NUM;
      v.d = j->num;
    }
    break;
  case MP_JSON_STRING:
    v.kind = V_STR;
    v.s = j->str;
    v.len = j->len;
    break;
  default: v.kind = V_NONE; break;
  }
  return v;
}

static mp_status load_jsonl(loader *L, const char *buf, size_t n) {
  const mp_dataset_def *d = &L->d;
  size_t pos = 0;
  if (n >= 3 && (unsigned char)buf[0] == 0xEF && (unsigned char)buf[1] == 0xBB && (unsigned char)buf[2] == 0xBF)
    pos = 3;
  uint32_t line = 0;
  mp_arena scratch;
  mp_arena_init(&scratch, 1 << 16);
  mp_status st = MP_OK;
  size_t rows = 0;
  while (pos < n) {
    line++;
    const char *ls = buf + pos;
    const char *nl = memchr(ls, '\n', n - pos);
    size_t len = nl ? (size_t)(nl - ls) : n - pos;
    pos += len + (nl ? 1 : 0);
    size_t t = len;
    while (t && (ls[t - 1] == '\r' || ls[t - 1] == ' ' || ls[t - 1] == '\t'))
      t--;
    size_t h = 0;
    while (h < t && (ls[h] == ' ' || ls[h] == '\t'))
      h++;
    if (h == t) {
      size_t q = pos;
      while (q < n && (buf[q] == '\n' || buf[q] == '\r' || buf[q] == ' ' || buf[q] == '\t'))
        q++;
      if (q >= n) break;
      st = mp_err(MP_ERR_FORMAT, "%s:%u: empty line inside the data; remove it", L->file, line);
      goto done;
    }
    size_t bad = mp_utf8_invalid_at(ls, t);
    if (bad != (size_t)-1) {
      st = mp_err(MP_ERR_FORMAT,
                  "%s:%u:%zu: invalid UTF-8 (byte 0x%02x); re-encode the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)",
                  L->file, line, bad + 1, (unsigned char)ls[bad]);
      goto done;
    }
    mp_arena_reset(&scratch);
    mp_json *j = NULL;
    if (mp_json_parse(ls, t, "line", &scratch, &j) != MP_OK) {
      const char *m = mp_last_error();
      unsigned jl = 0, jc = 0;
      const char *msg = strstr(m, "invalid JSON: ");
      if (sscanf(m, "line:%u:%u:", &jl, &jc) != 2) jc = 0;
      char copy[256];
      snprintf(copy, sizeof copy, "%s", msg ? msg + 14 : m);
      st = mp_err(MP_ERR_FORMAT, "%s:%u:%u: malformed JSON line (%s); each line must be one JSON object", L->file, line,
                  jc, copy);
      goto done;
    }
    if (j->type != MP_JSON_OBJECT) {
      st = mp_err(MP_ERR_FORMAT, "%s:%u: expected a JSON object, found %s; each line must be one JSON object", L->file,
                  line, mp_json_type_name(j->type));
      goto done;
    }
    const char *w;
    size_t wl;
    char wa[96], wb[96], wlb[96], ws[96];
    const mp_json *ja = json_field(j, d->text_a, &w, &wl);
    if (!ja) {
      st = mp_err(MP_ERR_FORMAT, "%s:%u: missing field '%s'; set the dataset's text field names", L->file, line,
                  d->text_a);
      goto done;
    }
    snprintf(wa, sizeof wa, "field '%.*s'", (int)(wl > 60 ? 60 : wl), w);
    val va = json_val(ja), vb = {V_NONE, NULL, 0, 0, 0}, vl = vb, vs = vb;
    wb[0] = wlb[0] = ws[0] = 0;
    if (L->need_b) {
      const mp_json *jb = json_field(j, d->text_b, &w, &wl);
      if (!jb) {
        st = mp_err(MP_ERR_FORMAT, "%s:%u: missing field '%s'; set the dataset's text field names", L->file, line,
                    d->text_b);
        goto done;
      }
      snprintf(wb, sizeof wb, "field '%.*s'", (int)(wl > 60 ? 60 : wl), w);
      vb = json_val(jb);
    }
    if (L->need_label) {
      const mp_json *jlb = json_field(j, d->label, &w, &wl);
      if (!jlb) {
        st = mp_err(MP_ERR_FORMAT, "%s:%u: missing label field '%s'; set the dataset's label field", L->file, line,
                    d->label);
        goto done;
      }
      snprintf(wlb, sizeof wlb, "field '%.*s'", (int)(wl > 60 ? 60 : wl), w);
      vl = json_val(jlb);
      if (vl.kind == V_NONE) {
        st = mp_err(MP_ERR_FORMAT, "%s:%u: %s: label must be a string or an integer", L->file, line, wlb);
        goto done;
      }
    }
    if (L->need_score) {
      const mp_json *js = json_field(j, d->score, &w, &wl);
      if (!js) {
        st = mp_err(MP_ERR_FORMAT, "%s:%u: missing score field '%s'; set the dataset's score field", L->file, line,
                    d->score);
        goto done;
      }
      snprintf(ws, sizeof ws, "field '%.*s'", (int)(wl > 60 ? 60 : wl), w);
      vs = json_val(js);
    }
    st = push_example(L, &va, &vb, &vl, &vs, line, wa, wb, wlb, ws);
    if (st != MP_OK) goto done;
    rows++;
  }
  if (rows == 0 && L->ds->n_dropped == 0)
    st = mp_err(MP_ERR_FORMAT, "%s: empty file (no JSON lines); give a file with one JSON object per line", L->file);
done:
  mp_arena_free(&scratch);
  return st;
}

/* ------------------------------------------------------------------ Parquet */

static int pq_find(const mp_parquet *pq, const char *spec, int col_index, const char **which) {
  if (!spec) {
    if (col_index >= 0 && (size_t)col_index < mp_parquet_num_columns(pq)) {
      *which = mp_parquet_column(pq, (size_t)col_index)->name;
      return col_index;
    }
    return -1;
  }
  const char *alt[8];
  size_t lens[8];
  size_t na = split_alts(spec, alt, lens);
  for (size_t a = 0; a < na; a++)
    for (size_t i = 0; i < mp_parquet_num_columns(pq); i++) {
      const char *nm = mp_parquet_column(pq, i)->name;
      if (name_eq(nm, strlen(nm), alt[a], lens[a])) {
        *which = nm;
        return (int)i;
      }
    }
  return -1;
}

static val pq_val(const mp_pq_values *v, size_t r) {
  val x = {V_NONE, NULL, 0, 0, 0};
  if (v->is_null[r]) {
    x.kind = V_NULL;
    return x;
  }
  switch (v->type) {
  case MP_PQ_BOOLEAN:
    x.kind = V_BOOL;
    x.i = v->i64[r];
    break;
  case MP_PQ_INT32:
  case MP_PQ_INT64:
    x.kind = V_INT;
    x.i = v->i64[r];
    break;
  case MP_PQ_FLOAT: {
    /* float32 scores (HF glue/stsb): the shortest decimal that round-trips the float, so 2.4f
     * reads as 2.4 like the TSV copy (what Python prints for numpy.float32) */
    x.kind = V_NUM;
    x.d = v->f64[r];
    float f = (float)v->f64[r];
    for (int prec = 1; prec <= 9 && isfinite(f); prec++) {
      char b[40];
      snprintf(b, sizeof b, "%.*g", prec, (double)f);
      double d = strtod(b, NULL);
      if ((float)d == f) {
        x.d = d;
        break;
      }
    }
    break;
  }
  case MP_PQ_DOUBLE:
    x.kind = V_NUM;
    x.d = v->f64[r];
    break;
  case MP_PQ_BYTE_ARRAY:
    x.kind = V_STR;
    x.s = v->str[r];
    x.len = v->str_len[r];
    break;
  default: break;
  }
  return x;
}

static mp_status pq_missing(loader *L, const mp_parquet *pq, const char *what, const char *spec) {
  mp_sb sb;
  mp_sb_init(&sb);
  for (size_t i = 0; i < mp_parquet_num_columns(pq) && i < 40; i++)
    mp_sb_printf(&sb, "%s'%s'", i ? ", " : "", mp_parquet_column(pq, i)->name);
  mp_status s = mp_err(MP_ERR_FORMAT, "%s: no %s column '%s' (columns: %s); set the dataset's field names", L->file,
                       what, spec ? spec : "(index)", sb.buf ? sb.buf : "");
  mp_sb_free(&sb);
  return s;
}

static mp_status load_parquet(loader *L, const char *path) {
  const mp_dataset_def *d = &L->d;
  mp_parquet *pq = NULL;
  MP_TRY(mp_parquet_open(path, &pq));
  mp_status st = MP_OK;
  const char *na = NULL, *nb = NULL, *nl = NULL, *ns = NULL;
  int ca = pq_find(pq, d->text_a, d->text_a_col, &na);
  int cb = L->need_b ? pq_find(pq, d->text_b, d->text_b_col, &nb) : -1;
  int cl = L->need_label ? pq_find(pq, d->label, d->label_col, &nl) : -1;
  int cs = L->need_score ? pq_find(pq, d->score, d->score_col, &ns) : -1;
  if (ca < 0)
    st = pq_missing(L, pq, "text", d->text_a);
  else if (L->need_b && cb < 0)
    st = pq_missing(L, pq, "second text", d->text_b);
  else if (L->need_label && cl < 0)
    st = pq_missing(L, pq, "label", d->label);
  else if (L->need_score && cs < 0)
    st = pq_missing(L, pq, "score", d->score);
  if (st != MP_OK) goto done;
  mp_pq_values va, vb, vl, vs;
  memset(&vb, 0, sizeof vb);
  memset(&vl, 0, sizeof vl);
  memset(&vs, 0, sizeof vs);
  if ((st = mp_parquet_read_column(pq, (size_t)ca, &va)) != MP_OK) goto done;
  if (L->need_b && (st = mp_parquet_read_column(pq, (size_t)cb, &vb)) != MP_OK) goto done;
  if (L->need_label && (st = mp_parquet_read_column(pq, (size_t)cl, &vl)) != MP_OK) goto done;
  if (L->need_score && (st = mp_parquet_read_column(pq, (size_t)cs, &vs)) != MP_OK) goto done;
  char wa[96], wb[96], wl[96], ws[96];
  snprintf(wa, sizeof wa, "column '%s'", na);
  snprintf(wb, sizeof wb, "column '%s'", nb ? nb : "");
  snprintf(wl, sizeof wl, "column '%s'", nl ? nl : "");
  snprintf(ws, sizeof ws, "column '%s'", ns ? ns : "");
  size_t rows = va.n;
  if (rows == 0 && L->ds->n == 0) {
    st = mp_err(MP_ERR_FORMAT, "%s: the Parquet file has no rows; give a file with data", L->file);
    goto done;
  }
  for (size_t r = 0; r < rows; r++) {
    val a = pq_val(&va, r), b = {V_NONE, NULL, 0, 0, 0}, l = b, s = b;
    if (L->need_b) b = pq_val(&vb, r);
    if (L->need_label) l = pq_val(&vl, r);
    if (L->need_score) s = pq_val(&vs, r);
    if (r >= UINT32_MAX) {
      st = mp_err(MP_ERR_UNSUPPORTED, "%s: too many rows", L->file);
      goto done;
    }
    st = push_example(L, &a, &b, &l, &s, (uint32_t)(r + 1), wa, wb, wl, ws);
    if (st != MP_OK) goto done;
  }
done:
  mp_parquet_close(pq);
  if (st != MP_OK && strncmp(mp_last_error(), L->file, strlen(L->file)) != 0) mp_err_prefix(st, "%s", L->file);
  return st;
}

/* ------------------------------------------------------------------ main entry */

void mp_dataset_free(mp_dataset *ds) {
  if (!ds) return;
  free(ds->ex);
  mp_arena_free(&ds->arena);
  free(ds);
}

mp_status mp_dataset_load(const mp_dataset_def *def, mp_dataset **out) {
  *out = NULL;
  loader L;
  memset(&L, 0, sizeof L);
  L.d = *def;
  if (L.d.key) MP_TRY(mp_dataset_builtin(L.d.key, &L.d));
  mp_dataset_def *d = &L.d;
  if (!d->split) d->split = "validation";
  if (!d->text_a && d->text_a_col < 0)
    return mp_err(MP_ERR_INVALID_ARG,
                  "dataset %s: which columns hold the text is not known: give the task (--task nli, "
                  "semantic-similarity, text-classification, ...: its usual column names are used), name the "
                  "fields (--text-fields A[,B], --label-field / --score-field; text_a / text_b in a pipeline "
                  "dataset) or use a built-in key",
                  d->key    ? d->key
                  : d->path ? d->path
                            : "?");
  if (d->label_names && d->n_label_names > 1024)
    return mp_err(MP_ERR_INVALID_ARG, "dataset: too many label names (%zu)", d->n_label_names);
  L.need_b = d->text_b != NULL || d->text_b_col >= 0;
  L.need_score = (d->score != NULL || d->score_col >= 0);
  L.need_label = !L.need_score && (d->label != NULL || d->label_col >= 0);
  if (L.need_label && (!d->label_names || d->n_label_names == 0))
    return mp_err(MP_ERR_INVALID_ARG, "dataset %s: a label field needs the ordered label names",
                  d->key    ? d->key
                  : d->path ? d->path
                            : "?");

  /* files */
  strlist files = {0};
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
    st = resolve_folder(path, d, &files);
  } else if (mp_is_file(path)) {
    if (sl_push(&files, strdup(path)) != 0) st = mp_err(MP_ERR_NOMEM, "out of memory");
  } else {
    st = mp_err(MP_ERR_NOT_FOUND, "%s: no such file or folder; check the dataset path", path);
  }
  free(snap);
  if (st != MP_OK) {
    sl_free(&files);
    return st;
  }

  mp_dataset *ds = calloc(1, sizeof *ds);
  if (!ds) {
    sl_free(&files);
    return mp_err(MP_ERR_NOMEM, "out of memory");
  }
  mp_arena_init(&ds->arena, 1 << 20);
  L.ds = ds;
  ds->name = mp_arena_strdup(&ds->arena, d->key ? d->key : mp_path_basename(files.v[0]));
  ds->path = mp_arena_strdup(&ds->arena, files.v[0]);
  ds->has_pairs = L.need_b;
  ds->has_score = L.need_score;
  if (L.need_label) {
    ds->labels = mp_arena_alloc(&ds->arena, d->n_label_names * sizeof(char *));
    if (!ds->labels) st = mp_err(MP_ERR_NOMEM, "out of memory");
    for (size_t i = 0; st == MP_OK && i < d->n_label_names; i++) {
      ds->labels[i] = mp_arena_strdup(&ds->arena, d->label_names[i] ? d->label_names[i] : "");
      if (!ds->labels[i]) st = mp_err(MP_ERR_NOMEM, "out of memory");
    }
    ds->n_labels = d->n_label_names;
  }
  mp_ds_format fmt = d->format;
  if (fmt == MP_DS_AUTO) {
    fmt = format_from_ext(files.v[0]);
    if (fmt == MP_DS_TSV && d->key) {
      const builtin *b = find_builtin(d->key);
      if (b && (b->format == MP_DS_GLUE_TSV || b->format == MP_DS_TSV)) fmt = b->format;
    }
    if (fmt == MP_DS_AUTO && d->key) {
      const builtin *b = find_builtin(d->key);
      if (b) fmt = b->format;
    }
    if (fmt == MP_DS_AUTO && st == MP_OK)
      st = mp_err(MP_ERR_INVALID_ARG, "%s: cannot tell the format from the name; set format (tsv, csv, jsonl, parquet)",
                  files.v[0]);
  }
  ds->format = fmt;
  if (fmt == MP_DS_GLUE_TSV) {
    if (d->quoting == MP_DS_UNSET) d->quoting = 0;
    if (d->header == MP_DS_UNSET) d->header = 1;
  }
  for (size_t f = 0; st == MP_OK && f < files.n; f++) {
    L.file = files.v[f];
    if (fmt == MP_DS_PARQUET) {
      st = load_parquet(&L, files.v[f]);
      continue;
    }
    char *buf = NULL;
    size_t n = 0;
    st = mp_read_file(files.v[f], &buf, &n, MP_DS_MAX_FILE);
    if (st != MP_OK) break;
    if (n == 0)
      st = mp_err(MP_ERR_FORMAT, "%s: empty file (0 bytes); give a file with data", files.v[f]);
    else if (fmt == MP_DS_JSONL)
      st = load_jsonl(&L, buf, n);
    else
      st = load_delimited(&L, buf, n, fmt == MP_DS_CSV ? ',' : '\t');
    free(buf);
  }
  if (st == MP_OK && ds->n == 0)
    st = mp_err(MP_ERR_FORMAT, "%s: no examples with a gold label (%zu rows dropped); check the label field",
                files.v[0], ds->n_dropped);
  /* the file-local index becomes the dataset-wide one (multi-file splits) */
  for (size_t i = 0; st == MP_OK && i < ds->n; i++)
    ds->ex[i].index = (uint32_t)i;
  ds->n_total = ds->n;
  sl_free(&files);
  if (st != MP_OK) {
    mp_dataset_free(ds);
    return st;
  }
  *out = ds;
  return MP_OK;
}
