/* Options shared by the commands that run a model (embed, classify, zero-shot). */
#ifndef MP_CLI_RUN_OPTS_H
#define MP_CLI_RUN_OPTS_H
#include "model/model.h"

typedef struct mp_cli_run_opts {
  const char *model;
  int threads;
  mp_compute compute;
  const char *device;    /* --device cpu|cuda[:N] (NULL = cpu) */
  mp_dtype device_dtype; /* --device-dtype (0 = float16) */
  int json;
  int pair;
  mp_run_options run;
  /* zero-shot */
  const char *labels;
  const char *template_;
  int multi_label;
  /* embed */
  int token_embeddings;
  int benchmark; /* batch-1 latency requests; 0 = off */
} mp_cli_run_opts;

#define MP_RUN_OPTS_HELP                                                                                               \
  "common options:\n"                                                                                                  \
  "  --model DIR|REPO_ID   model folder (HF or MLX) or a repo id in the Hugging Face cache\n"                          \
  "  --batch-size N        texts per forward pass (default 32; inputs are sorted by length)\n"                         \
  "  --max-length N        truncate inputs to N tokens (default: the model's limit, or the\n"                          \
  "                        sentence-transformers max_seq_length)\n"                                                    \
  "  --truncation S        longest_first (default), only_first, only_second, none\n"                                   \
  "  --threads N           compute threads (default: all cores)\n"                                                     \
  "  --compute MODE        fast (default): MLX-quantized layers on integer kernels (int8\n"                            \
  "                        activations), float16/bfloat16 layers on AMX-BF16 tiles where the\n"                        \
  "                        CPU has them (activations split in two bf16 terms); on a GPU,\n"                            \
  "                        MLX-quantized layers on FP8 tensor cores (weights and activations\n"                        \
  "                        rounded to E4M3 per channel / row) and the erf GELU in its tanh\n"                          \
  "                        form, fused into the GEMM; faithful: exactly as MLX\n"                                      \
  "                        computes (dequantized weights, float accumulation). float32\n"                              \
  "                        models: the same either way\n"                                                              \
  "  --device D            cpu (default), cuda or cuda:N: run on an NVIDIA GPU (a build with\n"                        \
  "                        cmake -DMP_CUDA=ON; float16 compute; docs/cuda.md)\n"                                       \
  "  --device-dtype T      compute dtype on the GPU: float16 (default), bfloat16, float32\n"

/* Parses argv. Returns -1 to continue, or an exit code (help printed, usage error).
 * kind: 0 embed, 1 classify, 2 zero-shot. */
int mp_cli_run_opts_read(const char *cmd, int argc, char **argv, mp_cli_run_opts *o, const char *help, int kind);
#endif
