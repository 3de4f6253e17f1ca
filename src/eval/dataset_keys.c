/* The built-in dataset keys (sst2, stsb, mnli, ...: format, split, field names, ordered label names,
 * label aliases), the key a config's HF name/subset means, and the usual field names of a task
 * (docs/datasets.md). */
#include <string.h>

#include "core/error.h"
#include "core/strbuf.h"
#include "eval/dataset_internal.h"

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

const char *const *mp_dataset_builtin_keys(void) { return builtin_keys; }

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
  /* the key's format only applies when the file's extension does not say otherwise (dataset.c) */
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

const char *mp_ds_builtin_key(const char *key, mp_ds_format *format) {
  const builtin *b = find_builtin(key);
  if (format) *format = b ? b->format : MP_DS_AUTO;
  return b ? b->key : NULL;
}
