/* Thread pool: a parallel-for with per-thread scratch. See kernels.h. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "kernels/kernels.h"

typedef struct mp_pool_scratch_buf {
  void *p;
  size_t cap;
  char pad[64 - sizeof(void *) - sizeof(size_t)]; /* keep threads' entries on own lines */
} mp_pool_scratch_buf;

struct mp_pool {
  int n;
  pthread_t *threads;
  pthread_mutex_t mu;
  pthread_cond_t cv_work, cv_done;
  atomic_uint_fast64_t gen; /* bumped for every run; workers wait for a change */
  int stop;
  atomic_int active; /* workers still inside the current run */
  mp_task_fn fn;
  void *ctx;
  int64_t n_tasks;
  atomic_int_fast64_t next;
  mp_pool_scratch_buf *scratch;
  int started; /* worker threads created */
};

typedef struct worker_arg {
  mp_pool *pool;
  int id;
} worker_arg;

static void run_tasks(mp_pool *p, int thread) {
  for (;;) {
    int64_t t = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
    if (t >= p->n_tasks) break;
    p->fn(p->ctx, t, thread);
  }
}

static void *worker_main(void *arg) {
  mp_pool *p = ((worker_arg *)arg)->pool;
  int id = ((worker_arg *)arg)->id;
  free(arg);
  uint_fast64_t seen = 0; /* workers start before the first run (gen 0) */
  for (;;) {
    /* Spin briefly (kernels are launched back to back), then sleep on the condition. */
    int spins = 0;
    while (atomic_load_explicit(&p->gen, memory_order_acquire) == seen && spins < 4000) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#elif defined(__aarch64__)
      __asm__ volatile("yield");
#endif
      spins++;
    }
    if (atomic_load_explicit(&p->gen, memory_order_acquire) == seen) {
      pthread_mutex_lock(&p->mu);
      while (atomic_load(&p->gen) == seen && !p->stop)
        pthread_cond_wait(&p->cv_work, &p->mu);
      int stop = atomic_load(&p->gen) == seen && p->stop;
      pthread_mutex_unlock(&p->mu);
      if (stop) break;
    }
    seen = atomic_load_explicit(&p->gen, memory_order_acquire);
    run_tasks(p, id);
    /* the last worker out wakes the caller if it went to sleep (it checks under the mutex) */
    if (atomic_fetch_sub_explicit(&p->active, 1, memory_order_acq_rel) == 1) {
      pthread_mutex_lock(&p->mu);
      pthread_cond_signal(&p->cv_done);
      pthread_mutex_unlock(&p->mu);
    }
  }
  return NULL;
}

mp_status mp_pool_create(int n_threads, mp_pool **out) {
  *out = NULL;
  if (n_threads < 0) return mp_err(MP_ERR_INVALID_ARG, "thread count %d is negative", n_threads);
  if (n_threads == 0) {
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    n_threads = c > 0 ? (int)c : 1;
  }
  if (n_threads > 1024) return mp_err(MP_ERR_INVALID_ARG, "thread count %d is too large (max 1024)", n_threads);
  mp_pool *p = calloc(1, sizeof *p);
  if (!p) return mp_err(MP_ERR_NOMEM, "out of memory creating a thread pool");
  p->n = n_threads;
  p->scratch = calloc((size_t)n_threads + 1, sizeof *p->scratch); /* + the shared buffer */
  p->threads = calloc((size_t)n_threads, sizeof *p->threads);
  if (!p->scratch || !p->threads) {
    free(p->scratch);
    free(p->threads);
    free(p);
    return mp_err(MP_ERR_NOMEM, "out of memory creating a thread pool");
  }
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv_work, NULL);
  pthread_cond_init(&p->cv_done, NULL);
  atomic_init(&p->gen, 0);
  atomic_init(&p->next, 0);
  for (int i = 1; i < n_threads; i++) {
    worker_arg *a = malloc(sizeof *a);
    int rc = a ? 0 : ENOMEM;
    if (a) {
      a->pool = p;
      a->id = i;
      rc = pthread_create(&p->threads[i], NULL, worker_main, a);
      if (rc) free(a);
    }
    if (rc) {
      p->n = i; /* free() joins the ones started */
      mp_pool_free(p);
      errno = rc;
      return mp_err_errno(MP_ERR_NOMEM, "cannot start worker thread %d of %d", i, n_threads);
    }
    p->started = i;
  }
  *out = p;
  return MP_OK;
}

void mp_pool_free(mp_pool *p) {
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  p->stop = 1;
  pthread_cond_broadcast(&p->cv_work);
  pthread_mutex_unlock(&p->mu);
  for (int i = 1; i <= p->started; i++)
    pthread_join(p->threads[i], NULL);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->cv_work);
  pthread_cond_destroy(&p->cv_done);
  for (int i = 0; i <= p->n; i++)
    free(p->scratch[i].p);
  free(p->scratch);
  free(p->threads);
  free(p);
}

int mp_pool_threads(const mp_pool *p) { return p ? p->n : 1; }

void mp_pool_run(mp_pool *p, int64_t n_tasks, mp_task_fn fn, void *ctx) {
  if (n_tasks <= 0) return;
  if (!p || p->n == 1 || n_tasks == 1) {
    for (int64_t t = 0; t < n_tasks; t++)
      fn(ctx, t, 0);
    return;
  }
  pthread_mutex_lock(&p->mu);
  p->fn = fn;
  p->ctx = ctx;
  p->n_tasks = n_tasks;
  atomic_store(&p->next, 0);
  atomic_store(&p->active, p->n - 1);
  atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
  pthread_cond_broadcast(&p->cv_work);
  pthread_mutex_unlock(&p->mu);
  run_tasks(p, 0);
  /* wait for the workers: spin first (they finish within microseconds of us), then sleep */
  for (int spins = 0; atomic_load_explicit(&p->active, memory_order_acquire) > 0 && spins < 4000; spins++) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
  }
  if (atomic_load_explicit(&p->active, memory_order_acquire) > 0) {
    pthread_mutex_lock(&p->mu);
    while (atomic_load(&p->active) > 0)
      pthread_cond_wait(&p->cv_done, &p->mu);
    pthread_mutex_unlock(&p->mu);
  }
}

static void *scratch_get(mp_pool_scratch_buf *b, size_t bytes);

void *mp_pool_scratch(mp_pool *p, int thread, size_t bytes) {
  if (!p || thread < 0 || thread >= p->n) return NULL;
  return scratch_get(&p->scratch[thread], bytes);
}

void *mp_pool_shared(mp_pool *p, size_t bytes) { return p ? scratch_get(&p->scratch[p->n], bytes) : NULL; }

static void *scratch_get(mp_pool_scratch_buf *b, size_t bytes) {
  if (bytes == 0) bytes = 64;
  if (b->cap < bytes) {
    size_t cap = bytes + bytes / 4;
    cap = (cap + 63) & ~(size_t)63;
    void *n = NULL;
    if (posix_memalign(&n, 64, cap) != 0) return NULL;
    free(b->p);
    b->p = n;
    b->cap = cap;
  }
  return b->p;
}
