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
 *           micro-kernel: a 6 x 16 tile of C in 12 AVX registers (AVX-512:
 *           6 x 32 over two panels, in 12 registers of 512 bits), kc
 *           rank-1 updates (2 loads of B, 6 broadcasts of A, 12 FMAs
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
 *
 * The micro-kernels and the packing of B are those of the instruction-set
 * path in use (gemm_isa.h, src/core/isa/, chosen by cpu.c): this file holds
 * the block loop, which every path shares, and the portable C kernels
 * (gemm_kernels_generic), which the tests take as their reference and a
 * build for another architecture runs.
 */
#include "gemm.h"

#include <string.h>

#include "gemm_isa.h"

#define GEMM_KC 256				/* rows of a packed block of B */

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

/* k blocks of nearly equal size, none over GEMM_KC */
int
gemm_k_block(int K)
{
	int			nk = (K + GEMM_KC - 1) / GEMM_KC;

	return nk < 1 ? 1 : (K + nk - 1) / nk;
}

size_t
gemm_bpack_floats(int K)
{
	int			kc = K < GEMM_KC ? K : GEMM_KC;

	return (size_t) (kc < 1 ? 1 : kc) * GEMM_NC;
}

/*
 * The portable C kernels: each tile accumulated in a plain array, every
 * panel as a whole 6 x 16 tile (rows and columns past the edge computed,
 * not stored); no tails.
 */
static void
row_panel_generic(int kc, const float *a, const float *bp, int npanels, const tile_store *s0)
{
	for (int j = 0; j < npanels; j++)
	{
		const float *ak = a,
				   *b = bp + (size_t) j * kc * GEMM_NR;
		float		t[GEMM_MR * GEMM_NR] = {0};
		tile_store	s;

		for (int k = 0; k < kc; k++)
		{
			for (int i = 0; i < GEMM_MR; i++)
				for (int x = 0; x < GEMM_NR; x++)
					t[i * GEMM_NR + x] += ak[i] * b[x];
			ak += GEMM_MR;
			b += GEMM_NR;
		}
		gemm_tile_at(&s, s0, j * GEMM_NR, GEMM_NR);
		gemm_store_tile_scalar(t, &s);
	}
}

static void
pack_b_generic(float *bp, const float *B, size_t ldb, int k0, int kc, int n0, int nc)
{
	gemm_pack_b_inline(bp, B, ldb, k0, kc, n0, nc);
}

const gemm_kernels gemm_kernels_generic = {
	"generic",
	row_panel_generic,
	NULL,
	NULL,
	pack_b_generic
};

/* A dense B (K, N) with leading dimension ldb, as a gemm_b_source. */
typedef struct dense_b
{
	const gemm_kernels *kern;
	const float *B;
	size_t		ldb;
} dense_b;

static void
pack_dense_b(const void *ctx, float *bp, int k0, int kc, int n0, int nc)
{
	const dense_b *d = ctx;

	d->kern->pack_b(bp, d->B, d->ldb, k0, kc, n0, nc);
}

void
gemm_packed_range(float *C, size_t ldc, const float *Ap,
				  const float *B, size_t ldb, int M, int K,
				  int m0, int m1, int n0, int n1,
				  const gemm_epilogue *ep, float *bpack)
{
	dense_b		d = {mmsa_gemm_kernels(), B, ldb};
	gemm_b_source src = {pack_dense_b, &d};

	gemm_packed_range_src(C, ldc, Ap, &src, M, K, m0, m1, n0, n1, ep, bpack);
}

void
gemm_packed_range_src(float *C, size_t ldc, const float *Ap,
					  const gemm_b_source *B, int M, int K,
					  int m0, int m1, int n0, int n1,
					  const gemm_epilogue *ep, float *bpack)
{
	const gemm_kernels *kern = mmsa_gemm_kernels();
	int			kc_even;

	if (m1 > M)
		m1 = M;
	if (m0 >= m1 || n0 >= n1 || K < 1)
		return;
	kc_even = gemm_k_block(K);

	for (int nb = n0; nb < n1; nb += GEMM_NC)
	{
		int			nc = n1 - nb < GEMM_NC ? n1 - nb : GEMM_NC;
		int			npanels = (nc + GEMM_NR - 1) / GEMM_NR;
		int			tail_cols = nc - (npanels - 1) * GEMM_NR;
		int			tail = kern->tail_pair && tail_cols <= GEMM_TAIL_COLS;
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
				s.accumulate = k0 > 0 || (ep && ep->accumulate);
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
				s.prefetch = next_a;
				s.c = C + (size_t) mp * ldc + nb;
				s.nr = nc;
				s.residual = (ep && ep->residual) ?
					ep->residual + (size_t) mp * ep->ldr + nb : NULL;
				kern->row_panel(kc, a, bpack, npanels - tail, &s);
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
					kern->tail_pair(kc, Ap + ((size_t) (first / GEMM_MR) * K + k0) * GEMM_MR, a,
									bpack + (size_t) (npanels - 1) * kc * GEMM_NR, &s);
				}
			}
			if (tail && tail_by_column)
			{
				int			col = nb + (npanels - 1) * GEMM_NR;
				tile_store	s;

				s.c = C + (size_t) m0 * ldc + col;
				s.ldc = ldc;
				s.accumulate = k0 > 0 || (ep && ep->accumulate);
				s.last = last;
				s.bias = (ep && ep->bias) ? ep->bias + m0 : NULL;
				s.relu = ep ? ep->relu : 0;
				s.ldr = ep ? ep->ldr : 0;
				s.residual = (ep && ep->residual) ? ep->residual + (size_t) m0 * ep->ldr + col : NULL;
				s.prefetch = NULL;
				kern->tail_columns(kc, Ap, K, k0, bpack + (size_t) (npanels - 1) * kc * GEMM_NR,
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
gemm_thread_share_tiles(int M, int N, int mr, int nr, int t, int nthreads,
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
		/* by columns, in whole panels of nr */
		int			panels = (N + nr - 1) / nr,
					lo = (int) ((long) panels * t / nthreads),
					hi = (int) ((long) panels * (t + 1) / nthreads);

		*n0 = lo * nr < N ? lo * nr : N;
		*n1 = hi * nr < N ? hi * nr : N;
	}
	else
	{
		/* by row panels of mr */
		int			panels = (M + mr - 1) / mr,
					lo = (int) ((long) panels * t / nthreads),
					hi = (int) ((long) panels * (t + 1) / nthreads);

		*m0 = lo * mr < M ? lo * mr : M;
		*m1 = hi * mr < M ? hi * mr : M;
	}
}

void
gemm_thread_share(int M, int N, int t, int nthreads,
				  int *m0, int *m1, int *n0, int *n1)
{
	gemm_thread_share_tiles(M, N, GEMM_MR, GEMM_NR, t, nthreads, m0, m1, n0, n1);
}
