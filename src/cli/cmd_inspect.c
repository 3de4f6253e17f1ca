/* mlxport inspect: what a model folder or weights file is. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/arena.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/sha256.h"
#include "core/str.h"
#include "core/strbuf.h"
#include "format/hf.h"
#include "format/weights.h"
#include "model/model.h"

const char mp_cmd_inspect_summary[] =
    "describe a model folder or weights file (architecture, tensors, size, tokenizer)";

static const char *k_help =
    "usage: mlxport inspect PATH|REPO_ID [--tensors] [--checksums] [--json]\n"
    "\n"
    "Prints what a model folder (Hugging Face or MLX) or a weights file is: architecture and\n"
    "model_type from config.json, parameter count (floating-point and MLX-packed weights;\n"
    "integer buffers such as position_ids are not parameters), tensor count and dtypes, size on disk,\n"
    "the MLX quantization block if present, the tokenizer kind, and for sentence-transformers\n"
    "folders the pooling configuration.\n"
    "\n"
    "  PATH|REPO_ID   a folder, a .safetensors / pytorch_model.bin file, or a hub repo id\n"
    "                 (org/name[@revision]) from the local Hugging Face cache, downloaded\n"
    "                 there first when absent (unless HF_HUB_OFFLINE=1; see mlxport download)\n"
    "  --tensors      list every tensor (name, dtype, shape, bytes)\n"
    "  --checksums    with --tensors: SHA-256 of each tensor's bytes\n"
    "  --json         one JSON document on stdout instead of text\n";

static const char *format_name(mp_weights_format f) {
  switch (f) {
  case MP_WEIGHTS_SAFETENSORS: return "safetensors";
  case MP_WEIGHTS_SAFETENSORS_SHARDED: return "safetensors (sharded)";
  case MP_WEIGHTS_TORCH: return "pytorch";
  case MP_WEIGHTS_TORCH_SHARDED: return "pytorch (sharded)";
  }
  return "?";
}

/* Quantization settings for a tensor prefix ("encoder.layer.0.attention.self.query"):
 * the per-layer entry of config["quantization"] if it is an object, else the global one. */
static int quant_bits_for(const mp_json *q, const char *prefix, int *group) {
  int bits = (int)mp_json_get_int(q, "bits", 0);
  *group = (int)mp_json_get_int(q, "group_size", 64);
  const mp_json *o = mp_json_get(q, prefix);
  if (o && o->type == MP_JSON_OBJECT) {
    bits = (int)mp_json_get_int(o, "bits", bits);
    *group = (int)mp_json_get_int(o, "group_size", *group);
  }
  return bits;
}

/* Logical parameter count of a tensor: packed MLX weights count their unpacked elements;
 * their scales/biases are bookkeeping and count zero. */
static int64_t logical_params(const mp_weights *w, const mp_tensor *t, const mp_json *quant) {
  int64_t n = mp_tensor_numel(t);
  int is_float = t->dtype == MP_F32 || t->dtype == MP_F16 || t->dtype == MP_BF16 || t->dtype == MP_F64;
  if (!quant) return is_float ? n : 0; /* integer tensors are buffers (position_ids), not parameters */
  const char *name = t->name;
  size_t len = strlen(name);
  char prefix[512];
  if (mp_str_ends_with(name, ".scales") || mp_str_ends_with(name, ".biases")) {
    size_t pl = len - 7;
    if (pl >= sizeof prefix - 8) return n;
    memcpy(prefix, name, pl);
    strcpy(prefix + pl, ".weight");
    const mp_tensor *wt = mp_weights_find(w, prefix);
    if (wt && wt->dtype == MP_U32) return 0;
    return n;
  }
  if (mp_str_ends_with(name, ".weight") && t->dtype == MP_U32) {
    size_t pl = len - 7;
    if (pl >= sizeof prefix - 8) return n;
    memcpy(prefix, name, pl);
    prefix[pl] = 0;
    int group;
    int bits = quant_bits_for(quant, prefix, &group);
    if (bits > 0) return n * 32 / bits;
  }
  return is_float ? n : 0;
}

typedef struct {
  int json, tensors, checksums;
} opts;

static void json_kv_str(mp_sb *sb, const char *k, const char *v, int *first) {
  if (!*first) mp_sb_putc(sb, ',');
  *first = 0;
  mp_sb_json_str(sb, k, strlen(k));
  mp_sb_putc(sb, ':');
  if (v)
    mp_sb_json_str(sb, v, strlen(v));
  else
    mp_sb_puts(sb, "null");
}

