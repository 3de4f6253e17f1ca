/* mlxport version: prints the version and, with --kernels or --json, the CPU kernels this
 * machine runs (instruction set, integer kernel, bf16 tiles) and the GPUs the CUDA backend sees
 * (or why none: not built with CUDA, no driver, no device). */
#include <string.h>

#include "cli/cli.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "kernels/kernels.h"
#include "model/device.h"

const char mp_cmd_version_summary[] = "print the version (and the CPU kernels in use)";

static const char *k_help = "usage: mlxport version [--kernels] [--json]\n"
                            "\n"
                            "Prints the version. --kernels adds the CPU kernels this machine runs: the float\n"
                            "kernels' instruction set, the integer kernel of the fast mode for quantized layers,\n"
                            "whether float16/bfloat16 layers run on AMX-BF16 tiles in the fast mode, and the CPU\n"
                            "features detected. MP_ISA=scalar|avx2 and MP_AMX=0 in the environment lower them.\n"
                            "It also says whether this build has the CUDA backend (--device cuda) and which GPUs\n"
                            "it sees, or why it sees none.\n"
                            "--json prints all of it as one JSON object (\"cuda\": {\"built\", \"devices\":\n"
                            "[{\"index\", \"name\", \"memory_bytes\"}], \"error\"}).\n";

#define MAX_GPUS 16

/* the GPUs of this build into sb: JSON (json 1) or text lines */
static void cuda_info(mp_sb *sb, int json) {
  const int built = mp_device_cuda_built();
  int count = 0;
  char name[256];
  size_t total = 0;
  mp_status st = built ? mp_device_info(0, &count, name, sizeof name, &total) : MP_ERR_UNSUPPORTED;
  const char *err = st ? (built ? mp_last_error() : "this mlxport was built without CUDA (cmake -DMP_CUDA=ON)") : NULL;
  if (json) {
    mp_sb_printf(sb, ",\"cuda\":{\"built\":%s,\"devices\":[", built ? "true" : "false");
  } else if (!built) {
    mp_sb_puts(sb, "cuda: not built (cmake -DMP_CUDA=ON)\n");
    return;
  } else if (st) {
    mp_sb_printf(sb, "cuda: built; no GPU usable: %s\n", err);
    return;
  } else {
    mp_sb_printf(sb, "cuda: built; %d GPU%s\n", count, count == 1 ? "" : "s");
  }
  for (int i = 0; !st && i < count && i < MAX_GPUS; i++) {
    if (i && mp_device_info(i, &count, name, sizeof name, &total) != MP_OK) break;
    if (json) {
      mp_sb_printf(sb, "%s{\"index\":%d,\"name\":", i ? "," : "", i);
      mp_sb_json_str(sb, name, strlen(name));
      mp_sb_printf(sb, ",\"memory_bytes\":%zu}", total);
    } else {
      mp_sb_printf(sb, "  cuda:%d %s, %.1f GiB\n", i, name, (double)total / (1024.0 * 1024.0 * 1024.0));
    }
  }
  if (json) {
    mp_sb_puts(sb, "]");
    if (err) {
      mp_sb_puts(sb, ",\"error\":");
      mp_sb_json_str(sb, err, strlen(err));
    }
    mp_sb_puts(sb, "}");
  }
}

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
    cuda_info(&sb, 1);
    mp_sb_puts(&sb, "}\n");
    fputs(sb.oom ? "{}\n" : sb.buf, stdout);
    mp_sb_free(&sb);
    return MP_EXIT_OK;
  }
  printf("mlxport %s\n", MP_VERSION_STRING);
  if (kernels) {
    printf("float kernels: %s\ninteger kernel (fast mode, quantized layers): %s\n"
           "bf16 tiles (fast mode, float16/bfloat16 layers): %s\ncpu features: %s\n",
           isa, ik, tiles ? "amx-bf16" : "no (f32 kernels)", feat);
    mp_sb sb;
    mp_sb_init(&sb);
    cuda_info(&sb, 0);
    if (!sb.oom && sb.buf) fputs(sb.buf, stdout);
    mp_sb_free(&sb);
  }
  return MP_EXIT_OK;
}
