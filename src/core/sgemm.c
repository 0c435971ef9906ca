/*
 * sgemm.c
 *	  BLAS-style single-precision product on gemm.c's kernels (see sgemm.h).
 *
 * A call packs op(A) whole (the threads of the pool split its panels),
 * then each thread computes its share of C (gemm_thread_share: whole
 * micro-tiles, by columns when C is wide, else by row panels) with
 * gemm_packed_range, which packs op(B) a block at a time into the
 * thread's own buffer: a copy of B's rows, or a gather from its columns
 * when B is given transposed.
 */
#include "sgemm.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>

#include "gemm.h"

/* Products of fewer multiply-adds than this run on the calling thread. */
#define SGEMM_PARALLEL_MIN (1L << 18)

/* ---------------------------------------------------------------------
 * Per-thread work space
 * ---------------------------------------------------------------------
 */

#define WS_A 0					/* the packed op(A) (the calling thread's) */
#define WS_B 1					/* gemm.c's block of op(B) */

typedef struct sgemm_ws
{
	float	   *buf[2];
	size_t		floats[2];
} sgemm_ws;

static pthread_key_t ws_key;
static pthread_once_t ws_once = PTHREAD_ONCE_INIT;
static int	ws_key_ok;

static void
ws_destroy(void *p)
{
	sgemm_ws   *ws = p;

	free(ws->buf[WS_A]);
	free(ws->buf[WS_B]);
	free(ws);
}

static void
ws_key_make(void)
{
	ws_key_ok = pthread_key_create(&ws_key, ws_destroy) == 0;
}

/*
 * The calling thread's buffer `which` of at least n floats (64-byte
 * aligned), or NULL when it cannot be had.  A buffer that must grow grows
 * by half again at least, so that the sizes of a training run (which vary
 * with each batch's length) settle after a few steps.
 */
static float *
ws_buffer(int which, size_t n)
{
	sgemm_ws   *ws;

	if (pthread_once(&ws_once, ws_key_make) != 0 || !ws_key_ok)
		return NULL;
	ws = pthread_getspecific(ws_key);
	if (ws == NULL)
	{
		ws = calloc(1, sizeof(sgemm_ws));
		if (ws == NULL)
			return NULL;
		if (pthread_setspecific(ws_key, ws) != 0)
		{
			free(ws);
			return NULL;
		}
	}
	if (ws->floats[which] < n)
	{
		size_t		grown = ws->floats[which] + ws->floats[which] / 2;
		size_t		floats = n > grown ? n : grown;
		float	   *p = aligned_alloc(64, (floats * sizeof(float) + 63) / 64 * 64);

		if (p == NULL)
			return NULL;
		free(ws->buf[which]);
		ws->buf[which] = p;
		ws->floats[which] = floats;
	}
	return ws->buf[which];
}

/* ---------------------------------------------------------------------
 * The product
 * ---------------------------------------------------------------------
 */

typedef struct sgemm_args
{
	int			trans_a,
				trans_b,
				M,
				N,
				K;
	float		alpha,
				beta;
	const float *A,
			   *B;
	size_t		lda,
				ldb,
				ldc;
	float	   *C;
	float	   *Ap;				/* packed alpha op(A), or NULL: no room */
} sgemm_args;

/* Entry (r, c) of op(X), X with leading dimension ld. */
static inline float
op_at(const float *X, size_t ld, int trans, int r, int c)
{
	return trans ? X[(size_t) c * ld + r] : X[(size_t) r * ld + c];
}

