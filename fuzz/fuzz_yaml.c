/* libFuzzer target: YAML configuration parsing into the DOM. */
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mp_arena a;
  mp_arena_init(&a, 0);
  mp_json *j;
  if (mp_yaml_parse((const char *)data, size, "fuzz", &a, &j) == MP_OK) (void)mp_json_get(j, "models");
  mp_arena_free(&a);
  return 0;
}
