/* libFuzzer target: the strict JSON parser (config.json, tokenizer.json, safetensors headers). */
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mp_arena a;
  mp_arena_init(&a, 0);
  mp_json *j;
  if (mp_json_parse((const char *)data, size, "fuzz", &a, &j) == MP_OK) (void)mp_json_get(j, "model");
  mp_arena_free(&a);
  return 0;
}
