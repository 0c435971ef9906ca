/*
 * threadpool.h
 *	  A fixed set of worker threads that run one function on every thread,
 *	  the caller's included, and return when all are done (a parallel
 *	  region, as "#pragma omp parallel" without OpenMP).
 *
 * The workers live until mmsa_pool_free, so that per-thread state (such as
 * OpenBLAS's buffers) survives between regions; between regions they poll
 * for up to a millisecond (the next region of a forward pass is usually
 * that close), then sleep on a condition variable.  They block every signal, so that signal
 * handlers (PostgreSQL's) run only in the thread that created them.
 */
#ifndef MMSA_THREADPOOL_H
#define MMSA_THREADPOOL_H

#include "mmsa_error.h"

typedef struct mmsa_pool mmsa_pool;

/* The work of thread `thread` of `nthreads` (0 = the caller). */
typedef void (*mmsa_pool_fn) (void *arg, int thread, int nthreads);

/*
 * A pool of nthreads threads in all (the caller and nthreads - 1 workers).
 * When fewer workers can be started the pool is smaller (at least 1).
 */
mmsa_status mmsa_pool_create(int nthreads, mmsa_pool **out, mmsa_error *err);

/* Threads in the pool, the caller included. */
int			mmsa_pool_size(const mmsa_pool *pool);

/*
 * Runs fn(arg, i, n) for i = 0..n-1 with n = mmsa_pool_size(pool): i = 0 on
 * the calling thread, the others on the workers; returns when all returned.
 * One caller at a time.
 */
void		mmsa_pool_run(mmsa_pool *pool, mmsa_pool_fn fn, void *arg);

/*
 * Thread t's share [*lo, *hi) of nthreads in [0, count): consecutive
 * slices of whole units of align elements (the last unit may be short),
 * as even as those units allow; empty when there are fewer units than
 * threads.
 */
void		mmsa_pool_share(long count, int t, int nthreads, int align,
							long *lo, long *hi);

/* Stops and joins the workers and frees the pool (NULL is fine). */
void		mmsa_pool_free(mmsa_pool *pool);

#endif
