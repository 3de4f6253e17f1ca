/* The public C API (include/mlxport.h) on the real all-MiniLM-L6-v2 and the project's NLI
 * classifier: version check, options struct_size, model (embed, classify, zero-shot, token
 * embeddings), tokenizer (encode, batch, decode, vocabulary), converter (dry run, progress),
 * evaluator (open, run, compare, gates) and the log callback. Uses only mlxport_* names. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mlxport.h"
#include "testlib.h"

#define MINILM "sentence-transformers/all-MiniLM-L6-v2"

static char g_nli[8192];

static void setup_paths(void) {
  const char *cache = mp_test_use_cache();
  snprintf(g_nli, sizeof g_nli, "%s/models/nli-minilm-l6-snli", cache);
  setenv("MLXPORT_TEST_DATA", mp_test_shared_dir(), 1);
}

static void test_version(void) {
  CHECK_STREQ(mlxport_version(), MLXPORT_VERSION_STRING);
  CHECK(mlxport_version_number() == MLXPORT_VERSION_NUMBER);
  CHECK(mlxport_check_version(MLXPORT_VERSION_NUMBER) == MLXPORT_OK);
  CHECK(mlxport_check_version(MLXPORT_VERSION_NUMBER + 10000) == MLXPORT_ERR_UNSUPPORTED);
  CHECK(strstr(mlxport_last_error(), MLXPORT_VERSION_STRING) != NULL);
  CHECK(mlxport_check_version(MLXPORT_VERSION_NUMBER + 1) == MLXPORT_ERR_UNSUPPORTED); /* newer headers */
  CHECK_STREQ(mlxport_status_name(MLXPORT_ERR_NOT_FOUND), "not found");
  mlxport_free(NULL);
  mlxport_model_close(NULL);
  mlxport_tokenizer_close(NULL);
  mlxport_encoding_free(NULL);
  mlxport_evaluator_close(NULL);
  mlxport_eval_result_free(NULL);
  mlxport_comparison_free(NULL);
}

static void test_model(void) {
  mlxport_model *m = NULL;
  mlxport_model_options o;
  mlxport_model_options_init(&o);
  CHECK(o.struct_size == sizeof o);
  o.struct_size = 3; /* not initialised */
  CHECK(mlxport_model_open(MINILM, &o, &m) == MLXPORT_ERR_INVALID_ARG && !m);
  CHECK(strstr(mlxport_last_error(), "mlxport_model_options_init") != NULL);
  CHECK(mlxport_model_open("/no/such/model", NULL, &m) == MLXPORT_ERR_NOT_FOUND && !m);
  CHECK(strstr(mlxport_last_error(), "/no/such/model") != NULL);
  mlxport_model_options_init(&o);
  CHECK(o.device_dtype == NULL);
  o.device_dtype = "float8"; /* refused by name, whatever the device */
  CHECK(mlxport_model_open(MINILM, &o, &m) == MLXPORT_ERR_INVALID_ARG && !m);
  CHECKF(strstr(mlxport_last_error(), "device_dtype") && strstr(mlxport_last_error(), "float8"), "%s",
         mlxport_last_error());
  mlxport_model_options_init(&o);
  o.device_dtype = "bfloat16"; /* a GPU setting: the CPU ignores it */
  REQUIRE(mlxport_model_open(MINILM, &o, &m) == MLXPORT_OK);
  mlxport_model_close(m);
  m = NULL;
  mlxport_model_options_init(&o);
  o.batch_size = 2;
  REQUIRE(mlxport_model_open(MINILM, &o, &m) == MLXPORT_OK);
  size_t d = mlxport_model_dim(m);
  CHECK(d == 384 && mlxport_model_num_labels(m) == 0 && !mlxport_model_label(m, 0) && !mlxport_model_is_quantized(m));
  const char *texts[] = {"A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby."};
  float *e = malloc(3 * d * sizeof *e), *e1 = malloc(d * sizeof *e1);
  CHECK(mlxport_model_embed(m, 3, texts, 1, e) == MLXPORT_OK);
  CHECK(mlxport_model_embed(m, 1, texts + 1, 0, e1) == MLXPORT_OK);
  double n0 = 0, c01 = 0, c02 = 0, diff = 0;
  for (size_t j = 0; j < d; j++)
    n0 += e[j] * e[j], c01 += e[j] * e[d + j], c02 += e[j] * e[2 * d + j], diff = fmax(diff, fabs(e1[j] - e[d + j]));
  CHECKF(fabs(n0 - 1) < 1e-5 && c01 > 0.6 && c02 < 0.2 && diff < 1e-5, "norm %g cos %g %g diff %g", n0, c01, c02, diff);
  float lg[3];
  CHECK(mlxport_model_classify(m, 1, texts, NULL, lg) == MLXPORT_ERR_UNSUPPORTED);
  CHECK(strstr(mlxport_last_error(), "no sequence-classification head") != NULL);
  float *tok = NULL;
  size_t nt = 0;
  CHECK(mlxport_model_token_embeddings(m, "Hello world!", &tok, &nt) == MLXPORT_OK && nt == 5 && tok);
  mlxport_free(tok);
  free(e), free(e1);
  mlxport_model_close(m);
}

