/* Quantization recipes (src/quant/recipe.c): the --q-override spec parser and its errors, the
 * keep-edges presets and mlx-lm's mixed_* predicates on the module names of several families
 * (BERT, BART's two stacks, ModernBERT's fused Wqkv refused), recipe files (strict keys, the
 * model_type refusal, conversion_metadata.json's "recipe"), first-match-wins. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "quant/recipe.h"
#include "testlib.h"

static void test_spec(void) {
  mp_qspec s;
  CHECK_OK(mp_qspec_parse("4", 64, "t", &s));
  CHECK(s.quant && s.bits == 4 && s.group_size == 64 && s.mode == MP_QMODE_AFFINE);
  CHECK_OK(mp_qspec_parse("8:32", 64, "t", &s));
  CHECK(s.bits == 8 && s.group_size == 32);
  CHECK_OK(mp_qspec_parse("4:32:mxfp4", 64, "t", &s));
  CHECK(s.mode == MP_QMODE_MXFP4 && s.group_size == 32);
  CHECK_OK(mp_qspec_parse("4::nvfp4", 64, "t", &s));
  CHECK(s.mode == MP_QMODE_NVFP4 && s.group_size == 16);
  CHECK_OK(mp_qspec_parse("mxfp8", 64, "t", &s));
  CHECK(s.mode == MP_QMODE_MXFP8 && s.bits == 8 && s.group_size == 32);
  CHECK_OK(mp_qspec_parse("none", 64, "t", &s));
  CHECK(!s.quant);
  const char *bad[] = {"", "x", "4:x", "4:16", "7", "8:32:mxfp4", "4:32:fp4", "4:32:affine:1", "-4", "4:0"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    mp_status st = mp_qspec_parse(bad[i], 64, "--q-override 'g=X'", &s);
    CHECKF(st == MP_ERR_INVALID_ARG, "'%s' accepted", bad[i]);
    CHECKF(strstr(mp_last_error(), "--q-override 'g=X'") != NULL, "%s", mp_last_error());
  }
  mp_err_clear();
}

static const char *k_bert[] = {"embeddings.word_embeddings",
                               "embeddings.position_embeddings",
                               "embeddings.token_type_embeddings",
                               "encoder.layer.0.attention.self.query",
                               "encoder.layer.0.attention.self.value",
                               "encoder.layer.0.output.dense",
                               "encoder.layer.0.attention.output.dense",
                               "encoder.layer.1.attention.self.value",
                               "encoder.layer.1.output.dense",
                               "encoder.layer.2.attention.self.value",
                               "encoder.layer.2.output.dense",
                               "encoder.layer.3.attention.self.value",
                               "encoder.layer.3.output.dense",
                               "pooler.dense",
                               "classifier"};

static const mp_qspec *spec_of(mp_qrecipe *r, const char *m) {
  const mp_qrule *q = mp_qrecipe_match(r, m, NULL);
  return q ? &q->spec : NULL;
}

static void test_presets(void) {
  mp_qspec d = {1, 4, 64, MP_QMODE_AFFINE};
  mp_qrecipe r;
  mp_qrecipe_init(&r);
  CHECK_OK(mp_qrecipe_add_preset(&r, "keep-edges", k_bert, sizeof k_bert / sizeof *k_bert, "bert", &d));
  CHECK(spec_of(&r, "embeddings.word_embeddings") && spec_of(&r, "embeddings.word_embeddings")->bits == 8);
  CHECK(spec_of(&r, "encoder.layer.0.output.dense") && spec_of(&r, "encoder.layer.3.attention.self.value"));
  CHECK(!spec_of(&r, "encoder.layer.1.output.dense") && !spec_of(&r, "encoder.layer.2.output.dense"));
  CHECK(spec_of(&r, "pooler.dense") && spec_of(&r, "classifier"));
  mp_qrecipe_free(&r);

  /* BART: encoder and decoder stacks each keep their own first and last layer */
  const char *bart[] = {"model.shared",
                        "model.encoder.layers.0.fc1",
                        "model.encoder.layers.1.fc1",
                        "model.encoder.layers.2.fc1",
                        "model.decoder.layers.0.fc1",
                        "model.decoder.layers.1.fc1",
                        "model.decoder.layers.2.fc1",
                        "classification_head.out_proj"};
  mp_qrecipe_init(&r);
  CHECK_OK(mp_qrecipe_add_preset(&r, "keep-edges-float", bart, 8, "bart", &d));
  CHECK(spec_of(&r, "model.shared") && !spec_of(&r, "model.shared")->quant);
  CHECK(spec_of(&r, "model.encoder.layers.2.fc1") && spec_of(&r, "model.decoder.layers.0.fc1"));
  CHECK(!spec_of(&r, "model.encoder.layers.1.fc1") && !spec_of(&r, "model.decoder.layers.1.fc1"));
  CHECK(spec_of(&r, "classification_head.out_proj"));
  mp_qrecipe_free(&r);

  /* mixed_3_6 on 4 layers: v/down of layers 2 ((i - 4 // 8) % 3 == 2) and 3 (i >= 7 * 4 // 8) at 6 */
  mp_qrecipe_init(&r);
  CHECK_OK(mp_qrecipe_add_preset(&r, "mixed_3_6", k_bert, sizeof k_bert / sizeof *k_bert, "bert", &d));
  CHECK(spec_of(&r, "encoder.layer.0.attention.self.value")->bits == 3); /* 4 // 8 == 0: no first eighth */
  CHECK(spec_of(&r, "encoder.layer.1.attention.self.value")->bits == 3);
  CHECK(spec_of(&r, "encoder.layer.2.output.dense")->bits == 6);
  CHECK(spec_of(&r, "encoder.layer.3.output.dense")->bits == 6);
  CHECK(spec_of(&r, "encoder.layer.0.attention.output.dense")->bits == 3);
  CHECK(spec_of(&r, "classifier")->bits == 6 && spec_of(&r, "pooler.dense")->bits == 3);
  mp_qrecipe_free(&r);

  const char *modern[] = {"model.embeddings.tok_embeddings", "model.layers.0.attn.Wqkv", "model.layers.0.mlp.Wo"};
  mp_qrecipe_init(&r);
  CHECK(mp_qrecipe_add_preset(&r, "mixed_2_6", modern, 3, "modernbert", &d) == MP_ERR_INVALID_ARG);
  CHECKF(strstr(mp_last_error(), "no separate value projection") && strstr(mp_last_error(), "Wqkv"), "%s",
         mp_last_error());
  CHECK(mp_qrecipe_add_preset(&r, "keep-center", modern, 3, "modernbert", &d) == MP_ERR_INVALID_ARG);
  mp_qrecipe_free(&r);
  mp_err_clear();
}

