/* mlxport verify-layers: layer-by-layer hidden-state agreement of two models (an original and
 * its conversion) on the same inputs: where quantization starts to hurt. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/strbuf.h"
#include "eval/data_dirs.h"
#include "eval/dataset.h"
#include "model/device.h"
#include "model/model.h"

const char mp_cmd_verify_layers_summary[] = "per-layer hidden-state agreement of an original and its conversion";

static const char *k_help =
    "usage: mlxport verify-layers ORIGINAL CONVERTED [--samples N] [--dataset KEY|FILE] [--threshold C] [--json]\n"
    "\n"
    "Runs both models on the same inputs and reports, for the embeddings (layer 0) and every\n"
    "encoder layer (BART: the encoder's, then the decoder's embeddings and layers), the cosine\n"
    "similarity of the hidden states of every real token (mean and minimum) and the largest\n"
    "absolute difference. Names the first layer whose minimum cosine\n"
    "falls below the threshold. Inputs: a seeded sample of the dataset's texts (default: stsb when\n"
    "available), else lines on stdin (`--dataset -` reads stdin always).\n"
    "\n"
    "  --samples N      number of inputs (default 16)\n"
    "  --dataset D      built-in key or file (see mlxport eval --help); - = lines on stdin\n"
    "  --data-dir DIR   where built-in datasets are\n"
    "  --threshold C    minimum token cosine considered in agreement (default 0.99)\n"
    "  --max-length N   truncate inputs (default 128)\n"
    "  --seed S         sample seed (default 42)\n"
    "  --device D       cpu (default), cuda or cuda:N: both models on that device (docs/cuda.md)\n"
    "  --device-dtype T float16 (default), bfloat16 or float32 compute on the GPU\n"
    "  --json           JSON output\n"
    "Exit status: 0 all layers above the threshold, 1 some layer below it, 2 usage, 3 error.\n";

typedef struct {
  float **layers; /* copies of hidden states per layer */
  int n_layers;
} capture;

static void hook(void *user, int layer, const float *hidden, size_t n, size_t seq, size_t dim) {
  capture *c = user;
  if (layer >= c->n_layers) return;
  size_t sz = n * seq * dim;
  c->layers[layer] = malloc(sz * sizeof(float));
  if (c->layers[layer]) memcpy(c->layers[layer], hidden, sz * sizeof(float));
}

