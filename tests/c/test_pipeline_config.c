/* Pipeline configuration: merging, validation messages with file:line:column, duplicates. */
#include <stdlib.h>

#include "core/error.h"
#include "core/fs.h"
#include "pipeline/config.h"
#include "testlib.h"

static char *write_cfg(const char *name, const char *text) {
  char *p = mp_path_join(mp_test_tmpdir(), name);
  mp_write_file_atomic(p, text, strlen(text));
  return p;
}

static mp_status load1(const char *path, mp_pl_config **c) {
  const char *pats[] = {path};
  return mp_pl_config_load(pats, 1, c);
}

static void test_valid_and_merge(void) {
  char *a =
      write_cfg("a.yaml", "models:\n  - name: m1\n    hf_name: org/m1\n    quantization: {bits: 4, group_size: 32}\n"
                          "    benchmarks: [mnli]\n");
  char *b =
      write_cfg("b.yaml", "datasets:\n  mnli: {name: glue, subset: mnli}\nmodels:\n  - name: m2\n    hf_name: org/m2\n"
                          "    benchmarks: [mnli]\n");
  char pat[1100];
  snprintf(pat, sizeof pat, "%s/*.yaml", mp_test_tmpdir());
  const char *pats[] = {pat};
  mp_pl_config *c = NULL;
  CHECK_OK(mp_pl_config_load(pats, 1, &c));
  REQUIRE(c);
  CHECK(c->n_models == 2 && c->n_datasets == 1 && c->n_files == 2);
  const mp_pl_model *m1 = mp_pl_config_model(c, "m1");
  REQUIRE(m1);
  CHECK(m1->quant.bits == 4 && m1->quant.group_size == 32 && m1->quant.min_speedup == 1.2);
  CHECK(mp_pl_config_model(c, "m2")->quant.bits == 8);
  mp_pl_config_free(c);
  remove(a), remove(b);
  free(a), free(b);
}

static void expect_error(const char *yaml, const char *needle) {
  char *p = write_cfg("bad.yaml", yaml);
  mp_pl_config *c = NULL;
  mp_status st = load1(p, &c);
  CHECKF(st == MP_ERR_INVALID_ARG, "accepted: %s", yaml);
  CHECKF(strstr(mp_last_error(), needle) != NULL, "message lacks '%s': %s", needle, mp_last_error());
  mp_pl_config_free(c);
  remove(p);
  free(p);
}

static void test_errors(void) {
  expect_error("models:\n  - name: a\n    hf_name: x/y\n    quantisation: {bits: 8}\n",
               "bad.yaml:4:19: unknown key \"quantisation\" in a model entry (did you mean \"quantization\"?)");
  expect_error("models:\n  - name: a\n    hf_name: x/y\n    quantization: {bits: 7}\n", "bits 7 is not supported");
  expect_error("models:\n  - name: a\n    hf_name: x/y\n    quantization: {group_size: 48}\n", "group_size 48");
  expect_error("models:\n  - name: microsoft/phi-2\n    hf_name: microsoft/phi-2\n", "cannot be used as a folder name");
  expect_error("models:\n  - name: a\n    hf_name: x/y\n    benchmarks: [mnlii]\ndatasets:\n  mnli: {name: glue}\n",
               "benchmark \"mnlii\" is not a defined dataset (did you mean \"mnli\"?)");
  expect_error("models:\n  - hf_name: x/y\n", "required key \"name\" is missing");
  expect_error("models:\n  - name: a\n    hf_name: x/y\n  - name: a\n    hf_name: x/z\n", "defined twice");
  expect_error("models: {a: 1}\n", "\"models\" must be a list");
  expect_error("models:\n  - name: a\n    hf_name: [1]\n", "must be a string");
}

static void test_duplicates(void) {
  char *a = write_cfg("d1.yaml", "datasets:\n  sentiment: {name: glue, subset: sst2, metrics: [accuracy]}\n"
                                 "  sentiment_analysis: {name: glue, subset: sst2, metrics: [f1]}\n"
                                 "models:\n  - name: m\n    hf_name: o/m\n    benchmarks: [sentiment]\n"
                                 "  - name: m-again\n    hf_name: o/m\n    benchmarks: [sentiment_analysis]\n"
                                 "  - name: m\n    hf_name: o/m\n    benchmarks: [sentiment]\n");
  mp_pl_config *c = NULL;
  CHECK_OK(load1(a, &c));
  REQUIRE(c);
  CHECK(c->n_models == 2); /* identical duplicate kept once */
  const mp_pl_dataset *d = mp_pl_config_dataset(c, "sentiment_analysis");
  CHECK(d && d->same_as && !strcmp(d->same_as, "sentiment"));
  const mp_pl_model *m = mp_pl_config_model(c, "m");
  CHECK(m && m->n_aliases == 1 && !strcmp(m->aliases[0], "m-again"));
  CHECK(c->n_warnings >= 3);
  mp_pl_config_free(c);
  /* a dataset key in two files: error unless identical */
  char *b = write_cfg("d2.yaml", "datasets:\n  sentiment: {name: glue, subset: sst2, metrics: [accuracy, f1]}\n");
  const char *pats[] = {a, b};
  CHECK(mp_pl_config_load(pats, 2, &c) == MP_ERR_INVALID_ARG);
  CHECKF(strstr(mp_last_error(), "dataset \"sentiment\" is defined twice") != NULL, "%s", mp_last_error());
  free(a), free(b);
}

