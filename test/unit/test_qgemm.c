/*
 * test_qgemm.c
 *	  The int8 product (qgemm.h) on every kernel path this host runs, the
 *	  VNNI kernels emulated by SIMDe where the CPU lacks them, against a
 *	  direct integer loop written here: bit for bit, over shapes that cover
 *	  every edge (rows past a panel, columns past a panel and a block, K
 *	  not a multiple of 4), with and without bias, residual and ReLU, B
 *	  dense and gathered, the extremes of both ranges (no saturation), and
 *	  the quantization of activations (rounding, clamping, NaN), each row of
 *	  B with its own scale; and the per-column (per-token) activations of
 *	  BERT's linear layers, with their zero points, against the formulas of
 *	  qgemm.h computed here.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conv.h"
#include "cpu.h"
#include "qgemm.h"
#include "qgemm_isa.h"
#include "tap.h"

#ifdef MMSA_HAVE_SIMDE
extern const qgemm_kernels qgemm_kernels_avx512vnni_simde;
extern const qgemm_kernels qgemm_kernels_avxvnni_simde;
#endif

typedef struct qpath
{
	const char *label;
	const qgemm_kernels *k;
	int			emulated;
} qpath;

static uint64_t rng = 88172645463325252ULL;
static int	params_bad = 0;		/* qgemm_column_params != the formulas */

static uint32_t
next_u32(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t) (rng >> 16);
}

static float
uniform(float lo, float hi)
{
	return lo + (hi - lo) * (float) (next_u32() & 0xFFFFFF) / (float) 0x1000000;
}

static int
host_paths(qpath *p)
{
	int			n = 0;
	char		flags[256];

	mmsa_cpu_flags(flags, sizeof(flags));
	p[n++] = (qpath) {"generic", &qgemm_kernels_generic, 0};
#if defined(__x86_64__)
	if (mmsa_cpu_supports(MMSA_ISA_AVX2))
		p[n++] = (qpath) {"avx2", &qgemm_kernels_avx2, 0};
	if (mmsa_cpu_has_vnni(256))
		p[n++] = (qpath) {"avx-vnni", &qgemm_kernels_avxvnni, 0};
	if (mmsa_cpu_has_vnni(512))
		p[n++] = (qpath) {"avx512-vnni", &qgemm_kernels_avx512vnni, 0};
#endif
#ifdef MMSA_HAVE_SIMDE
	if (mmsa_cpu_supports(MMSA_ISA_AVX2))
	{
		p[n++] = (qpath) {"avx-vnni-simde", &qgemm_kernels_avxvnni_simde, 1};
		p[n++] = (qpath) {"avx512-vnni-simde", &qgemm_kernels_avx512vnni_simde, 1};
	}
#endif
	diag("CPU flags: %s", flags[0] ? flags : "(none of those mmsa uses)");
	printf("# int8 kernel paths run natively:");
	for (int i = 0; i < n; i++)
		if (!p[i].emulated)
			printf(" %s", p[i].label);
	printf("; emulated (SIMDe on AVX2):");
	for (int i = 0; i < n; i++)
		if (p[i].emulated)
			printf(" %s", p[i].label);
	printf("; not run on this CPU:%s%s%s\n",
		   mmsa_cpu_supports(MMSA_ISA_AVX2) ? "" : " avx2",
		   mmsa_cpu_has_vnni(256) ? "" : " avx-vnni (native)",
		   mmsa_cpu_has_vnni(512) ? "" : " avx512-vnni (native)");
	return n;
}

/* B (K, N) rows gathered through a function: every other column of a wider matrix */
typedef struct strided
{
	const float *base;
	size_t		ld;
} strided;

static void
strided_rows(const void *ctx, float *dst, int k, int n0, int nc)
{
	const strided *s = ctx;

	for (int i = 0; i < nc; i++)
		dst[i] = s->base[(size_t) k * s->ld + 2 * (size_t) (n0 + i)];
}