int mp_cmd_verify_layers(int argc, char **argv) {
  const char *orig = NULL, *conv = NULL, *dataset = NULL, *data_dir = NULL;
  long long samples = 16, max_length = 128, seed = 42;
  const char *device = NULL;
  mp_dtype device_dtype = 0;
  double threshold = 0.99;
  int json = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(k_help, stdout);
      return MP_EXIT_OK;
    } else if (mp_cli_opt(argc, argv, &i, "--samples", &v)) {
      if (!v || mp_cli_opt_int("verify-layers", "--samples", v, 1, 4096, &samples)) return MP_EXIT_USAGE;
    } else if (mp_cli_opt(argc, argv, &i, "--max-length", &v)) {
      if (!v || mp_cli_opt_int("verify-layers", "--max-length", v, 2, 8192, &max_length)) return MP_EXIT_USAGE;
    } else if (mp_cli_opt(argc, argv, &i, "--seed", &v)) {
      if (!v || mp_cli_opt_int("verify-layers", "--seed", v, 0, 1LL << 62, &seed)) return MP_EXIT_USAGE;
    } else if (mp_cli_opt(argc, argv, &i, "--dataset", &v)) {
      if (!v) return MP_EXIT_USAGE;
      dataset = v;
    } else if (mp_cli_opt(argc, argv, &i, "--data-dir", &v)) {
      if (!v) return MP_EXIT_USAGE;
      data_dir = v;
    } else if (mp_cli_opt(argc, argv, &i, "--device", &v)) {
      mp_device_spec ds;
      if (!v) return MP_EXIT_USAGE;
      if (mp_device_parse(v, &ds))
        return mp_cli_usage_error("verify-layers", "--device must be cpu, cuda or cuda:N, not '%s'", v);
      device = v;
    } else if (mp_cli_opt(argc, argv, &i, "--device-dtype", &v)) {
      if (!v) return MP_EXIT_USAGE;
      if (mp_device_dtype_parse(v, &device_dtype))
        return mp_cli_usage_error("verify-layers", "--device-dtype must be float16, bfloat16 or float32, not '%s'", v);
    } else if (mp_cli_opt(argc, argv, &i, "--threshold", &v)) {
      char *end;
      if (!v) return MP_EXIT_USAGE;
      threshold = strtod(v, &end);
      if (*end || !(threshold > -1 && threshold <= 1))
        return mp_cli_usage_error("verify-layers", "--threshold in (-1, 1]");
    } else if (!strcmp(a, "--json")) {
      json = 1;
    } else if (a[0] == '-') {
      return mp_cli_usage_error("verify-layers", "unknown option '%s'", a);
    } else if (!orig) {
      orig = a;
    } else if (!conv) {
      conv = a;
    } else {
      return mp_cli_usage_error("verify-layers", "unexpected argument '%s'", a);
    }
  }
  if (!orig || !conv) return mp_cli_usage_error("verify-layers", "ORIGINAL and CONVERTED are required");
  /* inputs */
  const char **texts = NULL;
  size_t n = 0;
  mp_dataset *ds = NULL;
  char **lines = NULL;
  size_t nlines = 0;
  char *found = NULL;
  mp_status st = MP_OK;
  if (dataset && !strcmp(dataset, "-"))
    dataset = NULL; /* lines on stdin */
  else if (!dataset) {
    if (mp_data_find_ex("stsb", data_dir, 0, &found) == MP_OK) dataset = "stsb";
    mp_err_clear();
  }
  if (dataset) {
    mp_dataset_def def;
    mp_dataset_def_init(&def);
    if (mp_path_exists(dataset))
      def.path = dataset;
    else {
      def.key = dataset;
      if (!found) st = mp_data_find(dataset, data_dir, &found);
      def.path = found;
    }
    if (!st) st = mp_dataset_load(&def, &ds);
    if (!st) st = mp_dataset_sample(ds, (size_t)samples, (uint64_t)seed);
    if (!st) {
      texts = calloc(ds->n, sizeof *texts);
      for (size_t i = 0; texts && i < ds->n; i++)
        texts[n++] = ds->ex[i].text_a;
    }
  } else {
    if (mp_cli_read_lines("verify-layers", stdin, &lines, &nlines)) return MP_EXIT_ERROR;
    texts = (const char **)lines;
    n = nlines < (size_t)samples ? nlines : (size_t)samples;
  }
  if (!st && n == 0) st = mp_err(MP_ERR_INVALID_ARG, "no input texts");
  mp_model *mo = NULL, *mc = NULL;
  mp_model_options mopt = {.device = device, .device_dtype = device_dtype};
  if (!st) st = mp_model_open(orig, &mopt, &mo);
  if (!st) st = mp_model_open(conv, &mopt, &mc);
  const mp_model_config *co = st ? NULL : mp_model_get_config(mo), *cc = st ? NULL : mp_model_get_config(mc);
  if (!st && (co->hidden != cc->hidden || co->hook_points != cc->hook_points))
    st = mp_err(MP_ERR_INVALID_ARG, "the two models differ in shape (hidden %lld vs %lld, layers %lld vs %lld)",
                (long long)co->hidden, (long long)cc->hidden, (long long)co->hook_points - 1,
                (long long)cc->hook_points - 1);
  mp_tok_batch tb;
  memset(&tb, 0, sizeof tb);
  if (!st) {
    mp_tok_options to;
    mp_tok_options_init(&to);
    to.max_length = (size_t)max_length;
    to.truncation = MP_TRUNC_LONGEST_FIRST;
    to.padding = MP_PAD_LONGEST;
    st = mp_tokenizer_encode_batch(mp_model_get_tokenizer(mo), n, texts, NULL, &to, &tb);
  }
  int L = st ? 0 : (int)co->hook_points; /* embeddings + every layer (BART: encoder, then decoder) */
  capture ca = {.n_layers = L}, cb = {.n_layers = L};
  if (!st) {
    ca.layers = calloc((size_t)L, sizeof(float *));
    cb.layers = calloc((size_t)L, sizeof(float *));
    mp_model_batch mb = {
        .n = tb.n, .seq = tb.seq_len, .ids = tb.input_ids, .mask = tb.attention_mask, .types = tb.token_type_ids};
    mp_forward_out fa = {.hook = hook, .hook_user = &ca}, fb = {.hook = hook, .hook_user = &cb};
    st = mp_model_forward(mo, &mb, &fa);
    if (!st) st = mp_model_forward(mc, &mb, &fb);
  }
  int rc = MP_EXIT_OK;
  if (!st) {
    size_t H = (size_t)co->hidden, T = tb.seq_len;
    int first_bad = -1;
    mp_sb sb;
    mp_sb_init(&sb);
    if (json)
      mp_sb_puts(&sb, "{\"layers\":[");
    else
      mp_sb_printf(&sb, "%-8s %12s %12s %12s\n", "layer", "mean cos", "min cos", "max |diff|");
    for (int l = 0; l < L; l++) {
      double sum = 0, mn = 1, mx = 0;
      size_t cnt = 0;
      for (size_t r = 0; r < tb.n; r++)
        for (size_t t = 0; t < T; t++) {
          if (!tb.attention_mask[r * T + t]) continue;
          const float *a = ca.layers[l] + (r * T + t) * H, *b = cb.layers[l] + (r * T + t) * H;
          double ab = 0, aa = 0, bb = 0;
          for (size_t d = 0; d < H; d++) {
            ab += (double)a[d] * b[d], aa += (double)a[d] * a[d], bb += (double)b[d] * b[d];
            double df = fabs((double)a[d] - b[d]);
            if (df > mx) mx = df;
          }
          double c = aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 1;
          sum += c, cnt++;
          if (c < mn) mn = c;
        }
      double mean = cnt ? sum / (double)cnt : 1;
      if (first_bad < 0 && mn < threshold) first_bad = l;
      if (json) {
        mp_sb_printf(&sb, "%s{\"layer\":%d,\"mean_cosine\":", l ? "," : "", l);
        mp_sb_json_f64(&sb, mean);
        mp_sb_puts(&sb, ",\"min_cosine\":");
        mp_sb_json_f64(&sb, mn);
        mp_sb_puts(&sb, ",\"max_abs_diff\":");
        mp_sb_json_f64(&sb, mx);
        mp_sb_putc(&sb, '}');
      } else {
        char lab[16];
        snprintf(lab, sizeof lab, "%d", l);
        mp_sb_printf(&sb, "%-8s %12.6f %12.6f %12.4g%s\n", l == 0 ? "embed" : lab, mean, mn, mx,
                     mn < threshold ? "  <" : "");
      }
    }
    if (json) {
      mp_sb_printf(&sb, "],\"inputs\":%zu,\"threshold\":%g,\"first_layer_below\":", tb.n, threshold);
      if (first_bad >= 0)
        mp_sb_printf(&sb, "%d}\n", first_bad);
      else
        mp_sb_puts(&sb, "null}\n");
    } else if (first_bad >= 0) {
      if (first_bad)
        mp_sb_printf(&sb, "first layer below cosine %g: layer %d\n", threshold, first_bad);
      else
        mp_sb_printf(&sb, "first layer below cosine %g: the embeddings (layer 0)\n", threshold);
    } else {
      mp_sb_printf(&sb, "all %d layers agree (min token cosine >= %g) on %zu inputs\n", L, threshold, tb.n);
    }
    fwrite(sb.buf, 1, sb.len, stdout);
    mp_sb_free(&sb);
    if (first_bad >= 0) rc = MP_EXIT_GATE;
  } else {
    rc = mp_cli_fail("verify-layers", st);
  }
  for (int l = 0; l < L; l++) {
    if (ca.layers) free(ca.layers[l]);
    if (cb.layers) free(cb.layers[l]);
  }
  free(ca.layers), free(cb.layers);
  mp_tok_batch_free(&tb);
  mp_model_close(mo), mp_model_close(mc);
  free(texts != (const char **)lines ? (void *)texts : NULL);
  mp_cli_free_lines(lines, nlines);
  mp_dataset_free(ds);
  free(found);
  return rc;
}
