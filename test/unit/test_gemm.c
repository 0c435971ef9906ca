/*
 * test_gemm.c
 *	  Unit tests of gemm.c against a naive triple loop: sizes that are not
 *	  multiples of the micro-tile (6 x 16) or of the k and column blocks,
 *	  leading dimensions larger than the matrices, blocks of C computed
 *	  separately (as threads do), the epilogue (bias, residual, ReLU), and
 *	  the packing layout itself; all of it on every kernel path the host
 *	  runs (isa_paths.h), and each SIMD path bit for bit against AVX2.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "isa_paths.h"
#include "tap.h"

static float
frand(unsigned *state)
{
	*state = *state * 1103515245u + 12345u;
	return ((*state >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* C (M, N) = act(A (M, K) x B (K, N) + bias + R), in double. */
static void
gemm_naive(float *C, size_t ldc, const float *A, const float *B, size_t ldb,
		   int M, int N, int K, const float *bias, const float *R, size_t ldr,
		   int relu)
{
	for (int i = 0; i < M; i++)
		for (int j = 0; j < N; j++)
		{
			double		s = 0.0;

			for (int k = 0; k < K; k++)
				s += (double) A[(size_t) i * K + k] * B[(size_t) k * ldb + j];
			if (bias)
				s += bias[i];
			if (R)
				s += R[(size_t) i * ldr + j];
			if (relu && s < 0.0)
				s = 0.0;
			C[(size_t) i * ldc + j] = (float) s;
		}
}

/*
 * One case: M x N x K with ldb = N + 3 and ldc = N + 5 (padding columns
 * must be left alone), computed as `parts` shares from gemm_thread_share.
 */
static void
check_case(int M, int N, int K, int with_epilogue, int parts, unsigned *seed)
{
	size_t		ldb = N + 3,
				ldc = N + 5;
	float	   *A = malloc(sizeof(float) * M * K),
			   *B = malloc(sizeof(float) * K * ldb),
			   *Ap = malloc(sizeof(float) * gemm_packed_floats(M, K)),
			   *bias = malloc(sizeof(float) * M),
			   *R = malloc(sizeof(float) * M * ldc),
			   *want = malloc(sizeof(float) * M * ldc),
			   *got = malloc(sizeof(float) * M * ldc),
			   *bpack = malloc(sizeof(float) * gemm_bpack_floats(K));
	gemm_epilogue ep = {0};
	int			untouched = 1;
	char		name[160];

	for (int i = 0; i < M * K; i++)
		A[i] = frand(seed);
	for (size_t i = 0; i < K * ldb; i++)
		B[i] = frand(seed);
	for (int i = 0; i < M; i++)
		bias[i] = frand(seed);
	for (size_t i = 0; i < M * ldc; i++)
	{
		R[i] = frand(seed);
		got[i] = 12345.0f;
	}
	ep.bias = with_epilogue ? bias : NULL;
	ep.residual = with_epilogue ? R : NULL;
	ep.ldr = ldc;
	ep.relu = with_epilogue;

	gemm_naive(want, ldc, A, B, ldb, M, N, K, ep.bias, ep.residual, ldc, ep.relu);
	gemm_pack_a(Ap, A, M, K, K);
	for (int t = 0; t < parts; t++)
	{
		int			m0,
					m1,
					n0,
					n1;

		gemm_thread_share(M, N, t, parts, &m0, &m1, &n0, &n1);
		gemm_packed_range(got, ldc, Ap, B, ldb, M, K, m0, m1, n0, n1,
						  with_epilogue ? &ep : NULL, bpack);
	}

	/* compare the M x N block; the padding columns keep their value */
	for (int i = 0; i < M; i++)
	{
		for (int j = N; j < (int) ldc; j++)
			if (got[(size_t) i * ldc + j] != 12345.0f)
				untouched = 0;
		for (int j = N; j < (int) ldc; j++)
			got[(size_t) i * ldc + j] = want[(size_t) i * ldc + j] = 0.0f;
	}
	snprintf(name, sizeof(name), "gemm %dx%dx%d%s in %d part%s vs naive loops",
			 M, N, K, with_epilogue ? " + bias + residual + ReLU" : "",
			 parts, parts > 1 ? "s" : "");
	/* sums of K products of numbers in [-1, 1): relative to sqrt(K) */
	tap_close_within(want, got, (long) M * ldc, 2e-6 * K + 1e-5, name);
	ok(untouched, "gemm %dx%dx%d leaves columns past N alone", M, N, K);

	free(A);
	free(B);
	free(Ap);
	free(bias);
	free(R);
	free(want);
	free(got);
	free(bpack);
}

