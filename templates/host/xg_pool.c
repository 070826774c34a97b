/* xg_pool.c: see xg_pool.h. POSIX threads and the GCC/Clang __atomic builtins (C99 + -pthread).
 *
 * Protocol. A job (n, task, ctx) is written into one of two slots, and then `claim`, one 64-bit
 * word holding the job's generation (high half) and the next index to claim (low half), is set
 * to (generation, 0) with release. Every thread, the caller's too, claims indices by
 * compare-and-swap on that word, so a claim only succeeds for the generation the thread read
 * the slot for: a worker that wakes late, after its job is over, fails its claim and never runs
 * a task of a job it has not seen published. The slot of generation g is rewritten only for
 * g + 2, after g + 1 was published, so the fields a successful claim read are its job's.
 * The caller waits until all n tasks are done, not for the workers to check in: a sleeping
 * worker costs the caller nothing (it runs the tasks itself), and a worker sharing the
 * caller's core gets it after a short spin (XG_POOL_SPIN polls, then sched_yield). Workers stay
 * awake, polling, for XG_POOL_AWAKE_US after a job, then sleep on the condition variable. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "xg_pool.h"

#define XG_POOL_MAX_THREADS 256
#define XG_POOL_SPIN 32              /* polls (a pause each, 25 ns on an EPYC) between sched_yields */
#define XG_POOL_AWAKE_US 200         /* a worker polls this long after a job before it sleeps */

#if defined(__x86_64__) || defined(__i386__)
#define XG_RELAX() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define XG_RELAX() __asm__ __volatile__("yield" ::: "memory")
#else
#define XG_RELAX() ((void)0)
#endif

struct xg_job {
    int n;                                   /* every field read and written with __atomic */
    void (*task)(void *ctx, int i);
    void *ctx;
};

struct xg_pool {
    int threads;
    pthread_t *workers;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    uint64_t claim;              /* generation << 32 | next index; set under the mutex on publish */
    int stop;
    int done;                    /* tasks of the current job that have returned */
    struct xg_job jobs[2];       /* the job of generation g is jobs[g & 1] */
};

static unsigned generation_of(uint64_t claim)
{
    return (unsigned)(claim >> 32);
}

/* Claims and runs tasks of generation g until none is left or a newer job is published. */
static void run_claims(struct xg_pool *p, unsigned g)
{
    const struct xg_job *j = &p->jobs[g & 1];
    uint64_t c = __atomic_load_n(&p->claim, __ATOMIC_ACQUIRE);
    for (;;) {
        if (generation_of(c) != g)
            return;
        const int i = (int)(uint32_t)c;
        if (i >= __atomic_load_n(&j->n, __ATOMIC_RELAXED))
            return;
        void (*task)(void *, int) = __atomic_load_n(&j->task, __ATOMIC_RELAXED);
        void *ctx = __atomic_load_n(&j->ctx, __ATOMIC_RELAXED);
        if (__atomic_compare_exchange_n(&p->claim, &c, c + 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            task(ctx, i);
            __atomic_fetch_add(&p->done, 1, __ATOMIC_RELEASE);
            c = __atomic_load_n(&p->claim, __ATOMIC_ACQUIRE);
        }                        /* else c holds the word now: look again */
    }
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec * 1e-3;
}

/* Polls (a pause at a time, yielding the core every XG_POOL_SPIN polls) until the generation
 * differs from `seen`, for up to XG_POOL_AWAKE_US; then sleeps on the condition. */
static unsigned wait_for_job(struct xg_pool *p, unsigned seen)
{
    const double until = now_us() + XG_POOL_AWAKE_US;
    for (int s = 1;; ++s) {
        const unsigned g = generation_of(__atomic_load_n(&p->claim, __ATOMIC_ACQUIRE));
        if (g != seen)
            return g;
        if (s % XG_POOL_SPIN) {
            XG_RELAX();
        } else {
            sched_yield();       /* a thread sharing this core (more threads than free cores) runs */
            if (now_us() > until)
                break;
        }
    }
    pthread_mutex_lock(&p->mutex);
    while (generation_of(__atomic_load_n(&p->claim, __ATOMIC_ACQUIRE)) == seen)
        pthread_cond_wait(&p->wake, &p->mutex);
    const unsigned g = generation_of(__atomic_load_n(&p->claim, __ATOMIC_ACQUIRE));
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
        run_claims(p, seen);
    }
}

/* Writes job (n, task, ctx) into the next generation's slot and publishes it; returns that
 * generation. Only the thread that owns the pool calls this, between jobs. */
static unsigned publish(struct xg_pool *p, int n, void (*task)(void *ctx, int i), void *ctx)
{
    const unsigned g = generation_of(__atomic_load_n(&p->claim, __ATOMIC_RELAXED)) + 1;
    struct xg_job *j = &p->jobs[g & 1];
    __atomic_store_n(&j->n, n, __ATOMIC_RELAXED);
    __atomic_store_n(&j->task, task, __ATOMIC_RELAXED);
    __atomic_store_n(&j->ctx, ctx, __ATOMIC_RELAXED);
    __atomic_store_n(&p->done, 0, __ATOMIC_RELAXED);
    pthread_mutex_lock(&p->mutex);
    __atomic_store_n(&p->claim, (uint64_t)g << 32, __ATOMIC_RELEASE);   /* the fields above first */
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mutex);
    return g;
}

static void stop_workers(struct xg_pool *p, int started)
{
    __atomic_store_n(&p->stop, 1, __ATOMIC_RELEASE);
    publish(p, 0, NULL, NULL);
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
    const unsigned g = publish(p, n, task, ctx);
    run_claims(p, g);
    for (long s = 1; __atomic_load_n(&p->done, __ATOMIC_ACQUIRE) < n; ++s) {
        if (s % XG_POOL_SPIN)    /* the last tasks run on workers: wait for them */
            XG_RELAX();
        else
            sched_yield();       /* a worker sharing this core: give it the core */
    }
}
