/*
 * gemm.c
 *	  Matrix product with prepacked weights (see gemm.h).
 *
 * Blocking, as in BLIS / llm.c-style kernels, for caches of 32 KiB (L1),
 * 512 KiB (L2) per core:
 *
 *   for each block of up to GEMM_NC columns of B          (L2: KC x NC of B)
 *     for each block of up to GEMM_KC rows of B (k range)
 *       pack B[k range, column block] into panels of 16 columns, column-
 *       interleaved: bp[(j*kc + k)*16 + x] = B[k0 + k][n + 16*j + x]
 *       for each panel of 6 rows of A                     (L1: 6 x KC of A)
 *         for each panel of 16 columns of B
 *           micro-kernel: a 6 x 16 tile of C held in 12 AVX registers,
 *           kc rank-1 updates (2 loads of B, 6 broadcasts of A, 12 FMAs
 *           per k); added to C when it is not the first k block, bias,
 *           residual and ReLU applied when it is the last.  The first
 *           tile of a row panel also prefetches the next A block (one
 *           line per k), since weights come from memory: ResNet-50's
 *           100 MB do not stay in any cache from one image to the next.
 *
 * A is never repacked: gemm_pack_a stores every 6-row panel with its whole
 * K, so the slice of a k block is contiguous.  Tiles at the right and
 * bottom edges are computed whole (B's panel and A's panel are zero
 * padded) and only their valid part is stored; panels of at most 8 valid
 * columns use a 6 x 8 kernel.  A last panel of at most 4 (a tail) uses a
 * 12 x 4 kernel over each two row panels right after their other tiles
 * when it has 3 or 4 columns (ResNet's 14 x 14 maps leave 4), and is done
 * column by column over 8 row panels at once after all the other tiles
 * when it has 1 or 2 (tail_columns; ResNet's 7 x 7 maps leave 1); both
 * with the same fused multiply-adds in the same order as the 6 x 8
 * kernel.  B is packed by a function (gemm_b_source): a copy of a dense
 * matrix, or a convolution's gather.
 * Without AVX2 and FMA the same loops run with a plain C micro-kernel.
 */
#include "gemm.h"

#include <string.h>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define GEMM_AVX2 1
#define GEMM_HAVE_TAIL 1
#else
#define GEMM_HAVE_TAIL 0
#endif

#define GEMM_KC 256				/* rows of a packed block of B */
#define GEMM_TAIL_COLS 4		/* a last panel this narrow: a tail (below) */
#define GEMM_TAIL_BY_COLUMN 2	/* a tail this narrow: tail_columns */
#define GEMM_TAIL_PANELS 8		/* row panels tail_column carries at once */

size_t
gemm_packed_floats(int M, int K)
{
	return (size_t) ((M + GEMM_MR - 1) / GEMM_MR) * GEMM_MR * (size_t) K;
}

/*
 * Packs A (M, K) into panels of GEMM_MR rows, k-major within a panel:
 * Ap[(p*K + k)*MR + r] = A[p*MR + r][k], zero for rows past M.
 */
void
gemm_pack_a(float *Ap, const float *A, int M, int K, size_t lda)
{
	int			panels = (M + GEMM_MR - 1) / GEMM_MR;

	for (int p = 0; p < panels; p++)
		for (int k = 0; k < K; k++)
			for (int r = 0; r < GEMM_MR; r++)
			{
				int			row = p * GEMM_MR + r;

				Ap[((size_t) p * K + k) * GEMM_MR + r] =
					row < M ? A[(size_t) row * lda + k] : 0.0f;
			}
}

size_t
gemm_bpack_floats(int K)
{
	int			kc = K < GEMM_KC ? K : GEMM_KC;

	return (size_t) (kc < 1 ? 1 : kc) * GEMM_NC;
}

/*
 * Row k (of kc) of a packed block: row[0 .. nc) into the panels of 16
 * columns (see the comment at the top), zero padding the last panel.
 */
