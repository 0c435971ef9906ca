/*
 * threadpool.c
 *	  Parallel regions on a fixed set of worker threads (see threadpool.h).
 */
#include "threadpool.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

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
	unsigned long generation;	/* regions started so far */
	int			pending;		/* workers still in the current region */
	int			shutdown;
	mmsa_pool_fn fn;
	void	   *arg;
};

static void *
pool_worker_main(void *arg)
{
	pool_worker *w = arg;
	mmsa_pool  *p = w->pool;
	unsigned long seen = 0;

	pthread_mutex_lock(&p->mutex);
	for (;;)
	{
		mmsa_pool_fn fn;
		void	   *fn_arg;

		while (!p->shutdown && p->generation == seen)
			pthread_cond_wait(&p->work, &p->mutex);
		if (p->shutdown)
			break;
		seen = p->generation;
		fn = p->fn;
		fn_arg = p->arg;
		pthread_mutex_unlock(&p->mutex);
		fn(fn_arg, w->index, p->nthreads);
		pthread_mutex_lock(&p->mutex);
		if (--p->pending == 0)
			pthread_cond_signal(&p->done);
	}
	pthread_mutex_unlock(&p->mutex);
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
	pthread_mutex_lock(&p->mutex);
	p->fn = fn;
	p->arg = arg;
	p->pending = p->nthreads - 1;
	p->generation++;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mutex);

	fn(arg, 0, p->nthreads);

	pthread_mutex_lock(&p->mutex);
	while (p->pending > 0)
		pthread_cond_wait(&p->done, &p->mutex);
	pthread_mutex_unlock(&p->mutex);
}

void
mmsa_pool_free(mmsa_pool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mutex);
	p->shutdown = 1;
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
