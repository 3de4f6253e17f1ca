/* mlxport version: prints the version and, with --kernels or --json, the CPU kernels this
 * machine runs (instruction set, integer kernel, bf16 tiles). */
#include <string.h>

#include "cli/cli.h"
#include "core/strbuf.h"
#include "kernels/kernels.h"

const char mp_cmd_version_summary[] = "print the version (and the CPU kernels in use)";

static const char *k_help = "usage: mlxport version [--kernels] [--json]\n"
                            "\n"
                            "Prints the version. --kernels adds the CPU kernels this machine runs: the float\n"
                            "kernels' instruction set, the integer kernel of the fast mode for quantized layers,\n"
                            "whether float16/bfloat16 layers run on AMX-BF16 tiles in the fast mode, and the CPU\n"
                            "features detected. MP_ISA=scalar|avx2 and MP_AMX=0 in the environment lower them.\n"
                            "--json prints all of it as one JSON object.\n";

int mp_cmd_version(int argc, char **argv) {
  int kernels = 0, json = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      fputs(k_help, stdout);
      return MP_EXIT_OK;
    } else if (!strcmp(argv[i], "--kernels")) {
      kernels = 1;
    } else if (!strcmp(argv[i], "--json")) {
      json = 1;
    } else {
      return mp_cli_usage_error("version", "unknown option '%s'", argv[i]);
    }
  }
  const char *isa = mp_isa_name(mp_kernels_isa()), *ik = mp_qlinear_path(), *feat = mp_kernels_features();
  const int tiles = mp_bflinear_available();
  if (json) {
    mp_sb sb;
    mp_sb_init(&sb);
    mp_sb_puts(&sb, "{\"version\":");
    mp_sb_json_str(&sb, MP_VERSION_STRING, strlen(MP_VERSION_STRING));
    mp_sb_puts(&sb, ",\"isa\":");
    mp_sb_json_str(&sb, isa, strlen(isa));
    mp_sb_puts(&sb, ",\"integer_kernel\":");
    mp_sb_json_str(&sb, ik, strlen(ik));
    mp_sb_printf(&sb, ",\"bf16_tiles\":%s,\"cpu_features\":", tiles ? "true" : "false");
    mp_sb_json_str(&sb, feat, strlen(feat));
    mp_sb_puts(&sb, "}\n");
    fputs(sb.oom ? "{}\n" : sb.buf, stdout);
    mp_sb_free(&sb);
    return MP_EXIT_OK;
  }
  printf("mlxport %s\n", MP_VERSION_STRING);
  if (kernels)
    printf("float kernels: %s\ninteger kernel (fast mode, quantized layers): %s\n"
           "bf16 tiles (fast mode, float16/bfloat16 layers): %s\ncpu features: %s\n",
           isa, ik, tiles ? "amx-bf16" : "no (f32 kernels)", feat);
  return MP_EXIT_OK;
}
