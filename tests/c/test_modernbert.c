/* ModernBERT parameter count from config.json alone (mp_family_modernbert.param_count) against
 * transformers' num_parameters().
 *
 * Without arguments: the real shared config of modernbert-large-zeroshot-v2 and three variants
 * written here, against counts printed by transformers 4.48.3
 * (`tools/modernbert_ref.py params DIR`, model built from the config with no_init_weights).
 * With arguments `DIR COUNT [DIR COUNT ...]`: checks those folders against those counts;
 * tests/py/test_model_parity_modernbert.py runs it that way with counts it gets from
 * transformers live. */
#include <stdlib.h>

#include "core/arena.h"
#include "core/fs.h"
#include "format/hf.h"
#include "model/model_internal.h"
#include "testlib.h"

static int64_t count_of(const char *dir) {
  mp_model_config cfg;
  mp_arena a;
  mp_arena_init(&a, 0);
  mp_json *cj = NULL;
  int64_t n = -2;
  if (mp_model_config_load(dir, &cfg) != MP_OK) {
    fprintf(stderr, "%s: %s\n", dir, mp_last_error());
    mp_arena_free(&a);
    return -2;
  }
  if (mp_hf_load_config(dir, &a, &cj) == MP_OK)
    n = mp_family_modernbert.param_count(&cfg, cj);
  else
    fprintf(stderr, "%s: %s\n", dir, mp_last_error());
  mp_model_config_free(&cfg);
  mp_arena_free(&a);
  return n;
}

static void check_dir(const char *dir, int64_t want) {
  int64_t got = count_of(dir);
  CHECKF(got == want, "%s: param_count %lld, transformers %lld", dir, (long long)got, (long long)want);
}

static void write_cfg(const char *name, const char *json) {
  char *d = mp_path_join(mp_test_tmpdir(), name);
  char *p = mp_path_join(d, "config.json");
  mp_mkdirs(d);
  CHECK_OK(mp_write_file_atomic(p, json, strlen(json)));
  free(p);
  free(d);
}

#define SMALL                                                                                                          \
  "\"model_type\": \"modernbert\", \"vocab_size\": 50368, \"hidden_size\": 128, \"intermediate_size\": 256, "          \
  "\"num_hidden_layers\": 3, \"num_attention_heads\": 4, \"max_position_embeddings\": 8192"

static void test_variants(void) {
  /* transformers 4.48.3: 6957314, 6961027, 6939520 */
  write_cfg("small", "{" SMALL ", \"architectures\": [\"ModernBertForSequenceClassification\"], \"norm_bias\": true, "
                     "\"id2label\": {\"0\": \"entailment\", \"1\": \"not_entailment\"}}");
  write_cfg("bias", "{" SMALL ", \"architectures\": [\"ModernBertForSequenceClassification\"], \"norm_bias\": true, "
                    "\"attention_bias\": true, \"mlp_bias\": true, \"classifier_bias\": true, "
                    "\"id2label\": {\"0\": \"a\", \"1\": \"b\", \"2\": \"c\"}}");
  write_cfg("bare", "{" SMALL ", \"architectures\": [\"ModernBertModel\"]}");
  static const struct {
    const char *name;
    int64_t want;
  } v[] = {{"small", 6957314}, {"bias", 6961027}, {"bare", 6939520}};
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    char *d = mp_path_join(mp_test_tmpdir(), v[i].name);
    check_dir(d, v[i].want);
    free(d);
  }
}

static void test_real_config(void) {
  const char *sh = mp_test_shared_dir();
  char *d = mp_path_join(sh, "models/modernbert-large-zeroshot-v2");
  check_dir(d, 395833346); /* transformers 4.48.3 ModernBertForSequenceClassification */
  free(d);
}

int main(int argc, char **argv) {
  if (argc > 1) {
    for (int i = 1; i + 1 < argc; i += 2)
      check_dir(argv[i], strtoll(argv[i + 1], NULL, 10));
    return mp_test_done();
  }
  RUN(test_variants);
  RUN(test_real_config);
  return mp_test_done();
}