static inline void
pack_b_row(float *bp, const float *row, int kc, int k, int nc)
{
	int			panels = (nc + GEMM_NR - 1) / GEMM_NR;

	for (int j = 0; j < panels; j++)
	{
		float	   *dst = bp + ((size_t) j * kc + k) * GEMM_NR;
		int			cols = nc - j * GEMM_NR;

		if (cols >= GEMM_NR)
		{
#ifdef GEMM_AVX2
			_mm256_storeu_ps(dst, _mm256_loadu_ps(row + j * GEMM_NR));
			_mm256_storeu_ps(dst + 8, _mm256_loadu_ps(row + j * GEMM_NR + 8));
#else
			memcpy(dst, row + j * GEMM_NR, sizeof(float) * GEMM_NR);
#endif
		}
		else
		{
			memcpy(dst, row + j * GEMM_NR, sizeof(float) * cols);
			memset(dst + cols, 0, sizeof(float) * (GEMM_NR - cols));
		}
	}
}

void
gemm_pack_b_row(float *bp, const float *row, int kc, int k, int nc)
{
	pack_b_row(bp, row, kc, k, nc);
}

/* Packs B[k0 .. k0+kc, n0 .. n0+nc) row by row. */
static void
pack_b(float *bp, const float *B, size_t ldb, int k0, int kc, int n0, int nc)
{
	for (int k = 0; k < kc; k++)
		pack_b_row(bp, B + (size_t) (k0 + k) * ldb + n0, kc, k, nc);
}

/*
 * Where a micro-tile goes and what to do on the way: mr x nr valid
 * entries at c (leading dimension ldc); `accumulate`: add to what c holds
 * (not the first k block); `ep` non-NULL on the last k block, with bias
 * and residual already offset to the tile's first row / entry.
 */
typedef struct tile_store
{
	float	   *c;
	size_t		ldc;
	int			mr,
				nr;
	int			accumulate;
	const float *bias;
	const float *residual;
	size_t		ldr;
	int			relu;
	int			last;
	const float *prefetch;		/* A block to fetch into L1 meanwhile, or NULL */
} tile_store;

/* Finishes and stores one result v at row i, column j of the tile. */
static inline void
store1(float v, const tile_store *s, int i, int j)
{
	float	   *c = s->c + (size_t) i * s->ldc + j;

	if (s->accumulate)
		v += *c;
	if (s->last)
	{
		if (s->bias)
			v += s->bias[i];
		if (s->residual)
			v += s->residual[(size_t) i * s->ldr + j];
		if (s->relu && v < 0.0f)
			v = 0.0f;
	}
	*c = v;
}

/* Stores a finished tile t (6 x 16, row-major) entry by entry. */
static void
store_tile_scalar(const float *t, const tile_store *s)
{
	for (int i = 0; i < s->mr; i++)
		for (int j = 0; j < s->nr; j++)
			store1(t[i * GEMM_NR + j], s, i, j);
}

#ifdef GEMM_AVX2

/* Finishes and stores 8 results of row i at column j of the tile. */
static inline void
store8(__m256 v, const tile_store *s, int i, int j)
{
	float	   *c = s->c + (size_t) i * s->ldc + j;

	if (s->accumulate)
		v = _mm256_add_ps(v, _mm256_loadu_ps(c));
	if (s->last)
	{
		if (s->bias)
			v = _mm256_add_ps(v, _mm256_set1_ps(s->bias[i]));
		if (s->residual)
			v = _mm256_add_ps(v, _mm256_loadu_ps(s->residual + (size_t) i * s->ldr + j));
		if (s->relu)
			v = _mm256_max_ps(v, _mm256_setzero_ps());
	}
	_mm256_storeu_ps(c, v);
}

/*
 * The 6 x 16 micro-kernel: tile = a (kc x 6, packed) x b (kc x 16, packed).
 */
