/* Forward-pass throughput of one model on one device at fixed sequence lengths: the measuring
 * half of bench/bench_cuda.py (issue #20's GPU table), also usable on the CPU. Token ids are drawn
 * at random from the vocabulary (fixed seed; speed does not depend on their values) between the
 * tokenizer's special tokens, with every position real, so the batch is [batch, seq] with no padding, as the PyTorch
 * side measures it. Tokenization is not timed: the table compares forward passes. Usage: bench_device --model DIR
 * [--device cuda|cuda:N|cpu] [--dtype float16|bfloat16|float32]
 *          [--compute fast|faithful] [--seq 48,128] [--batch 128] [--seconds 1.0] [--threads N]
 *          [--dump PREFIX]
 * --dump writes, per length, PREFIX-SEQ.ids (int32 [batch, seq]) and PREFIX-SEQ.out (float32 [batch,
 * labels] logits, or [batch, hidden] pooled embeddings) of the last pass: bench_cuda.py checks them
 * against PyTorch on the same ids.
 * Output: one JSON object per sequence length:
 *   {"model":..., "device":..., "seq":48, "batch":128, "iters":N, "seconds":s,
 *    "seqs_per_s":x, "tokens_per_s":y, "peak_mb":z}
 * Exit status 0, or 1 with the error on stderr (a model that does not open or run). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "model/device.h"
#include "model/model.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int usage(void) {
  fprintf(stderr, "usage: bench_device --model DIR [--device cuda|cuda:N|cpu] [--dtype float16|bfloat16|float32]\n"
                  "                    [--compute fast|faithful] [--seq 48,128] [--batch 128] [--seconds 1.0]\n"
                  "                    [--threads N] [--dump PREFIX]\n");
  return 2;
}

/* one timed length: warm-up passes, then passes until `seconds` have gone (at least 3) */
static int dump(const char *prefix, size_t seq, const char *ext, const void *p, size_t bytes) {
  char path[4096];
  snprintf(path, sizeof path, "%s-%zu.%s", prefix, seq, ext);
  FILE *f = fopen(path, "wb");
  int ok = f && fwrite(p, 1, bytes, f) == bytes;
  if (f && fclose(f)) ok = 0;
  if (!ok) fprintf(stderr, "bench_device: cannot write %s\n", path);
  return ok ? 0 : 1;
}