/* Every test of this file, on the kernel path in use. */
static void
gemm_suite(void)
{
	unsigned	seed = 11;
	struct
	{
		int			M,
					N,
					K;
	}			cases[] = {
		{1, 1, 1},				/* smaller than a tile in every way */
		{6, 16, 8},				/* exactly one tile */
		{7, 17, 5},				/* one past a tile both ways */
		{5, 8, 3},				/* the 6 x 8 kernel, partial rows */
		{13, 9, 31},			/* 6 x 8 kernel with 9 columns: 6 x 16 */
		{64, 49, 64},			/* ResNet's 7 x 7 maps */
		{12, 200, 257},			/* two k blocks, uneven */
		{30, 400, 600},			/* three k blocks, three column blocks */
		{100, 130, 70},
		{100, 49, 600},			/* a 1-column last panel over 17 row panels */
		{55, 196, 300},			/* a 4-column last panel (14 x 14 maps) */
		{9, 18, 7},				/* 2 columns, rows short of two panels */
	};

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++)
		for (int epi = 0; epi <= 1; epi++)
			for (int parts = 1; parts <= 3; parts += 2)
				check_case(cases[c].M, cases[c].N, cases[c].K, epi, parts, &seed);

	/* the packed layout: Ap[(p*K + k)*6 + r] = A[6p + r][k], zero past M */
	{
		int			M = 8,
					K = 3;
		float		A[8 * 3],
					Ap[12 * 3];
		int			good = 1;

		for (int i = 0; i < M * K; i++)
			A[i] = (float) (i + 1);
		if (gemm_packed_floats(M, K) != 12 * 3)
			good = 0;
		gemm_pack_a(Ap, A, M, K, K);
		for (int p = 0; p < 2; p++)
			for (int k = 0; k < K; k++)
				for (int r = 0; r < GEMM_MR; r++)
				{
					int			row = p * GEMM_MR + r;
					float		expect = row < M ? A[row * K + k] : 0.0f;

					if (Ap[(p * K + k) * GEMM_MR + r] != expect)
						good = 0;
				}
		ok(good, "gemm_pack_a: 6-row panels, k-major, zero rows past M");
	}

	/* thread shares cover the product exactly once */
	{
		int			good = 1;
		int			shapes[][2] = {{64, 3136}, {2048, 49}, {7, 5}, {300, 100}};

		for (int s = 0; s < 4; s++)
			for (int n = 1; n <= 4; n++)
			{
				int			M = shapes[s][0],
							N = shapes[s][1];
				unsigned char *seen = calloc((size_t) M * N, 1);

				for (int t = 0; t < n; t++)
				{
					int			m0,
								m1,
								n0,
								n1;

					gemm_thread_share(M, N, t, n, &m0, &m1, &n0, &n1);
					if (m0 % GEMM_MR != 0)
						good = 0;
					for (int i = m0; i < m1; i++)
						for (int j = n0; j < n1; j++)
							seen[(size_t) i * N + j]++;
				}
				for (size_t i = 0; i < (size_t) M * N; i++)
					if (seen[i] != 1)
						good = 0;
				free(seen);
			}
		ok(good, "gemm_thread_share: every entry in exactly one share, rows from panel starts");
	}

	/*
	 * The residual in place (C itself, as ResNet's identity blocks do): the
	 * same floats as from a separate copy, wherever K is one block.
	 */
	{
		int			Ks[] = {64, 200, 256};

		for (int t = 0; t < 3; t++)
		{
			int			M = 23,
						N = 70,
						K = Ks[t];
			float	   *A = malloc(sizeof(float) * M * K),
					   *Bm = malloc(sizeof(float) * K * N),
					   *bias = malloc(sizeof(float) * M),
					   *R = malloc(sizeof(float) * M * N),
					   *C1 = malloc(sizeof(float) * M * N),
					   *C2 = malloc(sizeof(float) * M * N),
					   *Ap = malloc(sizeof(float) * gemm_packed_floats(M, K)),
					   *bp = malloc(sizeof(float) * gemm_bpack_floats(K));
			gemm_epilogue sep = {bias, R, N, 1},
						inpl = {bias, C2, N, 1};

			for (int i = 0; i < M * K; i++)
				A[i] = frand(&seed);
			for (int i = 0; i < K * N; i++)
				Bm[i] = frand(&seed);
			for (int i = 0; i < M; i++)
				bias[i] = frand(&seed);
			for (int i = 0; i < M * N; i++)
				R[i] = C2[i] = frand(&seed);
			gemm_pack_a(Ap, A, M, K, K);
			gemm_packed_range(C1, N, Ap, Bm, N, M, K, 0, M, 0, N, &sep, bp);
			/* in two shares, as two threads would */
			gemm_packed_range(C2, N, Ap, Bm, N, M, K, 0, M, 0, 32, &inpl, bp);
			gemm_packed_range(C2, N, Ap, Bm, N, M, K, 0, M, 32, N, &inpl, bp);
			ok(gemm_residual_in_place_ok(K) && memcmp(C1, C2, sizeof(float) * M * N) == 0,
			   "residual in place, K=%d: bit-identical to a separate residual", K);
			free(A);
			free(Bm);
			free(bias);
			free(R);
			free(C1);
			free(C2);
			free(Ap);
			free(bp);
		}
		ok(!gemm_residual_in_place_ok(257) && !gemm_residual_in_place_ok(512),
		   "residual in place refused where K takes more than one block");
	}

	/*
	 * A last panel of 1 to 4 columns (a tail: column by column for 1 or 2,
	 * a 12 x 4 kernel over pairs of row panels for 3 or 4, gemm.c): the
	 * very floats that the same columns give inside a whole 16-column
	 * panel, over several k blocks, with bias, residual and ReLU; also when
	 * the rows are done as two ranges (as two threads do), each with an
	 * odd number of row panels, so that a pair is cut short.
	 */
	for (int tail = 1; tail <= 4; tail++)
	{
		int			M = 100,
					K = 600,
					N = 16 + tail,
					W = 32;
		float	   *A = malloc(sizeof(float) * M * K),
				   *Bw = malloc(sizeof(float) * K * W),
				   *bias = malloc(sizeof(float) * M),
				   *R = malloc(sizeof(float) * M * W),
				   *Cn = malloc(sizeof(float) * M * W),
				   *Cw = malloc(sizeof(float) * M * W),
				   *Ap = malloc(sizeof(float) * gemm_packed_floats(M, K)),
				   *bp = malloc(sizeof(float) * gemm_bpack_floats(K));
		gemm_epilogue ep = {bias, R, W, 1};
		int			same = 1;

		for (int i = 0; i < M * K; i++)
			A[i] = frand(&seed);
		for (int i = 0; i < K * W; i++)
			Bw[i] = frand(&seed);
		for (int i = 0; i < M; i++)
			bias[i] = frand(&seed);
		for (int i = 0; i < M * W; i++)
			R[i] = frand(&seed);
		gemm_pack_a(Ap, A, M, K, K);
		/* N columns of B (leading dimension W), then all W of them */
		gemm_packed_range(Cn, W, Ap, Bw, W, M, K, 0, M, 0, N, &ep, bp);
		gemm_packed_range(Cw, W, Ap, Bw, W, M, K, 0, M, 0, W, &ep, bp);
		for (int i = 0; i < M; i++)
			for (int j = 16; j < N; j++)
				if (memcmp(&Cn[i * W + j], &Cw[i * W + j], sizeof(float)) != 0)
					same = 0;
		ok(same, "a last panel of %d column%s: bit-identical to the same columns in a whole panel",
		   tail, tail > 1 ? "s" : "");
		/* rows [0, 42) then [42, 100): 7 and 10 row panels */
		memset(Cn, 0, sizeof(float) * M * W);
		gemm_packed_range(Cn, W, Ap, Bw, W, M, K, 0, 42, 0, N, &ep, bp);
		gemm_packed_range(Cn, W, Ap, Bw, W, M, K, 42, M, 0, N, &ep, bp);
		same = 1;
		for (int i = 0; i < M; i++)
			for (int j = 0; j < N; j++)
				if (memcmp(&Cn[i * W + j], &Cw[i * W + j], sizeof(float)) != 0)
					same = 0;
		ok(same, "a last panel of %d column%s, rows in two ranges: bit-identical as well",
		   tail, tail > 1 ? "s" : "");
		free(A);
		free(Bw);
		free(bias);
		free(R);
		free(Cn);
		free(Cw);
		free(Ap);
		free(bp);
	}
}


