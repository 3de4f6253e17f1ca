/* libFuzzer target: the safetensors header parser and validator (mp_safetensors_open_memory),
 * then every accessor over what it accepted. Any accepted tensor must lie inside the buffer and
 * have nbytes == numel x dtype size; every name must be found again by lookup. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* copy into an exact-size heap buffer so ASan catches any read past the end */
  uint8_t *buf = malloc(size ? size : 1);
  if (!buf) return 0;
  memcpy(buf, data, size);
  mp_safetensors *st = NULL;
  if (mp_safetensors_open_memory(buf, size, "fuzz.safetensors", &st) == MP_OK) {
    volatile unsigned acc = 0;
    for (size_t i = 0; i < mp_safetensors_count(st); i++) {
      const mp_tensor *t = mp_safetensors_at(st, i);
      int64_t numel = mp_tensor_numel(t);
      if (numel < 0 || (uint64_t)numel * mp_dtype_size(t->dtype) != t->nbytes) abort();
      const uint8_t *p = t->data;
      if (p < buf || p + t->nbytes > buf + size) abort();
      if (t->nbytes) acc += p[0] + p[t->nbytes - 1];
      if (mp_safetensors_find(st, t->name) != t) abort();
      if (i && (const uint8_t *)mp_safetensors_at(st, i - 1)->data + mp_safetensors_at(st, i - 1)->nbytes != p) abort();
    }
    for (size_t i = 0; i < mp_safetensors_metadata_count(st); i++) {
      const char *k, *v;
      mp_safetensors_metadata_at(st, i, &k, &v);
      if (!k || !v || mp_safetensors_metadata(st, k) != v) abort();
      acc += (unsigned)strlen(k) + (unsigned)strlen(v);
    }
    (void)acc;
    mp_safetensors_close(st);
  }
  free(buf);
  return 0;
}
