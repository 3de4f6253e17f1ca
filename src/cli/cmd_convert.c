/* mlxport convert: Hugging Face checkpoint -> MLX folder (flags follow mlx_lm.convert). */
#include <ctype.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/arena.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "eval/qsearch.h"
#include "hub/upload.h"
#include "quant/convert.h"

const char mp_cmd_convert_summary[] = "convert a Hugging Face model to MLX format (optionally MLX-quantized)";

static void usage(void) {
  printf("usage: mlxport convert --hf-path SRC [--mlx-path OUT] [-q] [options]\n"
         "\n"
         "Converts a Hugging Face checkpoint (folder, or repo id in the local HF cache) into an MLX\n"
         "model folder: model.safetensors (metadata format=mlx; shards + index above --max-shard-size),\n"
         "config.json (with mlx-lm's \"quantization\" block when quantized), tokenizer and\n"
         "sentence-transformers files, README.md and conversion_metadata.json. The folder is built\n"
         "beside OUT and renamed into place at the end: it appears whole or not at all.\n"
         "\n"
         "options (as mlx_lm.convert):\n"
         "  --hf-path SRC          model folder, weights file, or repo id (org/name[@revision])\n"
         "  --mlx-path OUT         output folder (default: mlx_model)\n"
         "  -q, --quantize         MLX quantization of Linear and Embedding weights\n"
         "  --q-mode M             affine (default) | mxfp4 | nvfp4 | mxfp8\n"
         "  --q-bits N             affine: 2, 3, 4, 5, 6, 8 (default 4); fp modes: their own (4/4/8)\n"
         "  --q-group-size N       affine: 32, 64, 128 (default 64); mxfp4/mxfp8 32, nvfp4 16\n"
         "  --quant-predicate P    mlx-lm's mixed_2_6 | mixed_3_4 | mixed_3_6 | mixed_4_6, mapped to\n"
         "                         encoder modules (value projection, feed-forward output, classifier)\n"
         "  --dtype T              float16 | bfloat16 | float32 for the float tensors, scales and\n"
         "                         biases (default: config.json torch_dtype, else float16)\n"
         "more options:\n"
         "  --q-skip GLOB          keep matching layers in float (module path or tensor name,\n"
         "                         e.g. 'classifier' or 'embeddings.*'); repeatable\n"
         "  --q-override GLOB=SPEC per-layer quantization, SPEC = BITS[:GROUP[:MODE]] or none (float);\n"
         "                         e.g. 'classifier=none', '*.attention.*=8', '*.intermediate.*=4:32:mxfp4';\n"
         "                         repeatable, the first matching rule wins; a glob matching nothing warns\n"
         "  --q-recipe NAME        keep-edges (embeddings, first/last layer, pooler, classifier at 8-bit,\n"
         "                         the rest at --q-bits) | keep-edges-float (those kept in float)\n"
         "  --q-recipe-file F      apply a recipe file or a conversion_metadata.json's recipe (its\n"
         "                         default replaces --q-bits/--q-group-size/--q-mode); refused when made\n"
         "                         for another model_type\n"
         "  --q-auto               search a per-layer recipe: smallest model whose metric drop on the\n"
         "                         calibration set stays within --max-drop (see docs/quantization.md)\n"
         "  --max-drop X           --q-auto budget, in metric points (accuracy or Spearman, 0.01 = 1 point)\n"
         "  --calibration DATA     --q-auto calibration set: a dataset key (stsb, snli, mnli, ...) or file\n"
         "  --calibration-samples N  examples for --q-auto (default 256)\n"
         "  --eval DATA            --q-auto: held-out set to report the drop on (default: see docs)\n"
         "  --eval-samples N       held-out examples (default 1000)\n"
         "  --data-dir DIR         where dataset keys are looked up first (as for eval)\n"
         "  --q-compat K           cpu (default, bit-exact with MLX's CPU kernel) | metal\n"
         "  --max-shard-size SIZE  shard the weights above SIZE (e.g. 2GB, 500MB; default 5GiB)\n"
         "  --no-skip              reconvert even if OUT holds this very conversion\n"
         "  --dry-run              print the plan; write nothing\n"
         "  --upload-repo REPO_ID  then publish OUT to this Hub repo (as `mlxport upload OUT REPO_ID`)\n"
         "  --upload-private       create that repo private\n"
         "  --json                 machine-readable summary on stdout\n"
         "\n"
         "Layers left in float are recorded as \"<path>\": false in the quantization block, as\n"
         "mlx-lm's loader expects. Re-running with the same source and settings reports 'skipped'.\n");
}

static volatile sig_atomic_t g_cancel;
static void on_signal(int sig) {
  (void)sig;
  g_cancel = 1;
}