/*
 * The per-column activation parameters of qgemm.h, written out here: the
 * range of column n with 0 in it, s = range / ACT_MAX (1 for an empty
 * range), z = round(-lo / s).
 */
static void
column_params_ref(const float *B, size_t ldb, int bstride, int K, int N,
				  float *s, float *inv, int32_t *z)
{
	for (int n = 0; n < N; n++)
	{
		float		lo = 0.0f,
					hi = 0.0f,
					sc;
		float		zf;

		for (int k = 0; k < K; k++)
		{
			float		b = B[(size_t) k * ldb + (size_t) n * bstride];

			lo = b < lo ? b : lo;
			hi = b > hi ? b : hi;
		}
		sc = (hi - lo) / (float) QGEMM_ACT_MAX;
		if (!(sc > 0.0f) || !isfinite(sc))
			sc = 1.0f;
		s[n] = sc;
		inv[n] = 1.0f / sc;
		zf = nearbyintf(-lo * inv[n]);
		z[n] = zf < 0 ? 0 : zf > QGEMM_ACT_MAX ? QGEMM_ACT_MAX : (int32_t) zf;
	}
}

/*
 * The direct integer loop: C = finish(sum_k Aq[m][k] * q(B[k][n])), with
 * a scale per row of B (inv), or per column (cinv, cs, cz; inv NULL).
 */
static void
reference(float *C, const int8_t *Aq, const float *B, size_t ldb, int bstride,
		  const float *inv, const float *cinv, const float *cs, const int32_t *cz,
		  int M, int K, int N, const qgemm_epilogue *ep)
{
	for (int m = 0; m < M; m++)
		for (int n = 0; n < N; n++)
		{
			int32_t		sum = 0,
						rowsum = 0;
			float		v;

			for (int k = 0; k < K; k++)
			{
				float		b = B[(size_t) k * ldb + (size_t) n * bstride];
				int32_t		q;

				if (inv)
					q = qgemm_quantize_act(b, inv[k]);
				else
				{
					float		f = b * cinv[n];

					f = f > (float) -cz[n] ? f : (float) -cz[n];
					f = f < (float) (QGEMM_ACT_MAX - cz[n]) ? f : (float) (QGEMM_ACT_MAX - cz[n]);
					q = (int32_t) nearbyintf(f) + cz[n];
				}
				sum += (int32_t) Aq[(size_t) m * K + k] * q;
				rowsum += Aq[(size_t) m * K + k];
			}
			if (inv)
				v = fmaf((float) sum, ep->scale[m], ep->bias ? ep->bias[m] : 0.0f);
			else
				v = fmaf((float) (sum - cz[n] * rowsum), ep->scale[m] * cs[n],
						 ep->bias ? ep->bias[m] : 0.0f);
			if (ep->residual)
				v += ep->residual[(size_t) m * ep->ldr + n];
			if (ep->relu)
				v = v > 0.0f ? v : 0.0f;
			C[(size_t) m * N + n] = v;
		}
}