static void
kernel_6x16(int kc, const float *a, const float *b, const tile_store *s)
{
	__m256		c00 = _mm256_setzero_ps(),
				c01 = _mm256_setzero_ps(),
				c10 = _mm256_setzero_ps(),
				c11 = _mm256_setzero_ps(),
				c20 = _mm256_setzero_ps(),
				c21 = _mm256_setzero_ps(),
				c30 = _mm256_setzero_ps(),
				c31 = _mm256_setzero_ps(),
				c40 = _mm256_setzero_ps(),
				c41 = _mm256_setzero_ps(),
				c50 = _mm256_setzero_ps(),
				c51 = _mm256_setzero_ps();
	const float *pf = s->prefetch;

#pragma GCC unroll 4
	for (int k = 0; k < kc; k++)
	{
		__m256		b0 = _mm256_loadu_ps(b),
					b1 = _mm256_loadu_ps(b + 8),
					ai;

		if (pf)
			_mm_prefetch((const char *) (pf + (size_t) k * GEMM_MR), _MM_HINT_T0);

		ai = _mm256_broadcast_ss(a + 0);
		c00 = _mm256_fmadd_ps(ai, b0, c00);
		c01 = _mm256_fmadd_ps(ai, b1, c01);
		ai = _mm256_broadcast_ss(a + 1);
		c10 = _mm256_fmadd_ps(ai, b0, c10);
		c11 = _mm256_fmadd_ps(ai, b1, c11);
		ai = _mm256_broadcast_ss(a + 2);
		c20 = _mm256_fmadd_ps(ai, b0, c20);
		c21 = _mm256_fmadd_ps(ai, b1, c21);
		ai = _mm256_broadcast_ss(a + 3);
		c30 = _mm256_fmadd_ps(ai, b0, c30);
		c31 = _mm256_fmadd_ps(ai, b1, c31);
		ai = _mm256_broadcast_ss(a + 4);
		c40 = _mm256_fmadd_ps(ai, b0, c40);
		c41 = _mm256_fmadd_ps(ai, b1, c41);
		ai = _mm256_broadcast_ss(a + 5);
		c50 = _mm256_fmadd_ps(ai, b0, c50);
		c51 = _mm256_fmadd_ps(ai, b1, c51);
		a += GEMM_MR;
		b += GEMM_NR;
	}

	if (s->mr == GEMM_MR && s->nr == GEMM_NR)
	{
		store8(c00, s, 0, 0);
		store8(c01, s, 0, 8);
		store8(c10, s, 1, 0);
		store8(c11, s, 1, 8);
		store8(c20, s, 2, 0);
		store8(c21, s, 2, 8);
		store8(c30, s, 3, 0);
		store8(c31, s, 3, 8);
		store8(c40, s, 4, 0);
		store8(c41, s, 4, 8);
		store8(c50, s, 5, 0);
		store8(c51, s, 5, 8);
	}
	else if (s->nr == GEMM_NR)
	{
		/* bottom edge: whole rows, fewer of them */
		__m256		rows[GEMM_MR][2] = {{c00, c01}, {c10, c11}, {c20, c21},
		{c30, c31}, {c40, c41}, {c50, c51}};

		for (int i = 0; i < s->mr; i++)
		{
			store8(rows[i][0], s, i, 0);
			store8(rows[i][1], s, i, 8);
		}
	}
	else
	{
		float		t[GEMM_MR * GEMM_NR];

		_mm256_storeu_ps(t + 0 * 16, c00);
		_mm256_storeu_ps(t + 0 * 16 + 8, c01);
		_mm256_storeu_ps(t + 1 * 16, c10);
		_mm256_storeu_ps(t + 1 * 16 + 8, c11);
		_mm256_storeu_ps(t + 2 * 16, c20);
		_mm256_storeu_ps(t + 2 * 16 + 8, c21);
		_mm256_storeu_ps(t + 3 * 16, c30);
		_mm256_storeu_ps(t + 3 * 16 + 8, c31);
		_mm256_storeu_ps(t + 4 * 16, c40);
		_mm256_storeu_ps(t + 4 * 16 + 8, c41);
		_mm256_storeu_ps(t + 5 * 16, c50);
		_mm256_storeu_ps(t + 5 * 16 + 8, c51);
		store_tile_scalar(t, s);
	}
}

/*
 * The 6 x 8 kernel for the last panel when it has at most 8 valid
 * columns: the left half of the 6 x 16 one.
 */
