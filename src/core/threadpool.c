/*
 * threadpool.c
 *	  Parallel regions on a fixed set of worker threads (see threadpool.h).
 *
 * A forward pass is a chain of short regions (one to three per layer, some
 * of a fraction of a millisecond), so handing over must be quick: a worker
 * that finished a region, and the caller waiting for the workers, poll an
 * atomic counter for up to POOL_SPIN_NS before they sleep on a condition
 * variable, because waking a sleeping thread takes tens of microseconds on
 * a virtual machine.  Between forward passes everything sleeps.
 */
#include "threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void) 0)
#endif

#define POOL_SPIN_NS 1000000L	/* 1 ms of polling before sleeping */

typedef struct pool_worker
{
	struct mmsa_pool *pool;
	int			index;			/* 1 .. nthreads-1 */
	pthread_t	tid;
} pool_worker;

struct mmsa_pool
{
	int			nthreads;		/* the caller + started workers */
	pool_worker *workers;
	pthread_mutex_t mutex;
	pthread_cond_t work;		/* a new region, or shutdown */
	pthread_cond_t done;		/* pending reached 0 */
	atomic_ulong generation;	/* regions started so far */
	atomic_int	pending;		/* workers still in the current region */
	atomic_int	shutdown;
	mmsa_pool_fn fn;
	void	   *arg;
};

/* Nanoseconds on the monotonic clock. */
static long long
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/*
 * Polls for at most POOL_SPIN_NS until a new region starts (gen differs
 * from seen, or shutdown is set) or, with gen NULL, until no worker is
 * pending; returns whether that happened.  Every 64 polls it reads the
 * clock and yields the core, so that a thread waiting for it (more threads
 * than cores) runs rather than waits for the time slice to end.
 */
static int
spin_until_changed(atomic_ulong *gen, unsigned long seen, atomic_int *pending,
				   atomic_int *shutdown)
{
	long long	deadline = 0;

	for (unsigned i = 0;; i++)
	{
		if (gen && (atomic_load_explicit(gen, memory_order_acquire) != seen ||
					atomic_load_explicit(shutdown, memory_order_relaxed)))
			return 1;
		if (pending && atomic_load_explicit(pending, memory_order_acquire) <= 0)
			return 1;
		if ((i & 63) == 0)
		{
			long long	t = now_ns();

			if (deadline == 0)
				deadline = t + POOL_SPIN_NS;
			else if (t > deadline)
				return 0;
			/* let a thread that waits for this core run */
			sched_yield();
		}
		cpu_relax();
	}
}

static void *
pool_worker_main(void *arg)
{
	pool_worker *w = arg;
	mmsa_pool  *p = w->pool;
	unsigned long seen = 0;

	for (;;)
	{
		/* a new region (or shutdown): poll, then sleep */
		if (!spin_until_changed(&p->generation, seen, NULL, &p->shutdown))
		{
			pthread_mutex_lock(&p->mutex);
			while (!atomic_load(&p->shutdown) && atomic_load(&p->generation) == seen)
				pthread_cond_wait(&p->work, &p->mutex);
			pthread_mutex_unlock(&p->mutex);
		}
		if (atomic_load(&p->shutdown))
			break;
		/* the acquire pairs with the caller's release: fn and arg are set */
		seen = atomic_load_explicit(&p->generation, memory_order_acquire);
		p->fn(p->arg, w->index, p->nthreads);
		if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1)
		{
			/* the last worker: wake the caller if it sleeps */
			pthread_mutex_lock(&p->mutex);
			pthread_cond_signal(&p->done);
			pthread_mutex_unlock(&p->mutex);
		}
	}
	return NULL;
}

mmsa_status
mmsa_pool_create(int nthreads, mmsa_pool **out, mmsa_error *err)
{
	mmsa_pool  *p;
	sigset_t	all,
				old;

	*out = NULL;
	if (nthreads < 1)
		nthreads = 1;
	p = calloc(1, sizeof(mmsa_pool));
	if (p == NULL)
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
	p->workers = calloc(nthreads, sizeof(pool_worker));
	if (p->workers == NULL)
	{
		free(p);
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
	}
	pthread_mutex_init(&p->mutex, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done, NULL);
	p->nthreads = 1;

	/* workers inherit a mask blocking every signal */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (int i = 1; i < nthreads; i++)
	{
		pool_worker *w = &p->workers[p->nthreads - 1];

		w->pool = p;
		w->index = p->nthreads;
		if (pthread_create(&w->tid, NULL, pool_worker_main, w) != 0)
			break;				/* run with the workers we have */
		p->nthreads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	*out = p;
	return MMSA_OK;
}

int
mmsa_pool_size(const mmsa_pool *pool)
{
	return pool ? pool->nthreads : 1;
}

void
mmsa_pool_run(mmsa_pool *p, mmsa_pool_fn fn, void *arg)
{
	if (p == NULL || p->nthreads == 1)
	{
		fn(arg, 0, 1);
		return;
	}
	p->fn = fn;
	p->arg = arg;
	atomic_store_explicit(&p->pending, p->nthreads - 1, memory_order_relaxed);
	pthread_mutex_lock(&p->mutex);
	/* the release publishes fn, arg and pending to the workers */
	atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mutex);

	fn(arg, 0, p->nthreads);

	if (!spin_until_changed(NULL, 0, &p->pending, NULL))
	{
		pthread_mutex_lock(&p->mutex);
		while (atomic_load(&p->pending) > 0)
			pthread_cond_wait(&p->done, &p->mutex);
		pthread_mutex_unlock(&p->mutex);
	}
}

void
mmsa_pool_free(mmsa_pool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mutex);
	atomic_store(&p->shutdown, 1);
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mutex);
	for (int i = 0; i < p->nthreads - 1; i++)
		pthread_join(p->workers[i].tid, NULL);
	pthread_mutex_destroy(&p->mutex);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->done);
	free(p->workers);
	free(p);
}

void
mmsa_pool_share(long count, int t, int nthreads, int align, long *lo, long *hi)
{
	long		units = (count + align - 1) / align;

	*lo = units * t / nthreads * align;
	*hi = units * (t + 1) / nthreads * align;
	if (*lo > count)
		*lo = count;
	if (*hi > count)
		*hi = count;
}