static void test_classifier(void) {
  mlxport_model *m = NULL;
  REQUIRE(mlxport_model_open(g_nli, NULL, &m) == MLXPORT_OK);
  REQUIRE(mlxport_model_num_labels(m) == 3);
  CHECK_STREQ(mlxport_model_label(m, 0), "entailment");
  const char *a[] = {"A man is playing a guitar on stage.", "A black race car starts up in front of a crowd."};
  const char *b[] = {"A man is performing music.", "A man is driving down a lonely road."};
  float lg[6];
  CHECK(mlxport_model_classify(m, 2, a, b, lg) == MLXPORT_OK);
  CHECK(lg[0] > lg[1] && lg[0] > lg[2]); /* entailment */
  CHECK(lg[5] > lg[3] || lg[4] > lg[3]); /* not entailment */
  const char *labels[] = {"music", "cars", "cooking"};
  float sc[6];
  CHECK(mlxport_model_zero_shot(m, 2, a, 3, labels, NULL, 0, sc) == MLXPORT_OK);
  CHECKF(fabs(sc[0] + sc[1] + sc[2] - 1) < 1e-5 && sc[0] > sc[2] && sc[4] > sc[5], "%g %g %g / %g %g %g", sc[0], sc[1],
         sc[2], sc[3], sc[4], sc[5]);
  CHECK(mlxport_model_zero_shot(m, 2, a, 3, labels, "no placeholder", 0, sc) == MLXPORT_ERR_INVALID_ARG);
  CHECK(mlxport_model_zero_shot(m, 2, a, 3, labels, "It is about {}.", 1, sc) == MLXPORT_OK);
  CHECK(sc[0] > 0 && sc[0] < 1 && sc[1] > 0 && sc[1] < 1);
  mlxport_model_close(m);
}

static void test_tokenizer(void) {
  mlxport_tokenizer *t = NULL;
  CHECK(mlxport_tokenizer_open("/no/such/folder", &t) != MLXPORT_OK && !t);
  REQUIRE(mlxport_tokenizer_open(MINILM, &t) == MLXPORT_OK);
  int32_t ids[8];
  size_t n = 0;
  CHECK(mlxport_tokenizer_encode(t, "Hello world!", NULL, NULL, ids, 8, &n) == MLXPORT_OK && n == 5);
  CHECK(ids[0] == 101 && ids[1] == 7592 && ids[2] == 2088 && ids[3] == 999 && ids[4] == 102);
  CHECK(mlxport_tokenizer_encode(t, "Hello world!", NULL, NULL, ids, 2, &n) == MLXPORT_OK && n == 5);
  CHECK_STREQ(mlxport_tokenizer_id_to_token(t, 7592), "hello");
  CHECK(mlxport_tokenizer_token_to_id(t, "[CLS]") == 101 && mlxport_tokenizer_token_to_id(t, "no-such-token") == -1);
  CHECK(mlxport_tokenizer_vocab_size(t) == 30522 && !mlxport_tokenizer_id_to_token(t, 1 << 30));
  char *txt = NULL;
  CHECK(mlxport_tokenizer_decode(t, ids, 5, 1, &txt) == MLXPORT_OK && txt && !strcmp(txt, "hello world!"));
  mlxport_free(txt);
  const char *texts[] = {"a", "b c d"}, *pairs[] = {"x", "y"};
  mlxport_encoding *e = NULL;
  CHECK(mlxport_tokenizer_encode_batch(t, 2, texts, NULL, NULL, &e) == MLXPORT_OK);
  if (e)
    CHECK(e->n == 2 && e->seq_len == 5 && e->n_tokens[0] == 3 && e->attention_mask[3] == 0 && e->input_ids[3] == 0);
  mlxport_encoding_free(e);
  mlxport_encode_options o;
  mlxport_encode_options_init(&o);
  o.max_length = 4;
  o.truncation = MLXPORT_TRUNCATE_LONGEST_FIRST;
  o.padding = MLXPORT_PAD_MAX_LENGTH;
  CHECK(mlxport_tokenizer_encode_batch(t, 2, texts, pairs, &o, &e) == MLXPORT_OK);
  if (e) CHECK(e->seq_len == 4 && e->token_type_ids[4 + 3] == 1);
  mlxport_encoding_free(e);
  o.padding = (mlxport_padding)7;
  CHECK(mlxport_tokenizer_encode_batch(t, 2, texts, NULL, &o, &e) == MLXPORT_ERR_INVALID_ARG && !e);
  mlxport_tokenizer_close(t);
}

static int g_log_lines;
static void on_log(mlxport_log_level level, const char *msg, void *user) {
  (void)level;
  if (strstr(msg, "examples") && user == &g_log_lines) g_log_lines++;
}

