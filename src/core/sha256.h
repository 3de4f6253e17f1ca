/* SHA-256 (FIPS 180-4). */
#ifndef MP_CORE_SHA256_H
#define MP_CORE_SHA256_H
#include <stddef.h>
#include <stdint.h>

#include "mlxport.h"

typedef struct mp_sha256 {
  uint32_t h[8];
  uint64_t total;
  uint8_t buf[64];
  size_t buf_len;
} mp_sha256;

void mp_sha256_init(mp_sha256 *c);
void mp_sha256_update(mp_sha256 *c, const void *data, size_t n);
void mp_sha256_final(mp_sha256 *c, uint8_t out[32]);
/* hex digest (65 bytes incl. NUL) of a buffer / a file */
void mp_sha256_hex(const void *data, size_t n, char out[65]);
mp_status mp_sha256_file(const char *path, char out[65]);
/* Tests: 1 = use the portable implementation even where the CPU has the SHA extensions. */
void mp_sha256_force_scalar(int on);
#endif