static void
kernel_6x8(int kc, const float *a, const float *b, const tile_store *s)
{
	__m256		c0 = _mm256_setzero_ps(),
				c1 = _mm256_setzero_ps(),
				c2 = _mm256_setzero_ps(),
				c3 = _mm256_setzero_ps(),
				c4 = _mm256_setzero_ps(),
				c5 = _mm256_setzero_ps();
	float		t[GEMM_MR * GEMM_NR];

	for (int k = 0; k < kc; k++)
	{
		__m256		b0 = _mm256_loadu_ps(b);

		c0 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 0), b0, c0);
		c1 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 1), b0, c1);
		c2 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 2), b0, c2);
		c3 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 3), b0, c3);
		c4 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 4), b0, c4);
		c5 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 5), b0, c5);
		a += GEMM_MR;
		b += GEMM_NR;
	}
	if (s->nr == 8)
	{
		__m256		rows[GEMM_MR] = {c0, c1, c2, c3, c4, c5};

		for (int i = 0; i < s->mr; i++)
			store8(rows[i], s, i, 0);
		return;
	}
	_mm256_storeu_ps(t + 0 * 16, c0);
	_mm256_storeu_ps(t + 1 * 16, c1);
	_mm256_storeu_ps(t + 2 * 16, c2);
	_mm256_storeu_ps(t + 3 * 16, c3);
	_mm256_storeu_ps(t + 4 * 16, c4);
	_mm256_storeu_ps(t + 5 * 16, c5);
	store_tile_scalar(t, s);
}

/*
 * One column of B against up to GEMM_TAIL_PANELS panels of A at once: for
 * panel p, the 6 rows at one k are the low lanes of one vector loaded from
 * the packed panel (k-major), times the column's entry broadcast.  Each
 * result is the chain of fused multiply-adds over k from zero, in order,
 * that kernel_6x8 computes, so a column gives the same floats either way.
 * a[p]: panel p's first k; b: the column's first entry, stride GEMM_NR.
 * The last k loads with a mask: its lanes 6 and 7 would be past the end.
 */
static void
tail_column(int kc, const float *const *a, const float *b, __m256 acc[GEMM_TAIL_PANELS])
{
	const __m256i six = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0);
	int			k;

	for (int p = 0; p < GEMM_TAIL_PANELS; p++)
		acc[p] = _mm256_setzero_ps();
	for (k = 0; k < kc - 1; k++)
	{
		__m256		bk = _mm256_broadcast_ss(b + (size_t) k * GEMM_NR);

#pragma GCC unroll 8
		for (int p = 0; p < GEMM_TAIL_PANELS; p++)
			acc[p] = _mm256_fmadd_ps(_mm256_loadu_ps(a[p] + (size_t) k * GEMM_MR), bk, acc[p]);
	}
	{
		__m256		bk = _mm256_broadcast_ss(b + (size_t) k * GEMM_NR);

		for (int p = 0; p < GEMM_TAIL_PANELS; p++)
			acc[p] = _mm256_fmadd_ps(_mm256_maskload_ps(a[p] + (size_t) k * GEMM_MR, six), bk, acc[p]);
	}
}

/*
 * The last panel of a column block when it has at most GEMM_TAIL_COLS
 * valid columns, for two row panels at once, done right after their other
 * tiles so that both panels of A are still in L1: for panel p and column
 * x, the 6 rows at one k are the low lanes of a vector loaded from the
 * packed panel (k-major), times B's entry broadcast; 8 independent chains
 * of fused multiply-adds, 8 per k.  Each result is the chain over k from
 * zero, in order, that kernel_6x8 computes, so a column gives the same
 * floats either way.  The last k loads with a mask: its lanes 6 and 7
 * would be past the end.  a1 may repeat a0 (one panel: computed, not
 * stored); s: rows of a0 then a1 (s->mr up to 12), s->nr columns.
 */