static int parse_size(const char *v, uint64_t *out) {
  char *end;
  double x = strtod(v, &end);
  if (end == v || x <= 0) return -1;
  while (*end == ' ')
    end++;
  double mul = 1;
  char u[8] = {0};
  for (int i = 0; end[i] && i < 7; i++)
    u[i] = (char)toupper((unsigned char)end[i]);
  if (!*u || !strcmp(u, "B"))
    mul = 1;
  else if (!strcmp(u, "KB"))
    mul = 1e3;
  else if (!strcmp(u, "MB"))
    mul = 1e6;
  else if (!strcmp(u, "GB"))
    mul = 1e9;
  else if (!strcmp(u, "KIB"))
    mul = 1024.0;
  else if (!strcmp(u, "MIB"))
    mul = 1024.0 * 1024;
  else if (!strcmp(u, "GIB"))
    mul = 1024.0 * 1024 * 1024;
  else
    return -1;
  *out = (uint64_t)(x * mul);
  return *out ? 0 : -1;
}

static void print_plan(const char *json) {
  mp_arena a;
  mp_arena_init(&a, 0);
  mp_json *j;
  if (mp_json_parse(json, strlen(json), "plan", &a, &j) == MP_OK) {
    const mp_json *plan = mp_json_get(j, "plan");
    for (size_t i = 0; plan && i < plan->len; i++) {
      const mp_json *e = plan->items[i];
      const char *why = mp_json_get_str(e, "kept_float", NULL);
      char q[64] = "";
      if (mp_json_get(e, "bits"))
        snprintf(q, sizeof q, " (%s %lld-bit g%lld)", mp_json_get_str(e, "mode", "affine"),
                 (long long)mp_json_get_int(e, "bits", 0), (long long)mp_json_get_int(e, "group_size", 0));
      printf("  %-9s %-56s %s -> %s%s%s%s%s\n", mp_json_get_str(e, "action", "?"), mp_json_get_str(e, "name", "?"),
             mp_json_get_str(e, "source_dtype", "?"), mp_json_get_str(e, "dtype", "-"), q, why ? "  (kept float: " : "",
             why ? why : "", why ? ")" : "");
    }
  }
  mp_arena_free(&a);
}

