/* The pipeline's GPU scheduling (docs/cuda.md "Pipeline"): the admission decision of
 * mp_pipeline_admit on tables of fake jobs (GPU budgets per device, serialization, the
 * too-large failure, the one-at-a-time fallback), the GPU memory estimate of
 * mp_pipeline_gpu_estimate_mb against its documented formula, and mp_device_memory in a build
 * without CUDA. No GPU is needed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fs.h"
#include "model/device.h"
#include "model/model.h"
#include "pipeline/pipeline.h"
#include "testlib.h"

static mp_job cpu_job(const char *id) {
  mp_job j;
  memset(&j, 0, sizeof j);
  snprintf(j.id, sizeof j.id, "%s", id);
  j.kind = MP_JOB_CONVERT;
  j.dep = j.dep2 = -1;
  j.gpu_device = -1;
  j.state = MP_JOB_PENDING;
  return j;
}

static mp_job gpu_job(const char *id, int device, double est_gpu_mb) {
  mp_job j = cpu_job(id);
  j.kind = MP_JOB_EVAL;
  j.gpu_device = device;
  j.est_gpu_mb = est_gpu_mb;
  return j;
}

/* One scheduler pass as mp_pipeline_run makes it: every pending job in order, started when
 * admitted. Returns how many started. */
static int pass(mp_job *jobs, size_t n, int max_jobs, const mp_gpu_budget *b) {
  int started = 0;
  for (size_t i = 0; i < n; i++) {
    if (jobs[i].state != MP_JOB_PENDING) continue;
    char why[512];
    mp_job_admit a = mp_pipeline_admit(jobs, n, i, max_jobs, b, why, sizeof why);
    if (a == MP_ADMIT_START) jobs[i].state = MP_JOB_RUNNING, started++;
    if (a == MP_ADMIT_NEVER) jobs[i].state = MP_JOB_FAILED, snprintf(jobs[i].reason, sizeof jobs[i].reason, "%s", why);
  }
  return started;
}

/* Two GPU evaluations that together exceed the budget run one after the other on cuda:0, while a
 * CPU job runs beside them. */
static void test_serialized_beside_cpu(void) {
  double mb[1] = {10000};
  mp_gpu_budget b = {mb, 1, 0};
  mp_job jobs[3] = {gpu_job("eval-a", 0, 6000), gpu_job("eval-b", 0, 6000), cpu_job("convert-c")};
  CHECK(pass(jobs, 3, 4, &b) == 2);
  CHECK(jobs[0].state == MP_JOB_RUNNING);
  CHECKF(jobs[1].state == MP_JOB_PENDING, "eval-b started beside eval-a: 12000 MB > 10000 MB budget");
  CHECK(jobs[2].state == MP_JOB_RUNNING); /* the CPU job did not wait behind eval-b */
  /* while eval-a runs, eval-b keeps waiting (whatever the CPU job does) */
  CHECK(mp_pipeline_admit(jobs, 3, 1, 4, &b, NULL, 0) == MP_ADMIT_WAIT);
  jobs[2].state = MP_JOB_DONE;
  CHECK(mp_pipeline_admit(jobs, 3, 1, 4, &b, NULL, 0) == MP_ADMIT_WAIT);
  /* eval-a ends: eval-b starts */
  jobs[0].state = MP_JOB_DONE;
  CHECK(pass(jobs, 3, 4, &b) == 1);
  CHECK(jobs[1].state == MP_JOB_RUNNING);
  /* two that fit together run together */
  mp_job fit[2] = {gpu_job("eval-x", 0, 4000), gpu_job("eval-y", 0, 6000)};
  CHECK(pass(fit, 2, 4, &b) == 2);
  /* the jobs limit still applies to GPU jobs */
  mp_job lim[3] = {cpu_job("c1"), gpu_job("g", 0, 100), cpu_job("c2")};
  CHECK(pass(lim, 3, 1, &b) == 1);
  CHECK(lim[0].state == MP_JOB_RUNNING && lim[1].state == MP_JOB_PENDING && lim[2].state == MP_JOB_PENDING);
}