static int run_len(mp_model *m, size_t batch, size_t seq, double seconds, const char *model_dir, const char *prefix) {
  const mp_model_config *c = mp_model_get_config(m);
  size_t n = batch * seq;
  int32_t *ids = malloc(n * sizeof *ids), *mask = malloc(n * sizeof *mask);
  size_t nl = c->num_labels > 0 ? (size_t)c->num_labels : 0, h = mp_model_hidden(m);
  float *res = malloc(batch * (nl ? nl : h) * sizeof *res);
  if (!ids || !mask || !res) {
    fprintf(stderr, "bench_device: out of memory\n");
    free(ids), free(mask), free(res);
    return 1;
  }
  uint64_t s = 0x9e3779b97f4a7c15ull;
  int64_t lo = c->vocab_size > 1000 ? 1000 : 1, span = c->vocab_size - lo;
  for (size_t i = 0; i < n; i++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    ids[i] = (int32_t)(lo + (int64_t)((s >> 33) % (uint64_t)span));
    mask[i] = 1;
  }
  /* the tokenizer's special tokens around the random ids ([CLS] ... [SEP], <s> ... </s>): BART's
   * head reads the state at the last eos token */
  mp_tok_encoding e = {0};
  if (mp_tokenizer_encode(mp_model_get_tokenizer(m), "", 0, NULL, 0, NULL, &e) == MP_OK && e.len >= 1 && seq >= 2)
    for (size_t r = 0; r < batch; r++) {
      if (e.len >= 2) ids[r * seq] = e.input_ids[0];
      ids[r * seq + seq - 1] = e.input_ids[e.len - 1];
    }
  mp_tok_encoding_free(&e);
  mp_model_batch b = {.n = batch, .seq = seq, .ids = ids, .mask = mask, .types = NULL};
  mp_forward_out out = {0};
  if (nl)
    out.logits = res;
  else
    out.embedding = res;
  int rc = 0;
  for (int w = 0; w < 3 && !rc; w++)
    if (mp_model_forward(m, &b, &out) != MP_OK) rc = 1;
  double t0 = now_s(), t = t0;
  long iters = 0;
  while (!rc && (iters < 3 || t - t0 < seconds)) {
    if (mp_model_forward(m, &b, &out) != MP_OK) rc = 1;
    iters++;
    t = now_s();
  }
  if (rc)
    fprintf(stderr, "bench_device: %s: forward failed at seq %zu batch %zu: %s\n", model_dir, seq, batch,
            mlxport_last_error());
  else if (prefix && (dump(prefix, seq, "ids", ids, n * sizeof *ids) ||
                      dump(prefix, seq, "out", res, batch * (nl ? nl : h) * sizeof *res)))
    rc = 1;
  else
    printf("{\"model\":\"%s\",\"device\":\"%s\",\"seq\":%zu,\"batch\":%zu,\"iters\":%ld,\"seconds\":%.4f,"
           "\"seqs_per_s\":%.1f,\"tokens_per_s\":%.1f,\"peak_mb\":%.1f}\n",
           model_dir, mp_model_device_name(m), seq, batch, iters, t - t0, (double)iters * batch / (t - t0),
           (double)iters * n / (t - t0), mp_model_device_peak_bytes(m) / 1048576.0);
  fflush(stdout);
  free(ids), free(mask), free(res);
  return rc;
}

int main(int argc, char **argv) {
  const char *model = NULL, *device = "cuda", *dtype = "float16", *compute = "fast", *seqs = "48,128", *prefix = NULL;
  size_t batch = 128;
  double seconds = 1.0;
  int threads = 0;
  for (int i = 1; i < argc; i += 2) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) return usage();
    if (!strcmp(a, "--model"))
      model = v;
    else if (!strcmp(a, "--device"))
      device = v;
    else if (!strcmp(a, "--dtype"))
      dtype = v;
    else if (!strcmp(a, "--compute"))
      compute = v;
    else if (!strcmp(a, "--seq"))
      seqs = v;
    else if (!strcmp(a, "--batch"))
      batch = strtoul(v, NULL, 10);
    else if (!strcmp(a, "--seconds"))
      seconds = strtod(v, NULL);
    else if (!strcmp(a, "--threads"))
      threads = atoi(v);
    else if (!strcmp(a, "--dump"))
      prefix = v;
    else
      return usage();
  }
  if (!model || !batch) return usage();
  mp_model_options o = {.threads = threads, .device = device};
  if (mp_compute_parse(compute, &o.compute) != MP_OK || mp_device_dtype_parse(dtype, &o.device_dtype) != MP_OK) {
    fprintf(stderr, "bench_device: %s\n", mlxport_last_error());
    return 2;
  }
  mp_model *m = NULL;
  if (mp_model_open(model, &o, &m) != MP_OK) {
    fprintf(stderr, "bench_device: %s\n", mlxport_last_error());
    return 1;
  }
  int rc = 0;
  char *list = strdup(seqs), *save = NULL;
  for (char *tok = strtok_r(list, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save)) {
    size_t seq = strtoul(tok, NULL, 10);
    if (!seq || seq > mp_model_max_positions(m)) {
      fprintf(stderr, "bench_device: --seq %s: must be 1..%zu for this model\n", tok, mp_model_max_positions(m));
      rc = 2;
      break;
    }
    rc = run_len(m, batch, seq, seconds, model, prefix);
  }
  free(list);
  mp_model_close(m);
  return rc;
}
