/* mlxport quantize: MLX affine quantization of the tensors of one safetensors file. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "quant/qfile.h"

const char mp_cmd_quantize_summary[] = "MLX-quantize (or dequantize, or cast) the tensors of one safetensors file";

static void usage(void) {
  printf("usage: mlxport quantize IN.safetensors OUT.safetensors [options]\n"
         "\n"
         "MLX affine quantization of a raw tensor file, bit-identical to mx.quantize (MLX CPU backend).\n"
         "Every float tensor with >= 2 dimensions whose last dimension is a multiple of the group size\n"
         "is quantized: 'P.weight' becomes 'P.weight' (uint32, packed), 'P.scales' and 'P.biases'\n"
         "(any other name N gives N, N.scales, N.biases); other float tensors are cast to --dtype;\n"
         "everything else is copied. For whole model folders use 'mlxport convert'.\n"
         "\n"
         "options:\n"
         "  --mode M          affine (default) | mxfp4 | nvfp4 | mxfp8 (MLX's floating-point modes:\n"
         "                    uint8 scales, no biases; see docs/quantization.md)\n"
         "  --bits N          affine: 2, 3, 4, 5, 6 or 8 (default 4); fp modes: their own (4 / 4 / 8)\n"
         "  --group-size N    affine: 32, 64 or 128 (default 64); fp modes: their own (32 / 16 / 32)\n"
         "  --dtype T         float16 | bfloat16 | float32: cast before quantizing; scales and biases\n"
         "                    are stored in T (default: each tensor's own dtype, like mx.quantize)\n"
         "  --q-compat K      cpu (default: MLX's CPU kernel, bit-exact) | metal (MLX's Metal kernel\n"
         "                    rounding, untested on Apple hardware; see docs/quantization.md)\n"
         "  --dequantize      the inverse: tensors with .scales/.biases companions are dequantized\n"
         "                    exactly like mx.dequantize (needs the --bits/--group-size they used)\n"
         "  --cast-only       only cast every float tensor to --dtype (MLX astype semantics)\n"
         "  --json            print a JSON summary on stdout\n"
         "\n"
         "Tensors holding NaN or +-inf cannot be quantized: the error names the tensor and index.\n");
}

int mp_cmd_quantize(int argc, char **argv) {
  const char *cmd = "quantize";
  const char *pos[2] = {NULL, NULL};
  int npos = 0, json = 0;
  mp_qfile_opts o = {MP_QFILE_QUANTIZE, 4, 64, MP_DTYPE_INVALID, MP_QCOMPAT_CPU, MP_QMODE_AFFINE};
  int bits_set = 0, group_set = 0;
  for (int i = 1; i < argc; i++) {
    const char *v;
    long long x;
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage();
      return MP_EXIT_OK;
    } else if (mp_cli_opt(argc, argv, &i, "--bits", &v)) {
      if (!v || mp_cli_opt_int(cmd, "--bits", v, 2, 8, &x)) return MP_EXIT_USAGE;
      o.bits = (int)x;
      bits_set = 1;
    } else if (mp_cli_opt(argc, argv, &i, "--mode", &v)) {
      if (!v) return MP_EXIT_USAGE;
      if (mp_qmode_parse(v, &o.qmode))
        return mp_cli_usage_error(cmd, "--mode expects affine, mxfp4, nvfp4 or mxfp8, got '%s'", v);
    } else if (mp_cli_opt(argc, argv, &i, "--group-size", &v)) {
      if (!v || mp_cli_opt_int(cmd, "--group-size", v, 1, 4096, &x)) return MP_EXIT_USAGE;
      o.group_size = (int)x;
      group_set = 1;
    } else if (mp_cli_opt(argc, argv, &i, "--dtype", &v)) {
      if (!v) return MP_EXIT_USAGE;
      if (mp_mlx_dtype_parse(v, &o.dtype))
        return mp_cli_usage_error(cmd, "--dtype expects float16, bfloat16 or float32, got '%s'", v);
    } else if (mp_cli_opt(argc, argv, &i, "--q-compat", &v)) {
      if (!v) return MP_EXIT_USAGE;
      if (!strcmp(v, "cpu"))
        o.compat = MP_QCOMPAT_CPU;
      else if (!strcmp(v, "metal"))
        o.compat = MP_QCOMPAT_METAL;
      else
        return mp_cli_usage_error(cmd, "--q-compat expects cpu or metal, got '%s'", v);
    } else if (!strcmp(argv[i], "--dequantize")) {
      o.mode = MP_QFILE_DEQUANTIZE;
    } else if (!strcmp(argv[i], "--cast-only")) {
      o.mode = MP_QFILE_CAST;
    } else if (!strcmp(argv[i], "--json")) {
      json = 1;
    } else if (argv[i][0] == '-' && argv[i][1]) {
      return mp_cli_usage_error(cmd, "unknown option '%s'", argv[i]);
    } else {
      if (npos == 2) return mp_cli_usage_error(cmd, "expected IN.safetensors OUT.safetensors");
      pos[npos++] = argv[i];
    }
  }
  if (npos != 2) return mp_cli_usage_error(cmd, "expected IN.safetensors OUT.safetensors");
  if (!bits_set) o.bits = mp_qmode_default_bits(o.qmode);
  if (!group_set) o.group_size = mp_qmode_default_group(o.qmode);
  if (o.mode != MP_QFILE_CAST && !mp_mlx_quant_supported(o.qmode, o.bits, o.group_size)) {
    char allowed[128];
    mp_qmode_allowed(o.qmode, allowed, sizeof allowed);
    return mp_cli_usage_error(cmd, "--mode %s --bits %d --group-size %d: %s", mp_qmode_name(o.qmode), o.bits,
                              o.group_size, allowed);
  }
  if (o.mode == MP_QFILE_CAST && o.dtype == MP_DTYPE_INVALID)
    return mp_cli_usage_error(cmd, "--cast-only needs --dtype");
  mp_qfile_report r;
  mp_status s = mp_qfile_run(pos[0], pos[1], &o, &r);
  if (s) return mp_cli_fail(cmd, s);
  if (json) {
    mp_sb sb;
    mp_sb_init(&sb);
    mp_sb_puts(&sb, "{\"input\":");
    mp_sb_json_str(&sb, pos[0], strlen(pos[0]));
    mp_sb_puts(&sb, ",\"output\":");
    mp_sb_json_str(&sb, pos[1], strlen(pos[1]));
    mp_sb_printf(&sb,
                 ",\"tensors_in\":%zu,\"tensors_out\":%zu,\"quantized\":%zu,\"dequantized\":%zu,\"cast\":%zu,"
                 "\"copied\":%zu,\"bytes_in\":%llu,\"bytes_out\":%llu}\n",
                 r.n_in, r.n_out, r.n_quantized, r.n_dequantized, r.n_cast, r.n_copied, (unsigned long long)r.in_bytes,
                 (unsigned long long)r.out_bytes);
    fputs(sb.buf ? sb.buf : "", stdout);
    mp_sb_free(&sb);
  } else {
    fprintf(stderr, "%s: %zu tensors in, %zu out (%zu quantized, %zu dequantized, %zu cast, %zu copied)\n", pos[1],
            r.n_in, r.n_out, r.n_quantized, r.n_dequantized, r.n_cast, r.n_copied);
  }
  return MP_EXIT_OK;
}
