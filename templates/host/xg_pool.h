/* xg_pool.h: a small persistent thread pool (POSIX threads) for the parallel entry point of an
 * xnorgen library on a hosted target, <name>_infer_parallel. Shipped by xnorgen beside the
 * generated library; it is not part of lib<name>.a (which stays free of threads, stdio and
 * malloc). Build it with the application: cc -O2 -pthread -c xg_pool.c.
 *
 *   xg_pool *pool = xg_pool_create(4);               (the caller's thread plus 3 workers)
 *   rc = <name>_infer_parallel(in, out, arena, xg_pool_threads(pool), xg_pool_parallel_for, pool);
 *   xg_pool_destroy(pool);
 *
 * One pool serves one parallel-for at a time: callers on several threads need a pool each.
 * Any other parallel-for with the same signature works too (an OpenMP loop, a task system):
 * see docs/threads.md. */
#ifndef XG_POOL_H
#define XG_POOL_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct xg_pool xg_pool;

/* A pool running parallel-fors on `threads` threads: the caller's and threads - 1 workers
 * (1 <= threads <= 256). NULL if threads is out of range or a thread cannot be started. */
xg_pool *xg_pool_create(int threads);

/* Stops and joins the workers, frees the pool. NULL is allowed. */
void xg_pool_destroy(xg_pool *pool);

/* The pool's thread count (the caller's included). */
int xg_pool_threads(const xg_pool *pool);

/* Runs task(ctx, i) once for every i in [0, n) on the pool's threads (the caller's among them)
 * and returns when all have returned. `pool` is an xg_pool *, passed as void * so this function
 * has the signature <name>_infer_parallel takes. */
void xg_pool_parallel_for(void *pool, int n, void (*task)(void *ctx, int i), void *ctx);

#ifdef __cplusplus
}
#endif
#endif
