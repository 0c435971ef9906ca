/*
 * qgemm.c
 *	  Integer matrix product with prepacked int8 weights (see qgemm.h).
 *
 * Blocking: B is packed a block of columns at a time with its whole K
 * (no k blocks: the int32 sums are finished once, in the epilogue), the
 * block narrow enough that its K4 x 4 x NC bytes stay in L2
 * (QGEMM_BLOCK_BYTES); each 4-row panel of A (at most 18 KiB for
 * ResNet-50's 3x3 convolutions of 512 channels) is then run against every
 * panel of the block by the micro-kernel of the path in use (qgemm_isa.h,
 * src/core/isa/qgemm_*.c).  This file holds the block loop, which every
 * path shares, and the portable kernels (qgemm_kernels_generic): the
 * direct integer loops the tests compare every path with.
 */
#include "qgemm.h"

#include <math.h>
#include <string.h>

#include "gemm.h"
#include "qgemm_isa.h"

#define QGEMM_BLOCK_BYTES (160 * 1024)	/* packed B block, within L2 */

size_t
qgemm_packed_bytes(int M, int K)
{
	return (size_t) ((M + QGEMM_MR - 1) / QGEMM_MR) * QGEMM_MR * (size_t) qgemm_k4(K) * 4;
}

void
qgemm_pack_a(int8_t *Ap, const int8_t *Aq, int M, int K, size_t lda)
{
	int			panels = (M + QGEMM_MR - 1) / QGEMM_MR,
				K4 = qgemm_k4(K);

	for (int p = 0; p < panels; p++)
		for (int k4 = 0; k4 < K4; k4++)
			for (int r = 0; r < QGEMM_MR; r++)
				for (int j = 0; j < 4; j++)
				{
					int			row = p * QGEMM_MR + r,
								k = 4 * k4 + j;

					Ap[(((size_t) p * K4 + k4) * QGEMM_MR + r) * 4 + j] =
						row < M && k < K ? Aq[(size_t) row * lda + k] : 0;
				}
}

void
qgemm_quantize_rows(int8_t *Aq, float *scale, const float *A, int M, int K)
{
	for (int m = 0; m < M; m++)
	{
		const float *a = A + (size_t) m * K;
		float		amax = 0.0f,
					s;

		for (int k = 0; k < K; k++)
			amax = fabsf(a[k]) > amax ? fabsf(a[k]) : amax;
		s = amax > 0.0f ? amax / QGEMM_W_MAX : 1.0f;
		scale[m] = s;
		for (int k = 0; k < K; k++)
		{
			float		q = roundf(a[k] / s);

			q = q > QGEMM_W_MAX ? QGEMM_W_MAX : q < -QGEMM_W_MAX ? -QGEMM_W_MAX : q;
			Aq[(size_t) m * K + k] = (int8_t) q;
		}
	}
}

uint8_t
qgemm_quantize_act(float x, float inv_scale)
{
	return qgemm_quantize1(x, inv_scale);
}

void
qgemm_row_sums(int32_t *rowsum, const int8_t *Aq, int M, int K, size_t lda)
{
	for (int m = 0; m < M; m++)
	{
		int32_t		t = 0;

		for (int k = 0; k < K; k++)
			t += Aq[(size_t) m * lda + k];
		rowsum[m] = t;
	}
}

/*
 * The range of each column is taken a row at a time, so that the inner loop
 * runs along the contiguous columns (and vectorizes to minps/maxps); lo and
 * hi start at 0, and live in inv and s meanwhile.
 */
