/* src/eval/dataset*.c: the real shared dev files (row counts and label distributions stated in
 * ../shared/datasets/SOURCES.md), sampling, UTF-8 validation, and error messages naming
 * file:line. The row-by-row comparison against an independent Python parse is in
 * tests/py/test_datasets.py. */
#include <math.h>
#include <stdlib.h>

#include "core/error.h"
#include "core/fs.h"
#include "core/utf8.h"
#include "eval/dataset.h"
#include "testlib.h"

static char *shared_path(const char *rel) {
  const char *sh = mp_test_shared_dir();
  char *d = mp_path_join(sh, "datasets");
  char *p = mp_path_join(d, rel);
  free(d);
  return p;
}

static mp_dataset *load(const char *key, const char *path) {
  mp_dataset_def d;
  mp_dataset_def_init(&d);
  d.key = key;
  d.path = path;
  mp_dataset *ds = NULL;
  mp_status s = mp_dataset_load(&d, &ds);
  if (s != MP_OK) fprintf(stderr, "load %s: %s\n", key, mp_last_error());
  return ds;
}

typedef struct expect {
  const char *key, *rel;
  size_t n;
  size_t counts[3];
} expect;

static void test_real_files(void) {
  static const expect ex[] = {
      {"sst2", "sst2/dev.tsv", 872, {428, 444, 0}},
      {"qnli", "qnli/dev.tsv", 5463, {2702, 2761, 0}},
      {"mrpc", "mrpc/dev.tsv", 408, {129, 279, 0}},
      {"rte", "rte/val.jsonl", 277, {146, 131, 0}},
      {"mnli", "mnli/validation_matched/dev.jsonl", 9815, {3479, 3123, 3213}},
      {"snli", "snli/validation/dev.jsonl", 9842, {3329, 3235, 3278}},
      {"stsb", "stsb/dev.tsv", 1500, {0, 0, 0}},
      {"stsb_original", "stsb/original/sts-dev.tsv", 1500, {0, 0, 0}},
  };
  for (size_t i = 0; i < sizeof ex / sizeof *ex; i++) {
    char *p = shared_path(ex[i].rel);
    mp_dataset *ds = load(ex[i].key, p);
    free(p);
    CHECKF(ds != NULL, "%s", ex[i].key);
    if (!ds) continue;
    CHECKF(ds->n == ex[i].n, "%s: %zu rows, expected %zu", ex[i].key, ds->n, ex[i].n);
    if (ds->n_labels) {
      size_t c[3] = {0, 0, 0};
      CHECK(ds->n_labels <= 3);
      mp_dataset_label_counts(ds, c);
      for (int k = 0; k < 3; k++)
        CHECKF(c[k] == ex[i].counts[k], "%s label %d: %zu", ex[i].key, k, c[k]);
    } else {
      CHECK(ds->has_score);
      double sum = 0, mn = 1e9, mx = -1e9;
      for (size_t r = 0; r < ds->n; r++) {
        sum += ds->ex[r].score;
        if (ds->ex[r].score < mn) mn = ds->ex[r].score;
        if (ds->ex[r].score > mx) mx = ds->ex[r].score;
      }
      CHECK(mn == 0.0 && mx == 5.0);
      CHECKF(fabs(sum / (double)ds->n - 2.364) < 5e-4, "%s mean %f", ex[i].key, sum / (double)ds->n);
    }
    mp_dataset_free(ds);
  }
  /* SST-2's defined order is negative, positive; first row is positive */
  char *p = shared_path("sst2/dev.tsv");
  mp_dataset *ds = load("sst2", p);
  free(p);
  if (ds) {
    CHECK_STREQ(ds->labels[0], "negative");
    CHECK_STREQ(ds->labels[1], "positive");
    CHECK(ds->ex[0].label == 1 && ds->ex[0].line == 2);
    CHECK(ds->ex[0].text_b == NULL);
    /* sampling: deterministic, sorted, a subset */
    mp_dataset *ds2 = load("sst2", ds->path);
    CHECK_OK(mp_dataset_sample(ds, 50, 7));
    CHECK_OK(mp_dataset_sample(ds2, 50, 7));
    CHECK(ds->n == 50 && ds->n_total == 872);
    for (size_t i = 0; i < ds->n; i++) {
      CHECK(ds->ex[i].index == ds2->ex[i].index);
      if (i) CHECK(ds->ex[i].index > ds->ex[i - 1].index);
    }
    mp_dataset_free(ds2);
    mp_dataset_free(ds);
  }
}

