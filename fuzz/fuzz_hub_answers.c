/* libFuzzer target: the parsers of the Hub's upload answers (preupload, LFS batch: untrusted
 * server input) and the model-card rebuild (README.md text + a recorded evaluation). The first
 * byte picks the parser. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/json.h"
#include "hub/card.h"
#include "hub/upload.h"

#define OID_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define OID_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  int which = data[0] % 3;
  const char *text = (const char *)data + 1;
  size_t n = size - 1;
  if (which == 0) {
    mp_up_file f[3];
    memset(f, 0, sizeof f);
    f[0].path = "config.json";
    f[1].path = "model.safetensors";
    f[2].path = "1_Pooling/config.json";
    (void)mp_up_parse_preupload(text, n, "fuzz", f, 3);
  } else if (which == 1) {
    mp_up_action a[2];
    memset(a, 0, sizeof a);
    a[0].oid = OID_A, a[0].size = 10;
    a[1].oid = OID_B, a[1].size = 1000000;
    (void)mp_up_parse_batch(text, n, "fuzz", a, 2);
    mp_up_actions_free(a, 2);
  } else {
    /* the card text is the input; the evaluation a fixed document */
    static const char ev[] =
        "{\"evaluations\": [{\"command\": \"mlxport eval\", \"comparison\": {\"dataset\": \"stsb\", "
        "\"main_metric\": \"spearman\", \"converted\": {\"task\": \"semantic-similarity\", "
        "\"spearman\": 0.9, \"n_examples\": 3}, \"quality_gates\": {\"passed\": true, \"gates\": "
        "[]}}}], \"note\": \"n\"}";
    char *card = malloc(n + 1);
    if (!card) return 0;
    memcpy(card, text, n);
    card[n] = 0;
    mp_arena ar;
    mp_arena_init(&ar, 0);
    mp_json *j = NULL;
    if (mp_json_parse(ev, sizeof ev - 1, "ev", &ar, &j) == MP_OK) {
      mp_sb out;
      mp_sb_init(&out);
      (void)mp_card_rebuild(card, strlen(card), j, "t", &out);
      mp_sb_free(&out);
    }
    mp_arena_free(&ar);
    free(card);
  }
  return 0;
}
