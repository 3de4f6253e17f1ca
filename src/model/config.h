/* Model configuration: config.json (+ sentence-transformers files) -> one struct every family
 * reads. Field names follow transformers' BERT config; other families' spellings (DistilBERT's
 * dim/n_layers/hidden_dim/activation, ...) are mapped onto them. */
#ifndef MP_MODEL_CONFIG_H
#define MP_MODEL_CONFIG_H
#include <stddef.h>
#include <stdint.h>

#include "core/json.h"
#include "kernels/kernels.h"
#include "mlxport.h"

typedef enum mp_family {
  MP_FAMILY_UNKNOWN = 0,
  MP_FAMILY_BERT,       /* bert (MiniLM, xtremedistil, bge, ...) */
  MP_FAMILY_ROBERTA,    /* roberta, xlm-roberta, camembert */
  MP_FAMILY_DISTILBERT, /* distilbert */
  MP_FAMILY_DEBERTA_V2, /* deberta-v2 (DeBERTa-v2/v3) */
  MP_FAMILY_BART,       /* bart (encoder-decoder; BartForSequenceClassification) */
  MP_FAMILY_MOBILEBERT, /* mobilebert */
  MP_FAMILY_MPNET,      /* mpnet (all-mpnet-base-v2) */
  MP_FAMILY_MODERNBERT, /* modernbert */
} mp_family;

typedef enum mp_head {
  MP_HEAD_NONE = 0, /* bare encoder (embeddings) */
  MP_HEAD_SEQ_CLS,  /* *ForSequenceClassification */
} mp_head;

typedef enum mp_pooling {
  MP_POOL_NONE = 0,
  MP_POOL_CLS,
  MP_POOL_MEAN,
  MP_POOL_MAX,
  MP_POOL_MEAN_SQRT_LEN,
} mp_pooling;

#define MP_MAX_LABELS 64
/* Upper bound of every size field (vocab, hidden, layers, ...): 2^24. Real models are far below
 * (the largest vocabularies ~256k), and products of a few such sizes stay inside int64. */
#define MP_CONFIG_MAX_DIM (INT64_C(1) << 24)

typedef struct mp_model_config {
  char model_type[32];
  char architecture[96];
  mp_family family;
  mp_head head;
  int64_t vocab_size, hidden, layers, heads, intermediate, max_positions, type_vocab_size;
  int64_t pad_token_id;
  /* layer hook calls of one forward (mp_forward_out.hook): layers + 1 (embeddings, then each
   * layer); BART: encoder_layers + decoder_layers + 2 (encoder then decoder) */
  int64_t hook_points;
  float layer_norm_eps;
  mp_act act;
  /* labels (head == SEQ_CLS) */
  int num_labels;
  char *id2label[MP_MAX_LABELS];
  /* sentence-transformers (present when modules.json exists) */
  int has_st;
  mp_pooling pooling;
  int normalize;
  int64_t st_max_seq_length; /* 0 when unknown */
  /* MLX quantization block (bits == 0: none) */
  int q_bits, q_group_size;
} mp_model_config;

/* Reads <dir>/config.json (and modules.json, 1_Pooling/config.json, sentence_bert_config.json
 * when present). Unknown model_type or missing required fields: MP_ERR_UNSUPPORTED /
 * MP_ERR_FORMAT naming config.json and the field. */
mp_status mp_model_config_load(const char *dir, mp_model_config *cfg);
void mp_model_config_free(mp_model_config *cfg);
/* The allow-list of config.json keys (src/model/config_keys.c): MP_ERR_UNSUPPORTED naming `path`,
 * the key and what to do for a key that is not understood for the family (it could change the
 * outputs), or an understood key with a value the runtime does not implement (is_decoder true,
 * pruned heads, transformers' own quantization). Both the transformers 4.x and 5.x schemas pass. */
mp_status mp_model_config_check_keys(const mp_json *cfg, const char *path, mp_family fam, const char *model_type);
/* transformers' activation name (ACT2FN keys: gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu,
 * tanh, silu/swish, sigmoid, linear) -> mp_act; MP_ERR_UNSUPPORTED naming file and key otherwise. */
mp_status mp_act_from_config(const char *file, const char *key, const char *name, mp_act *out);
const char *mp_family_name(mp_family f);
const char *mp_pooling_name(mp_pooling p);
/* Index of the label whose name starts with "entail" (case-insensitive), else -1. */
int mp_model_config_entailment_id(const mp_model_config *cfg);
#endif
