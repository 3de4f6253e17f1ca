/* Seeded, reproducible sub-sampling of datasets and the PRNG it shares with the bootstrap
 * (xoshiro256** seeded through splitmix64; the algorithm is in dataset.h and docs/datasets.md). */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "eval/dataset.h"

/* ---- PRNG */

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void mp_rng_seed(mp_rng *r, uint64_t seed) {
  uint64_t x = seed;
  for (int i = 0; i < 4; i++)
    r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t mp_rng_next(mp_rng *r) {
  uint64_t *s = r->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

/* ---- sampling */

static int cmp_size(const void *a, const void *b) {
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  return (x > y) - (x < y);
}

static void sample_positions(size_t n, size_t k, uint64_t seed, size_t *perm /* n entries */) {
  for (size_t i = 0; i < n; i++)
    perm[i] = i;
  mp_rng r;
  mp_rng_seed(&r, seed);
  for (size_t i = 0; i < k; i++) {
    size_t j = i + (size_t)(mp_rng_next(&r) % (uint64_t)(n - i));
    size_t t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  qsort(perm, k, sizeof(size_t), cmp_size);
}

void mp_sample_indices(size_t n, size_t max_samples, uint64_t seed, size_t *out) {
  size_t k = (max_samples == 0 || max_samples > n) ? n : max_samples;
  if (k == n) {
    for (size_t i = 0; i < n; i++)
      out[i] = i;
    return;
  }
  size_t *perm = malloc((n ? n : 1) * sizeof(size_t));
  if (!perm) { /* degrade deterministically: first k */
    for (size_t i = 0; i < k; i++)
      out[i] = i;
    return;
  }
  sample_positions(n, k, seed, perm);
  memcpy(out, perm, k * sizeof(size_t));
  free(perm);
}

mp_status mp_dataset_sample(mp_dataset *ds, size_t max_samples, uint64_t seed) {
  if (max_samples == 0 || max_samples >= ds->n) return MP_OK;
  size_t n = ds->n, k = max_samples;
  size_t *perm = malloc(n * sizeof(size_t));
  mp_example *nx = malloc(k * sizeof(mp_example));
  if (!perm || !nx) {
    free(perm);
    free(nx);
    return mp_err(MP_ERR_NOMEM, "%s: out of memory sampling %zu of %zu examples", ds->name, k, n);
  }
  sample_positions(n, k, seed, perm);
  for (size_t i = 0; i < k; i++)
    nx[i] = ds->ex[perm[i]];
  free(perm);
  free(ds->ex);
  ds->ex = nx;
  ds->n = k;
  return MP_OK;
}

void mp_dataset_label_counts(const mp_dataset *ds, size_t *counts) {
  for (size_t i = 0; i < ds->n_labels; i++)
    counts[i] = 0;
  for (size_t i = 0; i < ds->n; i++)
    if (ds->ex[i].label >= 0 && (size_t)ds->ex[i].label < ds->n_labels) counts[ds->ex[i].label]++;
}
