/* Model configuration: config.json (+ sentence-transformers files) -> mp_model_config, the one
 * struct every family reads (see config.h; the key table is config_keys.c). */
#include "model/config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/arena.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "format/hf.h"

const char *mp_family_name(mp_family f) {
  switch (f) {
  case MP_FAMILY_BERT: return "bert";
  case MP_FAMILY_ROBERTA: return "roberta";
  case MP_FAMILY_DISTILBERT: return "distilbert";
  case MP_FAMILY_DEBERTA_V2: return "deberta-v2";
  case MP_FAMILY_BART: return "bart";
  case MP_FAMILY_MOBILEBERT: return "mobilebert";
  case MP_FAMILY_MPNET: return "mpnet";
  case MP_FAMILY_MODERNBERT: return "modernbert";
  default: return "unknown";
  }
}

const char *mp_pooling_name(mp_pooling p) {
  static const char *n[] = {"none", "cls", "mean", "max", "mean_sqrt_len"};
  return (unsigned)p < 5 ? n[p] : "?";
}

static mp_status need_int(const mp_json *cfg, const char *path, const char *key, const char *alt, int64_t *out) {
  const mp_json *v = mp_json_get(cfg, key);
  if (!v && alt) v = mp_json_get(cfg, alt);
  if (!v) return mp_err(MP_ERR_FORMAT, "%s: required field \"%s\" is missing", path, key);
  if (v->type != MP_JSON_NUMBER || !v->is_int || v->i <= 0)
    return mp_err(MP_ERR_FORMAT, "%s:%u: field \"%s\" must be a positive integer", path, v->line, key);
  if (v->i > MP_CONFIG_MAX_DIM) /* sizes beyond any real model: products of them must not overflow */
    return mp_err(MP_ERR_FORMAT, "%s:%u: field \"%s\" = %lld is too large (at most %lld)", path, v->line, key,
                  (long long)v->i, (long long)MP_CONFIG_MAX_DIM);
  *out = v->i;
  return MP_OK;
}

/* BART fields: BartConfig's default when absent, else a positive integer. */
static mp_status bart_int(const mp_json *cfg, const char *path, const char *key, int64_t def, int64_t *out) {
  if (!mp_json_get(cfg, key)) {
    *out = def;
    return MP_OK;
  }
  return need_int(cfg, path, key, NULL, out);
}

mp_status mp_act_from_config(const char *file, const char *key, const char *name, mp_act *out) {
  if (!strcmp(name, "gelu"))
    *out = MP_ACT_GELU_ERF;
  else if (!strcmp(name, "gelu_new") || !strcmp(name, "gelu_pytorch_tanh") || !strcmp(name, "gelu_fast"))
    *out = MP_ACT_GELU_TANH;
  else if (!strcmp(name, "relu"))
    *out = MP_ACT_RELU;
  else if (!strcmp(name, "tanh"))
    *out = MP_ACT_TANH;
  else if (!strcmp(name, "silu") || !strcmp(name, "swish"))
    *out = MP_ACT_SILU;
  else if (!strcmp(name, "sigmoid"))
    *out = MP_ACT_SIGMOID;
  else if (!strcmp(name, "linear"))
    *out = MP_ACT_NONE;
  else
    return mp_err(MP_ERR_UNSUPPORTED,
                  "%s: %s \"%s\" is not supported (gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu, tanh, silu, "
                  "sigmoid, linear)",
                  file, key, name);
  return MP_OK;
}