static void
kernel_tail_12x4(int kc, const float *a0, const float *a1, const float *b,
				 const tile_store *s)
{
	const __m256i six = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0);
	__m256		c00 = _mm256_setzero_ps(),
				c01 = _mm256_setzero_ps(),
				c02 = _mm256_setzero_ps(),
				c03 = _mm256_setzero_ps(),
				c10 = _mm256_setzero_ps(),
				c11 = _mm256_setzero_ps(),
				c12 = _mm256_setzero_ps(),
				c13 = _mm256_setzero_ps(),
				x0,
				x1;
	float		t[4][2][8];
	int			k;

	for (k = 0; k < kc - 1; k++)
	{
		__m256		b0 = _mm256_broadcast_ss(b + 0),
					b1 = _mm256_broadcast_ss(b + 1),
					b2 = _mm256_broadcast_ss(b + 2),
					b3 = _mm256_broadcast_ss(b + 3);

		x0 = _mm256_loadu_ps(a0);
		x1 = _mm256_loadu_ps(a1);
		c00 = _mm256_fmadd_ps(x0, b0, c00);
		c01 = _mm256_fmadd_ps(x0, b1, c01);
		c02 = _mm256_fmadd_ps(x0, b2, c02);
		c03 = _mm256_fmadd_ps(x0, b3, c03);
		c10 = _mm256_fmadd_ps(x1, b0, c10);
		c11 = _mm256_fmadd_ps(x1, b1, c11);
		c12 = _mm256_fmadd_ps(x1, b2, c12);
		c13 = _mm256_fmadd_ps(x1, b3, c13);
		a0 += GEMM_MR;
		a1 += GEMM_MR;
		b += GEMM_NR;
	}
	x0 = _mm256_maskload_ps(a0, six);
	x1 = _mm256_maskload_ps(a1, six);
	c00 = _mm256_fmadd_ps(x0, _mm256_broadcast_ss(b + 0), c00);
	c01 = _mm256_fmadd_ps(x0, _mm256_broadcast_ss(b + 1), c01);
	c02 = _mm256_fmadd_ps(x0, _mm256_broadcast_ss(b + 2), c02);
	c03 = _mm256_fmadd_ps(x0, _mm256_broadcast_ss(b + 3), c03);
	c10 = _mm256_fmadd_ps(x1, _mm256_broadcast_ss(b + 0), c10);
	c11 = _mm256_fmadd_ps(x1, _mm256_broadcast_ss(b + 1), c11);
	c12 = _mm256_fmadd_ps(x1, _mm256_broadcast_ss(b + 2), c12);
	c13 = _mm256_fmadd_ps(x1, _mm256_broadcast_ss(b + 3), c13);

	/* t[x][p][r]: column x, panel p, row r */
	_mm256_storeu_ps(t[0][0], c00);
	_mm256_storeu_ps(t[1][0], c01);
	_mm256_storeu_ps(t[2][0], c02);
	_mm256_storeu_ps(t[3][0], c03);
	_mm256_storeu_ps(t[0][1], c10);
	_mm256_storeu_ps(t[1][1], c11);
	_mm256_storeu_ps(t[2][1], c12);
	_mm256_storeu_ps(t[3][1], c13);
	for (int i = 0; i < s->mr; i++)
		for (int x = 0; x < s->nr; x++)
			store1(t[x][i / GEMM_MR][i % GEMM_MR], s, i, x);
}

#else							/* portable micro-kernel */

static void
kernel_6x16(int kc, const float *a, const float *b, const tile_store *s)
{
	float		t[GEMM_MR * GEMM_NR] = {0};

	for (int k = 0; k < kc; k++)
	{
		for (int i = 0; i < GEMM_MR; i++)
			for (int j = 0; j < GEMM_NR; j++)
				t[i * GEMM_NR + j] += a[i] * b[j];
		a += GEMM_MR;
		b += GEMM_NR;
	}
	store_tile_scalar(t, s);
}

static void
kernel_6x8(int kc, const float *a, const float *b, const tile_store *s)
{
	kernel_6x16(kc, a, b, s);
}

/* not reached: tail is 0 without AVX2 (GEMM_HAVE_TAIL) */
static void
kernel_tail_12x4(int kc, const float *a0, const float *a1, const float *b,
				 const tile_store *s)
{
	(void) kc;
	(void) a0;
	(void) a1;
	(void) b;
	(void) s;
}

#endif

/*
 * The last panel of a column block when it has at most
 * GEMM_TAIL_BY_COLUMN valid columns: with AVX2, column by column over
 * GEMM_TAIL_PANELS row panels at once (tail_column), in a pass over the
 * weights after the other tiles.  For one column (ResNet's 7 x 7 maps)
 * far less work than a 6 x 8 tile per panel, and less time than
 * kernel_tail_12x4; for four (14 x 14 maps) slower than either, since each
 * column reads its 8 panels of A from L2 again.  s holds the store of
 * rows m0.. (c, bias and residual at row m0, column col); rows [m0, m1).
 */
