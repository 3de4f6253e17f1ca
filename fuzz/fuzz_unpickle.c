/* libFuzzer target: the restricted unpickler (mp_torch_check_pickle) and the whole torch reader
 * over memory (ZIP reader, legacy stream, tensor resolution). Every tensor a successful open
 * returns is read end to end, so an out-of-bounds view shows up under ASan. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "format/torch_pickle.h"
#include "format/zip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  (void)mp_torch_check_pickle(data, size, "fuzz.pkl");
  mp_torch_file *tf = NULL;
  if (mp_torch_open_memory(data, size, "fuzz.bin", &tf) == MP_OK) {
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < mp_torch_count(tf); i++) {
      const mp_tensor *t = mp_torch_at(tf, i);
      const uint8_t *p = t->data;
      for (size_t k = 0; k < t->nbytes; k++) sink ^= p[k];
      (void)mp_torch_find(tf, t->name);
      (void)sink;
    }
    mp_torch_close(tf);
  }
  /* the ZIP reader on its own: every entry extracted */
  mp_zip *z = NULL;
  if (mp_zip_open_memory(data, size, "fuzz.zip", &z) == MP_OK) {
    for (size_t i = 0; i < mp_zip_count(z); i++) {
      const uint8_t *d;
      size_t n;
      void *own;
      if (mp_zip_read(z, mp_zip_at(z, i), 1u << 24, &d, &n, &own) == MP_OK) free(own);
    }
    mp_zip_close(z);
  }
  return 0;
}