/* hf_name: ${VAR} and ${VAR:-default}; unset without a default, or malformed, is an error */
static void test_env_paths(void) {
  setenv("MP_TEST_ROOT_X", "/opt/models", 1);
  unsetenv("MP_TEST_UNSET_X");
  char *p = write_cfg("env.yaml", "models:\n  - name: a\n    hf_name: ${MP_TEST_ROOT_X}/a\n"
                                  "  - name: b\n    hf_name: ${MP_TEST_UNSET_X:-../cache}/b\n"
                                  "  - name: c\n    hf_name: x${MP_TEST_ROOT_X:-no}y$z\n");
  mp_pl_config *c = NULL;
  CHECK_OK(load1(p, &c));
  REQUIRE(c);
  CHECK_STREQ(mp_pl_config_model(c, "a")->hf_name, "/opt/models/a");
  CHECK_STREQ(mp_pl_config_model(c, "b")->hf_name, "../cache/b");
  CHECK_STREQ(mp_pl_config_model(c, "c")->hf_name, "x/opt/modelsy$z");
  mp_pl_config_free(c);
  remove(p);
  free(p);
  expect_error("models:\n  - name: a\n    hf_name: ${MP_TEST_UNSET_X}/a\n",
               "bad.yaml:3:14: a: \"hf_name\": environment variable MP_TEST_UNSET_X is not set");
  expect_error("models:\n  - name: a\n    hf_name: ${MP_TEST_ROOT_X/a\n", "unterminated");
  expect_error("models:\n  - name: a\n    hf_name: ${MP_TEST_ROOT_X:+x}/a\n", "bad reference");
  expect_error("models:\n  - name: a\n    hf_name: ${}/a\n", "bad reference");
}

/* gpu_memory_mb: the GPU memory budget per device (top level or under defaults:) */
static void test_gpu_memory_mb(void) {
  mp_pl_config *c = NULL;
  char *p = write_cfg("gpu.yaml", "gpu_memory_mb: 70000\nmodels:\n  - name: a\n    hf_name: x/y\n    device: cuda:1\n");
  CHECK_OK(load1(p, &c));
  REQUIRE(c);
  CHECK(c->gpu_memory_mb == 70000);
  CHECK_STREQ(mp_pl_config_model(c, "a")->device, "cuda:1");
  mp_pl_config_free(c);
  remove(p);
  free(p);
  p = write_cfg("gpu2.yaml", "defaults:\n  gpu_memory_mb: 12288.5\nmodels:\n  - name: a\n    hf_name: x/y\n");
  CHECK_OK(load1(p, &c));
  REQUIRE(c);
  CHECK(c->gpu_memory_mb == 12288.5);
  mp_pl_config_free(c);
  remove(p);
  free(p);
  /* not set: 0 (the device's memory x 0.9 at run time) */
  p = write_cfg("gpu3.yaml", "models:\n  - name: a\n    hf_name: x/y\n");
  CHECK_OK(load1(p, &c));
  REQUIRE(c);
  CHECK(c->gpu_memory_mb == 0);
  mp_pl_config_free(c);
  remove(p);
  free(p);
  expect_error("gpu_memory_mb: -100\nmodels: []\n",
               "bad.yaml:1:16: gpu_memory_mb must be a positive number of megabytes (the GPU memory budget per "
               "device), not -100");
  expect_error("gpu_memory_mb: 0\n", "gpu_memory_mb must be a positive number of megabytes");
  expect_error("gpu_memory_mb: lots\n", "bad.yaml:1:16: gpu_memory_mb must be a number of megabytes (the GPU memory "
                                        "budget per device, e.g. 70000), not \"lots\"");
  expect_error("gpu_memory_mb: [1, 2]\n", "gpu_memory_mb must be a number of megabytes");
  expect_error("defaults:\n  gpu_memory_mb: 80GB\n", "bad.yaml:2:18: defaults.gpu_memory_mb must be a number");
  expect_error("gpu_memory_mb: 1000\ndefaults:\n  gpu_memory_mb: 1000\n", "set both at the top level and under");
  expect_error("gpu_memory_mb: 1000\ngpu_memory: 5\n", "unknown key \"gpu_memory\" in the top level (did you mean "
                                                       "\"gpu_memory_mb\"?)");
  /* two files must agree */
  char *a = write_cfg("g1.yaml", "gpu_memory_mb: 1000\n");
  char *b = write_cfg("g2.yaml", "gpu_memory_mb: 2000\n");
  const char *pats[] = {a, b};
  CHECK(mp_pl_config_load(pats, 2, &c) == MP_ERR_INVALID_ARG);
  CHECKF(strstr(mp_last_error(), "g2.yaml:1:16: gpu_memory_mb: 2000 differs from 1000 set in") != NULL, "%s",
         mp_last_error());
  remove(a), remove(b);
  free(a), free(b);
}

static void test_shipped_configs(void) {
  char m[1024], d[1024];
  snprintf(m, sizeof m, "%s/config/models.yaml", mp_test_source_dir());
  snprintf(d, sizeof d, "%s/config/datasets.yaml", mp_test_source_dir());
  const char *pats[] = {m, d};
  mp_pl_config *c = NULL;
  CHECK_OK(mp_pl_config_load(pats, 2, &c));
  REQUIRE(c);
  CHECK(c->n_models == 11);
  CHECK(c->n_datasets == 11);
  mp_pl_config_free(c);
  snprintf(m, sizeof m, "%s/config/default.yaml", mp_test_source_dir());
  const char *p2[] = {m};
  CHECK_OK(mp_pl_config_load(p2, 1, &c));
  mp_pl_config_free(c);
}

int main(void) {
  RUN(test_valid_and_merge);
  RUN(test_errors);
  RUN(test_duplicates);
  RUN(test_env_paths);
  RUN(test_gpu_memory_mb);
  RUN(test_shipped_configs);
  return mp_test_done();
}
