/* config.json keys mlxport accepts, per family: an explicit allow-list, so that a key that could
 * change the model's outputs and that the runtime does not implement stops the load with a clear
 * error instead of being ignored silently.
 *
 * Both schemas are listed: transformers 4.x (torch_dtype, ModernBERT's global_rope_theta /
 * local_rope_theta / global_attn_every_n_layers, ...) and 5.x (dtype, ModernBERT's rope_parameters
 * and layer_types, tie_word_embeddings written by every family, ...). A key is here because
 *   - the runtime reads it (src/model/config.c and the family's src/model/<family>.c), or
 *   - it cannot change an encoder's outputs: training-only (dropout, initializer), generation-only
 *     (beam search, sampling), labels, bookkeeping (transformers_version, architectures), or keys
 *     that transformers' modeling code of that family does not read either (BART's fairseq-era
 *     normalize_before / add_final_layer_norm, ...).
 * Keys that are understood only for some values (is_decoder, pruned_heads, quantization_config,
 * ...) are checked here too; family keys with value limits (ModernBERT's rope_parameters, DeBERTa's
 * conv_kernel_size, ...) are checked where the family binds its weights. docs/runtime.md lists the
 * schemas and the refused keys. */
#include <string.h>

#include "core/error.h"
#include "core/json.h"
#include "model/config.h"

/* every family: labels, bookkeeping, training-only and generation-only keys */
static const char *const k_common[] = {
    "_name_or_path", "_commit_hash", "transformers_version", "architectures", "model_type", "finetuning_task",
    "tokenizer_class", "prefix", "task_specific_params", "problem_type", "id2label", "label2id", "num_labels",
    "_num_labels", "torch_dtype", "dtype", "use_bfloat16", "quantization", "return_dict", "use_return_dict",
    "output_hidden_states", "output_attentions", "torchscript", "tf_legacy_loss", "gradient_checkpointing", "use_cache",
    "output_past", "chunk_size_feed_forward", "tie_word_embeddings", "tie_encoder_decoder", "is_encoder_decoder",
    "is_decoder", "add_cross_attention", "cross_attention_hidden_size", "pruned_heads", "_attn_implementation",
    "attn_implementation", "_attn_implementation_autoset", "_attn_implementation_internal", "initializer_range",
    "init_std",
    /* token ids (pad_token_id is read; the others only matter for generation / tokenizers) */
    "pad_token_id", "bos_token_id", "eos_token_id", "sep_token_id", "cls_token_id", "mask_token_id", "unk_token_id",
    "decoder_start_token_id", "forced_bos_token_id", "forced_eos_token_id",
    /* generation */
    "max_length", "min_length", "do_sample", "early_stopping", "num_beams", "num_beam_groups", "diversity_penalty",
    "temperature", "top_k", "top_p", "typical_p", "repetition_penalty", "length_penalty", "no_repeat_ngram_size",
    "encoder_no_repeat_ngram_size", "bad_words_ids", "num_return_sequences", "output_scores", "return_dict_in_generate",
    "remove_invalid_values", "exponential_decay_length_penalty", "suppress_tokens", "begin_suppress_tokens", NULL};

/* transformers' BertConfig / RobertaConfig / XLMRobertaConfig / CamembertConfig */
static const char *const k_bert[] = {"vocab_size",
                                     "hidden_size",
                                     "num_hidden_layers",
                                     "num_attention_heads",
                                     "intermediate_size",
                                     "hidden_act",
                                     "hidden_dropout_prob",
                                     "attention_probs_dropout_prob",
                                     "max_position_embeddings",
                                     "type_vocab_size",
                                     "layer_norm_eps",
                                     "position_embedding_type",
                                     "classifier_dropout",
                                     NULL};