void
sgemm_reference(int trans_a, int trans_b, int K, float alpha, const float *A, size_t lda,
				const float *B, size_t ldb, float beta, float *C, size_t ldc,
				int m0, int m1, int n0, int n1)
{
	int			kb = gemm_k_block(K);

	for (int i = m0; i < m1; i++)
		for (int j = n0; j < n1; j++)
		{
			float	   *c = C + (size_t) i * ldc + j;
			float		v = beta != 0.0f ? *c : 0.0f;

			for (int k0 = 0; k0 < K; k0 += kb)
			{
				int			k1 = k0 + kb < K ? k0 + kb : K;
				float		acc = 0.0f;

				for (int k = k0; k < k1; k++)
					acc = fmaf(alpha * op_at(A, lda, trans_a, i, k),
							   op_at(B, ldb, trans_b, k, j), acc);
				v = (k0 == 0 && beta == 0.0f) ? acc : acc + v;
			}
			*c = v;
		}
}

/* Rows of panel p of op(A): GEMM_MR but in the last panel. */
static inline int
panel_rows(const sgemm_args *a, int p)
{
	return a->M - p * GEMM_MR < GEMM_MR ? a->M - p * GEMM_MR : GEMM_MR;
}

/*
 * Panels [p0, p1) of alpha op(A) into Ap, in gemm_pack_a's layout:
 * Ap[(p*K + k)*MR + r] = alpha op(A)[p*MR + r][k], zero past row M.
 * A as given (op(A) = A): six rows read side by side, each panel written
 * in order.
 */
static void
pack_a_rows(const sgemm_args *a, int p0, int p1)
{
	const float *restrict A = a->A;
	float		alpha = a->alpha;
	size_t		ld = a->lda;
	int			K = a->K;

	for (int p = p0; p < p1; p++)
	{
		float	   *restrict dst = a->Ap + (size_t) p * K * GEMM_MR;
		int			rows = panel_rows(a, p);

		if (rows == GEMM_MR)
		{
			const float *src = A + (size_t) p * GEMM_MR * ld;

			for (int k = 0; k < K; k++)
			{
#pragma GCC unroll 6
				for (int r = 0; r < GEMM_MR; r++)
					dst[(size_t) k * GEMM_MR + r] = alpha * src[r * ld + k];
			}
		}
		else
		{
			for (int k = 0; k < K; k++)
				for (int r = 0; r < GEMM_MR; r++)
					dst[(size_t) k * GEMM_MR + r] = r < rows ?
						alpha * A[(size_t) (p * GEMM_MR + r) * ld + k] : 0.0f;
		}
	}
}

/*
 * pack_a_rows for A given transposed (op(A) = A^T): op(A) row i is A's
 * column i, so a panel's 6 entries of one k are adjacent in A's row k.
 * A is read row by row, in blocks of 32 rows that stay in cache while
 * every panel takes its part.
 */
static void
pack_a_columns(const sgemm_args *a, int p0, int p1)
{
	const float *restrict A = a->A;
	float		alpha = a->alpha;
	size_t		ld = a->lda;
	int			K = a->K;

	for (int k0 = 0; k0 < K; k0 += 32)
	{
		int			k1 = k0 + 32 < K ? k0 + 32 : K;

		for (int p = p0; p < p1; p++)
		{
			float	   *restrict dst = a->Ap + (size_t) p * K * GEMM_MR;
			int			rows = panel_rows(a, p);

			for (int k = k0; k < k1; k++)
			{
				const float *src = A + (size_t) k * ld + p * GEMM_MR;

				if (rows == GEMM_MR)
				{
#pragma GCC unroll 6
					for (int r = 0; r < GEMM_MR; r++)
						dst[(size_t) k * GEMM_MR + r] = alpha * src[r];
				}
				else
					for (int r = 0; r < GEMM_MR; r++)
						dst[(size_t) k * GEMM_MR + r] = r < rows ? alpha * src[r] : 0.0f;
			}
		}
	}
}

/* Panels [p0, p1) of alpha op(A) into Ap. */
static void
pack_a_panels(const sgemm_args *a, int p0, int p1)
{
	if (a->trans_a)
		pack_a_columns(a, p0, p1);
	else
		pack_a_rows(a, p0, p1);
}

