/* libFuzzer target: the quantization recipe parser (--q-recipe-file, src/quant/recipe.c) and
 * the --q-override spec parser. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/error.h"
#include "quant/recipe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mp_qrecipe r;
  mp_qrecipe_init(&r);
  if (mp_qrecipe_parse(&r, (const char *)data, size, "fuzz", size % 2 ? "bert" : NULL) == MP_OK)
    (void)mp_qrecipe_match(&r, "encoder.layer.0.attention.self.query", "encoder.layer.0.attention.self.query.weight");
  mp_qrecipe_free(&r);
  char buf[80];
  size_t n = size < sizeof buf - 1 ? size : sizeof buf - 1;
  memcpy(buf, data, n);
  buf[n] = 0;
  mp_qrecipe_init(&r);
  (void)mp_qrecipe_add_override(&r, buf, 64);
  mp_qrecipe_free(&r);
  mp_err_clear();
  return 0;
}