static const char *const k_distilbert[] = {
    "vocab_size", "max_position_embeddings", "sinusoidal_pos_embds", "n_layers", "n_heads", "dim", "hidden_dim",
    "dropout", "attention_dropout", "activation", "qa_dropout", "seq_classif_dropout", "tie_weights_",
    /* attribute_map aliases of dim / n_heads / n_layers (read as such by src/model/config.c) */
    "hidden_size", "num_attention_heads", "num_hidden_layers", NULL};

static const char *const k_deberta[] = {"vocab_size",
                                        "hidden_size",
                                        "num_hidden_layers",
                                        "num_attention_heads",
                                        "intermediate_size",
                                        "hidden_act",
                                        "hidden_dropout_prob",
                                        "attention_probs_dropout_prob",
                                        "max_position_embeddings",
                                        "type_vocab_size",
                                        "layer_norm_eps",
                                        "relative_attention",
                                        "max_relative_positions",
                                        "position_biased_input",
                                        "pos_att_type",
                                        "pooler_dropout",
                                        "pooler_hidden_act",
                                        "pooler_hidden_size",
                                        "share_att_key",
                                        "position_buckets",
                                        "norm_rel_ebd",
                                        "embedding_size",
                                        "attention_head_size",
                                        "conv_kernel_size",
                                        "conv_groups",
                                        "conv_act",
                                        "cls_dropout",
                                        "legacy" /* masked-LM head only */,
                                        "position_embedding_type" /* "absolute" only */,
                                        NULL};

static const char *const k_bart[] = {
    "vocab_size", "max_position_embeddings", "d_model", "encoder_layers", "encoder_ffn_dim", "encoder_attention_heads",
    "decoder_layers", "decoder_ffn_dim", "decoder_attention_heads", "encoder_layerdrop", "decoder_layerdrop",
    "activation_function", "dropout", "attention_dropout", "activation_dropout", "classifier_dropout",
    "classif_dropout", "scale_embedding", "num_hidden_layers" /* alias of encoder_layers */,
    /* fairseq-era keys that transformers' BART does not read (bart-large-mnli has some of them) */
    "add_bias_logits", "add_final_layer_norm", "normalize_before", "normalize_embedding", "static_position_embeddings",
    "extra_pos_embeddings", "force_bos_token_to_be_generated", NULL};

static const char *const k_mobilebert[] = {
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "max_position_embeddings",
    "type_vocab_size",
    "layer_norm_eps",
    "embedding_size",
    "trigram_input",
    "use_bottleneck",
    "intra_bottleneck_size",
    "use_bottleneck_attention",
    "key_query_shared_bottleneck",
    "num_feedforward_networks",
    "normalization_type",
    "classifier_activation",
    "classifier_dropout",
    "position_embedding_type" /* "absolute" only */,
    "true_hidden_size" /* derived: transformers recomputes it from use_bottleneck / intra_bottleneck_size */,
    NULL};

static const char *const k_mpnet[] = {"vocab_size",
                                      "hidden_size",
                                      "num_hidden_layers",
                                      "num_attention_heads",
                                      "intermediate_size",
                                      "hidden_act",
                                      "hidden_dropout_prob",
                                      "attention_probs_dropout_prob",
                                      "max_position_embeddings",
                                      "layer_norm_eps",
                                      "relative_attention_num_buckets",
                                      "position_embedding_type" /* "absolute" only */,
                                      NULL};

static const char *const k_modernbert[] = {
    "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "hidden_activation",
    "max_position_embeddings", "initializer_cutoff_factor", "norm_eps", "norm_bias", "attention_bias",
    "attention_dropout", "embedding_dropout", "mlp_bias", "mlp_dropout", "decoder_bias", "classifier_pooling",
    "classifier_dropout", "classifier_bias", "classifier_activation", "deterministic_flash_attn", "sparse_prediction",
    "sparse_pred_ignore_index", "reference_compile", "repad_logits_with_grad",
    /* 4.x schema */
    "global_rope_theta", "local_rope_theta", "global_attn_every_n_layers", "local_attention", "rope_scaling",
    /* 5.x schema */
    "rope_parameters", "layer_types", "sliding_window", "head_dim",
    /* not read by transformers' ModernBERT (written by older configs) */
    "layer_norm_eps", "position_embedding_type", NULL};