/* one product on path p; returns whether it equals the reference bit for bit */
static int
run_case_cols(const qpath *p, int M, int K, int N, int gathered, int flags, int extreme,
			  int nthreads, int percol)
{
	int8_t	   *Aq = malloc((size_t) M * K);
	int8_t	   *Ap = aligned_alloc(64, (qgemm_packed_bytes(M, K) + 63) / 64 * 64);
	size_t		ldb = gathered ? 2 * (size_t) N + 1 : (size_t) N;
	float	   *B = malloc(sizeof(float) * (size_t) K * ldb);
	float	   *scale = malloc(sizeof(float) * M),
			   *bias = malloc(sizeof(float) * M),
			   *res = malloc(sizeof(float) * (size_t) M * N),
			   *C = malloc(sizeof(float) * (size_t) M * N),
			   *R = malloc(sizeof(float) * (size_t) M * N);
	void	   *work = aligned_alloc(64, (qgemm_work_bytes(K) + 63) / 64 * 64);
	float	   *inv = malloc(sizeof(float) * K);
	float	   *cs = malloc(sizeof(float) * N),
			   *cinv = malloc(sizeof(float) * N);
	int32_t    *cz = malloc(sizeof(int32_t) * N),
			   *rowsum = malloc(sizeof(int32_t) * M);
	qgemm_cols	cols = {malloc(sizeof(float) * qgemm_cols_len(N)),
		malloc(sizeof(float) * qgemm_cols_len(N)),
	malloc(sizeof(int32_t) * qgemm_cols_len(N))};
	qgemm_epilogue ep = {scale, (flags & 1) ? bias : NULL, (flags & 2) ? res : NULL,
	(size_t) N, (flags & 4) != 0, rowsum, &cols};
	strided		st = {B, ldb};
	qgemm_b_rows src = {strided_rows, &st};
	int			same;

	for (int k = 0; k < K; k++)	/* a scale per row of B */
		inv[k] = extreme ? 1.0f : uniform(5.0f, 60.0f);
	for (size_t i = 0; i < (size_t) M * K; i++)
		Aq[i] = extreme ? (((i >> 1) & 1) ? -127 : 127) : (int8_t) ((int) (next_u32() % 255) - 127);
	for (size_t i = 0; i < (size_t) K * ldb; i++)
		B[i] = extreme ? 500.0f : percol ? uniform(-4.0f, 2.5f) : uniform(-0.5f, 3.0f);
	if (percol && N > 2 && !extreme)
	{
		/* a column of zeros (s = 1), one all positive (z = 0), one negative */
		for (int k = 0; k < K; k++)
		{
			B[(size_t) k * ldb + 1] = 0.0f;
			B[(size_t) k * ldb + 2] = uniform(0.1f, 7.0f);
			if (N > 3)
				B[(size_t) k * ldb + 3] = uniform(-9.0f, -0.1f);
		}
	}
	for (int m = 0; m < M; m++)
	{
		scale[m] = uniform(1e-4f, 1e-2f);
		bias[m] = uniform(-1.0f, 1.0f);
	}
	for (size_t i = 0; i < (size_t) M * N; i++)
		res[i] = uniform(-2.0f, 2.0f);
	qgemm_pack_a(Ap, Aq, M, K, K);
	qgemm_row_sums(rowsum, Aq, M, K, K);
	column_params_ref(B, ldb, gathered ? 2 : 1, K, N, cs, cinv, cz);
	if (percol)
	{
		/* made in two ranges, as two threads would; equal to the formulas */
		int			half = N / 2 / QGEMM_NR * QGEMM_NR;

		qgemm_column_params(B, ldb, K, 0, half, N, &cols);
		qgemm_column_params(B, ldb, K, half, N, N, &cols);
		for (int n = 0; n < qgemm_cols_len(N); n++)
			if (n < N ? cols.s[n] != cs[n] || cols.inv[n] != cinv[n] || cols.z[n] != cz[n]
				: cols.s[n] != 0.0f || cols.inv[n] != 0.0f || cols.z[n] != 0)
			{
				diag("qgemm_column_params column %d: s %g/%g inv %g/%g z %d/%d", n,
					 cols.s[n], n < N ? cs[n] : 0, cols.inv[n], n < N ? cinv[n] : 0,
					 cols.z[n], n < N ? cz[n] : 0);
				params_bad++;
				break;
			}
	}
	reference(R, Aq, B, ldb, gathered ? 2 : 1, percol ? NULL : inv, cinv, cs, cz, M, K, N, &ep);
	memset(C, 0xFF, sizeof(float) * (size_t) M * N);
	mmsa_isa_use_qgemm(p->k);
	for (int t = 0; t < nthreads; t++)
	{
		int			m0,
					m1,
					n0,
					n1;

		qgemm_thread_share(M, N, t, nthreads, &m0, &m1, &n0, &n1);
		if (m0 < m1 && n0 < n1)
			qgemm_range(C, N, Ap, gathered ? NULL : B, ldb, gathered ? &src : NULL,
						percol ? NULL : inv, M, K, m0, m1, n0, n1, &ep, work);
	}
	mmsa_isa_use_qgemm(NULL);
	same = memcmp(C, R, sizeof(float) * (size_t) M * N) == 0;
	if (!same)
		for (size_t i = 0; i < (size_t) M * N; i++)
			if (memcmp(&C[i], &R[i], sizeof(float)) != 0)
			{
				diag("%s M=%d K=%d N=%d: first difference at (%zu, %zu): %.9g vs %.9g",
					 p->label, M, K, N, i / N, i % N, C[i], R[i]);
				break;
			}
	free(inv);
	free(cs);
	free(cinv);
	free(cz);
	free(rowsum);
	free(cols.s);
	free(cols.inv);
	free(cols.z);
	free(Aq);
	free(Ap);
	free(B);
	free(scale);
	free(bias);
	free(res);
	free(C);
	free(R);
	free(work);
	return same;
}

