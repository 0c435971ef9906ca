/*
 * qgemm.h
 *	  Integer matrix product for int8 inference: weights int8, symmetric per
 *	  output row; activations quantized to unsigned 7-bit integers with one
 *	  scale per row of B (an input channel) as B is packed; int32 sums; the
 *	  floats of the result made as they are stored.
 *
 *	  C (M, N) = act(scale (M) * (Aq (M, K) x q(B) (K, N)) + bias (M)
 *	                 [+ R (M, N)])
 *
 *	  q(B[k][n]) = round(min(max(B[k][n] * row_inv[k], 0), QGEMM_ACT_MAX)),
 *	  rounding half to even.  With activation scales s[k] = 1 / row_inv[k],
 *	  Aq quantizes A[m][k] * s[k] per row m with scale[m]: the per-channel
 *	  activation scales are folded into the weights before they are
 *	  quantized, so that a channel of small values keeps its resolution
 *	  beside one of large values.
 *
 * Why 7-bit activations: the AVX2 kernel multiplies with vpmaddubsw, which
 * adds two products of an unsigned and a signed byte into a signed 16-bit
 * lane and saturates there.  With activations up to 127 and weights in
 * [-127, 127] the pair is at most 2 * 127 * 127 = 32258 < 32767: it never
 * saturates, so every path (vpmaddubsw + vpmaddwd, vpdpbusd of AVX-VNNI and
 * AVX512_VNNI, and the portable loops) computes the same exact int32 sums,
 * and one quantized model gives the same results on every host.  The cost
 * is one bit of activation resolution (the same choice as PyTorch's
 * reduce_range for x86); the weights keep their full 8 bits.  The
 * alternatives cost more: 7-bit weights lose resolution where it matters
 * per channel, and splitting each product into two vpmaddubsw halves the
 * AVX2 kernel's speed.
 *
 * Dynamic per-column activations (row_inv NULL in qgemm_range), the
 * standard choice for transformers' linear layers, whose inputs change from
 * one token to the next: each column n of B (a token) gets its own scale
 * and zero point from its own range, made by qgemm_column_params over the
 * whole of B before the product (one pass along B's contiguous rows):
 *   lo = min(0, min_k B[k][n]), hi = max(0, max_k B[k][n]),
 *   s[n] = (hi - lo) / QGEMM_ACT_MAX (1 when hi == lo, or not finite),
 *   z[n] = round(-lo * (1 / s[n])) in [0, QGEMM_ACT_MAX],
 *   q(B[k][n]) = round(min(max(B[k][n] * (1 / s[n]), -z[n]), QGEMM_ACT_MAX - z[n])) + z[n]
 * (rounding half to even), and
 *   C[m][n] = fma((float) (sum - z[n] * rowsum[m]), scale[m] * s[n], bias[m])
 * with rowsum[m] the sum of row m of Aq (qgemm_row_sums): the zero point
 * taken out exactly, in integers.
 *
 * Layouts.  K is taken four at a time (a 32-bit lane holds four bytes of
 * consecutive k, as vpdpbusd reads them); K4 = ceil(K / 4), k past K zero.
 *   A: panels of QGEMM_MR rows, Ap[((p * K4 + k4) * MR + r) * 4 + j] =
 *      Aq[p * MR + r][4 * k4 + j] (rows past M zero).  A pure function of
 *      Aq: it is written once into the quantized sidecar and mapped.
 *   B: blocks of columns packed per call, panels of QGEMM_NR columns,
 *      bp[((jp * K4 + k4) * NR + x) * 4 + j] = q(B[4 * k4 + j][n0 + NR*jp + x]).
 */
#ifndef MMSA_QGEMM_H
#define MMSA_QGEMM_H

#include <stddef.h>
#include <stdint.h>

#define QGEMM_MR 4				/* rows of A per micro-tile */
#define QGEMM_NR 16				/* columns of B per panel */
#define QGEMM_NC 192			/* most columns of B packed at once */
#define QGEMM_ACT_MAX 127		/* 7-bit activations: see above */
#define QGEMM_W_MAX 127			/* weights in [-127, 127] */

/* K4, the number of four-byte groups along K */
static inline int
qgemm_k4(int K)
{
	return (K + 3) / 4;
}

