/* The pipeline: configuration -> plan (a DAG of convert and eval jobs) -> parallel execution
 * in a managed work folder, resumable and crash-safe, then one set of reports.
 *
 * Work folder layout:
 *   .lock                      held (flock) while a pipeline runs on the folder
 *   models/<name>-q<bits>g<group>[-<dtype>]/   converted models (written atomically by convert)
 *   logs/<job>.log             one log per job (the job's stderr)
 *   jobs/<job>.json            state of each job: pending/running/done/failed/skipped + why
 *   results/<job>.json         an evaluation's comparison document (its presence = done)
 *   comparisons/ test_results/ testing_summary.json summary.md reports/report.html
 * Each job runs in a child process: the pipeline forks and the child runs the job through the
 * library itself (mp_hub_download, mp_convert, mp_eval_job_run; no program is executed, so the
 * library needs no mlxport binary and works the same inside any host program), writes its log
 * (stderr, which starts with the equivalent `mlxport` command) and, for an evaluation, its JSON
 * document (stdout), then _exit()s with the command's exit status (0, 1 gate failed, 2, 3). A
 * crash or a kill of one job never corrupts another; SIGKILL of the pipeline leaves only
 * temporary files that the next run removes; the child's memory is its own (an evaluation
 * forks again per model for its memory figures, docs/metrics.md). */
#ifndef MP_PIPELINE_PIPELINE_H
#define MP_PIPELINE_PIPELINE_H
#include <stddef.h>

#include "mlxport.h"
#include "pipeline/config.h"

/* MP_JOB_DOWNLOAD: `mlxport download` of a model repo id, or of a built-in dataset's Hub Parquet
 * file, that is not in the Hugging Face cache; the conversions / evaluations wait for it. */
typedef enum mp_job_kind { MP_JOB_CONVERT, MP_JOB_EVAL, MP_JOB_DOWNLOAD } mp_job_kind;
const char *mp_job_kind_name(mp_job_kind k);
typedef enum mp_job_state {
  MP_JOB_PENDING,
  MP_JOB_RUNNING,
  MP_JOB_DONE,        /* finished (eval: all gates passed) */
  MP_JOB_GATE_FAILED, /* eval finished, a gate failed */
  MP_JOB_FAILED,      /* error (see reason / log) */
  MP_JOB_SKIPPED,     /* up to date, not available locally, or a dependency failed */
} mp_job_state;
const char *mp_job_state_name(mp_job_state s);

typedef struct mp_job {
  char id[200];
  mp_job_kind kind;
  const mp_pl_model *model;
  const mp_pl_dataset *dataset; /* eval only */
  int dep;                      /* index of the job this one waits for (an eval: its convert; a convert:
                                   its model's download), or -1 */
  int dep2;                     /* eval: the download job of its dataset, or -1 */
  mp_job_state state;
  char reason[1024];
  char source[1024];    /* resolved source model folder (convert) */
  char out_dir[1024];   /* converted model folder */
  char data_path[1024]; /* eval: dataset file */
  char key[65];         /* eval: settings hash */
  double est_mb;        /* estimated peak memory */
  int gpu_device;       /* eval on a CUDA device (the model's `device: cuda[:N]`): its ordinal; -1 = CPU job */
  double est_gpu_mb;    /* eval on a GPU: estimated peak GPU memory (mp_pipeline_gpu_estimate_mb); 0 = not known
                           yet (source not downloaded: estimated when the job is ready) */
  double started, seconds;
  int pid;
  int exit_code;
} mp_job;

typedef struct mp_pipeline_options {
  const char *workdir;
  const char *models_filter;           /* comma-separated names, NULL = all */
  const char *datasets_filter;         /* comma-separated keys, NULL = all */
  int dry_run, no_skip, jobs, threads; /* jobs: parallel jobs (-j); threads: total compute threads (0 = all) */
  const char *data_dir;                /* where built-in datasets are looked up */
  long max_samples_override;           /* > 0 replaces every dataset's max_samples */
  unsigned long seed;
  long latency_requests; /* >= 0 passed to eval (-1 = eval's default) */
  int json;
  double gpu_memory_mb; /* > 0: GPU memory budget per CUDA device (--gpu-memory-mb, wins over the
                           configuration's gpu_memory_mb); 0 = the configuration's, else the
                           device's total memory x 0.9 */
} mp_pipeline_options;

typedef struct mp_pipeline mp_pipeline;

/* Builds the plan (resolving models and datasets; a repo id that is not cached gets a download
 * job unless HF_HUB_OFFLINE is set; unavailable ones become skipped jobs with "not available
 * locally: ..."). Touches nothing on disk and never the network. */
