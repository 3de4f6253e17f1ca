/* Token-budget batching (mp_run_options.max_batch_tokens, mp_batch_rows; what eval uses on a GPU):
 * the batch rule itself, and on the real all-MiniLM-L6-v2 (CPU) that embeddings and token
 * embeddings do not change when the same inputs go by in budgeted batches of other sizes (down to
 * one row per batch when an input alone is over the budget). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/model.h"
#include "testlib.h"

#define MINILM "sentence-transformers/all-MiniLM-L6-v2"

static void test_rule(void) {
  CHECK(mp_batch_rows(100, 32, 40, 0) == 32);       /* no budget: batch_size rows */
  CHECK(mp_batch_rows(5, 32, 40, 0) == 5);          /* the last, short batch */
  CHECK(mp_batch_rows(1000, 512, 40, 4096) == 102); /* 4096 / 40 */
  CHECK(mp_batch_rows(100, 512, 40, 4096) == 100);  /* 100 x 40 fits */
  CHECK(mp_batch_rows(100, 512, 8, 4096) == 100);   /* short inputs: all that remain */
  CHECK(mp_batch_rows(1000, 512, 8, 4096) == 512);  /* capped by batch_size */
  CHECK(mp_batch_rows(100, 512, 5000, 4096) == 1);  /* one input over the budget: alone */
  CHECK(mp_batch_rows(100, 512, 4096, 4096) == 1);
  CHECK(mp_batch_rows(100, 512, 2048, 4096) == 2);
  CHECK(mp_batch_rows(0, 32, 40, 4096) == 0);
}

/* texts of many lengths: 1 to ~120 words */
#define N_TEXTS 37
static char *g_texts[N_TEXTS];
static void make_texts(void) {
  static const char *words[] = {"the",   "model",  "runs", "quickly", "on",      "a",  "small", "machine",
                                "while", "people", "wait", "for",     "results", "of", "every", "benchmark"};
  for (int i = 0; i < N_TEXTS; i++) {
    int n = 1 + (i * 37) % 120;
    g_texts[i] = calloc((size_t)n * 12 + 1, 1);
    for (int w = 0; w < n; w++) {
      if (w) strcat(g_texts[i], " ");
      strcat(g_texts[i], words[(w * 7 + i) % 16]);
    }
  }
}

static void test_embeddings_invariant(void) {
  mp_model *m = NULL;
  mp_model_options mo;
  memset(&mo, 0, sizeof mo);
  mo.threads = 2;
  mp_status s = mp_model_open(MINILM, &mo, &m);
  CHECKF(s == MP_OK, "%s", mp_last_error());
  if (s) return;
  const size_t H = mp_model_hidden(m);
  float *ref = calloc(N_TEXTS * H, 4), *got = calloc(N_TEXTS * H, 4);
  mp_run_options ro;
  mp_run_options_init(&ro);
  CHECK_OK(mp_model_embed(m, N_TEXTS, (const char *const *)g_texts, &ro, ref, NULL));
  /* budgets from "one row per batch" (every input is longer than 8 tokens but one) up to batches
   * larger than batch_size would allow */
  const size_t budgets[] = {8, 64, 300, 1000, 100000};
  for (size_t k = 0; k < sizeof budgets / sizeof *budgets; k++) {
    ro.batch_size = 512;
    ro.max_batch_tokens = budgets[k];
    memset(got, 0, N_TEXTS * H * 4);
    CHECK_OK(mp_model_embed(m, N_TEXTS, (const char *const *)g_texts, &ro, got, NULL));
    /* equal up to float rounding: batches of a few rows take the small-M kernels, whose
     * accumulation order differs (docs/kernels.md) */
    double worst = 0;
    for (size_t e = 0; e < N_TEXTS * H; e++)
      worst = fmax(worst, fabs((double)ref[e] - got[e]));
    CHECKF(worst <= 1e-5, "budget %zu: embeddings differ from batches of 32 by %g", budgets[k], worst);
    fprintf(stderr, "budget %zu: max |diff| %g\n", budgets[k], worst);
  }
  /* token embeddings (the per-token output buffer is sized by the budget) */
  float *tr[N_TEXTS], *tg[N_TEXTS];
  size_t lr[N_TEXTS], lg[N_TEXTS];
  mp_run_options_init(&ro);
  CHECK_OK(mp_model_token_embeddings(m, N_TEXTS, (const char *const *)g_texts, &ro, tr, lr));
  ro.batch_size = 512, ro.max_batch_tokens = 200;
  CHECK_OK(mp_model_token_embeddings(m, N_TEXTS, (const char *const *)g_texts, &ro, tg, lg));
  for (int i = 0; i < N_TEXTS; i++) {
    double worst = 0;
    for (size_t e = 0; lr[i] == lg[i] && tr[i] && tg[i] && e < lr[i] * H; e++)
      worst = fmax(worst, fabs((double)tr[i][e] - tg[i][e]));
    CHECKF(lr[i] == lg[i] && tr[i] && tg[i] && worst <= 1e-4, "text %d: token embeddings differ under a budget (%g)", i,
           worst);
    free(tr[i]), free(tg[i]);
  }
  free(ref), free(got);
  mp_model_close(m);
}

int main(void) {
  mp_test_use_cache();
  make_texts();
  RUN(test_rule);
  RUN(test_embeddings_invariant);
  for (int i = 0; i < N_TEXTS; i++)
    free(g_texts[i]);
  return mp_test_done();
}
