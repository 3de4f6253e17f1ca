/* Hugging Face cache resolution and tokenizer-kind detection. */
#include <stdlib.h>

#include "core/fs.h"
#include "format/hf.h"
#include "testlib.h"

static void test_resolve_cache(void) {
  const char *tmp = mp_test_tmpdir();
  char *hub = mp_path_join(tmp, "hub");
  setenv("HF_HUB_CACHE", hub, 1);
  mp_test_write(hub, "models--org--name/refs/main", "abc123\n");
  mp_test_write(hub, "models--org--name/snapshots/abc123/config.json", "{}");
  mp_test_write(hub, "models--org--name/snapshots/def456/config.json", "{}");
  mp_test_write(hub, "models--solo/refs/main", "r1");
  mp_test_write(hub, "models--solo/snapshots/r1/config.json", "{}");
  char *p = NULL;
  CHECK_OK(mp_hf_resolve("org/name", &p));
  CHECK(p && strstr(p, "models--org--name/snapshots/abc123") != NULL);
  free(p);
  CHECK_OK(mp_hf_resolve("org/name@def456", &p));
  CHECK(p && strstr(p, "snapshots/def456") != NULL);
  free(p);
  CHECK_OK(mp_hf_resolve("solo", &p));
  CHECK(p && strstr(p, "models--solo/snapshots/r1") != NULL);
  free(p);
  /* missing revision / missing model / not an id: clear messages */
  CHECK(mp_hf_resolve("org/name@nope", &p) == MP_ERR_NOT_FOUND);
  CHECKF(strstr(mp_last_error(), "revision 'nope'") != NULL, "%s", mp_last_error());
  CHECK(mp_hf_resolve("typeform/distilbert-base-uncased-mnli", &p) == MP_ERR_NOT_FOUND);
  CHECKF(strstr(mp_last_error(), "huggingface-cli download typeform/distilbert-base-uncased-mnli") != NULL, "%s",
         mp_last_error());
  CHECK(mp_hf_resolve("../../etc/passwd-nope", &p) == MP_ERR_NOT_FOUND);
  CHECK(mp_hf_resolve("a/b/c", &p) == MP_ERR_NOT_FOUND);
  CHECK(mp_hf_resolve("", &p) == MP_ERR_INVALID_ARG);
  /* a local path wins */
  CHECK_OK(mp_hf_resolve(hub, &p));
  CHECK(p && strcmp(p, hub) == 0);
  free(p);
  /* HF_HOME fallback */
  unsetenv("HF_HUB_CACHE");
  setenv("HF_HOME", tmp, 1);
  char *c = mp_hf_cache_dir();
  CHECK(c && strcmp(c, hub) == 0);
  free(c);
  CHECK_OK(mp_hf_resolve("org/name", &p));
  free(p);
  unsetenv("HF_HOME");
  free(hub);
}

static void test_tokenizer_kinds(void) {
  const char *shared = mp_test_shared_dir();
  static const struct {
    const char *model, *kind;
  } cases[] = {{"all-MiniLM-L6-v2", "WordPiece"},
               {"roberta-large-mnli", "BPE"},
               {"deberta-v3-base-mnli-fever-anli", "SentencePiece"},
               {"modernbert-large-zeroshot-v2", "BPE"},
               {"all-mpnet-base-v2", "WordPiece"}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s/models/%s", shared, cases[i].model);
    mp_tokenizer_info ti;
    mp_hf_tokenizer_info(buf, &ti);
    CHECKF(strcmp(ti.model_type, cases[i].kind) == 0, "%s: %s", cases[i].model, ti.model_type);
  }
}

int main(void) {
  RUN(test_resolve_cache);
  RUN(test_tokenizer_kinds);
  return mp_test_done();
}