static int run(const char *ref, const opts *o) {
  char *path = NULL;
  mp_status st = mp_hf_resolve(ref, &path);
  if (st) return mp_cli_fail("inspect", st);
  int is_dir = mp_is_dir(path);
  mp_arena arena;
  mp_arena_init(&arena, 0);
  mp_json *cfg = NULL;
  if (is_dir) {
    st = mp_hf_load_config(path, &arena, &cfg);
    if (st == MP_ERR_NOT_FOUND) {
      mp_err_clear();
      st = MP_OK;
    } else if (st) {
      mp_arena_free(&arena);
      free(path);
      return mp_cli_fail("inspect", st);
    }
  }
  const mp_json *quant = cfg ? mp_json_get(cfg, "quantization") : NULL;
  if (quant && quant->type != MP_JSON_OBJECT) quant = NULL;

  /* weights: absent weights are fine for a folder (config/tokenizer only), an error for a file */
  mp_weights *w = NULL;
  static const char *k_weight_files[] = {"model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                                         "pytorch_model.bin.index.json"};
  int has_weights = !is_dir;
  for (size_t i = 0; is_dir && i < sizeof k_weight_files / sizeof *k_weight_files; i++) {
    char *p = mp_path_join(path, k_weight_files[i]);
    if (p && mp_is_file(p)) has_weights = 1;
    free(p);
  }
  st = has_weights ? mp_weights_open(path, &w)
                   : mp_err(MP_ERR_NOT_FOUND, "no model.safetensors, pytorch_model.bin or their shard indexes");
  char weights_note[1024] = "";
  if (st) {
    if (is_dir && st == MP_ERR_NOT_FOUND) {
      snprintf(weights_note, sizeof weights_note, "%s", mp_last_error());
      mp_err_clear();
      w = NULL;
    } else {
      mp_arena_free(&arena);
      free(path);
      return mp_cli_fail("inspect", st);
    }
  }
  int64_t params = 0, weight_bytes = 0, n_quantized = 0;
  int64_t dtype_counts[MP_DTYPE_COUNT] = {0};
  size_t nt = w ? mp_weights_count(w) : 0;
  for (size_t i = 0; i < nt; i++) {
    const mp_tensor *t = mp_weights_at(w, i);
    params += logical_params(w, t, quant);
    dtype_counts[t->dtype]++;
    if (quant && t->dtype == MP_U32 && mp_str_ends_with(t->name, ".weight")) n_quantized++;
  }
  for (size_t i = 0; w && i < mp_weights_file_count(w); i++) {
    int64_t s = mp_file_size(mp_weights_file(w, i));
    if (s > 0) weight_bytes += s;
  }
  int64_t total_bytes = mp_tree_size(path);
  mp_tokenizer_info tok;
  mp_hf_tokenizer_info(is_dir ? path : "", &tok);

  /* sentence-transformers */
  mp_json *modules = NULL, *pooling = NULL;
  char *pooling_rel = NULL;
  if (is_dir) {
    char *mp = mp_path_join(path, "modules.json");
    if (mp && mp_is_file(mp) && mp_json_parse_file(mp, &arena, &modules) == MP_OK && modules->type == MP_JSON_ARRAY) {
      for (size_t i = 0; i < modules->len; i++) {
        const char *type = mp_json_get_str(modules->items[i], "type", "");
        if (strstr(type, "Pooling")) {
          const char *rel = mp_json_get_str(modules->items[i], "path", "1_Pooling");
          char *pd = mp_path_join(path, rel);
          char *pc = pd ? mp_path_join(pd, "config.json") : NULL;
          if (pc && mp_json_parse_file(pc, &arena, &pooling) != MP_OK) pooling = NULL;
          pooling_rel = strdup(rel);
          free(pd);
          free(pc);
        }
      }
    } else {
      modules = NULL;
    }
    mp_err_clear();
    free(mp);
  }
  const char *arch = NULL, *model_type = NULL;
  if (cfg) {
    const mp_json *a = mp_json_get(cfg, "architectures");
    if (a && a->type == MP_JSON_ARRAY && a->len && a->items[0]->type == MP_JSON_STRING) arch = a->items[0]->str;
    model_type = mp_json_get_str(cfg, "model_type", NULL);
  }
  /* parameters from config.json alone (the family's count of the transformers model) */
  int64_t cfg_params = -1;
  int cfg_cls = 0;
  char cfg_params_note[256] = "";
  if (cfg && is_dir) {
    if (mp_model_config_param_count(path, &cfg_params, &cfg_cls) != MP_OK) {
      snprintf(cfg_params_note, sizeof cfg_params_note, "%s", mp_last_error());
      cfg_params = -1;
    }
    mp_err_clear();
  }
  const char *pool_mode = NULL;
  if (pooling) {
    static const struct {
      const char *key, *name;
    } modes[] = {{"pooling_mode_cls_token", "cls"},
                 {"pooling_mode_mean_tokens", "mean"},
                 {"pooling_mode_max_tokens", "max"},
                 {"pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len"},
                 {"pooling_mode_weightedmean_tokens", "weightedmean"},
                 {"pooling_mode_lasttoken", "lasttoken"}};
    for (size_t i = 0; i < sizeof modes / sizeof *modes; i++)
      if (mp_json_get_bool(pooling, modes[i].key, 0)) {
        pool_mode = modes[i].name;
        break;
      }
  }
  int normalize = 0;
  if (modules)
    for (size_t i = 0; i < modules->len; i++)
      if (strstr(mp_json_get_str(modules->items[i], "type", ""), "Normalize")) normalize = 1;

  int rc = MP_EXIT_OK;
  mp_sb sb;
  mp_sb_init(&sb);
  if (o->json) {
    int first = 1;
    mp_sb_putc(&sb, '{');
    json_kv_str(&sb, "reference", ref, &first);
    json_kv_str(&sb, "path", path, &first);
    json_kv_str(&sb, "kind", is_dir ? "folder" : "file", &first);
    json_kv_str(&sb, "architecture", arch, &first);
    json_kv_str(&sb, "model_type", model_type, &first);
    if (cfg_params >= 0)
      mp_sb_printf(&sb, ",\"config_parameters\":{\"count\":%lld,\"class\":\"%s\"}", (long long)cfg_params,
                   cfg_cls ? "AutoModelForSequenceClassification" : "AutoModel");
    else if (cfg)
      mp_sb_puts(&sb, ",\"config_parameters\":null");
    mp_sb_printf(&sb, ",\"weights\":");
    if (w) {
      mp_sb_printf(&sb, "{\"format\":\"%s\",\"files\":[", format_name(mp_weights_get_format(w)));
      for (size_t i = 0; i < mp_weights_file_count(w); i++) {
        if (i) mp_sb_putc(&sb, ',');
        const char *f = mp_weights_file(w, i);
        mp_sb_json_str(&sb, f, strlen(f));
      }
      mp_sb_printf(&sb, "],\"tensor_count\":%zu,\"parameters\":%lld,\"bytes\":%lld,\"dtypes\":{", nt, (long long)params,
                   (long long)weight_bytes);
      int f2 = 1;
      for (int d = 1; d < MP_DTYPE_COUNT; d++)
        if (dtype_counts[d]) {
          mp_sb_printf(&sb, "%s\"%s\":%lld", f2 ? "" : ",", mp_dtype_name((mp_dtype)d), (long long)dtype_counts[d]);
          f2 = 0;
        }
      mp_sb_puts(&sb, "}}");
    } else {
      mp_sb_puts(&sb, "null");
    }
    mp_sb_printf(&sb, ",\"folder_bytes\":%lld", (long long)total_bytes);
    mp_sb_puts(&sb, ",\"quantization\":");
    if (quant) {
      mp_sb_printf(&sb, "{\"bits\":%lld,\"group_size\":%lld,\"mode\":", (long long)mp_json_get_int(quant, "bits", 0),
                   (long long)mp_json_get_int(quant, "group_size", 0));
      const char *m = mp_json_get_str(quant, "mode", "affine");
      mp_sb_json_str(&sb, m, strlen(m));
      mp_sb_printf(&sb, ",\"quantized_tensors\":%lld}", (long long)n_quantized);
    } else {
      mp_sb_puts(&sb, "null");
    }
    mp_sb_puts(&sb, ",\"tokenizer\":");
    if (tok.kind) {
      int f3 = 1;
      mp_sb_putc(&sb, '{');
      json_kv_str(&sb, "file", tok.file, &f3);
      json_kv_str(&sb, "model", tok.model_type, &f3);
      json_kv_str(&sb, "class", tok.tokenizer_class[0] ? tok.tokenizer_class : NULL, &f3);
      mp_sb_putc(&sb, '}');
    } else {
      mp_sb_puts(&sb, "null");
    }
    mp_sb_puts(&sb, ",\"sentence_transformers\":");
    if (modules) {
      mp_sb_puts(&sb, "{\"modules\":[");
      for (size_t i = 0; i < modules->len; i++) {
        const char *t = mp_json_get_str(modules->items[i], "type", "");
        if (i) mp_sb_putc(&sb, ',');
        mp_sb_json_str(&sb, t, strlen(t));
      }
      mp_sb_puts(&sb, "],\"pooling\":");
      if (pool_mode)
        mp_sb_json_str(&sb, pool_mode, strlen(pool_mode));
      else
        mp_sb_puts(&sb, "null");
      mp_sb_printf(&sb, ",\"normalize\":%s}", normalize ? "true" : "false");
    } else {
      mp_sb_puts(&sb, "null");
    }
    if (cfg) {
      const mp_json *lab = mp_json_get(cfg, "id2label");
      if (lab && lab->type == MP_JSON_OBJECT) {
        mp_sb_puts(&sb, ",\"id2label\":{");
        for (size_t i = 0; i < lab->len; i++) {
          if (i) mp_sb_putc(&sb, ',');
          mp_sb_json_str(&sb, lab->keys[i], lab->key_lens[i]);
          mp_sb_putc(&sb, ':');
          if (lab->items[i]->type == MP_JSON_STRING)
            mp_sb_json_str(&sb, lab->items[i]->str, lab->items[i]->len);
          else
            mp_sb_puts(&sb, "null");
        }
        mp_sb_putc(&sb, '}');
      }
    }
    if (o->tensors && w) {
      mp_sb_puts(&sb, ",\"tensors\":[");
      for (size_t i = 0; i < nt; i++) {
        const mp_tensor *t = mp_weights_at(w, i);
        if (i) mp_sb_putc(&sb, ',');
        mp_sb_puts(&sb, "{\"name\":");
        mp_sb_json_str(&sb, t->name, strlen(t->name));
        mp_sb_printf(&sb, ",\"dtype\":\"%s\",\"shape\":[", mp_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++)
          mp_sb_printf(&sb, d ? ",%lld" : "%lld", (long long)t->shape[d]);
        mp_sb_printf(&sb, "],\"bytes\":%zu", t->nbytes);
        if (o->checksums) {
          char hex[65];
          mp_sha256_hex(t->data, t->nbytes, hex);
          mp_sb_printf(&sb, ",\"sha256\":\"%s\"", hex);
        }
        mp_sb_putc(&sb, '}');
      }
      mp_sb_putc(&sb, ']');
    }
    mp_sb_puts(&sb, "}\n");
  } else {
    char b1[32], b2[32];
    mp_sb_printf(&sb, "path:          %s\n", path);
    if (strcmp(path, ref) != 0) mp_sb_printf(&sb, "resolved from: %s (Hugging Face cache)\n", ref);
    if (cfg)
      mp_sb_printf(&sb, "architecture:  %s (model_type %s)\n", arch ? arch : "?", model_type ? model_type : "?");
    else if (is_dir)
      mp_sb_printf(&sb, "architecture:  unknown (no config.json)\n");
    if (cfg_params >= 0)
      mp_sb_printf(&sb, "config params: %lld (%.2f M, %s from config.json)\n", (long long)cfg_params,
                   (double)cfg_params / 1e6, cfg_cls ? "AutoModelForSequenceClassification" : "AutoModel");
    else if (cfg)
      mp_sb_printf(&sb, "config params: unknown (%s)\n", cfg_params_note);
    if (w) {
      mp_sb_printf(&sb, "weights:       %s, %zu file%s, %zu tensors (", format_name(mp_weights_get_format(w)),
                   mp_weights_file_count(w), mp_weights_file_count(w) == 1 ? "" : "s", nt);
      int f2 = 1;
      for (int d = 1; d < MP_DTYPE_COUNT; d++)
        if (dtype_counts[d]) {
          mp_sb_printf(&sb, "%s%lld %s", f2 ? "" : ", ", (long long)dtype_counts[d], mp_dtype_name((mp_dtype)d));
          f2 = 0;
        }
      mp_sb_printf(&sb, ")\nparameters:    %lld (%.2f M)\n", (long long)params, (double)params / 1e6);
      mp_sb_printf(&sb, "size on disk:  weights %s, whole %s %s\n",
                   mp_cli_human_bytes((double)weight_bytes, b1, sizeof b1), is_dir ? "folder" : "file",
                   mp_cli_human_bytes((double)total_bytes, b2, sizeof b2));
    } else {
      mp_sb_printf(&sb, "weights:       none (%s)\n", weights_note);
    }
    if (quant)
      mp_sb_printf(&sb, "quantization:  MLX %s, %lld bits, group size %lld, %lld quantized tensors\n",
                   mp_json_get_str(quant, "mode", "affine"), (long long)mp_json_get_int(quant, "bits", 0),
                   (long long)mp_json_get_int(quant, "group_size", 0), (long long)n_quantized);
    else if (cfg)
      mp_sb_printf(&sb, "quantization:  none\n");
    if (tok.kind)
      mp_sb_printf(&sb, "tokenizer:     %s (%s%s%s)\n", tok.file, tok.model_type, tok.tokenizer_class[0] ? ", " : "",
                   tok.tokenizer_class);
    else if (is_dir)
      mp_sb_printf(&sb, "tokenizer:     none found\n");
    if (modules) {
      mp_sb_printf(&sb, "sentence-transformers: ");
      for (size_t i = 0; i < modules->len; i++) {
        const char *t = mp_json_get_str(modules->items[i], "type", "");
        const char *dot = strrchr(t, '.');
        mp_sb_printf(&sb, "%s%s", i ? " -> " : "", dot ? dot + 1 : t);
      }
      mp_sb_printf(&sb, "\n  pooling:     %s%s%s\n  normalize:   %s\n", pool_mode ? pool_mode : "unknown",
                   pooling_rel ? " from " : "", pooling_rel ? pooling_rel : "", normalize ? "yes" : "no");
    }
    if (cfg) {
      const mp_json *lab = mp_json_get(cfg, "id2label");
      if (lab && lab->type == MP_JSON_OBJECT && lab->len) {
        mp_sb_printf(&sb, "labels:        ");
        for (size_t i = 0; i < lab->len; i++)
          mp_sb_printf(&sb, "%s%s=%s", i ? ", " : "", lab->keys[i],
                       lab->items[i]->type == MP_JSON_STRING ? lab->items[i]->str : "?");
        mp_sb_putc(&sb, '\n');
      }
    }
    if (o->tensors && w) {
      mp_sb_printf(&sb, "tensors:\n");
      for (size_t i = 0; i < nt; i++) {
        const mp_tensor *t = mp_weights_at(w, i);
        char shp[128];
        mp_shape_str(t->shape, t->ndim, shp, sizeof shp);
        mp_sb_printf(&sb, "  %-60s %-5s %-16s %12zu", t->name, mp_dtype_name(t->dtype), shp, t->nbytes);
        if (o->checksums) {
          char hex[65];
          mp_sha256_hex(t->data, t->nbytes, hex);
          mp_sb_printf(&sb, "  %s", hex);
        }
        mp_sb_putc(&sb, '\n');
      }
    }
  }
  if (sb.oom) {
    rc = mp_cli_fail("inspect", mp_err(MP_ERR_NOMEM, "out of memory formatting output"));
  } else {
    fwrite(sb.buf, 1, sb.len, stdout);
  }
  mp_sb_free(&sb);
  free(pooling_rel);
  mp_weights_close(w);
  mp_arena_free(&arena);
  free(path);
  return rc;
}

int mp_cmd_inspect(int argc, char **argv) {
  opts o = {0};
  const char *ref = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(k_help, stdout);
      return MP_EXIT_OK;
    } else if (!strcmp(a, "--json")) {
      o.json = 1;
    } else if (!strcmp(a, "--tensors")) {
      o.tensors = 1;
    } else if (!strcmp(a, "--checksums")) {
      o.checksums = 1;
    } else if (a[0] == '-' && a[1]) {
      return mp_cli_usage_error("inspect", "unknown option '%s'", a);
    } else if (ref) {
      return mp_cli_usage_error("inspect", "only one PATH|REPO_ID is accepted (got '%s' and '%s')", ref, a);
    } else {
      ref = a;
    }
  }
  if (!ref) return mp_cli_usage_error("inspect", "missing PATH|REPO_ID");
  if (o.checksums) o.tensors = 1;
  return run(ref, &o);
}
