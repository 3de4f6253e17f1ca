/* libFuzzer target: the restricted unpickler and the whole torch reader over memory.
 *  1. mp_torch_check_pickle(input)                       unpickler, metadata only
 *  2. mp_torch_open_memory(input)                        ZIP reader / legacy stream / resolution
 *  3. the ZIP reader alone, every entry extracted
 *  4. the input as data.pkl of a fresh, valid torch zip with storages "0".."3" (so mutations of
 *     the pickle reach tensor resolution despite the CRC-32 check on data.pkl)
 * Every tensor a successful open returns is read end to end, so a bad view shows up in ASan. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "format/torch_pickle.h"
#include "format/zip.h"

static void touch_all(mp_torch_file *tf) {
  volatile uint8_t sink = 0;
  for (size_t i = 0; i < mp_torch_count(tf); i++) {
    const mp_tensor *t = mp_torch_at(tf, i);
    const uint8_t *p = t->data;
    for (size_t k = 0; k < t->nbytes; k++)
      sink ^= p[k];
    (void)mp_torch_find(tf, t->name);
  }
  (void)sink;
}

static uint8_t *put16(uint8_t *p, unsigned v) {
  p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8);
  return p + 2;
}
static uint8_t *put32(uint8_t *p, uint32_t v) {
  p = put16(p, v & 0xffff);
  return put16(p, v >> 16);
}

/* A stored ZIP of n entries into a malloc'd buffer. */
static uint8_t *make_zip(const char *const *names, const uint8_t *const *data, const size_t *lens, int n,
                         size_t *out_len) {
  size_t cap = 22;
  for (int i = 0; i < n; i++)
    cap += 30 + 46 + 2 * strlen(names[i]) + lens[i];
  uint8_t *buf = malloc(cap), *p = buf;
  uint32_t off[8], crc[8];
  if (!buf) return NULL;
  for (int i = 0; i < n; i++) {
    size_t nl = strlen(names[i]);
    crc[i] = (uint32_t)crc32(0, data[i], (uInt)lens[i]);
    off[i] = (uint32_t)(p - buf);
    p = put32(p, 0x04034b50);
    p = put16(p, 20), p = put16(p, 0), p = put16(p, 0), p = put16(p, 0), p = put16(p, 0);
    p = put32(p, crc[i]), p = put32(p, (uint32_t)lens[i]), p = put32(p, (uint32_t)lens[i]);
    p = put16(p, (unsigned)nl), p = put16(p, 0);
    memcpy(p, names[i], nl), p += nl;
    if (lens[i]) memcpy(p, data[i], lens[i]), p += lens[i];
  }
  uint32_t cd = (uint32_t)(p - buf);
  for (int i = 0; i < n; i++) {
    size_t nl = strlen(names[i]);
    p = put32(p, 0x02014b50);
    p = put16(p, 20), p = put16(p, 20), p = put16(p, 0), p = put16(p, 0), p = put16(p, 0), p = put16(p, 0);
    p = put32(p, crc[i]), p = put32(p, (uint32_t)lens[i]), p = put32(p, (uint32_t)lens[i]);
    p = put16(p, (unsigned)nl), p = put16(p, 0), p = put16(p, 0), p = put16(p, 0), p = put16(p, 0);
    p = put32(p, 0), p = put32(p, off[i]);
    memcpy(p, names[i], nl), p += nl;
  }
  uint32_t cds = (uint32_t)(p - buf) - cd;
  p = put32(p, 0x06054b50);
  p = put16(p, 0), p = put16(p, 0), p = put16(p, (unsigned)n), p = put16(p, (unsigned)n);
  p = put32(p, cds), p = put32(p, cd), p = put16(p, 0);
  *out_len = (size_t)(p - buf);
  return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  (void)mp_torch_check_pickle(data, size, "fuzz.pkl");
  mp_torch_file *tf = NULL;
  if (mp_torch_open_memory(data, size, "fuzz.bin", &tf) == MP_OK) {
    touch_all(tf);
    (void)mp_torch_verify(tf);
    mp_torch_close(tf);
  }
  mp_zip *z = NULL;
  if (mp_zip_open_memory(data, size, "fuzz.zip", &z) == MP_OK) {
    for (size_t i = 0; i < mp_zip_count(z); i++) {
      const uint8_t *d;
      size_t n;
      void *own;
      if (mp_zip_read(z, mp_zip_at(z, i), 1u << 24, 1, &d, &n, &own) == MP_OK) free(own);
    }
    mp_zip_close(z);
  }
  /* the input as the pickle of a valid archive; storages of 0, 7, 64 and 256 bytes */
  static uint8_t storage[256];
  for (size_t i = 0; i < sizeof storage; i++)
    storage[i] = (uint8_t)(i * 37 + 11);
  const char *names[] = {"archive/data.pkl", "archive/data/0", "archive/data/1", "archive/data/2", "archive/data/3"};
  const uint8_t *bufs[] = {data, storage, storage, storage, storage};
  size_t lens[] = {size, 0, 7, 64, 256};
  size_t zlen;
  uint8_t *zbuf = make_zip(names, bufs, lens, 5, &zlen);
  if (zbuf && mp_torch_open_memory(zbuf, zlen, "fuzz-archive.bin", &tf) == MP_OK) {
    touch_all(tf);
    mp_torch_close(tf);
  }
  free(zbuf);
  return 0;
}
