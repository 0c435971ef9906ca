/*
 * test_threadpool.c
 *	  The parallel regions of threadpool.c: every thread runs every region
 *	  exactly once, with its index and the pool's size, whether the threads
 *	  meet while polling (regions back to back) or after sleeping (regions
 *	  apart by more than the polling time, a worker slower than the
 *	  caller), with more threads than cores (pollers must yield), and the
 *	  pool stops cleanly; mmsa_pool_share splits a range between threads.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tap.h"
#include "threadpool.h"

#define THREADS 3

typedef struct region_log
{
	atomic_int	runs[THREADS];	/* regions each thread ran */
	atomic_int	bad;			/* calls with a wrong index or size */
	atomic_int	inside;			/* threads inside the current region */
	atomic_int	overlap;		/* a thread found the previous region unfinished */
	int			worker_sleep_ms;	/* workers sleep this long inside */
} region_log;

static void
sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long) (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static void
region(void *arg, int t, int n)
{
	region_log *log = arg;

	if (t < 0 || t >= THREADS || n != THREADS)
	{
		atomic_fetch_add(&log->bad, 1);
		return;
	}
	if (atomic_fetch_add(&log->inside, 1) >= THREADS)
		atomic_fetch_add(&log->overlap, 1);
	if (t > 0 && log->worker_sleep_ms > 0)
		sleep_ms(log->worker_sleep_ms);
	atomic_fetch_add(&log->runs[t], 1);
}

/* Runs `count` regions, `gap_ms` apart; all ran them all, one at a time. */
static void
check_regions(mmsa_pool *pool, int count, int gap_ms, int worker_sleep_ms, const char *what)
{
	region_log log;
	int			good = 1;

	memset(&log, 0, sizeof(log));
	log.worker_sleep_ms = worker_sleep_ms;
	for (int r = 0; r < count; r++)
	{
		mmsa_pool_run(pool, region, &log);
		/* the region is over when mmsa_pool_run returns: every thread ran it */
		for (int t = 0; t < THREADS; t++)
			if (atomic_load(&log.runs[t]) != r + 1)
				good = 0;
		atomic_store(&log.inside, 0);
		if (gap_ms > 0)
			sleep_ms(gap_ms);
	}
	ok(good && atomic_load(&log.bad) == 0 && atomic_load(&log.overlap) == 0,
	   "%d regions %s: every thread ran each exactly once, in order", count, what);
}

/*
 * mmsa_pool_share: the threads' shares tile [0, count) in order, each
 * starting on a whole unit, and differ by at most one unit.
 */
static void
check_shares(void)
{
	static const long counts[] = {0, 1, 15, 16, 17, 196, 1000, 12289};
	int			good = 1;

	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++)
		for (int n = 1; n <= 5; n++)
			for (int align = 1; align <= 16; align *= 4)
			{
				long		next = 0,
							most = 0,
							least = counts[i] + 1;

				for (int t = 0; t < n; t++)
				{
					long		lo,
								hi;

					mmsa_pool_share(counts[i], t, n, align, &lo, &hi);
					if (lo != next || hi < lo || (lo < counts[i] && lo % align != 0))
						good = 0;
					next = hi;
					if (hi - lo > most)
						most = hi - lo;
					if (hi - lo < least)
						least = hi - lo;
				}
				if (next != counts[i] || most - least > align)
					good = 0;
			}
	ok(good, "mmsa_pool_share: the shares tile the range in whole units, within one unit of each other");
}

int
main(void)
{
	mmsa_pool  *pool = NULL;
	mmsa_error	err;

	alarm(120);					/* a lost wake-up hangs: fail instead */
	ok(mmsa_pool_create(THREADS, &pool, &err) == MMSA_OK && mmsa_pool_size(pool) == THREADS,
	   "a pool of %d threads", THREADS);
	check_regions(pool, 20000, 0, 0, "back to back (the workers poll)");
	check_regions(pool, 5, 5, 0, "5 ms apart (the workers sleep between)");
	check_regions(pool, 5, 0, 5, "with workers 5 ms slower (the caller sleeps)");
	check_regions(pool, 2000, 0, 0, "back to back again");
	mmsa_pool_free(pool);
	ok(1, "the pool stops and frees");

	/* a pool of one runs the caller alone */
	ok(mmsa_pool_create(1, &pool, &err) == MMSA_OK && mmsa_pool_size(pool) == 1,
	   "a pool of one thread");
	mmsa_pool_free(pool);
	mmsa_pool_free(NULL);
	check_shares();
	return tap_done();
}