static void
pack_a_thread(void *arg, int t, int nthreads)
{
	const sgemm_args *a = arg;
	long		lo,
				hi;

	mmsa_pool_share((a->M + GEMM_MR - 1) / GEMM_MR, t, nthreads, 1, &lo, &hi);
	pack_a_panels(a, (int) lo, (int) hi);
}

/* op(B) = B^T with B (N, K): block [k0, k0+kc) x [n0, n0+nc) gathered. */
typedef struct trans_b
{
	const float *B;
	size_t		ldb;
} trans_b;

static void
pack_trans_b(const void *ctx, float *bp, int k0, int kc, int n0, int nc)
{
	const trans_b *t = ctx;
	int			panels = (nc + GEMM_NR - 1) / GEMM_NR;

	for (int j = 0; j < panels; j++)
	{
		float	   *dst = bp + (size_t) j * kc * GEMM_NR;

		for (int x = 0; x < GEMM_NR; x++)
		{
			int			col = j * GEMM_NR + x;

			if (col < nc)
			{
				const float *src = t->B + (size_t) (n0 + col) * t->ldb + k0;

				for (int k = 0; k < kc; k++)
					dst[(size_t) k * GEMM_NR + x] = src[k];
			}
			else
				for (int k = 0; k < kc; k++)
					dst[(size_t) k * GEMM_NR + x] = 0.0f;
		}
	}
}

static void
product_thread(void *arg, int t, int nthreads)
{
	const sgemm_args *a = arg;
	gemm_epilogue ep = {.accumulate = a->beta != 0.0f};
	float	   *bp;
	int			m0,
				m1,
				n0,
				n1;

	gemm_thread_share(a->M, a->N, t, nthreads, &m0, &m1, &n0, &n1);
	if (m0 >= m1 || n0 >= n1)
		return;
	bp = a->Ap != NULL ? ws_buffer(WS_B, gemm_bpack_floats(a->K)) : NULL;
	if (bp == NULL)
	{
		sgemm_reference(a->trans_a, a->trans_b, a->K, a->alpha, a->A, a->lda,
						a->B, a->ldb, a->beta, a->C, a->ldc, m0, m1, n0, n1);
		return;
	}
	if (a->trans_b)
	{
		trans_b		tb = {a->B, a->ldb};
		gemm_b_source src = {pack_trans_b, &tb};

		gemm_packed_range_src(a->C, a->ldc, a->Ap, &src, a->M, a->K, m0, m1, n0, n1, &ep, bp);
	}
	else
		gemm_packed_range(a->C, a->ldc, a->Ap, a->B, a->ldb, a->M, a->K, m0, m1, n0, n1, &ep, bp);
}

void
mmsa_sgemm(mmsa_pool *pool, int trans_a, int trans_b, int M, int N, int K,
		   float alpha, const float *A, size_t lda,
		   const float *B, size_t ldb, float beta, float *C, size_t ldc)
{
	sgemm_args	a = {trans_a, trans_b, M, N, K, alpha, beta, A, B, lda, ldb, ldc, C, NULL};
	int			parallel;

	if (M < 1 || N < 1)
		return;
	if (K < 1)
	{
		/* an empty sum: C = beta C */
		if (beta == 0.0f)
			for (int i = 0; i < M; i++)
				for (int j = 0; j < N; j++)
					C[(size_t) i * ldc + j] = 0.0f;
		return;
	}
	parallel = pool != NULL && mmsa_pool_size(pool) > 1 &&
		(long) M * N * K >= SGEMM_PARALLEL_MIN;
	a.Ap = ws_buffer(WS_A, gemm_packed_floats(M, K));
	if (a.Ap != NULL)
	{
		if (parallel)
			mmsa_pool_run(pool, pack_a_thread, &a);
		else
			pack_a_panels(&a, 0, (M + GEMM_MR - 1) / GEMM_MR);
	}
	if (parallel)
		mmsa_pool_run(pool, product_thread, &a);
	else
		product_thread(&a, 0, 1);
}
