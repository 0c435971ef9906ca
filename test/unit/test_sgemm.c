/*
 * test_sgemm.c
 *	  mmsa_sgemm (sgemm.c), the training products on gemm.c's kernels, on
 *	  every kernel path this host runs (isa_paths.h):
 *	  - against a double-precision loop, within 1e-5 relative to the sum of
 *	    absolute terms, for the four transpose cases, alpha, beta 0 and 1,
 *	    edges of every width and products over several k blocks;
 *	  - on the SIMD paths, against sgemm_reference bit for bit (the
 *	    documented order of operations, and the fallback without work
 *	    space);
 *	  - with pools of 2 and 3 threads, bit for bit against one thread;
 *	  - and every SIMD path bit for bit against the first one.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "isa_paths.h"
#include "sgemm.h"
#include "threadpool.h"

static uint64_t rng;

static float
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (float) ((rng >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

static float *
rnd_array(long n)
{
	float	   *a = malloc(sizeof(float) * (n > 0 ? n : 1));

	for (long i = 0; i < n; i++)
		a[i] = rnd();
	return a;
}

typedef struct shape
{
	int			M,
				N,
				K;
} shape;

/* Edges of every kind: 1 to 6 rows, tails of 1 to 4 and 5 to 16 columns, several k blocks. */
static const shape shapes[] = {
	{1, 1, 1}, {5, 3, 7}, {6, 16, 64}, {7, 17, 33}, {13, 2, 300}, {64, 64, 64},
	{37, 100, 257}, {128, 61, 520}, {3, 200, 45}, {200, 4, 129}, {50, 191, 256},
};
#define NSHAPES ((int) (sizeof(shapes) / sizeof(shapes[0])))

static const float alphas[] = {1.0f, 0.125f, -0.37f};

/* op(X)[r][c] with X's leading dimension ld */
static double
at(const float *X, size_t ld, int trans, int r, int c)
{
	return trans ? X[(size_t) c * ld + r] : X[(size_t) r * ld + c];
}

/* Results of every case of one path, kept to compare paths. */
#define MAX_RESULTS (NSHAPES * 4 * 3 * 2)
static float *results[ISA_MAX_PATHS][MAX_RESULTS];
static long result_len[MAX_RESULTS];

static void
sgemm_suite(int path, int simd, mmsa_pool *pool2, mmsa_pool *pool3)
{
	int			idx = 0,
				close_ok = 1,
				ref_ok = 1,
				thread_ok = 1;
	double		worst = 0.0;

	rng = 88172645463325252ULL; /* the same operands on every path */
	for (int s = 0; s < NSHAPES; s++)
		for (int ta = 0; ta < 2; ta++)
			for (int tb = 0; tb < 2; tb++)
				for (int ai = 0; ai < 3; ai++)
					for (int beta = 0; beta < 2; beta++, idx++)
					{
						int			M = shapes[s].M,
									N = shapes[s].N,
									K = shapes[s].K;
						/* leading dimensions wider than the rows, as views */
						size_t		lda = (ta ? M : K) + 3,
									ldb = (tb ? K : N) + 5,
									ldc = N + 2;
						long		na = (long) (ta ? K : M) * lda,
									nb = (long) (tb ? N : K) * ldb,
									nc = (long) M * ldc;
						float	   *A = rnd_array(na),
								   *B = rnd_array(nb),
								   *C0 = rnd_array(nc),
								   *C = malloc(sizeof(float) * nc),
								   *R = malloc(sizeof(float) * nc),
								   *P = malloc(sizeof(float) * nc);
						float		alpha = alphas[ai];

						memcpy(C, C0, sizeof(float) * nc);
						mmsa_sgemm(NULL, ta, tb, M, N, K, alpha, A, lda, B, ldb,
								   (float) beta, C, ldc);
						for (int i = 0; i < M; i++)
							for (int j = 0; j < N; j++)
							{
								double		want = beta ? C0[(size_t) i * ldc + j] : 0.0,
											mag = fabs(want);

								for (int k = 0; k < K; k++)
								{
									double		t = (double) alpha * at(A, lda, ta, i, k) *
										at(B, ldb, tb, k, j);

									want += t;
									mag += fabs(t);
								}
								{
									double		d = fabs(C[(size_t) i * ldc + j] - want) /
										(mag > 1.0 ? mag : 1.0);

									if (d > worst)
										worst = d;
									if (!(d <= 1e-5))
										close_ok = 0;
								}
							}
						/* the padding between rows of C is not touched */
						for (int i = 0; i < M; i++)
							for (size_t j = N; j < ldc; j++)
								if (C[(size_t) i * ldc + j] != C0[(size_t) i * ldc + j])
									close_ok = 0;
						if (simd)
						{
							memcpy(R, C0, sizeof(float) * nc);
							sgemm_reference(ta, tb, K, alpha, A, lda, B, ldb,
											(float) beta, R, ldc, 0, M, 0, N);
							if (memcmp(R, C, sizeof(float) * nc) != 0)
								ref_ok = 0;
						}
						for (int p = 0; p < 2; p++)
						{
							memcpy(P, C0, sizeof(float) * nc);
							mmsa_sgemm(p ? pool3 : pool2, ta, tb, M, N, K, alpha, A, lda,
									   B, ldb, (float) beta, P, ldc);
							if (memcmp(P, C, sizeof(float) * nc) != 0)
								thread_ok = 0;
						}
						results[path][idx] = C;
						result_len[idx] = nc;
						free(A);
						free(B);
						free(C0);
						free(R);
						free(P);
					}
	ok(close_ok, "mmsa_sgemm: %d products (4 transpose cases, alpha, beta 0 and 1) "
	   "within 1e-5 of double precision (worst %.3g), padding untouched", idx, worst);
	if (simd)
		ok(ref_ok, "mmsa_sgemm equals sgemm_reference bit for bit");
	ok(thread_ok, "mmsa_sgemm on 2 and 3 threads equals 1 thread bit for bit");
}

int
main(void)
{
	isa_path	paths[ISA_MAX_PATHS];
	int			npaths = isa_paths(paths);
	mmsa_pool  *pool2 = NULL,
			   *pool3 = NULL;
	mmsa_error	err;
	int			first = -1;

	if (mmsa_pool_create(2, &pool2, &err) != MMSA_OK ||
		mmsa_pool_create(3, &pool3, &err) != MMSA_OK)
	{
		ok(0, "thread pools: %s", err.message);
		return tap_done();
	}
	for (int p = 0; p < npaths; p++)
	{
		isa_use(&paths[p]);
		sgemm_suite(p, paths[p].simd, pool2, pool3);
	}
	isa_reset();
	for (int p = 0; p < npaths; p++)
	{
		int			same = 1;

		if (!paths[p].simd)
			continue;
		if (first < 0)
		{
			first = p;
			continue;
		}
		for (int i = 0; i < MAX_RESULTS; i++)
			if (memcmp(results[p][i], results[first][i], sizeof(float) * result_len[i]) != 0)
				same = 0;
		ok(same, "mmsa_sgemm on %s equals %s bit for bit", paths[p].label, paths[first].label);
	}
	for (int p = 0; p < npaths; p++)
		for (int i = 0; i < MAX_RESULTS; i++)
			free(results[p][i]);
	mmsa_pool_free(pool2);
	mmsa_pool_free(pool3);
	return tap_done();
}
