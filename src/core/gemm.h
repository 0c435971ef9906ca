/*
 * gemm.h
 *	  Single-precision matrix product for inference, with the left operand
 *	  (the weights) packed once, and bias, residual and ReLU applied as the
 *	  results are stored.
 *
 *	  C (M, N) = act(A (M, K) x B (K, N) + bias (M) [+ R (M, N)])
 *
 * A is packed by gemm_pack_a into panels of GEMM_MR rows: panel p holds
 * rows p*MR .. p*MR+MR-1, column by column, Ap[(p*K + k)*MR + r] =
 * A[p*MR + r][k], rows past M zero.  The packing is a pure function of A
 * (deterministic, no alignment or machine state in it), so a packed tensor
 * could as well be written at conversion time and mmap'ed.
 *
 * B and C are plain row-major matrices with leading dimensions ldb / ldc,
 * which is what a convolution over (C, B, H, W) activations has: B is the
 * input (Cin, pixels), C the output rows.  B may instead be given by a
 * function that packs any block of it (gemm_b_source): a k x k
 * convolution gathers its im2col unfolding block by block that way, never
 * whole.
 *
 * gemm_packed_range computes the block rows [m0, m1) x columns [n0, n1)
 * of C, so callers split one product between threads; each thread passes
 * its own work buffer of gemm_bpack_floats(K) floats.
 */
#ifndef MMSA_GEMM_H
#define MMSA_GEMM_H

#include <stddef.h>

#define GEMM_MR 6				/* rows of A per micro-tile */
#define GEMM_NR 16				/* columns of B per micro-tile */
#define GEMM_NC 192				/* most columns of B packed at once */

/* What is done to each result before it is stored. */
typedef struct gemm_epilogue
{
	const float *bias;			/* (M) added to every row, or NULL */
	const float *residual;		/* (M, N) with leading dimension ldr, or NULL */
	size_t		ldr;
	int			relu;			/* max(0, x) after the additions */
	int			accumulate;		/* add the product to what C holds */
} gemm_epilogue;

/* Floats of the packed form of an (M, K) matrix. */
size_t		gemm_packed_floats(int M, int K);

/* Ap: packed form (see above) of A (M, K), row-major, leading dimension lda. */
void		gemm_pack_a(float *Ap, const float *A, int M, int K, size_t lda);

/*
 * Rows of B reduced in one block (the k blocks of a product over K are
 * all this long but the last): every entry of C is the chain of fused
 * multiply-adds over each block from zero, in order, added to C block by
 * block.  sgemm.c's reference loop follows it.
 */
int			gemm_k_block(int K);

/* Floats of the per-thread work buffer for products over K. */
size_t		gemm_bpack_floats(int K);

/*
 * B as a function that packs rows [k0, k0+kc) and columns [n0, n0+nc)
 * (nc <= GEMM_NC) into bp in panels of GEMM_NR columns, column-interleaved,
 * the last panel zero padded: bp[(j*kc + k)*GEMM_NR + x] = B[k0 + k][n0 +
 * GEMM_NR*j + x].
 */
typedef struct gemm_b_source
{
	void		(*pack) (const void *ctx, float *bp, int k0, int kc, int n0, int nc);
	const void *ctx;
} gemm_b_source;

/*
 * Rows [m0, m1) and columns [n0, n1) of C (leading dimension ldc) =
 * act(A x B + ...) with Ap packed from A (M, K) and B (K, N) (leading
 * dimension ldb).  m0 must be a multiple of GEMM_MR.  ep may be NULL (plain
 * product).  bpack: gemm_bpack_floats(K) floats of work space.
 */
void		gemm_packed_range(float *C, size_t ldc, const float *Ap,
							  const float *B, size_t ldb, int M, int K,
							  int m0, int m1, int n0, int n1,
							  const gemm_epilogue *ep, float *bpack);

/* gemm_packed_range with B given by a packing function. */
void		gemm_packed_range_src(float *C, size_t ldc, const float *Ap,
								  const gemm_b_source *B, int M, int K,
								  int m0, int m1, int n0, int n1,
								  const gemm_epilogue *ep, float *bpack);

/*
 * Whether a product over K may take C itself as its residual (ep->residual
 * == C, ldr == ldc): true when K is reduced in one block, so that every
 * entry of C is read, as residual, just before its final value is stored
 * over it, by the same store.  The results are those of a separate
 * residual.
 */
int			gemm_residual_in_place_ok(int K);

/*
 * Share of thread `t` of `nthreads` in an (M, N) product: rows [*m0, *m1)
 * and columns [*n0, *n1).  Wide products are split by columns (in whole
 * micro-tiles), narrow ones by row panels, so that each thread has whole
 * micro-tiles to work on.  An empty share has *m0 == *m1 or *n0 == *n1.
 */
void		gemm_thread_share(int M, int N, int t, int nthreads,
							  int *m0, int *m1, int *n0, int *n1);

/* The same split for tiles of mr rows and panels of nr columns (qgemm.c's). */
void		gemm_thread_share_tiles(int M, int N, int mr, int nr, int t, int nthreads,
									int *m0, int *m1, int *n0, int *n1);

#endif
