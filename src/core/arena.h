/* Arena (bump) allocator: many small allocations, one free. Not thread-safe. */
#ifndef MP_CORE_ARENA_H
#define MP_CORE_ARENA_H
#include <stddef.h>

typedef struct mp_arena_block mp_arena_block;
typedef struct mp_arena {
  mp_arena_block *head;
  size_t block_size; /* default size of new blocks */
  size_t used;       /* total bytes handed out (statistics) */
} mp_arena;

void mp_arena_init(mp_arena *a, size_t block_size);
/* Returns 16-byte-aligned zeroed memory or NULL on overflow/OOM. */
void *mp_arena_alloc(mp_arena *a, size_t n);
/* Aligned to `align` (power of two, <= 4096). */
void *mp_arena_alloc_aligned(mp_arena *a, size_t n, size_t align);
/* The same without zeroing: the contents are undefined (buffers the caller overwrites whole). */
void *mp_arena_alloc_uninit(mp_arena *a, size_t n, size_t align);
char *mp_arena_strndup(mp_arena *a, const char *s, size_t n);
char *mp_arena_strdup(mp_arena *a, const char *s);
/* Forgets all allocations and keeps one block for reuse (per-batch reset): when the allocations
 * spread over several blocks, one block as large as all of them together replaces them, so the
 * next batch of the same size allocates nothing. */
void mp_arena_reset(mp_arena *a);
void mp_arena_free(mp_arena *a);
#endif