static void load_st(const char *dir, mp_model_config *c) {
  mp_arena a;
  mp_arena_init(&a, 0);
  char *p = mp_path_join(dir, "modules.json");
  mp_json *mods = NULL;
  if (p && mp_is_file(p) && mp_json_parse_file(p, &a, &mods) == MP_OK && mods->type == MP_JSON_ARRAY) {
    c->has_st = 1;
    for (size_t i = 0; i < mods->len; i++) {
      const char *type = mp_json_get_str(mods->items[i], "type", "");
      if (strstr(type, "Normalize")) c->normalize = 1;
      if (strstr(type, "Pooling")) {
        char *pd = mp_path_join(dir, mp_json_get_str(mods->items[i], "path", "1_Pooling"));
        char *pc = pd ? mp_path_join(pd, "config.json") : NULL;
        mp_json *pj = NULL;
        if (pc && mp_json_parse_file(pc, &a, &pj) == MP_OK) {
          if (mp_json_get_bool(pj, "pooling_mode_cls_token", 0))
            c->pooling = MP_POOL_CLS;
          else if (mp_json_get_bool(pj, "pooling_mode_mean_tokens", 0))
            c->pooling = MP_POOL_MEAN;
          else if (mp_json_get_bool(pj, "pooling_mode_max_tokens", 0))
            c->pooling = MP_POOL_MAX;
          else if (mp_json_get_bool(pj, "pooling_mode_mean_sqrt_len_tokens", 0))
            c->pooling = MP_POOL_MEAN_SQRT_LEN;
        }
        free(pd);
        free(pc);
      }
    }
  }
  free(p);
  p = mp_path_join(dir, "sentence_bert_config.json");
  mp_json *sb = NULL;
  if (p && mp_is_file(p) && mp_json_parse_file(p, &a, &sb) == MP_OK)
    c->st_max_seq_length = mp_json_get_int(sb, "max_seq_length", 0);
  free(p);
  mp_err_clear();
  mp_arena_free(&a);
}