static void test_files(void) {
  const char *ok = "{\"mlxport_recipe\": 1, \"model_type\": \"bert\", \"default\": {\"bits\": 4},"
                   " \"rules\": [{\"match\": \"classifier\", \"float\": true},"
                   " {\"match\": \"*.query\", \"mode\": \"mxfp4\"}, {\"match\": \"*\", \"bits\": 8}]}";
  mp_qrecipe r;
  mp_qrecipe_init(&r);
  CHECK_OK(mp_qrecipe_parse(&r, ok, strlen(ok), "r.json", "bert"));
  CHECK(r.has_default && r.dflt.bits == 4 && r.dflt.group_size == 64 && r.n == 3);
  CHECK(!spec_of(&r, "classifier")->quant);
  CHECK(spec_of(&r, "encoder.layer.0.attention.self.query")->mode == MP_QMODE_MXFP4); /* first match wins */
  CHECK(spec_of(&r, "encoder.layer.0.attention.self.key")->bits == 8);
  mp_qrecipe_free(&r);

  mp_qrecipe_init(&r);
  CHECK(mp_qrecipe_parse(&r, ok, strlen(ok), "r.json", "deberta-v2") == MP_ERR_INVALID_ARG);
  CHECKF(strstr(mp_last_error(), "r.json") && strstr(mp_last_error(), "\"bert\"") &&
             strstr(mp_last_error(), "\"deberta-v2\""),
         "%s", mp_last_error());
  mp_qrecipe_free(&r);

  const char *meta = "{\"tool\": \"mlxport\", \"recipe\": {\"mlxport_recipe\": 1, \"model_type\": \"bert\", "
                     "\"rules\": []}, \"tensors\": []}";
  mp_qrecipe_init(&r);
  CHECK_OK(mp_qrecipe_parse(&r, meta, strlen(meta), "conversion_metadata.json", "bert"));
  mp_qrecipe_free(&r);

  struct {
    const char *text, *needle;
  } bad[] = {
      {"[]", "not an mlxport recipe"},
      {"{\"mlxport_recipe\": 2, \"model_type\": \"bert\"}", "version must be 1"},
      {"{\"mlxport_recipe\": 1}", "no \"model_type\""},
      {"{\"mlxport_recipe\": 1, \"model_type\": \"bert\", \"extra\": 1}", "key \"extra\""},
      {"{\"mlxport_recipe\": 1, \"model_type\": \"bert\", \"rules\": [{\"bits\": 4}]}", "needs \"match\""},
      {"{\"mlxport_recipe\": 1, \"model_type\": \"bert\", \"rules\": [{\"match\": \"x\", \"bits\": 7}]}",
       "not something MLX can load"},
      {"{\"mlxport_recipe\": 1, \"model_type\": \"bert\", \"rules\": [{\"match\": \"x\", \"float\": true, \"bits\": "
       "4}]}",
       "takes no bits"},
      {"{\"mlxport_recipe\": 1, \"model_type\": \"bert\", \"default\": {\"float\": true}}", "key \"float\""},
      {"{\"mlxport_recipe\": 1, \"model_type\": \"bert\", \"rules\": {}}", "must be an array"},
      {"{\"mlxport_recipe\": 1, \"model_type\": \"bert\", \"rules\": [{\"match\": \"x\", \"mode\": \"q4\"}]}",
       "\"mode\" must be"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    mp_qrecipe_init(&r);
    mp_status st = mp_qrecipe_parse(&r, bad[i].text, strlen(bad[i].text), "bad.json", "bert");
    CHECKF(st != MP_OK, "accepted: %s", bad[i].text);
    CHECKF(strstr(mp_last_error(), "bad.json") && strstr(mp_last_error(), bad[i].needle), "'%s' not in: %s",
           bad[i].needle, mp_last_error());
    mp_qrecipe_free(&r);
  }
  mp_err_clear();
}

int main(void) {
  RUN(test_spec);
  RUN(test_presets);
  RUN(test_files);
  return mp_test_done();
}