static void test_evaluator(void) {
  mlxport_eval_options o;
  mlxport_eval_options_init(&o);
  o.dataset = "snli";
  o.max_samples = 12;
  o.in_process = 1;
  o.latency_requests = 0;
  o.max_accuracy_drop = 0.0;
  o.min_speedup = 0;
  mlxport_set_log_callback(on_log, &g_log_lines, MLXPORT_LOG_INFO);
  mlxport_evaluator *ev = NULL;
  REQUIRE(mlxport_evaluator_open(&o, &ev) == MLXPORT_OK);
  CHECK(mlxport_evaluator_size(ev) == 12);
  mlxport_eval_result *r1 = NULL, *r2 = NULL;
  CHECK(mlxport_evaluator_run(ev, "/no/such/model", &r1) != MLXPORT_OK && !r1);
  CHECK(mlxport_evaluator_run(ev, g_nli, &r1) == MLXPORT_OK);
  CHECK(mlxport_evaluator_run(ev, g_nli, &r2) == MLXPORT_OK);
  mlxport_comparison *c = NULL;
  if (r1 && r2) {
    CHECK_STREQ(mlxport_eval_result_metric_name(r1), "accuracy");
    CHECK(mlxport_eval_result_metric(r1) > 0.5 && mlxport_eval_result_metric(r1) == mlxport_eval_result_metric(r2));
    CHECK(strstr(mlxport_eval_result_json(r1), "\"accuracy\"") != NULL);
    CHECK(mlxport_evaluator_compare(ev, r1, r2, &c) == MLXPORT_OK);
  }
  mlxport_evaluator_close(ev); /* results and comparisons stay valid */
  if (c) {
    const char *name = NULL;
    double v = -1, thr = -1;
    int passed = 0;
    CHECK(mlxport_comparison_passed(c) && mlxport_comparison_metric_drop(c) == 0);
    CHECK(mlxport_comparison_gate_count(c) == 1);
    CHECK(mlxport_comparison_gate(c, 0, &name, &v, &thr, &passed) == MLXPORT_OK && passed && v == 0 && thr == 0);
    CHECK(name && !strcmp(name, "accuracy_drop"));
    CHECK(mlxport_comparison_gate(c, 1, NULL, NULL, NULL, NULL) == MLXPORT_ERR_INVALID_ARG);
    CHECK(strstr(mlxport_comparison_json(c), "\"quality_gates\"") != NULL);
  }
  mlxport_comparison_free(c);
  mlxport_eval_result_free(r1);
  mlxport_eval_result_free(r2);
  /* the whole job in one call */
  o.model = g_nli;
  o.baseline = g_nli;
  char *json = NULL;
  int all = 0;
  CHECK(mlxport_evaluate(&o, &json, &all) == MLXPORT_OK && json && all == 1);
  CHECK(json && strstr(json, "\"original\"") && strstr(json, "\"comparison\""));
  mlxport_free(json);
  o.dataset = "no-such-dataset";
  CHECK(mlxport_evaluate(&o, &json, &all) == MLXPORT_ERR_NOT_FOUND && !json);
  CHECK(g_log_lines == 1); /* mlxport_evaluate reports the dataset it read */
  mlxport_set_log_callback(NULL, NULL, MLXPORT_LOG_INFO);
}

static size_t g_ticks, g_total;
static void on_progress(void *user, size_t done, size_t total, const char *tensor) {
  (void)user, (void)tensor;
  g_ticks++, g_total = total;
  (void)done;
}

static void test_convert(void) {
  mlxport_convert_options o;
  mlxport_convert_options_init(&o);
  CHECK(mlxport_convert(&o, NULL) == MLXPORT_ERR_INVALID_ARG);
  char out[4200];
  snprintf(out, sizeof out, "%s/minilm-q4", mp_test_tmpdir());
  o.source = MINILM;
  o.output = out;
  o.quantize = 1;
  o.bits = 7;
  CHECK(mlxport_convert(&o, NULL) == MLXPORT_ERR_INVALID_ARG && strstr(mlxport_last_error(), "bits"));
  o.bits = 4;
  o.dry_run = 1;
  char *sum = NULL;
  CHECK(mlxport_convert(&o, &sum) == MLXPORT_OK && sum && strstr(sum, "\"planned\""));
  mlxport_free(sum);
  o.dry_run = 0;
  o.progress = on_progress;
  CHECK(mlxport_convert(&o, NULL) == MLXPORT_OK);
  CHECK(g_ticks > 50 && g_ticks == g_total);
  mlxport_model *m = NULL;
  CHECK(mlxport_model_open(out, NULL, &m) == MLXPORT_OK && m && mlxport_model_is_quantized(m));
  mlxport_model_close(m);
}

int main(void) {
  setup_paths();
  RUN(test_version);
  RUN(test_model);
  RUN(test_classifier);
  RUN(test_tokenizer);
  RUN(test_evaluator);
  RUN(test_convert);
  return mp_test_done();
}
