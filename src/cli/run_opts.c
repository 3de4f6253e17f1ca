/* Options shared by the commands that run a model (embed, classify, zero-shot): parsing argv into
 * mp_cli_run_opts (see run_opts.h). */
#include "cli/run_opts.h"

#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "model/device.h"

int mp_cli_run_opts_read(const char *cmd, int argc, char **argv, mp_cli_run_opts *o, const char *help, int kind) {
  memset(o, 0, sizeof *o);
  mp_run_options_init(&o->run);
  o->template_ = "This example is {}.";
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v;
    long long x;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(help, stdout);
      return MP_EXIT_OK;
    } else if (mp_cli_opt(argc, argv, &i, "--model", &v)) {
      if (!v) return MP_EXIT_USAGE;
      o->model = v;
    } else if (mp_cli_opt(argc, argv, &i, "--batch-size", &v)) {
      if (!v || mp_cli_opt_int(cmd, "--batch-size", v, 1, 1 << 20, &x)) return MP_EXIT_USAGE;
      o->run.batch_size = (size_t)x;
    } else if (mp_cli_opt(argc, argv, &i, "--max-length", &v)) {
      if (!v || mp_cli_opt_int(cmd, "--max-length", v, 1, 1 << 24, &x)) return MP_EXIT_USAGE;
      o->run.max_length = (size_t)x;
    } else if (mp_cli_opt(argc, argv, &i, "--threads", &v)) {
      if (!v || mp_cli_opt_int(cmd, "--threads", v, 0, 1024, &x)) return MP_EXIT_USAGE;
      o->threads = (int)x;
    } else if (mp_cli_opt(argc, argv, &i, "--compute", &v)) {
      if (!v) return MP_EXIT_USAGE;
      if (mp_compute_parse(v, &o->compute)) return mp_cli_usage_error(cmd, "--compute must be fast or faithful");
    } else if (mp_cli_opt(argc, argv, &i, "--device", &v)) {
      mp_device_spec ds;
      if (!v) return MP_EXIT_USAGE;
      if (mp_device_parse(v, &ds)) return mp_cli_usage_error(cmd, "--device must be cpu, cuda or cuda:N, not '%s'", v);
      o->device = v;
    } else if (mp_cli_opt(argc, argv, &i, "--device-dtype", &v)) {
      if (!v) return MP_EXIT_USAGE;
      if (mp_device_dtype_parse(v, &o->device_dtype))
        return mp_cli_usage_error(cmd, "--device-dtype must be float16, bfloat16 or float32, not '%s'", v);
    } else if (mp_cli_opt(argc, argv, &i, "--truncation", &v)) {
      if (!v) return MP_EXIT_USAGE;
      if (mp_trunc_strategy_parse(v, &o->run.truncation))
        return mp_cli_usage_error(cmd, "--truncation must be longest_first, only_first, only_second or none");
    } else if (kind == 0 && mp_cli_opt(argc, argv, &i, "--benchmark", &v)) {
      if (!v || mp_cli_opt_int(cmd, "--benchmark", v, 1, 1 << 20, &x)) return MP_EXIT_USAGE;
      o->benchmark = (int)x;
    } else if (kind == 0 && !strcmp(a, "--token-embeddings")) {
      o->token_embeddings = 1;
    } else if (kind >= 1 && !strcmp(a, "--json")) {
      o->json = 1;
    } else if (kind == 1 && !strcmp(a, "--pair")) {
      o->pair = 1;
    } else if (kind == 2 && mp_cli_opt(argc, argv, &i, "--labels", &v)) {
      if (!v) return MP_EXIT_USAGE;
      o->labels = v;
    } else if (kind == 2 && mp_cli_opt(argc, argv, &i, "--template", &v)) {
      if (!v) return MP_EXIT_USAGE;
      o->template_ = v;
    } else if (kind == 2 && !strcmp(a, "--multi-label")) {
      o->multi_label = 1;
    } else {
      return mp_cli_usage_error(cmd, "unknown option or argument '%s'", a);
    }
  }
  if (!o->model) return mp_cli_usage_error(cmd, "--model is required");
  if (kind == 2 && !o->labels) return mp_cli_usage_error(cmd, "--labels is required (comma-separated)");
  if (kind == 2 && !strstr(o->template_, "{}"))
    return mp_cli_usage_error(cmd, "--template must contain {} where the label goes");
  return -1;
}