int mp_cmd_convert(int argc, char **argv) {
  const char *cmd = "convert";
  mp_convert_opts o;
  mp_convert_opts_init(&o);
  o.mlx_path = "mlx_model";
  int json = 0, upload_private = 0, bits_set = 0, group_set = 0, qauto = 0;
  const char *upload_repo = NULL;
  mp_qauto_opts qa;
  mp_qauto_opts_init(&qa);
  const char **skips = calloc((size_t)argc + 1, sizeof *skips);
  const char **ovr = calloc((size_t)argc + 1, sizeof *ovr);
  if (!skips || !ovr) {
    free(skips), free(ovr);
    return MP_EXIT_ERROR;
  }
  o.q_override = ovr;
  for (int i = 1; i < argc; i++) {
    const char *v;
    long long x;
    int bad = 0;
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage();
      free(skips), free(ovr);
      return MP_EXIT_OK;
    } else if (mp_cli_opt(argc, argv, &i, "--hf-path", &v) || mp_cli_opt(argc, argv, &i, "--model", &v)) {
      if (!(bad = !v)) o.hf_path = v;
    } else if (mp_cli_opt(argc, argv, &i, "--mlx-path", &v)) {
      if (!(bad = !v)) o.mlx_path = v;
    } else if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quantize")) {
      o.quantize = 1;
    } else if (mp_cli_opt(argc, argv, &i, "--q-bits", &v)) {
      bad = !v || mp_cli_opt_int(cmd, "--q-bits", v, 1, 16, &x);
      if (!bad) o.bits = (int)x, bits_set = 1;
    } else if (mp_cli_opt(argc, argv, &i, "--q-group-size", &v)) {
      bad = !v || mp_cli_opt_int(cmd, "--q-group-size", v, 1, 4096, &x);
      if (!bad) o.group_size = (int)x, group_set = 1;
    } else if (mp_cli_opt(argc, argv, &i, "--q-mode", &v)) {
      if (!(bad = !v) && mp_qmode_parse(v, &o.mode)) {
        free(skips), free(ovr);
        return mp_cli_usage_error(cmd, "--q-mode expects affine, mxfp4, nvfp4 or mxfp8, got '%s'", v);
      }
    } else if (mp_cli_opt(argc, argv, &i, "--q-override", &v)) {
      if (!(bad = !v)) ovr[o.n_q_override++] = v;
    } else if (mp_cli_opt(argc, argv, &i, "--q-recipe", &v)) {
      if (!(bad = !v)) o.q_recipe = v;
    } else if (mp_cli_opt(argc, argv, &i, "--q-recipe-file", &v)) {
      if (!(bad = !v)) o.q_recipe_file = v;
    } else if (mp_cli_opt(argc, argv, &i, "--quant-predicate", &v)) {
      if (!(bad = !v)) o.quant_predicate = v;
    } else if (!strcmp(argv[i], "--q-auto")) {
      qauto = 1;
    } else if (mp_cli_opt(argc, argv, &i, "--max-drop", &v)) {
      char *end = NULL;
      if (!(bad = !v)) qa.max_drop = strtod(v, &end);
      if (!bad && (end == v || *end || !(qa.max_drop >= 0) || qa.max_drop > 1)) {
        free(skips), free(ovr);
        return mp_cli_usage_error(cmd,
                                  "--max-drop expects a number in [0, 1] (metric points, 0.01 = 1 point), got '%s'", v);
      }
    } else if (mp_cli_opt(argc, argv, &i, "--calibration", &v)) {
      if (!(bad = !v)) qa.calibration = v;
    } else if (mp_cli_opt(argc, argv, &i, "--data-dir", &v)) {
      if (!(bad = !v)) qa.data_dir = v;
    } else if (mp_cli_opt(argc, argv, &i, "--calibration-samples", &v)) {
      bad = !v || mp_cli_opt_int(cmd, "--calibration-samples", v, 8, 100000, &x);
      if (!bad) qa.calibration_samples = (size_t)x;
    } else if (mp_cli_opt(argc, argv, &i, "--eval", &v)) {
      if (!(bad = !v)) qa.eval = v;
    } else if (mp_cli_opt(argc, argv, &i, "--eval-samples", &v)) {
      bad = !v || mp_cli_opt_int(cmd, "--eval-samples", v, 8, 1000000, &x);
      if (!bad) qa.eval_samples = (size_t)x;
    } else if (mp_cli_opt(argc, argv, &i, "--dtype", &v)) {
      if (!(bad = !v) && mp_mlx_dtype_parse(v, &o.dtype)) {
        free(skips), free(ovr);
        return mp_cli_usage_error(cmd, "--dtype expects float16, bfloat16 or float32, got '%s'", v);
      }
    } else if (mp_cli_opt(argc, argv, &i, "--q-skip", &v)) {
      if (!(bad = !v)) skips[o.n_q_skip++] = v;
    } else if (mp_cli_opt(argc, argv, &i, "--q-compat", &v)) {
      if (!(bad = !v)) {
        if (!strcmp(v, "cpu"))
          o.compat = MP_QCOMPAT_CPU;
        else if (!strcmp(v, "metal"))
          o.compat = MP_QCOMPAT_METAL;
        else {
          free(skips), free(ovr);
          return mp_cli_usage_error(cmd, "--q-compat expects cpu or metal, got '%s'", v);
        }
      }
    } else if (mp_cli_opt(argc, argv, &i, "--max-shard-size", &v)) {
      if (!(bad = !v) && parse_size(v, &o.max_shard_bytes)) {
        free(skips), free(ovr);
        return mp_cli_usage_error(cmd, "--max-shard-size expects a size like 5GB or 500MB, got '%s'", v);
      }
    } else if (!strcmp(argv[i], "--no-skip")) {
      o.no_skip = 1;
    } else if (!strcmp(argv[i], "--dry-run")) {
      o.dry_run = 1;
    } else if (mp_cli_opt(argc, argv, &i, "--upload-repo", &v)) {
      if (!(bad = !v)) {
        if (!mp_hub_valid_repo_id(v)) {
          free(skips);
          return mp_cli_usage_error(cmd, "--upload-repo: '%s' is not a repo id (org/name)", v);
        }
        upload_repo = v;
      }
    } else if (!strcmp(argv[i], "--upload-private")) {
      upload_private = 1;
    } else if (!strcmp(argv[i], "--json")) {
      json = 1;
    } else {
      free(skips), free(ovr);
      return mp_cli_usage_error(cmd, "unknown argument '%s'", argv[i]);
    }
    if (bad) {
      free(skips), free(ovr);
      return MP_EXIT_USAGE;
    }
  }
  o.q_skip = skips;
  if (!o.hf_path) {
    free(skips), free(ovr);
    return mp_cli_usage_error(cmd, "--hf-path is required");
  }
  if (!bits_set) o.bits = mp_qmode_default_bits(o.mode);
  if (!group_set) o.group_size = mp_qmode_default_group(o.mode);
  if (o.quantize && !o.q_recipe_file && !mp_mlx_quant_supported(o.mode, o.bits, o.group_size)) {
    char allowed[128];
    mp_qmode_allowed(o.mode, allowed, sizeof allowed);
    free(skips), free(ovr);
    return mp_cli_usage_error(cmd, "--q-mode %s --q-bits %d --q-group-size %d: %s", mp_qmode_name(o.mode), o.bits,
                              o.group_size, allowed);
  }
  if (!qauto && (qa.calibration || qa.max_drop >= 0 || qa.eval)) {
    free(skips), free(ovr);
    return mp_cli_usage_error(cmd, "--max-drop / --calibration / --eval belong to --q-auto");
  }
  if (qauto) {
    if (!qa.calibration || qa.max_drop < 0) {
      free(skips), free(ovr);
      return mp_cli_usage_error(cmd, "--q-auto needs --max-drop X and --calibration DATASET");
    }
    o.quantize = 1;
  }
  struct sigaction sa, old_int, old_term;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  o.cancel = &g_cancel;
  /* the card shows the command with the output folder's name, not its local path: the same
   * conversion gives the same card wherever it is written (and no local path is published) */
  char **av = calloc((size_t)argc + 1, sizeof *av);
  char *mlx_arg = NULL;
  for (int i = 0; av && i < argc; i++) {
    av[i] = argv[i];
    if (!strcmp(argv[i], "--mlx-path") && i + 1 < argc) {
      av[i + 1] = (char *)mp_path_basename(argv[i + 1]);
      i++;
    } else if (!strncmp(argv[i], "--mlx-path=", 11) && !mlx_arg) {
      size_t need = strlen(argv[i]) + 16;
      if ((mlx_arg = malloc(need))) {
        snprintf(mlx_arg, need, "--mlx-path=%s", mp_path_basename(argv[i] + 11));
        av[i] = mlx_arg;
      }
    }
  }
  char *cmdline = av ? mp_cli_command_line(argc, av) : NULL;
  free(av);
  free(mlx_arg);
  o.command = cmdline;
  mp_convert_result r;
  mp_status s;
  if (qauto) {
    qa.json = json;
    s = mp_qauto_convert(&o, &qa, &r);
  } else {
    s = mp_convert(&o, &r);
  }
  free(cmdline);
  sigaction(SIGINT, &old_int, NULL);
  sigaction(SIGTERM, &old_term, NULL);
  free(skips), free(ovr);
  if (s) {
    mp_convert_result_free(&r);
    return mp_cli_fail(cmd, s);
  }
  if (json) {
    fputs(r.json, stdout);
  } else {
    char a[32], b[32];
    if (!strcmp(r.status, "planned")) {
      printf("plan for %s (nothing written):\n", o.mlx_path);
      print_plan(r.json);
    }
    printf("%s: %s: %zu tensors (%zu quantized, %zu cast, %zu copied, %zu dropped, %zu layers kept float), "
           "weights %s -> %s%s, %.2fs\n",
           r.status, o.mlx_path, r.n_tensors, r.n_quantized, r.n_cast, r.n_copied, r.n_dropped, r.n_float_layers,
           mp_cli_human_bytes((double)r.source_bytes, a, sizeof a),
           mp_cli_human_bytes((double)r.output_bytes, b, sizeof b), !strcmp(r.status, "planned") ? " (planned)" : "",
           r.seconds);
  }
  int planned = !strcmp(r.status, "planned");
  mp_convert_result_free(&r);
  if (upload_repo) {
    mp_hub_upload_request uq = {0};
    uq.folder = o.mlx_path;
    uq.repo_id = upload_repo;
    uq.private_ = upload_private;
    uq.dry_run = planned;
    uq.commit_message = "Upload MLX model converted with mlxport";
    if (planned) {
      fprintf(stderr, "mlxport convert: --dry-run: %s would then be uploaded to %s\n", o.mlx_path, upload_repo);
      return MP_EXIT_OK;
    }
    mp_hub_upload_result ur;
    s = mp_hub_upload(&uq, &ur);
    if (s) {
      mp_hub_upload_result_free(&ur);
      return mp_cli_fail(cmd, s);
    }
    if (ur.committed)
      fprintf(stderr, "mlxport convert: uploaded %s to %s: commit %s (%zu LFS files sent)\n", o.mlx_path, upload_repo,
              ur.commit, ur.n_lfs_uploaded);
    else
      fprintf(stderr, "mlxport convert: %s is already up to date at %s\n", upload_repo, ur.commit ? ur.commit : "?");
    mp_hub_upload_result_free(&ur);
  }
  return MP_EXIT_OK;
}
