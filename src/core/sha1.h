/* SHA-1, only for git object ids (the Hub names regular files by git's blob sha1, so an
 * unchanged file can be recognised without sending it). Not for security. */
#ifndef MP_CORE_SHA1_H
#define MP_CORE_SHA1_H
#include <stddef.h>
#include <stdint.h>

typedef struct mp_sha1 {
  uint32_t h[5];
  uint64_t len;
  uint8_t buf[64];
  size_t n;
} mp_sha1;

void mp_sha1_init(mp_sha1 *c);
void mp_sha1_update(mp_sha1 *c, const void *data, size_t n);
void mp_sha1_final(mp_sha1 *c, uint8_t out[20]);
/* git's blob id of `data`: sha1("blob <n>\0" + data), as 40 lowercase hex digits. */
void mp_git_blob_oid(const void *data, size_t n, char out[41]);
#endif
