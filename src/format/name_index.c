/* Name -> index hash map (open addressing, FNV-1a) for tensor lookups (see name_index.h). */
#include "format/name_index.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ull;
  }
  return h ^ (h >> 29);
}

void mp_name_index_init(mp_name_index *ix) { memset(ix, 0, sizeof *ix); }

void mp_name_index_free(mp_name_index *ix) {
  if (!ix) return;
  free(ix->keys);
  free(ix->vals);
  memset(ix, 0, sizeof *ix);
}

static size_t find_slot(const char **keys, size_t cap, const char *key) {
  size_t mask = cap - 1, i = (size_t)hash_str(key) & mask;
  while (keys[i] && strcmp(keys[i], key) != 0)
    i = (i + 1) & mask;
  return i;
}

static mp_status grow(mp_name_index *ix) {
  size_t ncap = ix->cap ? ix->cap * 2 : 64;
  if (ncap < ix->cap || ncap > SIZE_MAX / sizeof(size_t)) return mp_err(MP_ERR_NOMEM, "name index too large");
  const char **nk = calloc(ncap, sizeof *nk);
  size_t *nv = calloc(ncap, sizeof *nv);
  if (!nk || !nv) {
    free(nk);
    free(nv);
    return mp_err(MP_ERR_NOMEM, "out of memory building a tensor name index");
  }
  for (size_t i = 0; i < ix->cap; i++) {
    if (!ix->keys[i]) continue;
    size_t j = find_slot(nk, ncap, ix->keys[i]);
    nk[j] = ix->keys[i];
    nv[j] = ix->vals[i];
  }
  free(ix->keys);
  free(ix->vals);
  ix->keys = nk;
  ix->vals = nv;
  ix->cap = ncap;
  return MP_OK;
}

mp_status mp_name_index_put(mp_name_index *ix, const char *key, size_t val, size_t *existing) {
  if ((ix->count + 1) * 2 > ix->cap) MP_TRY(grow(ix));
  size_t i = find_slot(ix->keys, ix->cap, key);
  if (ix->keys[i]) {
    if (existing) *existing = ix->vals[i];
    return MP_ERR_INVALID_ARG;
  }
  ix->keys[i] = key;
  ix->vals[i] = val;
  ix->count++;
  return MP_OK;
}

int mp_name_index_get(const mp_name_index *ix, const char *key, size_t *val) {
  if (!ix->cap || !key) return 0;
  size_t i = find_slot(ix->keys, ix->cap, key);
  if (!ix->keys[i]) return 0;
  if (val) *val = ix->vals[i];
  return 1;
}