static int
run_case(const qpath *p, int M, int K, int N, int gathered, int flags, int extreme,
		 int nthreads)
{
	return run_case_cols(p, M, K, N, gathered, flags, extreme, nthreads, 0);
}

/*
 * qconv2d_forward (conv.c: the product over the gathered im2col rows, or
 * the input in place for 1x1 stride 1) against a direct integer loop over
 * the taps, with zero padding, on the path in use.
 */
static int
qconv_case(int B, int Cin, int H, int Cout, int k, int stride, int pad, int nthreads)
{
	int			Ho = conv_out_size(H, k, stride, pad),
				K = Cin * k * k;
	size_t		nin = (size_t) Cin * B * H * H,
				nout = (size_t) Cout * B * Ho * Ho;
	float	   *inp = malloc(sizeof(float) * nin),
			   *out = malloc(sizeof(float) * nout),
			   *ref = malloc(sizeof(float) * nout),
			   *res = malloc(sizeof(float) * nout),
			   *scale = malloc(sizeof(float) * Cout),
			   *bias = malloc(sizeof(float) * Cout),
			   *inv = malloc(sizeof(float) * K);
	int8_t	   *w = malloc((size_t) Cout * K),
			   *wp = aligned_alloc(64, (qgemm_packed_bytes(Cout, K) + 63) / 64 * 64);
	conv_exec	ex;
	int			same;

	for (size_t i = 0; i < nin; i++)
		inp[i] = uniform(-0.2f, 2.0f);
	for (size_t i = 0; i < nout; i++)
		res[i] = uniform(-1.0f, 1.0f);
	for (size_t i = 0; i < (size_t) Cout * K; i++)
		w[i] = (int8_t) ((int) (next_u32() % 255) - 127);
	for (int c = 0; c < Cin; c++)
	{
		float		v = uniform(20.0f, 60.0f);

		for (int t = 0; t < k * k; t++)
			inv[c * k * k + t] = v;
	}
	for (int o = 0; o < Cout; o++)
	{
		scale[o] = uniform(1e-4f, 1e-3f);
		bias[o] = uniform(-1.0f, 1.0f);
	}
	qgemm_pack_a(wp, w, Cout, K, K);
	for (int o = 0; o < Cout; o++)
		for (int b = 0; b < B; b++)
			for (int oy = 0; oy < Ho; oy++)
				for (int ox = 0; ox < Ho; ox++)
				{
					int32_t		sum = 0;
					size_t		at = (((size_t) o * B + b) * Ho + oy) * Ho + ox;
					float		v;

					for (int c = 0; c < Cin; c++)
						for (int ki = 0; ki < k; ki++)
							for (int kj = 0; kj < k; kj++)
							{
								int			iy = oy * stride - pad + ki,
											ix = ox * stride - pad + kj,
											r = (c * k + ki) * k + kj;
								float		x = (iy >= 0 && iy < H && ix >= 0 && ix < H) ?
									inp[(((size_t) c * B + b) * H + iy) * H + ix] : 0.0f;

								sum += (int32_t) w[(size_t) o * K + r] * qgemm_quantize_act(x, inv[r]);
							}
					v = fmaf((float) sum, scale[o], bias[o]) + res[at];
					ref[at] = v > 0.0f ? v : 0.0f;
				}
	conv_exec_init(&ex, nthreads, NULL);
	conv_exec_reserve_int8(&ex, K, NULL);
	qconv2d_forward(&ex, out, inp, wp, scale, inv, bias, res, 1, B, Cin, H, H, Cout, k, stride, pad);
	conv_exec_free(&ex);
	same = memcmp(out, ref, sizeof(float) * nout) == 0;
	free(inp);
	free(out);
	free(ref);
	free(res);
	free(scale);
	free(bias);
	free(inv);
	free(w);
	free(wp);
	return same;
}