static void test_utf8(void) {
  CHECK(mp_utf8_invalid_at("abc", 3) == (size_t)-1);
  CHECK(mp_utf8_invalid_at("caf\xc3\xa9", 5) == (size_t)-1);
  CHECK(mp_utf8_invalid_at("\xf0\x9f\x98\x80", 4) == (size_t)-1);
  CHECK(mp_utf8_invalid_at("caf\xe9", 4) == 3);
  CHECK(mp_utf8_invalid_at("\xc0\xaf", 2) == 0);         /* overlong */
  CHECK(mp_utf8_invalid_at("\xed\xa0\x80", 3) == 0);     /* surrogate */
  CHECK(mp_utf8_invalid_at("\xf4\x90\x80\x80", 4) == 0); /* > U+10FFFF */
  CHECK(mp_utf8_invalid_at("ab\xe2\x82", 4) == 2);       /* truncated */
}

static void expect_error(const char *name, const char *content, const char *key, const char *needle) {
  char *p = mp_path_join(mp_test_tmpdir(), name);
  CHECK_OK(mp_write_file_atomic(p, content, strlen(content)));
  mp_dataset_def d;
  mp_dataset_def_init(&d);
  d.key = key;
  d.path = p;
  mp_dataset *ds = NULL;
  mp_status s = mp_dataset_load(&d, &ds);
  CHECKF(s == MP_ERR_FORMAT, "%s: status %d", name, s);
  CHECKF(strstr(mp_last_error(), p) && strstr(mp_last_error(), needle), "%s: '%s' lacks '%s'", name, mp_last_error(),
         needle);
  CHECK(ds == NULL);
  free(p);
}

static void test_errors(void) {
  expect_error("bad_label.tsv", "sentence\tlabel\nfine\t0\nodd\tmaybe\n", "sst2",
               ":3: column 2: unknown label value 'maybe'");
  expect_error("cols.tsv", "sentence\tlabel\nfine\t0\t9\n", "sst2", ":2: wrong column count: expected 2, found 3");
  expect_error("nohdr.tsv", "text\tlabel\n", "sst2", ":1: no text column 'sentence'");
  expect_error("empty.jsonl", "\n\n", "mnli", "empty file");
  expect_error("json.jsonl", "{\"premise\":\"a\",\"hypothesis\":\"b\",\"label\":\"neutral\"}\n{oops}\n", "mnli",
               ":2:2: malformed JSON line");
  expect_error("utf8.jsonl", "{\"premise\":\"caf\xe9\",\"hypothesis\":\"b\",\"label\":\"neutral\"}\n", "mnli",
               ":1:16: invalid UTF-8");
  expect_error("blank.tsv", "sentence\tlabel\na\t0\n\nb\t1\n", "sst2", ":3: empty line");
  expect_error("score.tsv", "main\tf\t2012\t1\tx\ta\tb\n", "stsb_original", ":1: column 5: score 'x' is not a number");
  expect_error("short.tsv", "main\tf\t2012\t1\t2.5\ta\n", "stsb_original",
               ":1: wrong column count: expected at least 7");
}

static void test_def_errors(void) {
  mp_dataset_def d;
  mp_dataset_def_init(&d);
  d.key = "nope";
  d.path = "/nonexistent";
  mp_dataset *ds = NULL;
  CHECK(mp_dataset_load(&d, &ds) == MP_ERR_NOT_FOUND);
  CHECK(strstr(mp_last_error(), "unknown dataset key 'nope'") != NULL);
  d.key = "sst2";
  CHECK(mp_dataset_load(&d, &ds) == MP_ERR_NOT_FOUND);
  CHECK(strstr(mp_last_error(), "/nonexistent: no such file") != NULL);
  mp_ds_format f;
  CHECK_OK(mp_ds_format_parse("glue_tsv", &f));
  CHECK(f == MP_DS_GLUE_TSV);
  CHECK(mp_ds_format_parse("xml", &f) == MP_ERR_INVALID_ARG);
  mp_dataset_free(NULL);
  CHECK_STREQ(mp_dataset_key_for("glue", "sst2"), "sst2");
  CHECK_STREQ(mp_dataset_key_for("nyu-mll/glue", "mnli"), "mnli");
  CHECK_STREQ(mp_dataset_key_for("super_glue", "rte"), "rte");
  CHECK_STREQ(mp_dataset_key_for("snli", NULL), "snli");
  CHECK_STREQ(mp_dataset_key_for("anli", NULL), "anli");
  CHECK_STREQ(mp_dataset_key_for("pietrolesci/nli_fever", NULL), "fever_nli");
  CHECK_STREQ(mp_dataset_key_for("glue", "stsb"), "stsb");
  CHECK(mp_dataset_key_for("glue", "cola") == NULL);
  CHECK(mp_dataset_key_for("imdb", NULL) == NULL);
}

int main(void) {
  RUN(test_utf8);
  RUN(test_errors);
  RUN(test_def_errors);
  RUN(test_real_files);
  return mp_test_done();
}