void
qgemm_column_params(const float *B, size_t ldb, int K, int n0, int n1, int n,
					const qgemm_cols *cols)
{
	float	   *lo = cols->inv + n0,
			   *hi = cols->s + n0;
	int			w = n1 - n0;

	for (int x = 0; x < w; x++)
		lo[x] = hi[x] = 0.0f;
	for (int k = 0; k < K; k++)
	{
		const float *b = B + (size_t) k * ldb + n0;

		for (int x = 0; x < w; x++)
		{
			lo[x] = b[x] < lo[x] ? b[x] : lo[x];
			hi[x] = b[x] > hi[x] ? b[x] : hi[x];
		}
	}
	for (int x = n0; x < n1; x++)
	{
		float		sc = (cols->s[x] - cols->inv[x]) / (float) QGEMM_ACT_MAX,
					zp;

		if (!(sc > 0.0f) || !isfinite(sc))
			sc = 1.0f;
		zp = nearbyintf(-cols->inv[x] * (1.0f / sc));
		zp = zp < 0.0f ? 0.0f : zp > (float) QGEMM_ACT_MAX ? (float) QGEMM_ACT_MAX : zp;
		cols->s[x] = sc;
		cols->inv[x] = 1.0f / sc;
		cols->z[x] = (int32_t) zp;
	}
	if (n1 == n)
		for (int x = n; x < qgemm_cols_len(n); x++)
		{
			cols->s[x] = cols->inv[x] = 0.0f;
			cols->z[x] = 0;
		}
}

int
qgemm_block_cols(int K)
{
	size_t		per_col = (size_t) qgemm_k4(K) * 4;
	size_t		nc = QGEMM_BLOCK_BYTES / per_col / QGEMM_NR * QGEMM_NR;

	if (nc < QGEMM_NR)
		nc = QGEMM_NR;
	return nc > QGEMM_NC ? QGEMM_NC : (int) nc;
}

/*
 * The packed block, then four rows of floats for the gathered sources.  A
 * block holds at most QGEMM_BLOCK_BYTES, or one panel where a panel is
 * larger: the bound for every product over K or less.
 */
static size_t
block_bytes(int K)
{
	size_t		panel = (size_t) qgemm_k4(K) * 4 * QGEMM_NR;

	return ((panel > QGEMM_BLOCK_BYTES ? panel : QGEMM_BLOCK_BYTES) + 63) / 64 * 64;
}

size_t
qgemm_work_bytes(int K)
{
	return block_bytes(K) + 4 * sizeof(float) * QGEMM_NC;
}

/*
 * Packs columns [n0, n0 + nc) of B, whole K, into bp (qgemm.h), four rows
 * at a time: rows of a dense B are read in place, others gathered into
 * rowbuf first.
 */
static void
pack_block(const qgemm_kernels *kern, uint8_t *bp, const float *B, size_t ldb,
		   const qgemm_b_rows *src, float *rowbuf, const float *row_inv,
		   const float *col_inv, const int32_t *col_zero, int K, int n0, int nc)
{
	int			K4 = qgemm_k4(K);
	size_t		panel_stride = (size_t) K4 * QGEMM_NR * 4;

	for (int k4 = 0; k4 < K4; k4++)
	{
		const float *r[4];
		float		inv[4];

		for (int j = 0; j < 4; j++)
		{
			int			k = 4 * k4 + j;

			inv[j] = k < K && row_inv ? row_inv[k] : 0.0f;
			if (k >= K)
				r[j] = NULL;
			else if (B)
				r[j] = B + (size_t) k * ldb + n0;
			else
			{
				src->rows(src->ctx, rowbuf + (size_t) j * QGEMM_NC, k, n0, nc);
				r[j] = rowbuf + (size_t) j * QGEMM_NC;
			}
		}
		kern->pack_quad(bp + (size_t) k4 * QGEMM_NR * 4, panel_stride, r, nc, inv,
						col_inv, col_zero);
	}
}