/* A job larger than the whole budget fails with the reason, even while others run. */
static void test_too_large(void) {
  double mb[1] = {10000};
  mp_gpu_budget b = {mb, 1, 0};
  mp_job jobs[2] = {gpu_job("eval-small", 0, 1000), gpu_job("eval-huge", 0, 12345)};
  jobs[0].state = MP_JOB_RUNNING;
  char why[512];
  CHECK(mp_pipeline_admit(jobs, 2, 1, 4, &b, why, sizeof why) == MP_ADMIT_NEVER);
  CHECKF(strstr(why, "needs about 12345 MB of GPU memory on cuda:0, the budget is 10000 MB (gpu_memory_mb)") != NULL,
         "reason: %s", why);
  /* the default budget says where it came from and how to change it */
  b.from_device = 1;
  CHECK(mp_pipeline_admit(jobs, 2, 1, 4, &b, why, sizeof why) == MP_ADMIT_NEVER);
  CHECKF(strstr(why, "0.9 x the device's memory") && strstr(why, "--gpu-memory-mb"), "reason: %s", why);
  /* exactly the budget fits on an idle device */
  mp_job edge[1] = {gpu_job("eval-edge", 0, 10000)};
  CHECK(mp_pipeline_admit(edge, 1, 0, 4, &b, NULL, 0) == MP_ADMIT_START);
}

/* No budget and no GPU to ask: one GPU job per device at a time, CPU jobs unaffected. */
static void test_no_budget_one_at_a_time(void) {
  mp_gpu_budget none = {NULL, 0, 1};
  mp_job jobs[4] = {gpu_job("g0a", 0, 100), gpu_job("g0b", 0, 100), gpu_job("g1", 1, 100), cpu_job("c")};
  CHECK(pass(jobs, 4, 8, &none) == 3);
  CHECK(jobs[0].state == MP_JOB_RUNNING && jobs[1].state == MP_JOB_PENDING);
  CHECK(jobs[2].state == MP_JOB_RUNNING && jobs[3].state == MP_JOB_RUNNING);
  jobs[0].state = MP_JOB_DONE;
  CHECK(pass(jobs, 4, 8, &none) == 1 && jobs[1].state == MP_JOB_RUNNING);
  /* a budget of 0 for a device is "unknown" too; so is a job whose estimate is unknown */
  double mb[1] = {0};
  mp_gpu_budget zero = {mb, 1, 1};
  mp_job z[2] = {gpu_job("z1", 0, 100), gpu_job("z2", 0, 100)};
  CHECK(pass(z, 2, 8, &zero) == 1);
  double big[1] = {1e6};
  mp_gpu_budget ok = {big, 1, 0};
  mp_job u[2] = {gpu_job("u1", 0, 0), gpu_job("u2", 0, 100)};
  CHECK(pass(u, 2, 8, &ok) == 1 && u[0].state == MP_JOB_RUNNING && u[1].state == MP_JOB_PENDING);
}

/* cuda:0 and cuda:1 are budgeted separately. */
static void test_devices_separate(void) {
  double mb[2] = {10000, 5000};
  mp_gpu_budget b = {mb, 2, 0};
  mp_job jobs[4] = {gpu_job("a0", 0, 8000), gpu_job("a1", 1, 4000), gpu_job("b1", 1, 2000), gpu_job("b0", 0, 2000)};
  CHECK(pass(jobs, 4, 8, &b) == 3);
  CHECK(jobs[0].state == MP_JOB_RUNNING); /* 8000 of 10000 on cuda:0 */
  CHECK(jobs[1].state == MP_JOB_RUNNING); /* 4000 of 5000 on cuda:1: not counted against cuda:0 */
  CHECK(jobs[2].state == MP_JOB_PENDING); /* 4000 + 2000 > 5000 on cuda:1 */
  CHECK(jobs[3].state == MP_JOB_RUNNING); /* 8000 + 2000 <= 10000 on cuda:0 */
  /* 6000 is too large for cuda:1 but would fit cuda:0 */
  mp_job t[1] = {gpu_job("t1", 1, 6000)};
  char why[512];
  CHECK(mp_pipeline_admit(t, 1, 0, 8, &b, why, sizeof why) == MP_ADMIT_NEVER);
  CHECKF(strstr(why, "on cuda:1, the budget is 5000 MB") != NULL, "reason: %s", why);
  t[0].gpu_device = 0;
  CHECK(mp_pipeline_admit(t, 1, 0, 8, &b, why, sizeof why) == MP_ADMIT_START);
  /* a device beyond the table has no budget: alone there */
  mp_job far[2] = {gpu_job("f1", 3, 10), gpu_job("f2", 3, 10)};
  CHECK(pass(far, 2, 8, &b) == 1);
}

