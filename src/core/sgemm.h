/*
 * sgemm.h
 *	  C = alpha op(A) op(B) + beta C, row-major, as BLAS's sgemm, on
 *	  gemm.c's kernels of the path in use: the products of training (the
 *	  text encoder and the fusion heads) and of their attention, whose
 *	  operands both change from call to call.
 *
 * op(A) (M, K) is packed on every call into gemm.c's panels, alpha
 * multiplied in as it is packed; op(B) (K, N) is packed block by block
 * (a gemm_b_source), straight from B or from its transpose.  beta is 0
 * (C is not read) or 1.
 *
 * Every entry of C is computed as gemm.c computes it: alpha a_ik rounded
 * to float, the chain of fused multiply-adds over each k block
 * (gemm_k_block) from zero, in order, the blocks added to C one by one.
 * The split between threads is over rows and columns, never over k, so
 * the result does not depend on the number of threads; and the SIMD paths
 * (avx2, avx512) give the same floats as sgemm_reference (the unit tests
 * check it bit for bit).  The portable C kernels round their products
 * separately where the target has no FMA.
 *
 * Work space: every thread that takes part keeps its own, grown as needed
 * and freed when the thread exits.  Where it cannot be had, that thread's
 * share runs sgemm_reference: the same floats, slower.
 */
#ifndef MMSA_SGEMM_H
#define MMSA_SGEMM_H

#include <stddef.h>

#include "threadpool.h"

#define SGEMM_N 0				/* op(X) = X */
#define SGEMM_T 1				/* op(X) = X^T */

/*
 * C (M, N) = alpha op(A) op(B) + beta C on the threads of pool (NULL, or a
 * small product: the calling thread alone).  A is (M, K) for SGEMM_N, (K,
 * M) for SGEMM_T, with leading dimension lda; B likewise (K, N) or (N, K).
 * beta: 0 or 1.  The pool must not be running a region (one caller at a
 * time, threadpool.h).
 */
void		mmsa_sgemm(mmsa_pool *pool, int trans_a, int trans_b, int M, int N, int K,
					   float alpha, const float *A, size_t lda,
					   const float *B, size_t ldb, float beta, float *C, size_t ldc);

/*
 * Rows [m0, m1) and columns [n0, n1) of mmsa_sgemm's result by plain loops
 * (fmaf), in the order described above: the fallback without work space
 * and the unit tests' reference.
 */
void		sgemm_reference(int trans_a, int trans_b, int K, float alpha,
							const float *A, size_t lda,
							const float *B, size_t ldb, float beta, float *C, size_t ldc,
							int m0, int m1, int n0, int n1);

#endif