void
qgemm_range(float *C, size_t ldc, const int8_t *Ap,
			const float *B, size_t ldb, const qgemm_b_rows *src,
			const float *row_inv, int M, int K,
			int m0, int m1, int n0, int n1,
			const qgemm_epilogue *ep, void *work)
{
	const qgemm_kernels *kern = mmsa_qgemm_kernels();
	int			K4 = qgemm_k4(K),
				ncmax = qgemm_block_cols(K);
	uint8_t    *bp = work;
	float	   *rowbuf = (float *) ((char *) work + block_bytes(K));
	const qgemm_cols *cols = row_inv ? NULL : ep->cols;

	for (int nb = n0; nb < n1; nb += ncmax)
	{
		int			nc = n1 - nb < ncmax ? n1 - nb : ncmax;
		int			npanels = (nc + QGEMM_NR - 1) / QGEMM_NR;

		pack_block(kern, bp, B, ldb, src, rowbuf, row_inv,
				   cols ? cols->inv + nb : NULL, cols ? cols->z + nb : NULL, K, nb, nc);
		for (int m = m0; m < m1; m += QGEMM_MR)
		{
			qtile_store s = {
				.c = C + (size_t) m * ldc + nb,
				.ldc = ldc,
				.mr = m1 - m < QGEMM_MR ? m1 - m : QGEMM_MR,
				.nr = nc,
				.scale = ep->scale + m,
				.bias = ep->bias ? ep->bias + m : NULL,
				.residual = ep->residual ? ep->residual + (size_t) m * ep->ldr + nb : NULL,
				.ldr = ep->ldr,
				.relu = ep->relu,
				.col_scale = cols ? cols->s + nb : NULL,
				.col_zero = cols ? cols->z + nb : NULL,
				.row_sum = row_inv ? NULL : ep->row_sum + m,
			};

			kern->row_panel(K4, Ap + (size_t) m / QGEMM_MR * K4 * QGEMM_MR * 4, bp, npanels, &s);
		}
	}
}

void
qgemm_thread_share(int M, int N, int t, int nthreads,
				   int *m0, int *m1, int *n0, int *n1)
{
	gemm_thread_share_tiles(M, N, QGEMM_MR, QGEMM_NR, t, nthreads, m0, m1, n0, n1);
}

/* ---- the portable kernels: direct integer loops --------------------- */

static void
generic_row_panel(int k4, const int8_t *a, const uint8_t *bp, int npanels,
				  const qtile_store *s0)
{
	for (int jp = 0; jp < npanels; jp++)
	{
		const uint8_t *b = bp + (size_t) jp * k4 * QGEMM_NR * 4;
		qtile_store s;

		qgemm_tile_at(&s, s0, jp * QGEMM_NR, QGEMM_NR);
		for (int i = 0; i < s.mr; i++)
			for (int x = 0; x < s.nr; x++)
			{
				int32_t		sum = 0;

				for (int k = 0; k < k4; k++)
					for (int j = 0; j < 4; j++)
						sum += (int32_t) b[(k * QGEMM_NR + x) * 4 + j] *
							(int32_t) a[(k * QGEMM_MR + i) * 4 + j];
				s.c[(size_t) i * s.ldc + x] = qgemm_finish1(sum, &s, i, x);
			}
	}
}

static void
generic_pack_quad(uint8_t *dst, size_t panel_stride, const float *const r[4],
				  int nc, const float inv[4], const float *col_inv,
				  const int32_t *col_zero)
{
	int			ncp = (nc + QGEMM_NR - 1) / QGEMM_NR * QGEMM_NR;

	for (int x = 0; x < ncp; x++)
		for (int j = 0; j < 4; j++)
			dst[(size_t) (x / QGEMM_NR) * panel_stride + (x % QGEMM_NR) * 4 + j] =
				x >= nc || !r[j] ? 0 :
				col_inv ? qgemm_quantize1z(r[j][x], col_inv[x], col_zero[x]) :
				qgemm_quantize1(r[j][x], inv[j]);
}

const qgemm_kernels qgemm_kernels_generic = {
	.name = "generic",
	.row_panel = generic_row_panel,
	.pack_quad = generic_pack_quad,
};
