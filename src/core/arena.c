/* Arena (bump) allocator: many small allocations, one free (see arena.h). */
#include "core/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct mp_arena_block {
  mp_arena_block *next;
  size_t cap, off;
  _Alignas(64) unsigned char data[];
};

void mp_arena_init(mp_arena *a, size_t block_size) {
  a->head = NULL;
  a->block_size = block_size ? block_size : 64 * 1024;
  a->used = 0;
}

static void *arena_alloc(mp_arena *a, size_t n, size_t align, int zero) {
  if (align < 16) align = 16;
  if (n > SIZE_MAX / 2) return NULL;
  mp_arena_block *b = a->head;
  if (b) {
    /* aligned as an address: malloc gives a block only 16-byte alignment */
    const uintptr_t base = (uintptr_t)b->data;
    size_t off = (size_t)(((base + b->off + align - 1) & ~(uintptr_t)(align - 1)) - base);
    if (off <= b->cap && n <= b->cap - off) {
      b->off = off + n;
      a->used += n;
      if (zero) memset(b->data + off, 0, n);
      return b->data + off;
    }
  }
  size_t cap = a->block_size;
  if (cap < n + align) cap = n + align;
  mp_arena_block *nb = malloc(sizeof *nb + cap);
  if (!nb) return NULL;
  nb->cap = cap;
  nb->off = 0;
  /* keep a partly used head at the front only if the new block is a one-off big block */
  if (b && cap > a->block_size) {
    nb->next = b->next;
    b->next = nb;
  } else {
    nb->next = b;
    a->head = nb;
  }
  size_t off = ((uintptr_t)nb->data % align) ? align - ((uintptr_t)nb->data % align) : 0;
  nb->off = off + n;
  a->used += n;
  if (zero) memset(nb->data + off, 0, n);
  return nb->data + off;
}

void *mp_arena_alloc_aligned(mp_arena *a, size_t n, size_t align) { return arena_alloc(a, n, align, 1); }
void *mp_arena_alloc_uninit(mp_arena *a, size_t n, size_t align) { return arena_alloc(a, n, align, 0); }

void *mp_arena_alloc(mp_arena *a, size_t n) { return mp_arena_alloc_aligned(a, n, 16); }

char *mp_arena_strndup(mp_arena *a, const char *s, size_t n) {
  char *p = mp_arena_alloc(a, n + 1);
  if (!p) return NULL;
  memcpy(p, s, n);
  p[n] = 0;
  return p;
}

char *mp_arena_strdup(mp_arena *a, const char *s) { return mp_arena_strndup(a, s, strlen(s)); }

void mp_arena_reset(mp_arena *a) {
  mp_arena_block *b = a->head;
  if (!b) return;
  size_t total = 0;
  int n = 0;
  for (mp_arena_block *x = b; x; x = x->next)
    total += x->cap, n++;
  /* several blocks: one of their total size instead (if that allocation fails, the largest) */
  mp_arena_block *keep = NULL;
  if (n > 1 && total <= SIZE_MAX - sizeof *keep && (keep = malloc(sizeof *keep + total))) keep->cap = total;
  if (!keep) {
    keep = b;
    for (mp_arena_block *x = b; x; x = x->next)
      if (x->cap > keep->cap) keep = x;
  }
  while (b) {
    mp_arena_block *nx = b->next;
    if (b != keep) free(b);
    b = nx;
  }
  keep->next = NULL;
  keep->off = 0;
  a->head = keep;
  a->used = 0;
}

void mp_arena_free(mp_arena *a) {
  mp_arena_block *b = a->head;
  while (b) {
    mp_arena_block *n = b->next;
    free(b);
    b = n;
  }
  a->head = NULL;
  a->used = 0;
}