/*
 * C = act(A x B + ...) for one shape on the kernel path in use, rows and
 * columns in two shares (as two threads do), into C (leading dimension
 * N + 5, padding left as it was).
 */
static void
product_on_path(float *C, const float *Ap, const float *B, int M, int N, int K,
				const gemm_epilogue *ep, float *bpack)
{
	for (int t = 0; t < 2; t++)
	{
		int			m0,
					m1,
					n0,
					n1;

		gemm_thread_share(M, N, t, 2, &m0, &m1, &n0, &n1);
		gemm_packed_range(C, N + 5, Ap, B, N, M, K, m0, m1, n0, n1, ep, bpack);
	}
}

/*
 * Each SIMD path against AVX2, bit for bit: every entry is the same chain
 * of fused multiply-adds over k in each, and the epilogue adds in the same
 * order.  Shapes cover tiles cut at every edge (columns 1 to 48 and the
 * widths ResNet's maps leave: 196, 784, 49; rows 1 to 13), one and several
 * k blocks, and the tails.
 */
static void
paths_agree(const isa_path *paths, int npaths)
{
	static const int Ns[] = {1, 2, 3, 4, 5, 8, 9, 15, 16, 17, 20, 24, 31, 32, 33, 36, 47, 48, 49, 196, 200, 784};
	static const int Ms[] = {1, 5, 6, 7, 12, 13, 64};
	static const int Ks[] = {1, 7, 256, 600};
	const isa_path *ref = NULL;
	unsigned	seed = 29;

	for (int i = 0; i < npaths; i++)
		if (strcmp(paths[i].label, "avx2") == 0)
			ref = &paths[i];
	if (ref == NULL)
	{
		ok(1, "# SKIP no AVX2 on this CPU: no path to compare the others with");
		return;
	}
	for (int p = 0; p < npaths; p++)
	{
		long		cases = 0,
					differ = 0;
		char		first[128] = "";

		if (!paths[p].simd || &paths[p] == ref)
			continue;
		for (size_t mi = 0; mi < sizeof(Ms) / sizeof(Ms[0]); mi++)
			for (size_t ni = 0; ni < sizeof(Ns) / sizeof(Ns[0]); ni++)
				for (size_t ki = 0; ki < sizeof(Ks) / sizeof(Ks[0]); ki++)
					for (int epi = 0; epi < 2; epi++)
					{
						int			M = Ms[mi],
									N = Ns[ni],
									K = Ks[ki];
						size_t		ldc = N + 5;
						float	   *A = malloc(sizeof(float) * M * K),
								   *B = malloc(sizeof(float) * K * N),
								   *Ap = malloc(sizeof(float) * gemm_packed_floats(M, K)),
								   *bias = malloc(sizeof(float) * M),
								   *R = malloc(sizeof(float) * M * ldc),
								   *C1 = malloc(sizeof(float) * M * ldc),
								   *C2 = malloc(sizeof(float) * M * ldc),
								   *bp = malloc(sizeof(float) * gemm_bpack_floats(K));
						gemm_epilogue ep = {bias, R, ldc, 1};

						for (int i = 0; i < M * K; i++)
							A[i] = frand(&seed);
						for (int i = 0; i < K * N; i++)
							B[i] = frand(&seed);
						for (int i = 0; i < M; i++)
							bias[i] = frand(&seed);
						for (size_t i = 0; i < M * ldc; i++)
						{
							R[i] = frand(&seed);
							C1[i] = C2[i] = 7.0f;
						}
						gemm_pack_a(Ap, A, M, K, K);
						isa_use(ref);
						product_on_path(C1, Ap, B, M, N, K, epi ? &ep : NULL, bp);
						isa_use(&paths[p]);
						product_on_path(C2, Ap, B, M, N, K, epi ? &ep : NULL, bp);
						cases++;
						if (memcmp(C1, C2, sizeof(float) * M * ldc) != 0)
						{
							if (differ++ == 0)
								snprintf(first, sizeof(first), " (first: %dx%dx%d%s)", M, N, K,
										 epi ? " + epilogue" : "");
						}
						free(A);
						free(B);
						free(Ap);
						free(bias);
						free(R);
						free(C1);
						free(C2);
						free(bp);
					}
		tap_prefix = NULL;
		ok(differ == 0, "%s bit-identical to avx2 over %ld products (shapes, edges, tails, epilogue, 2 shares)%s",
		   paths[p].label, cases, first);
	}
	isa_reset();
}

int
main(void)
{
	isa_path	paths[ISA_MAX_PATHS];
	int			npaths = isa_paths(paths);

	for (int p = 0; p < npaths; p++)
	{
		isa_use(&paths[p]);
		gemm_suite();
	}
	isa_reset();
	paths_agree(paths, npaths);
	return tap_done();
}
