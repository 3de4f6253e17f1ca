/* mlxport embed: sentence embeddings, one JSON object per input line. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/run_opts.h"
#include "core/clock.h"
#include "core/strbuf.h"
#include "eval/metrics.h"
#include "model/model.h"

const char mp_cmd_embed_summary[] = "sentence embeddings for lines on stdin (JSON lines out)";

static const char *k_help =
    "usage: mlxport embed --model DIR|REPO_ID [--token-embeddings] [--batch-size N] [--max-length N] [--threads N]\n"
    "\n"
    "Reads one text per line on stdin and writes one JSON object per line, in input order:\n"
    "  {\"embedding\": [f1, f2, ...]}\n"
    "Pooling and normalization follow the folder's sentence-transformers configuration\n"
    "(modules.json, 1_Pooling/config.json, Normalize); without one, mean pooling.\n"
    "Works on Hugging Face folders and on MLX conversions (float or quantized) alike.\n"
    "  --benchmark N        instead of embeddings, print timing as JSON: a warm-up batch, one timed\n"
    "                       pass over all lines with --batch-size (sentences/s, tokens/s), then N\n"
    "                       batch-1 requests (latency p50/p95/p99 ms). Model load time is excluded.\n"
    "  --token-embeddings   instead, the last hidden state of every real token:\n"
    "                       {\"token_embeddings\": [[...], ...]}\n"
    "\n" MP_RUN_OPTS_HELP;

int mp_cmd_embed(int argc, char **argv) {
  mp_cli_run_opts ro;
  int rc = mp_cli_run_opts_read("embed", argc, argv, &ro, k_help, 0);
  if (rc >= 0) return rc;
  char **lines;
  size_t n;
  if (mp_cli_read_lines("embed", stdin, &lines, &n)) return MP_EXIT_ERROR;
  mp_model *m;
  mp_model_options mo = {
      .threads = ro.threads, .compute = ro.compute, .device = ro.device, .device_dtype = ro.device_dtype};
  mp_status st = mp_model_open(ro.model, &mo, &m);
  if (st) {
    mp_cli_free_lines(lines, n);
    return mp_cli_fail("embed", st);
  }
  size_t H = mp_model_hidden(m);
  if (ro.benchmark > 0) {
    size_t bs = ro.run.batch_size ? ro.run.batch_size : 32;
    float *emb = malloc((n ? n : 1) * H * sizeof(float));
    double *ms = malloc((size_t)ro.benchmark * sizeof(double));
    uint64_t tokens = 0;
    double secs = 0;
    st = emb && ms && n ? MP_OK : mp_err(MP_ERR_INVALID_ARG, "--benchmark needs input lines");
    if (!st) st = mp_model_embed(m, n < bs ? n : bs, (const char *const *)lines, &ro.run, emb, NULL); /* warm-up */
    if (!st) {
      double t0 = mp_now_s();
      st = mp_model_embed(m, n, (const char *const *)lines, &ro.run, emb, &tokens);
      secs = mp_now_s() - t0;
    }
    for (int i = 0; !st && i < ro.benchmark; i++) {
      const char *one = lines[(size_t)i % n];
      double t0 = mp_now_s();
      st = mp_model_embed(m, 1, &one, &ro.run, emb, NULL);
      ms[i] = (mp_now_s() - t0) * 1e3;
    }
    mp_latency_stats ls;
    if (!st) st = mp_latency_summary(ms, (size_t)ro.benchmark, &ls);
    if (!st)
      printf("{\"sentences\":%zu,\"batch_size\":%zu,\"seconds\":%.6f,\"sentences_per_sec\":%.3f,\"tokens\":%llu,"
             "\"tokens_per_sec\":%.1f,\"latency_requests\":%d,\"latency_p50_ms\":%.4f,\"latency_p95_ms\":%.4f,"
             "\"latency_p99_ms\":%.4f,\"latency_mean_ms\":%.4f}\n",
             n, bs, secs, (double)n / secs, (unsigned long long)tokens, (double)tokens / secs, ro.benchmark, ls.p50,
             ls.p95, ls.p99, ls.mean);
    free(emb), free(ms);
    mp_model_close(m);
    mp_cli_free_lines(lines, n);
    return st ? mp_cli_fail("embed", st) : MP_EXIT_OK;
  }
  if (ro.token_embeddings) {
    float **tok = calloc(n ? n : 1, sizeof *tok);
    size_t *lens = calloc(n ? n : 1, sizeof *lens);
    st = tok && lens ? mp_model_token_embeddings(m, n, (const char *const *)lines, &ro.run, tok, lens) : MP_ERR_NOMEM;
    mp_sb sb;
    mp_sb_init(&sb);
    for (size_t i = 0; !st && i < n; i++) {
      mp_sb_clear(&sb);
      mp_sb_puts(&sb, "{\"token_embeddings\":[");
      for (size_t t = 0; t < lens[i]; t++) {
        mp_sb_puts(&sb, t ? ",[" : "[");
        for (size_t d = 0; d < H; d++) {
          if (d) mp_sb_putc(&sb, ',');
          mp_sb_json_f32(&sb, tok[i][t * H + d]);
        }
        mp_sb_putc(&sb, ']');
      }
      mp_sb_puts(&sb, "]}\n");
      fwrite(sb.buf, 1, sb.len, stdout);
    }
    mp_sb_free(&sb);
    for (size_t i = 0; tok && i < n; i++)
      free(tok[i]);
    free(tok);
    free(lens);
    mp_model_close(m);
    mp_cli_free_lines(lines, n);
    return st ? mp_cli_fail("embed", st) : MP_EXIT_OK;
  }
  float *emb = malloc((n ? n : 1) * H * sizeof(float));
  st = emb ? mp_model_embed(m, n, (const char *const *)lines, &ro.run, emb, NULL) : MP_ERR_NOMEM;
  if (!st) {
    mp_sb sb;
    mp_sb_init(&sb);
    for (size_t i = 0; i < n; i++) {
      mp_sb_clear(&sb);
      mp_sb_puts(&sb, "{\"embedding\":[");
      for (size_t d = 0; d < H; d++) {
        if (d) mp_sb_putc(&sb, ',');
        mp_sb_json_f32(&sb, emb[i * H + d]);
      }
      mp_sb_puts(&sb, "]}\n");
      fwrite(sb.buf, 1, sb.len, stdout);
    }
    mp_sb_free(&sb);
  }
  free(emb);
  mp_model_close(m);
  mp_cli_free_lines(lines, n);
  return st ? mp_cli_fail("embed", st) : MP_EXIT_OK;
}
