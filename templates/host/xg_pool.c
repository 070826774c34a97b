/* xg_pool.c: see xg_pool.h. POSIX threads and the GCC/Clang __atomic builtins (C99 + -pthread).
 *
 * Protocol. A parallel-for publishes its job (n, task, ctx, the claim counter) and then bumps
 * `generation` (release). Each worker waits for a new generation (spinning a while, then on the
 * condition variable), claims indices from `next` until they run out, and reports `finished`.
 * The caller claims indices too, then waits until every worker has reported: so when a
 * parallel-for returns, no worker is still inside it, and the next job's fields can be written
 * without a race (a worker that wakes late still counts itself in, finding no index left). */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#include "xg_pool.h"

#define XG_POOL_MAX_THREADS 256
#define XG_POOL_SPINS 1000           /* polls (a pause each) before yielding the core */
#define XG_POOL_YIELDS 200           /* then yields before a worker sleeps on the condition */

#if defined(__x86_64__) || defined(__i386__)
#define XG_RELAX() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define XG_RELAX() __asm__ __volatile__("yield" ::: "memory")
#else
#define XG_RELAX() ((void)0)
#endif

struct xg_pool {
    int threads;
    pthread_t *workers;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    unsigned generation;         /* bumped once per job, under the mutex (atomic reads outside) */
    int stop;
    int next;                    /* the next index to claim */
    int finished;                /* workers done with the current job */
    int n;
    void (*task)(void *ctx, int i);
    void *ctx;
};

static void run_claims(struct xg_pool *p)
{
    for (;;) {
        const int i = __atomic_fetch_add(&p->next, 1, __ATOMIC_RELAXED);
        if (i >= p->n)
            return;
        p->task(p->ctx, i);
    }
}

static unsigned wait_for_job(struct xg_pool *p, unsigned seen)
{
    for (int s = 0; s < XG_POOL_SPINS + XG_POOL_YIELDS; ++s) {
        const unsigned g = __atomic_load_n(&p->generation, __ATOMIC_ACQUIRE);
        if (g != seen)
            return g;
        if (s < XG_POOL_SPINS)
            XG_RELAX();
        else
            sched_yield();       /* more threads than free cores: let the others run */
    }
    pthread_mutex_lock(&p->mutex);
    while (__atomic_load_n(&p->generation, __ATOMIC_ACQUIRE) == seen)
        pthread_cond_wait(&p->wake, &p->mutex);
    const unsigned g = __atomic_load_n(&p->generation, __ATOMIC_ACQUIRE);
    pthread_mutex_unlock(&p->mutex);
    return g;
}

static void *worker_main(void *arg)
{
    struct xg_pool *p = (struct xg_pool *)arg;
    unsigned seen = 0;
    for (;;) {
        seen = wait_for_job(p, seen);
        if (__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE))
            return NULL;
        run_claims(p);
        __atomic_fetch_add(&p->finished, 1, __ATOMIC_RELEASE);
    }
}

static void publish(struct xg_pool *p)
{
    pthread_mutex_lock(&p->mutex);
    __atomic_fetch_add(&p->generation, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mutex);
}

static void stop_workers(struct xg_pool *p, int started)
{
    __atomic_store_n(&p->stop, 1, __ATOMIC_RELEASE);
    publish(p);
    for (int w = 0; w < started; ++w)
        pthread_join(p->workers[w], NULL);
}

xg_pool *xg_pool_create(int threads)
{
    if (threads < 1 || threads > XG_POOL_MAX_THREADS)
        return NULL;
    struct xg_pool *p = (struct xg_pool *)calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->threads = threads;
    p->workers = (pthread_t *)calloc((size_t)threads, sizeof(pthread_t));
    if (p->workers == NULL || pthread_mutex_init(&p->mutex, NULL) != 0) {
        free(p->workers);
        free(p);
        return NULL;
    }
    if (pthread_cond_init(&p->wake, NULL) != 0) {
        pthread_mutex_destroy(&p->mutex);
        free(p->workers);
        free(p);
        return NULL;
    }
    for (int w = 0; w < threads - 1; ++w)
        if (pthread_create(&p->workers[w], NULL, worker_main, p) != 0) {
            stop_workers(p, w);
            p->threads = 1;
            xg_pool_destroy(p);
            return NULL;
        }
    return p;
}

void xg_pool_destroy(xg_pool *p)
{
    if (p == NULL)
        return;
    if (p->threads > 1)
        stop_workers(p, p->threads - 1);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->mutex);
    free(p->workers);
    free(p);
}

int xg_pool_threads(const xg_pool *p)
{
    return p->threads;
}

void xg_pool_parallel_for(void *pool, int n, void (*task)(void *ctx, int i), void *ctx)
{
    struct xg_pool *p = (struct xg_pool *)pool;
    if (n <= 0)
        return;
    if (p->threads == 1 || n == 1) {
        for (int i = 0; i < n; ++i)
            task(ctx, i);
        return;
    }
    p->n = n;
    p->task = task;
    p->ctx = ctx;
    __atomic_store_n(&p->next, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&p->finished, 0, __ATOMIC_RELAXED);
    publish(p);                  /* release: the fields above are seen by every worker */
    run_claims(p);
    const int workers = p->threads - 1;
    for (long s = 0; __atomic_load_n(&p->finished, __ATOMIC_ACQUIRE) < workers; ++s) {
        if (s < XG_POOL_SPINS)
            XG_RELAX();
        else
            sched_yield();       /* a worker that was asleep: give it the core */
    }
}