static int in_list(const char *const *l, const char *k) {
  for (; *l; l++)
    if (!strcmp(*l, k)) return 1;
  return 0;
}

static const char *const *family_keys(mp_family f) {
  switch (f) {
  case MP_FAMILY_BERT:
  case MP_FAMILY_ROBERTA: return k_bert;
  case MP_FAMILY_DISTILBERT: return k_distilbert;
  case MP_FAMILY_DEBERTA_V2: return k_deberta;
  case MP_FAMILY_BART: return k_bart;
  case MP_FAMILY_MOBILEBERT: return k_mobilebert;
  case MP_FAMILY_MPNET: return k_mpnet;
  case MP_FAMILY_MODERNBERT: return k_modernbert;
  default: return NULL;
  }
}

static int is_false_or_null(const mp_json *v) {
  return v->type == MP_JSON_NULL || (v->type == MP_JSON_BOOL && !v->boolean);
}

mp_status mp_model_config_check_keys(const mp_json *cfg, const char *path, mp_family fam, const char *model_type) {
  const char *const *fk = family_keys(fam);
  if (!fk || cfg->type != MP_JSON_OBJECT) return MP_OK;
  for (size_t i = 0; i < cfg->len; i++) {
    const char *k = cfg->keys[i];
    const mp_json *v = cfg->items[i];
    if (!in_list(k_common, k) && !in_list(fk, k)) {
      if (!strcmp(k, "auto_map"))
        return mp_err(MP_ERR_UNSUPPORTED,
                      "%s:%u: key \"auto_map\": this model runs its own Python code (trust_remote_code), which "
                      "mlxport cannot follow; only the standard transformers \"%s\" architecture is supported. "
                      "Remove \"auto_map\" only if the model is the standard one",
                      path, v->line, model_type);
      if (!strcmp(k, "quantization_config")) {
        if (mp_json_get(cfg, "quantization")) continue; /* mlx-lm's mirror of "quantization" */
        return mp_err(MP_ERR_UNSUPPORTED,
                      "%s:%u: key \"quantization_config\": the checkpoint is quantized by transformers (bitsandbytes, "
                      "GPTQ, ...), which mlxport cannot read; convert the original floating-point checkpoint",
                      path, v->line);
      }
      return mp_err(MP_ERR_UNSUPPORTED,
                    "%s:%u: key \"%s\" is not understood by mlxport for model_type \"%s\" and may change the "
                    "model's outputs, so the model is not loaded. If the key does not change what the model "
                    "computes, remove it from config.json; docs/runtime.md lists the keys that are read",
                    path, v->line, k, model_type);
    }
    /* understood only for the values that leave a plain encoder */
    if (!strcmp(k, "is_decoder") && !is_false_or_null(v))
      return mp_err(MP_ERR_UNSUPPORTED,
                    "%s:%u: key \"is_decoder\" is true (causal self-attention); mlxport runs encoders only", path,
                    v->line);
    if (!strcmp(k, "add_cross_attention") && !is_false_or_null(v))
      return mp_err(MP_ERR_UNSUPPORTED,
                    "%s:%u: key \"add_cross_attention\" is true (a decoder with cross-attention); mlxport runs "
                    "encoders only",
                    path, v->line);
    if (!strcmp(k, "pruned_heads") && !(v->type == MP_JSON_NULL || (v->type == MP_JSON_OBJECT && v->len == 0)))
      return mp_err(MP_ERR_UNSUPPORTED,
                    "%s:%u: key \"pruned_heads\" lists pruned attention heads, which mlxport does not support; "
                    "use the unpruned model",
                    path, v->line);
  }
  return MP_OK;
}