/* The estimate follows its documented formula (pipeline.h, docs/cuda.md). */
static void test_estimate(void) {
  const char *dir = mp_test_tmpdir();
  mp_test_write(dir, "m/config.json",
                "{\"model_type\": \"bert\", \"architectures\": [\"BertModel\"], \"hidden_size\": 64, "
                "\"num_hidden_layers\": 3, \"num_attention_heads\": 4, \"intermediate_size\": 256, "
                "\"vocab_size\": 1000, \"max_position_embeddings\": 512, \"type_vocab_size\": 2, "
                "\"hidden_act\": \"gelu\", \"layer_norm_eps\": 1e-12}");
  char *m = mp_path_join(dir, "m");
  int64_t params = 0;
  int cls = 0;
  CHECK_OK(mp_model_config_param_count(m, &params, &cls));
  REQUIRE(params > 0);
  const double MB = 1024.0 * 1024.0;
  double act = 32.0 * 128 * 3 * (8 * 64 + 2 * 256) * 2 / MB;
  double sub = (double)params * 2 / MB + act + 1000.0 * 64 * 4 / MB + 32;
  double want = sub + 512 + 0.1 * sub;
  double got = mp_pipeline_gpu_estimate_mb(m, 32, 128, 2);
  CHECKF(fabs(got - want) < 1e-6, "estimate %.6f MB, formula %.6f MB", got, want);
  /* float32 weights cost twice as much; a longer max_length costs more activation memory */
  CHECK(mp_pipeline_gpu_estimate_mb(m, 32, 128, 4) > got);
  CHECK(mp_pipeline_gpu_estimate_mb(m, 32, 256, 2) > got);
  /* max_length 0: the model's default (here max_position_embeddings 512) */
  double act512 = 32.0 * 512 * 3 * (8 * 64 + 2 * 256) * 2 / MB;
  double sub512 = sub - act + act512;
  CHECKF(fabs(mp_pipeline_gpu_estimate_mb(m, 0, 0, 2) - (sub512 + 512 + 0.1 * sub512)) < 1e-6, "default length");
  /* a max_length above the positions is clamped to them */
  CHECK(fabs(mp_pipeline_gpu_estimate_mb(m, 32, 4096, 2) - mp_pipeline_gpu_estimate_mb(m, 32, 512, 2)) < 1e-9);
  /* no config.json: -1 with an error */
  char *none = mp_path_join(dir, "nothing");
  CHECK(mp_pipeline_gpu_estimate_mb(none, 32, 128, 2) < 0);
  mp_err_clear();
  free(none);
  free(m);
}

static void test_device_memory(void) {
  size_t fr = 1, tot = 1;
  mp_status st = mp_device_memory(0, &fr, &tot);
  if (!mp_device_cuda_built()) {
    CHECK(st == MP_ERR_UNSUPPORTED);
    CHECK(fr == 0 && tot == 0);
    CHECKF(strstr(mp_last_error(), "without CUDA") != NULL, "message: %s", mp_last_error());
  } else if (st == MP_OK) { /* a CUDA build on a machine with a GPU */
    CHECK(tot > 0 && fr <= tot);
  } else { /* a CUDA build without a GPU or driver: a clear refusal */
    CHECK(st == MP_ERR_UNSUPPORTED || st == MP_ERR_INTERNAL);
    CHECK(tot == 0);
  }
  mp_err_clear();
}

int main(void) {
  RUN(test_serialized_beside_cpu);
  RUN(test_too_large);
  RUN(test_no_budget_one_at_a_time);
  RUN(test_devices_separate);
  RUN(test_estimate);
  RUN(test_device_memory);
  return mp_test_done();
}
