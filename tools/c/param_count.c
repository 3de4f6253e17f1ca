/* param_count: test/dev tool over the families' param_count op (parameter count from
 * config.json alone; not part of the product). tests/py/test_model_parity_bart.py compares it
 * with transformers' num_parameters() on the real full-size configs.
 *
 *   param_count DIR     (DIR holds config.json; no weights needed)
 * Prints {"family": ..., "architecture": ..., "parameters": N} (N = -1: a field is missing;
 * null: the family has no param_count yet). Errors go to stderr with exit status 3. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/strbuf.h"
#include "format/hf.h"
#include "model/config.h"
#include "model/model_internal.h"

static const mp_family_ops *ops_of(mp_family f) {
  switch (f) {
  case MP_FAMILY_BERT:
  case MP_FAMILY_ROBERTA:
  case MP_FAMILY_DISTILBERT: return &mp_family_bert;
  case MP_FAMILY_DEBERTA_V2: return &mp_family_deberta;
  case MP_FAMILY_BART: return &mp_family_bart;
  default: return NULL;
  }
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: param_count MODEL_DIR\n");
    return 2;
  }
  mp_model_config cfg;
  mp_arena a;
  mp_arena_init(&a, 0);
  mp_json *cj = NULL;
  if (mp_model_config_load(argv[1], &cfg) != MP_OK) {
    fprintf(stderr, "param_count: %s\n", mp_last_error());
    mp_arena_free(&a);
    return 3;
  }
  if (mp_hf_load_config(argv[1], &a, &cj) != MP_OK) {
    fprintf(stderr, "param_count: %s\n", mp_last_error());
    mp_model_config_free(&cfg);
    mp_arena_free(&a);
    return 3;
  }
  const mp_family_ops *ops = ops_of(cfg.family);
  mp_sb sb;
  mp_sb_init(&sb);
  mp_sb_printf(&sb, "{\"family\": \"%s\", \"architecture\": ", mp_family_name(cfg.family));
  mp_sb_json_str(&sb, cfg.architecture, strlen(cfg.architecture));
  if (ops && ops->param_count) mp_sb_printf(&sb, ", \"parameters\": %lld}\n", (long long)ops->param_count(&cfg, cj));
  else mp_sb_puts(&sb, ", \"parameters\": null}\n");
  fwrite(sb.buf, 1, sb.len, stdout);
  mp_sb_free(&sb);
  mp_model_config_free(&cfg);
  mp_arena_free(&a);
  return 0;
}
