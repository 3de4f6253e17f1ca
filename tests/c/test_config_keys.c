/* The config.json allow-list (src/model/config_keys.c, through mp_model_config_load): the real
 * configs of ../shared/models and the 5.x-schema keys load; an unknown key, auto_map, a
 * transformers quantization_config, is_decoder / add_cross_attention true and pruned heads are
 * refused with the file, the key and what to do in the message. The 5.x ModernBERT values
 * (rope_parameters, layer_types) are checked against transformers 5.x in
 * tests/py/test_model_parity_tf5.py. */
#include <stdlib.h>

#include "core/error.h"
#include "core/fs.h"
#include "model/config.h"
#include "testlib.h"

static char *write_cfg(const char *name, const char *json) {
  char *d = mp_path_join(mp_test_tmpdir(), name);
  mp_test_write(d, "config.json", json);
  return d;
}

#define BERT                                                                                                           \
  "\"model_type\": \"bert\", \"vocab_size\": 100, \"hidden_size\": 8, \"num_hidden_layers\": 1, "                      \
  "\"num_attention_heads\": 2, \"intermediate_size\": 16, \"max_position_embeddings\": 32"

/* loads (want_ok) or is refused with every needle in the message */
static void expect(const char *name, const char *json, int want_ok, const char *n1, const char *n2) {
  char *d = write_cfg(name, json);
  mp_model_config c;
  mp_status st = mp_model_config_load(d, &c);
  if (want_ok) {
    CHECKF(st == MP_OK, "%s: %s", name, mp_last_error());
    if (st == MP_OK) mp_model_config_free(&c);
  } else {
    const char *e = mp_last_error();
    CHECKF(st == MP_ERR_UNSUPPORTED || st == MP_ERR_FORMAT, "%s: loaded", name);
    CHECKF(strstr(e, "config.json") != NULL, "%s: %s", name, e);
    CHECKF(!n1 || strstr(e, n1), "%s: no '%s' in: %s", name, n1, e);
    CHECKF(!n2 || strstr(e, n2), "%s: no '%s' in: %s", name, n2, e);
  }
  free(d);
  mp_err_clear();
}

static void test_real_configs(void) {
  const char *sh = mp_test_shared_dir(); /* never NULL: fails at once without test data */
  static const char *names[] = {"all-MiniLM-L6-v2",
                                "all-MiniLM-L12-v2",
                                "all-mpnet-base-v2",
                                "bart-large-mnli",
                                "deberta-v3-base-mnli-fever-anli",
                                "deberta-v3-xsmall-mnli-binary",
                                "distilbert-base-uncased-mnli",
                                "mobilebert-uncased-mnli",
                                "modernbert-large-zeroshot-v2",
                                "roberta-large-mnli",
                                "xtremedistil-l6-h256-nli-binary"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    char *m = mp_path_join(sh, "models");
    char *d = mp_path_join(m, names[i]);
    mp_model_config c;
    mp_status st = mp_model_config_load(d, &c);
    CHECKF(st == MP_OK, "%s: %s", names[i], mp_last_error());
    if (st == MP_OK) mp_model_config_free(&c);
    free(d);
    free(m);
  }
}

static void test_schemas(void) {
  /* 4.x and 5.x bookkeeping, generation and training keys */
  expect("v4",
         "{" BERT ", \"torch_dtype\": \"float32\", \"transformers_version\": \"4.46.3\", \"use_cache\": true, "
         "\"gradient_checkpointing\": false, \"position_embedding_type\": \"absolute\", \"num_beams\": 1}",
         1, 0, 0);
  expect("v5",
         "{" BERT ", \"dtype\": \"bfloat16\", \"transformers_version\": \"5.25.0\", \"is_decoder\": false, "
         "\"add_cross_attention\": false, \"tie_word_embeddings\": true, \"classifier_dropout\": null}",
         1, 0, 0);
  /* DistilBertConfig's attribute_map names */
  expect("distil-alias",
         "{\"model_type\": \"distilbert\", \"vocab_size\": 100, \"hidden_size\": 8, "
         "\"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"hidden_dim\": 16, \"max_position_embeddings\": 32}",
         1, 0, 0);
  /* ModernBERT 5.x keys pass the allow-list (their values are read when the weights are bound) */
  expect("modernbert-5x",
         "{\"model_type\": \"modernbert\", \"vocab_size\": 100, \"hidden_size\": 8, "
         "\"num_hidden_layers\": 2, \"num_attention_heads\": 2, \"intermediate_size\": 16, "
         "\"max_position_embeddings\": 64, \"layer_types\": [\"full_attention\", \"sliding_attention\"], "
         "\"rope_parameters\": {\"full_attention\": {\"rope_type\": \"default\", \"rope_theta\": 500.0}}}",
         1, 0, 0);
  /* MLX's quantization block and its mirror */
  expect("mlx-q",
         "{" BERT ", \"quantization\": {\"bits\": 8, \"group_size\": 64}, "
         "\"quantization_config\": {\"bits\": 8, \"group_size\": 64}}",
         1, 0, 0);
}

static void test_refused(void) {
  expect("unknown", "{" BERT ", \"new_switch\": 1}", 0, "\"new_switch\"", "not understood");
  expect("unknown-line", "{" BERT ",\n\"new_switch\": 1}", 0, "config.json:2:", "remove it");
  /* a key of another family is not understood in this one */
  expect("foreign", "{" BERT ", \"rope_parameters\": {}}", 0, "\"rope_parameters\"", "\"bert\"");
  expect("auto_map", "{" BERT ", \"auto_map\": {\"AutoModel\": \"m.X\"}}", 0, "auto_map", "trust_remote_code");
  expect("hf-quant", "{" BERT ", \"quantization_config\": {\"quant_method\": \"bitsandbytes\"}}", 0,
         "quantization_config", "floating-point");
  expect("decoder", "{" BERT ", \"is_decoder\": true}", 0, "is_decoder", "encoders only");
  expect("xattn", "{" BERT ", \"add_cross_attention\": true}", 0, "add_cross_attention", 0);
  expect("pruned", "{" BERT ", \"pruned_heads\": {\"0\": [1]}}", 0, "pruned_heads", 0);
  expect("relative", "{" BERT ", \"position_embedding_type\": \"relative_key\"}", 0, "relative_key", 0);
  expect("bart-alias", "{\"model_type\": \"bart\", \"encoder_layers\": 2, \"num_hidden_layers\": 3}", 0,
         "num_hidden_layers", "encoder_layers");
}

int main(void) {
  RUN(test_schemas);
  RUN(test_refused);
  RUN(test_real_configs);
  return mp_test_done();
}