static void
tail_columns(int kc, const float *Ap, int K, int k0, const float *bp,
			 int m0, int m1, int ncols, const tile_store *s0)
{
#ifdef GEMM_AVX2
	for (int mp = m0; mp < m1; mp += GEMM_MR * GEMM_TAIL_PANELS)
	{
		const float *a[GEMM_TAIL_PANELS];
		int			np = (m1 - mp + GEMM_MR - 1) / GEMM_MR;

		if (np > GEMM_TAIL_PANELS)
			np = GEMM_TAIL_PANELS;
		/* past the last panel: repeat it (computed, not stored) */
		for (int p = 0; p < GEMM_TAIL_PANELS; p++)
			a[p] = Ap + ((size_t) ((mp + GEMM_MR * (p < np ? p : np - 1)) / GEMM_MR) * K + k0) * GEMM_MR;
		for (int x = 0; x < ncols; x++)
		{
			__m256		acc[GEMM_TAIL_PANELS];

			tail_column(kc, a, bp + x, acc);
			for (int p = 0; p < np; p++)
			{
				float		v[8];
				int			row0 = mp + GEMM_MR * p - m0;

				_mm256_storeu_ps(v, acc[p]);
				for (int r = 0; r < GEMM_MR && mp + GEMM_MR * p + r < m1; r++)
					store1(v[r], s0, row0 + r, x);
			}
		}
	}
#else
	/* not reached: tail is 0 without AVX2 (GEMM_HAVE_TAIL) */
	(void) kc;
	(void) Ap;
	(void) K;
	(void) k0;
	(void) bp;
	(void) m0;
	(void) m1;
	(void) ncols;
	(void) s0;
#endif
}

/* A dense B (K, N) with leading dimension ldb, as a gemm_b_source. */
typedef struct dense_b
{
	const float *B;
	size_t		ldb;
} dense_b;

static void
pack_dense_b(const void *ctx, float *bp, int k0, int kc, int n0, int nc)
{
	const dense_b *d = ctx;

	pack_b(bp, d->B, d->ldb, k0, kc, n0, nc);
}

void
gemm_packed_range(float *C, size_t ldc, const float *Ap,
				  const float *B, size_t ldb, int M, int K,
				  int m0, int m1, int n0, int n1,
				  const gemm_epilogue *ep, float *bpack)
{
	dense_b		d = {B, ldb};
	gemm_b_source src = {pack_dense_b, &d};

	gemm_packed_range_src(C, ldc, Ap, &src, M, K, m0, m1, n0, n1, ep, bpack);
}