mp_status mp_pipeline_plan(const mp_pl_config *cfg, const mp_pipeline_options *o, mp_pipeline **out);
size_t mp_pipeline_job_count(const mp_pipeline *p);
mp_job *mp_pipeline_job(mp_pipeline *p, size_t i);
/* Work folder from options / $MLX_TEMP_DIR/mlx_conversion / $TMPDIR/mlx_conversion (malloc'd). */
char *mp_pipeline_default_workdir(void);

/* Events for progress display (called from the executing thread). */
typedef enum { MP_EV_START, MP_EV_END, MP_EV_TICK } mp_pipeline_event;
typedef void (*mp_pipeline_cb)(void *user, mp_pipeline_event ev, const mp_pipeline *p, const mp_job *job);
/* Executes the plan. Returns MP_OK when every job ended (whatever its state), MP_ERR_CANCELLED
 * after SIGINT/SIGTERM (children stopped, temporary outputs removed, finished results kept). */
mp_status mp_pipeline_run(mp_pipeline *p, mp_pipeline_cb cb, void *user);
/* Writes comparisons/, test_results/, testing_summary.json, summary.md, reports/report.html
 * from the results of the plan's eval jobs. *gates_failed / *errors count outcomes. */
mp_status mp_pipeline_report(mp_pipeline *p, int *gates_failed, int *errors);
const char *mp_pipeline_workdir(const mp_pipeline *p);
void mp_pipeline_free(mp_pipeline *p);
/* ---- GPU jobs (docs/cuda.md "Pipeline")
 *
 * Estimated peak GPU memory of one evaluation on a CUDA device, in MB. `mlxport eval` runs the
 * baseline and then the converted model, each in a child process of its own that exits (and so
 * frees its GPU memory) before the next starts, and on a device a model is opened once (no second
 * faithful pass: the device has no integer kernels): one model is resident at a time, so the job
 * needs max(baseline, converted) = the figure of one model (the converted one's quantized
 * weights are dequantized to the compute dtype on upload: they cost what the float ones do):
 *   weights      params x esize                 (esize 2 for float16/bfloat16, 4 for float32)
 *   activations  batch x seq x layers x (8 hidden + 2 intermediate) x 2 bytes
 *                (the backend keeps every activation of a forward pass in its arena)
 *   staging      vocab x hidden x 4 bytes       (f32 copy of the largest table while uploading it)
 *   workspace    32 MB                          (cuBLASLt)
 *   margin       512 MB + 10% of the above      (CUDA context, kernels, arena growth)
 * `dir` is a model folder with config.json; seq is max_length (0 = the model's default: the
 * sentence-transformers max_seq_length, else min(tokenizer model_max_length, positions)); batch 0
 * = eval's 32; esize 0 = from MP_CUDA_DTYPE (float32 -> 4), else 2. A clearly labelled ESTIMATE;
 * returns -1 (error set) when config.json cannot be read or its family has no parameter count. */
double mp_pipeline_gpu_estimate_mb(const char *dir, long batch, long max_length, int esize);

/* The budget per CUDA device for admitting GPU jobs. */
typedef struct mp_gpu_budget {
  const double *mb; /* mb[ordinal]: the budget in MB; an ordinal >= n or a value <= 0: unknown */
  size_t n;
  int from_device; /* the budgets are the default (0.9 x the device's memory), not gpu_memory_mb */
} mp_gpu_budget;
typedef enum { MP_ADMIT_START, MP_ADMIT_WAIT, MP_ADMIT_NEVER } mp_job_admit;
/* The scheduling decision for ready job jobs[i] (its dependencies done), a pure function of the
 * job table: START when fewer than max_jobs jobs run and, for a GPU job (gpu_device >= 0), the
 * est_gpu_mb of the jobs running on its device plus its own fit that device's budget (an unknown
 * budget: only when no other job runs on the device); WAIT otherwise (CPU jobs keep starting);
 * NEVER, with the reason in why, when the job cannot fit even on an idle device ("needs about N
 * MB of GPU memory on cuda:0, the budget is M MB (gpu_memory_mb)"). The host-memory check is
 * separate. */
mp_job_admit mp_pipeline_admit(const mp_job *jobs, size_t n_jobs, size_t i, int max_jobs, const mp_gpu_budget *b,
                               char *why, size_t cap);

/* The budget the plan uses for CUDA device `device` in MB (0 = unknown: one GPU job at a time
 * there); *from_device (may be NULL) = 1 when it is the default (0.9 x the device's memory). */
double mp_pipeline_gpu_budget_mb(const mp_pipeline *p, int device, int *from_device);

/* Removes temporary leftovers (".*.tmp-*" files and folders) under the work folder. */
mp_status mp_pipeline_clean(const char *workdir, size_t *removed);
#endif
