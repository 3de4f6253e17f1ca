/* mlxport verify-weights: per-tensor error of a converted model against its original. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/error.h"
#include "quant/verify.h"

const char mp_cmd_verify_weights_summary[] = "compare a converted model's weights with the original, tensor by tensor";

static void usage(void) {
  printf("usage: mlxport verify-weights ORIGINAL CONVERTED [--json] [--max-rel-rms R] [--min-snr-db D] [--top N]\n"
         "\n"
         "For every float tensor of ORIGINAL (folder, weights file or repo id in the HF cache), the\n"
         "matching tensor of CONVERTED (an `mlxport convert` folder) is dequantized exactly like\n"
         "mx.dequantize (bits and group size from its config.json \"quantization\" block) or read as\n"
         "float, and compared: max abs error, RMS error, relative RMS error (RMS error / RMS of the\n"
         "original), SNR in dB. Tensors are listed worst first with a verdict each.\n"
         "\n"
         "  --max-rel-rms R   a tensor fails above this relative RMS error (default 0.2)\n"
         "  --min-snr-db D    a tensor also fails below this SNR (default: not checked)\n"
         "  --top N           text output: show the N worst tensors (default 15; 0 = all)\n"
         "  --json            the full report as JSON on stdout\n"
         "\n"
         "Exit status: 0 every tensor passes, 1 some tensor fails (or is missing), 2 usage, 3 error.\n");
}

int mp_cmd_verify_weights(int argc, char **argv) {
  const char *cmd = "verify-weights";
  mp_verify_opts o = {0};
  const char *pos[2] = {0};
  int npos = 0, json = 0;
  long long top = 15;
  for (int i = 1; i < argc; i++) {
    const char *v;
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage();
      return MP_EXIT_OK;
    } else if (mp_cli_opt(argc, argv, &i, "--max-rel-rms", &v)) {
      char *end;
      if (!v) return MP_EXIT_USAGE;
      o.max_rel_rms = strtod(v, &end);
      if (*end || !(o.max_rel_rms > 0)) return mp_cli_usage_error(cmd, "--max-rel-rms expects a positive number");
    } else if (mp_cli_opt(argc, argv, &i, "--min-snr-db", &v)) {
      char *end;
      if (!v) return MP_EXIT_USAGE;
      o.min_snr_db = strtod(v, &end);
      if (*end || end == v) return mp_cli_usage_error(cmd, "--min-snr-db expects a number");
    } else if (mp_cli_opt(argc, argv, &i, "--top", &v)) {
      if (!v || mp_cli_opt_int(cmd, "--top", v, 0, 1000000, &top)) return MP_EXIT_USAGE;
    } else if (!strcmp(argv[i], "--json")) {
      json = 1;
    } else if (argv[i][0] == '-' && argv[i][1]) {
      return mp_cli_usage_error(cmd, "unknown option '%s'", argv[i]);
    } else {
      if (npos == 2) return mp_cli_usage_error(cmd, "expected ORIGINAL CONVERTED");
      pos[npos++] = argv[i];
    }
  }
  if (npos != 2) return mp_cli_usage_error(cmd, "expected ORIGINAL CONVERTED");
  o.original = pos[0], o.converted = pos[1];
  mp_verify_report r;
  mp_status s = mp_verify_weights(&o, &r);
  if (s) return mp_cli_fail(cmd, s);
  if (json) {
    char *j = mp_verify_report_json(&o, &r);
    if (!j) {
      mp_verify_report_free(&r);
      return mp_cli_fail(cmd, mp_err(MP_ERR_NOMEM, "out of memory"));
    }
    fputs(j, stdout);
    free(j);
  } else {
    printf("%-56s %-9s %11s %11s %9s %8s  %s\n", "tensor (worst first)", "kind", "max_abs", "rms", "rel_rms", "snr_dB",
           "verdict");
    size_t show = top == 0 || (size_t)top > r.n ? r.n : (size_t)top;
    for (size_t i = 0; i < show; i++) {
      const mp_verify_tensor *t = &r.t[i];
      printf("%-56s %-9s %11.4g %11.4g %9.4g %8.2f  %s\n", t->name, t->kind, t->max_abs, t->rms, t->rel_rms, t->snr_db,
             t->pass ? "ok" : "FAIL");
    }
    if (show < r.n) printf("... %zu more (all listed with --top 0 or --json)\n", r.n - show);
    printf("%s: %zu tensors compared (%zu quantized), %zu failed; max relative RMS allowed %.3g\n",
           r.pass ? "PASS" : "FAIL", r.n, r.n_quantized, r.n_failed, o.max_rel_rms > 0 ? o.max_rel_rms : 0.2);
  }
  int rc = r.pass ? MP_EXIT_OK : MP_EXIT_GATE;
  mp_verify_report_free(&r);
  return rc;
}