/* Bytes of the packed form of an (M, K) int8 matrix. */
size_t		qgemm_packed_bytes(int M, int K);

/* Ap: packed form (see above) of Aq (M, K), row-major, leading dimension lda. */
void		qgemm_pack_a(int8_t *Ap, const int8_t *Aq, int M, int K, size_t lda);

/*
 * Symmetric per-row quantization of A (M, K) (leading dimension K):
 * scale[m] = max |A[m][k]| / 127 (1 for a zero row), Aq = round(A / scale),
 * half away from zero, in [-127, 127].
 */
void		qgemm_quantize_rows(int8_t *Aq, float *scale, const float *A, int M, int K);

/* q(x) of the header for one value and its row's inv_scale, as every path computes it. */
uint8_t		qgemm_quantize_act(float x, float inv_scale);

/* rowsum[m] = sum over k of Aq[m][k] (M, K), leading dimension lda. */
void		qgemm_row_sums(int32_t *rowsum, const int8_t *Aq, int M, int K, size_t lda);

/*
 * Per-column activation parameters (see above) of columns [0, n) of a
 * product: s (scale), inv (1 / s) and z (zero point) per column, each array
 * of qgemm_cols_len(n) entries, those past n zero.
 */
typedef struct qgemm_cols
{
	float	   *s;
	float	   *inv;
	int32_t    *z;
} qgemm_cols;

/* Entries of each qgemm_cols array for n columns (a whole number of panels). */
static inline int
qgemm_cols_len(int n)
{
	return (n + QGEMM_NR - 1) / QGEMM_NR * QGEMM_NR;
}

/*
 * The parameters of columns [n0, n1) of B (K, n) (leading dimension ldb)
 * into cols (entries n0 .. n1 - 1; with n1 = n, also the zeros past n).
 * Threads may fill disjoint ranges of one qgemm_cols, before the product;
 * ranges that start and end on multiples of QGEMM_NR share no cache line.
 */
void		qgemm_column_params(const float *B, size_t ldb, int K, int n0, int n1,
								int n, const qgemm_cols *cols);

/* What is done to each int32 sum before it is stored. */
typedef struct qgemm_epilogue
{
	const float *scale;			/* (M): v = scale[m] * sum + bias[m] (fused) */
	const float *bias;			/* (M), or NULL (0) */
	const float *residual;		/* (M, N) with leading dimension ldr, or NULL */
	size_t		ldr;
	int			relu;			/* max(v, 0) after the additions */
	/* per-column activations (row_inv NULL), else unused: */
	const int32_t *row_sum;		/* (M): rows of Aq summed */
	const qgemm_cols *cols;		/* of every column of B, qgemm_column_params */
} qgemm_epilogue;

/*
 * B as rows of floats: rows(ctx, dst, k, n0, nc) writes B[k][n0 .. n0+nc)
 * to dst (k < K).  A convolution gathers its im2col unfolding this way.
 */
typedef struct qgemm_b_rows
{
	void		(*rows) (const void *ctx, float *dst, int k, int n0, int nc);
	const void *ctx;
} qgemm_b_rows;

/* Columns of B packed at once for products over K (a multiple of NR). */
int			qgemm_block_cols(int K);

/* Bytes of the per-thread work buffer for products over K or less. */
size_t		qgemm_work_bytes(int K);

/*
 * Rows [m0, m1) and columns [n0, n1) of C (leading dimension ldc) with Ap
 * packed from Aq (M, K), and B (K, N) dense (leading dimension ldb) or,
 * when B is NULL, given by src; row_inv (K) the reciprocals of the rows'
 * activation scales, or NULL for per-column activations (see above: B
 * dense; ep->row_sum set, and ep->cols made for this B).  m0 must be a
 * multiple of QGEMM_MR.  work: qgemm_work_bytes(K) bytes, 64-byte aligned.
 */
void		qgemm_range(float *C, size_t ldc, const int8_t *Ap,
						const float *B, size_t ldb, const qgemm_b_rows *src,
						const float *row_inv, int M, int K,
						int m0, int m1, int n0, int n1,
						const qgemm_epilogue *ep, void *work);

/* The share of thread t of nthreads in an (M, N) product (as gemm_thread_share). */
void		qgemm_thread_share(int M, int N, int t, int nthreads,
							   int *m0, int *m1, int *n0, int *n1);

#endif