int
main(void)
{
	qpath		paths[8];
	int			np = host_paths(paths);
	static const int Ms[] = {1, 3, 4, 5, 8, 13, 64};
	static const int Ks[] = {1, 3, 4, 7, 64, 147, 576, 2304};
	static const int Ns[] = {1, 7, 16, 17, 49, 100, 196, 400};

	/* the quantization of activations */
	ok(qgemm_quantize_act(0.5f, 1.0f) == 0 && qgemm_quantize_act(1.5f, 1.0f) == 2 &&
	   qgemm_quantize_act(2.5f, 1.0f) == 2 && qgemm_quantize_act(2.51f, 1.0f) == 3,
	   "activations round half to even");
	ok(qgemm_quantize_act(-3.0f, 1.0f) == 0 && qgemm_quantize_act(1e9f, 1.0f) == QGEMM_ACT_MAX &&
	   qgemm_quantize_act(NAN, 1.0f) == 0 && qgemm_quantize_act(INFINITY, 1.0f) == QGEMM_ACT_MAX,
	   "activations clamp to [0, %d]; NaN gives 0", QGEMM_ACT_MAX);
	{
		float		w[6] = {0.5f, -1.0f, 0.25f, 0.0f, 0.0f, 0.0f};
		int8_t		q[6];
		float		s[2];

		qgemm_quantize_rows(q, s, w, 2, 3);
		ok(q[0] == 64 && q[1] == -127 && q[2] == 32 && fabsf(s[0] - 1.0f / 127) < 1e-9f &&
		   q[3] == 0 && s[1] == 1.0f,
		   "weights: symmetric per row, largest magnitude to 127 (%d %d %d, scale %g)",
		   q[0], q[1], q[2], s[0]);
	}

	for (int pi = 0; pi < np; pi++)
	{
		const qpath *p = &paths[pi];
		int			cases = 0,
					bad = 0;

		tap_prefix = p->label;
		for (size_t a = 0; a < sizeof(Ms) / sizeof(Ms[0]); a++)
			for (size_t b = 0; b < sizeof(Ks) / sizeof(Ks[0]); b++)
				for (size_t c = 0; c < sizeof(Ns) / sizeof(Ns[0]); c++)
				{
					int			flags = (int) ((a + b + c) % 8);

					/* the generic loops are slow: smaller products there */
					if (p->k == &qgemm_kernels_generic && Ms[a] * Ks[b] * Ns[c] > 400000)
						continue;
					cases++;
					bad += !run_case(p, Ms[a], Ks[b], Ns[c], (int) ((a + c) % 2), flags, 0,
									 1 + (int) (b % 2));
				}
		ok(bad == 0, "%d products (M x K x N over edges; bias, residual, ReLU; dense and gathered B; "
		   "1 and 2 threads) equal the direct integer loop bit for bit (%d differ)", cases, bad);
		ok(run_case(p, 9, 4608, 40, 0, 7, 1, 1) && run_case(p, 4, 2048, 33, 1, 1, 1, 2),
		   "extremes (activations 127, weights +-127, K up to 4608): exact, no saturation");
		{
			static const int Mc[] = {1, 5, 12, 64, 768},
						Kc[] = {3, 64, 256, 768, 3072},
						Nc[] = {1, 5, 17, 64, 200};

			cases = bad = 0;
			for (size_t a = 0; a < sizeof(Mc) / sizeof(Mc[0]); a++)
				for (size_t b = 0; b < sizeof(Kc) / sizeof(Kc[0]); b++)
					for (size_t c = 0; c < sizeof(Nc) / sizeof(Nc[0]); c++)
					{
						if (p->k == &qgemm_kernels_generic && Mc[a] * Kc[b] * Nc[c] > 400000)
							continue;
						if (Mc[a] * Kc[b] * Nc[c] > 40000000)
							continue;
						cases++;
						bad += !run_case_cols(p, Mc[a], Kc[b], Nc[c], 0, (int) ((a + b + c) % 8),
											  0, 1 + (int) (c % 2), 1);
					}
			ok(bad == 0, "%d products with per-column activations (scale and zero point per token; "
			   "zero, positive and negative columns) equal the direct integer loop bit for bit "
			   "(%d differ)", cases, bad);
			ok(params_bad == 0, "qgemm_column_params, in two ranges, gives the formulas' scales and "
			   "zero points exactly, zeros past the last column (%d differ)", params_bad);
			params_bad = 0;
			ok(run_case_cols(p, 6, 3072, 20, 0, 1, 1, 2, 1),
			   "per-column extremes (activations 127 - z, K 3072): exact");
		}
		mmsa_isa_use_qgemm(p->k);
		ok(qconv_case(2, 24, 14, 20, 1, 1, 0, 2) && qconv_case(2, 24, 14, 20, 1, 2, 0, 2) &&
		   qconv_case(1, 16, 15, 9, 1, 2, 0, 1) && qconv_case(2, 8, 9, 12, 3, 1, 1, 2) &&
		   qconv_case(1, 8, 11, 7, 3, 2, 1, 1),
		   "qconv2d_forward (1x1 stride 1 in place; 1x1 stride 2 and 3x3 gathered, with padding) equals "
		   "a direct integer loop over the taps, bit for bit");
		mmsa_isa_use_qgemm(NULL);
	}
	tap_prefix = NULL;

	/* one work buffer of qgemm_work_bytes(Kmax) serves every K <= Kmax */
	{
		int			Kmax = 4608,
					intact = 1;
		size_t		wb = qgemm_work_bytes(Kmax);
		unsigned char *work = aligned_alloc(64, (wb + 64 + 63) / 64 * 64);
		static const int Kt[] = {4608, 2048, 1024, 853, 576, 64, 3};

		memset(work + wb, 0xA5, 64);
		for (size_t i = 0; i < sizeof(Kt) / sizeof(Kt[0]); i++)
		{
			int			K = Kt[i],
						M = 8,
						N = 400;
			int8_t	   *Ap = aligned_alloc(64, (qgemm_packed_bytes(M, K) + 63) / 64 * 64);
			float	   *B = calloc((size_t) K * N, sizeof(float)),
					   *C = malloc(sizeof(float) * M * N),
						scale[8] = {1, 1, 1, 1, 1, 1, 1, 1};
			float	   *inv = malloc(sizeof(float) * K);
			qgemm_epilogue ep = {scale, NULL, NULL, 0, 0};

			for (int k = 0; k < K; k++)
				inv[k] = 1.0f;
			memset(Ap, 1, qgemm_packed_bytes(M, K));
			qgemm_range(C, N, Ap, B, N, NULL, inv, M, K, 0, M, 0, N, &ep, work);
			free(inv);
			for (int j = 0; j < 64; j++)
				intact &= work[wb + j] == 0xA5;
			free(Ap);
			free(B);
			free(C);
		}
		ok(intact, "a work buffer of qgemm_work_bytes(%d) (%zu bytes) holds the products over "
		   "every K up to it: nothing written past it", Kmax, wb);
		free(work);
	}
	return tap_done();
}