mp_status mp_model_config_load(const char *dir, mp_model_config *c) {
  memset(c, 0, sizeof *c);
  mp_arena a;
  mp_arena_init(&a, 0);
  mp_json *cfg;
  mp_status st = mp_hf_load_config(dir, &a, &cfg);
  if (st) {
    mp_arena_free(&a);
    return st;
  }
  char *path = mp_path_join(dir, "config.json");
  const char *mt = mp_json_get_str(cfg, "model_type", NULL);
  if (!mt) {
    st = mp_err(MP_ERR_FORMAT, "%s: field \"model_type\" is missing", path);
    goto done;
  }
  snprintf(c->model_type, sizeof c->model_type, "%s", mt);
  const mp_json *archs = mp_json_get(cfg, "architectures");
  if (archs && archs->type == MP_JSON_ARRAY && archs->len && archs->items[0]->type == MP_JSON_STRING)
    snprintf(c->architecture, sizeof c->architecture, "%s", archs->items[0]->str);
  if (!strcmp(mt, "bert"))
    c->family = MP_FAMILY_BERT;
  else if (!strcmp(mt, "roberta") || !strcmp(mt, "xlm-roberta") || !strcmp(mt, "camembert"))
    c->family = MP_FAMILY_ROBERTA;
  else if (!strcmp(mt, "distilbert"))
    c->family = MP_FAMILY_DISTILBERT;
  else if (!strcmp(mt, "deberta-v2"))
    c->family = MP_FAMILY_DEBERTA_V2;
  else if (!strcmp(mt, "bart"))
    c->family = MP_FAMILY_BART;
  else if (!strcmp(mt, "mobilebert"))
    c->family = MP_FAMILY_MOBILEBERT;
  else if (!strcmp(mt, "mpnet"))
    c->family = MP_FAMILY_MPNET;
  else if (!strcmp(mt, "modernbert"))
    c->family = MP_FAMILY_MODERNBERT;
  else {
    st = mp_err(MP_ERR_UNSUPPORTED,
                "%s: model_type \"%s\" is not supported yet (supported: bert, roberta, xlm-roberta, distilbert, "
                "deberta-v2, bart, mobilebert, mpnet, modernbert)",
                path, mt);
    goto done;
  }
  c->head = strstr(c->architecture, "ForSequenceClassification") ? MP_HEAD_SEQ_CLS : MP_HEAD_NONE;
  if ((st = mp_model_config_check_keys(cfg, path, c->family, mt))) goto done;
  if (c->family == MP_FAMILY_DISTILBERT) {
    /* DistilBertConfig's attribute_map: hidden_size, num_hidden_layers, num_attention_heads */
    if ((st = need_int(cfg, path, "dim", "hidden_size", &c->hidden)) ||
        (st = need_int(cfg, path, "n_layers", "num_hidden_layers", &c->layers)) ||
        (st = need_int(cfg, path, "n_heads", "num_attention_heads", &c->heads)) ||
        (st = need_int(cfg, path, "hidden_dim", NULL, &c->intermediate)))
      goto done;
    c->layer_norm_eps = 1e-12f;
    if ((st = mp_act_from_config(path, "activation", mp_json_get_str(cfg, "activation", "gelu"), &c->act))) goto done;
    if (mp_json_get_bool(cfg, "sinusoidal_pos_embds", 0)) {
      /* the sinusoidal table is stored in the checkpoint as position_embeddings too */
    }
    c->type_vocab_size = 0;
  } else if (c->family == MP_FAMILY_BART) {
    /* encoder sizes (decoder_* are read by src/model/bart.c); BartConfig's defaults */
    if ((st = bart_int(cfg, path, "d_model", 1024, &c->hidden)) ||
        (st = bart_int(cfg, path, "encoder_layers", 12, &c->layers)) ||
        (st = bart_int(cfg, path, "encoder_attention_heads", 16, &c->heads)) ||
        (st = bart_int(cfg, path, "encoder_ffn_dim", 4096, &c->intermediate)))
      goto done;
    /* num_hidden_layers: BartConfig's alias of encoder_layers (4.x configs write both) */
    const mp_json *nhl = mp_json_get(cfg, "num_hidden_layers");
    if (nhl && !(nhl->type == MP_JSON_NUMBER && nhl->is_int && nhl->i == c->layers)) {
      st = mp_err(MP_ERR_FORMAT,
                  "%s:%u: num_hidden_layers (an alias of encoder_layers) differs from encoder_layers "
                  "%lld; make them equal or remove num_hidden_layers",
                  path, nhl->line, (long long)c->layers);
      goto done;
    }
    c->layer_norm_eps = 1e-5f; /* nn.LayerNorm default */
    if ((st = mp_act_from_config(path, "activation_function", mp_json_get_str(cfg, "activation_function", "gelu"),
                                 &c->act)))
      goto done;
    c->type_vocab_size = 0;
  } else {
    if ((st = need_int(cfg, path, "hidden_size", NULL, &c->hidden)) ||
        (st = need_int(cfg, path, "num_hidden_layers", NULL, &c->layers)) ||
        (st = need_int(cfg, path, "num_attention_heads", NULL, &c->heads)) ||
        (st = need_int(cfg, path, "intermediate_size", NULL, &c->intermediate)))
      goto done;
    c->layer_norm_eps = (float)mp_json_get_num(cfg, "layer_norm_eps", 1e-12);
    if ((st = mp_act_from_config(
             path, "hidden_act",
             mp_json_get_str(cfg, "hidden_act", c->family == MP_FAMILY_MOBILEBERT ? "relu" : "gelu"), &c->act)))
      goto done;
    c->type_vocab_size = mp_json_get_int(cfg, "type_vocab_size", c->family == MP_FAMILY_DEBERTA_V2 ? 0 : 2);
    if (c->type_vocab_size < 0 || c->type_vocab_size > MP_CONFIG_MAX_DIM) {
      st = mp_err(MP_ERR_FORMAT, "%s: field \"type_vocab_size\" = %lld is out of range (0..%lld)", path,
                  (long long)c->type_vocab_size, (long long)MP_CONFIG_MAX_DIM);
      goto done;
    }
    if (c->family == MP_FAMILY_MPNET) c->type_vocab_size = 0;      /* MPNet has no token types */
    if (c->family == MP_FAMILY_MODERNBERT) c->type_vocab_size = 0; /* ModernBERT has no token types */
    const char *pet = mp_json_get_str(cfg, "position_embedding_type", "absolute");
    if (strcmp(pet, "absolute") != 0) {
      st = mp_err(MP_ERR_UNSUPPORTED, "%s: position_embedding_type \"%s\" is not supported (only \"absolute\")", path,
                  pet);
      goto done;
    }
  }
  if (c->family == MP_FAMILY_BART) {
    if ((st = bart_int(cfg, path, "vocab_size", 50265, &c->vocab_size)) ||
        (st = bart_int(cfg, path, "max_position_embeddings", 1024, &c->max_positions)))
      goto done;
  } else if ((st = need_int(cfg, path, "vocab_size", NULL, &c->vocab_size)) ||
             (st = need_int(cfg, path, "max_position_embeddings", NULL, &c->max_positions)))
    goto done;
  c->pad_token_id = mp_json_get_int(
      cfg, "pad_token_id",
      (c->family == MP_FAMILY_ROBERTA || c->family == MP_FAMILY_BART || c->family == MP_FAMILY_MPNET) ? 1 : 0);
  c->hook_points = c->layers + 1;
  if (c->family == MP_FAMILY_BART) {
    int64_t dl;
    if ((st = bart_int(cfg, path, "decoder_layers", 12, &dl))) goto done;
    c->hook_points = c->layers + dl + 2;
  }
  if (c->hidden % c->heads) {
    st = mp_err(MP_ERR_FORMAT, "%s: hidden size %lld is not divisible by the number of heads %lld", path,
                (long long)c->hidden, (long long)c->heads);
    goto done;
  }
  /* labels */
  const mp_json *lab = mp_json_get(cfg, "id2label");
  if (lab && lab->type == MP_JSON_OBJECT && lab->len) {
    if (lab->len > MP_MAX_LABELS) {
      st = mp_err(MP_ERR_UNSUPPORTED, "%s: %zu labels (at most %d supported)", path, lab->len, MP_MAX_LABELS);
      goto done;
    }
    c->num_labels = (int)lab->len;
    for (size_t i = 0; i < lab->len; i++) {
      char *end;
      long id = strtol(lab->keys[i], &end, 10);
      if (*end || id < 0 || id >= (long)lab->len || lab->items[i]->type != MP_JSON_STRING || c->id2label[id]) {
        st = mp_err(MP_ERR_FORMAT, "%s:%u: id2label must map the ids 0..%zu to label names", path, lab->line,
                    lab->len - 1);
        goto done;
      }
      c->id2label[id] = strdup(lab->items[i]->str);
    }
  } else if (c->head == MP_HEAD_SEQ_CLS) {
    int64_t nl =
        mp_json_get_int(cfg, "num_labels", mp_json_get_int(cfg, "_num_labels", c->family == MP_FAMILY_BART ? 3 : 2));
    c->num_labels = (int)(nl > 0 && nl <= MP_MAX_LABELS ? nl : 2);
    for (int i = 0; i < c->num_labels; i++) {
      char buf[32];
      snprintf(buf, sizeof buf, "LABEL_%d", i);
      c->id2label[i] = strdup(buf);
    }
  }
  const mp_json *q = mp_json_get(cfg, "quantization");
  if (q && q->type == MP_JSON_OBJECT) {
    c->q_bits = (int)mp_json_get_int(q, "bits", 0);
    c->q_group_size = (int)mp_json_get_int(q, "group_size", 64);
  }
  load_st(dir, c);
done:
  free(path);
  mp_arena_free(&a);
  if (st) mp_model_config_free(c);
  return st;
}

void mp_model_config_free(mp_model_config *c) {
  for (int i = 0; i < MP_MAX_LABELS; i++)
    free(c->id2label[i]), c->id2label[i] = NULL;
}

int mp_model_config_entailment_id(const mp_model_config *c) {
  for (int i = 0; i < c->num_labels; i++)
    if (c->id2label[i] && strncasecmp(c->id2label[i], "entail", 6) == 0) return i;
  return -1;
}