void
gemm_packed_range_src(float *C, size_t ldc, const float *Ap,
					  const gemm_b_source *B, int M, int K,
					  int m0, int m1, int n0, int n1,
					  const gemm_epilogue *ep, float *bpack)
{
	int			nk,
				kc_even;

	if (m1 > M)
		m1 = M;
	if (m0 >= m1 || n0 >= n1 || K < 1)
		return;
	/* k blocks of nearly equal size, none over GEMM_KC */
	nk = (K + GEMM_KC - 1) / GEMM_KC;
	kc_even = (K + nk - 1) / nk;

	for (int nb = n0; nb < n1; nb += GEMM_NC)
	{
		int			nc = n1 - nb < GEMM_NC ? n1 - nb : GEMM_NC;
		int			npanels = (nc + GEMM_NR - 1) / GEMM_NR;
		int			tail_cols = nc - (npanels - 1) * GEMM_NR;
		int			tail = GEMM_HAVE_TAIL && tail_cols <= GEMM_TAIL_COLS;
		int			tail_by_column = tail_cols <= GEMM_TAIL_BY_COLUMN;

		for (int k0 = 0; k0 < K; k0 += kc_even)
		{
			int			kc = K - k0 < kc_even ? K - k0 : kc_even;
			int			last = (k0 + kc == K);

			B->pack(B->ctx, bpack, k0, kc, nb, nc);
			for (int mp = m0; mp < m1; mp += GEMM_MR)
			{
				const float *a = Ap + ((size_t) (mp / GEMM_MR) * K + k0) * GEMM_MR;
				const float *next_a;
				int			second;	/* the second of a pair of row panels */
				tile_store	s;

				s.ldc = ldc;
				s.mr = m1 - mp < GEMM_MR ? m1 - mp : GEMM_MR;
				s.accumulate = (k0 > 0);
				s.last = last;
				s.bias = (ep && ep->bias) ? ep->bias + mp : NULL;
				s.relu = ep ? ep->relu : 0;
				s.ldr = ep ? ep->ldr : 0;
				if (mp + GEMM_MR < m1)
					next_a = a + (size_t) K * GEMM_MR;
				else if (!last)
					next_a = Ap + ((size_t) (m0 / GEMM_MR) * K + k0 + kc) * GEMM_MR;
				else
					next_a = NULL;
				for (int j = 0; j < npanels - tail; j++)
				{
					int			col = nb + j * GEMM_NR;

					s.prefetch = j == 0 ? next_a : NULL;

					s.c = C + (size_t) mp * ldc + col;
					s.nr = n1 - col < GEMM_NR ? n1 - col : GEMM_NR;
					s.residual = (ep && ep->residual) ?
						ep->residual + (size_t) mp * ep->ldr + col : NULL;
					if (s.nr <= 8)
						kernel_6x8(kc, a, bpack + (size_t) j * kc * GEMM_NR, &s);
					else
						kernel_6x16(kc, a, bpack + (size_t) j * kc * GEMM_NR, &s);
				}
				/* a wider tail: for this row panel and the one before it */
				second = (mp - m0) / GEMM_MR % 2 == 1;
				if (tail && !tail_by_column && (second || mp + GEMM_MR >= m1))
				{
					int			first = second ? mp - GEMM_MR : mp;
					int			col = nb + (npanels - 1) * GEMM_NR;

					s.c = C + (size_t) first * ldc + col;
					s.mr = (m1 < mp + GEMM_MR ? m1 : mp + GEMM_MR) - first;
					s.nr = tail_cols;
					s.bias = (ep && ep->bias) ? ep->bias + first : NULL;
					s.residual = (ep && ep->residual) ?
						ep->residual + (size_t) first * ep->ldr + col : NULL;
					kernel_tail_12x4(kc, Ap + ((size_t) (first / GEMM_MR) * K + k0) * GEMM_MR, a,
									 bpack + (size_t) (npanels - 1) * kc * GEMM_NR, &s);
				}
			}
			if (tail && tail_by_column)
			{
				int			col = nb + (npanels - 1) * GEMM_NR;
				tile_store	s;

				s.c = C + (size_t) m0 * ldc + col;
				s.ldc = ldc;
				s.accumulate = (k0 > 0);
				s.last = last;
				s.bias = (ep && ep->bias) ? ep->bias + m0 : NULL;
				s.relu = ep ? ep->relu : 0;
				s.ldr = ep ? ep->ldr : 0;
				s.residual = (ep && ep->residual) ? ep->residual + (size_t) m0 * ep->ldr + col : NULL;
				s.prefetch = NULL;
				tail_columns(kc, Ap, K, k0, bpack + (size_t) (npanels - 1) * kc * GEMM_NR,
							 m0, m1, tail_cols, &s);
			}
		}
	}
}

int
gemm_residual_in_place_ok(int K)
{
	return K >= 1 && K <= GEMM_KC;
}

void
gemm_thread_share(int M, int N, int t, int nthreads,
				  int *m0, int *m1, int *n0, int *n1)
{
	*m0 = 0;
	*m1 = M;
	*n0 = 0;
	*n1 = N;
	if (nthreads <= 1)
		return;
	if (N >= 64 * nthreads)
	{
		/* by columns, in whole panels of GEMM_NR */
		int			panels = (N + GEMM_NR - 1) / GEMM_NR;
		int			lo = (int) ((long) panels * t / nthreads),
					hi = (int) ((long) panels * (t + 1) / nthreads);

		*n0 = lo * GEMM_NR;
		*n1 = hi * GEMM_NR < N ? hi * GEMM_NR : N;
		if (*n0 > N)
			*n0 = N;
	}
	else
	{
		/* by row panels of GEMM_MR */
		int			panels = (M + GEMM_MR - 1) / GEMM_MR;
		int			lo = (int) ((long) panels * t / nthreads),
					hi = (int) ((long) panels * (t + 1) / nthreads);

		*m0 = lo * GEMM_MR;
		*m1 = hi * GEMM_MR < M ? hi * GEMM_MR : M;
		if (*m0 > M)
			*m0 = M;
	}
}
