/*
 * layers.c
 *	  Forward passes of the neural-network layers (see layers.h).
 *
 * Dense products go to CBLAS (OpenBLAS) sgemm; the rest are simple loops
 * that the compiler vectorizes.
 */
#include "layers.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include <cblas.h>

/*
 * GCC keeps the branches of a float clamp (and so does not vectorize the
 * loop) unless floating-point comparisons may be treated as non-trapping;
 * this attribute allows that for GELU (on both functions, as GCC does not
 * inline across differing optimization attributes).
 */
#if defined(__GNUC__) && !defined(__clang__)
#define NON_TRAPPING_MATH __attribute__((optimize("no-trapping-math")))
#else
#define NON_TRAPPING_MATH
#endif

/*
 * Sum of n floats, and sum of squared deviations from mean, each in 8
 * interleaved partial sums, which the compiler turns into vector adds (a
 * single running sum would have to stay scalar to keep its rounding order).
 */
static inline float
sum8(const float *x, int n)
{
	float		acc[8] = {0};
	float		sum = 0.0f;
	int			i = 0;

	for (; i + 8 <= n; i += 8)
		for (int j = 0; j < 8; j++)
			acc[j] += x[i + j];
	for (; i < n; i++)
		sum += x[i];
	return sum + ((acc[0] + acc[4]) + (acc[1] + acc[5])) +
		((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

static inline float
sumsq8(const float *x, float mean, int n)
{
	float		acc[8] = {0};
	float		sum = 0.0f;
	int			i = 0;

	for (; i + 8 <= n; i += 8)
		for (int j = 0; j < 8; j++)
		{
			float		d = x[i + j] - mean;

			acc[j] += d * d;
		}
	for (; i < n; i++)
	{
		float		d = x[i] - mean;

		sum += d * d;
	}
	return sum + ((acc[0] + acc[4]) + (acc[1] + acc[5])) +
		((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

void
embeddings_forward(float *out, const int32_t *ids, const int32_t *token_types,
				   const float *wte, const float *wpe, const float *wtt,
				   int B, int T, int C)
{
	for (int b = 0; b < B; b++)
	{
		for (int t = 0; t < T; t++)
		{
			long		bt = (long) b * T + t;
			float	   *o = out + bt * C;
			const float *w = wte + (long) ids[bt] * C;
			const float *p = wpe + (long) t * C;
			const float *s = wtt + (long) (token_types ? token_types[bt] : 0) * C;

			for (int i = 0; i < C; i++)
				o[i] = w[i] + s[i] + p[i];
		}
	}
}

void
layernorm_forward(float *out, const float *inp, const float *weight,
				  const float *bias, int N, int C, float eps)
{
	for (int n = 0; n < N; n++)
	{
		const float *x = inp + (long) n * C;
		float	   *o = out + (long) n * C;
		float		mean;
		float		var;
		float		rstd;

		mean = sum8(x, C) / C;
		var = sumsq8(x, mean, C) / C;
		rstd = 1.0f / sqrtf(var + eps);
		for (int i = 0; i < C; i++)
			o[i] = (x[i] - mean) * rstd * weight[i] + bias[i];
	}
}

void
matmul_forward(float *out, const float *inp, const float *weight,
			   const float *bias, int N, int C, int OC)
{
	/*
	 * Start from the bias (or zero) and let sgemm accumulate onto it: one
	 * pass over out instead of sgemm's own beta pass plus a bias pass.
	 */
	for (int n = 0; n < N; n++)
	{
		float	   *o = out + (long) n * OC;

		if (bias != NULL)
			memcpy(o, bias, OC * sizeof(float));
		else
			memset(o, 0, OC * sizeof(float));
	}
	/* out (N,OC) += inp (N,C) . weight^T (C,OC) */
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C,
				1.0f, inp, C, weight, C, 1.0f, out, OC);
}

/*
 * erf(x) for float, as a rational function of x on [-4, 4] (erf is +-1 in
 * float beyond that): the approximation Eigen and TensorFlow use.  Its
 * absolute error is below 4e-7 (a few units in the last place of values
 * near 1), which keeps GELU within 2e-6 of the double-precision value, and
 * unlike erff() it vectorizes.
 */
NON_TRAPPING_MATH
static inline float
erf_approx(float a)
{
	float		x = a < -4.0f ? -4.0f : a;
	float		x2;
	float		p;
	float		q;

	x = x > 4.0f ? 4.0f : x;
	x2 = x * x;
	p = x2 * -2.72614225801306e-10f + 2.77068142495902e-08f;
	p = p * x2 + -2.10102402082508e-06f;
	p = p * x2 + -5.69250639462346e-05f;
	p = p * x2 + -7.34990630326855e-04f;
	p = p * x2 + -2.95459980854025e-03f;
	p = p * x2 + -1.60960333262415e-02f;
	p = p * x;
	q = x2 * -1.45660718464996e-05f + -2.13374055278905e-04f;
	q = q * x2 + -1.68282697438203e-03f;
	q = q * x2 + -7.37332916720468e-03f;
	q = q * x2 + -1.42647390514189e-02f;
	return p / q;
}

NON_TRAPPING_MATH
void
gelu_forward(float *out, const float *inp, long N)
{
	const float inv_sqrt2 = 0.70710678118654752f;

	for (long i = 0; i < N; i++)
	{
		float		x = inp[i];

		out[i] = 0.5f * x * (1.0f + erf_approx(x * inv_sqrt2));
	}
}

void
tanh_forward(float *out, const float *inp, long N)
{
	for (long i = 0; i < N; i++)
		out[i] = tanhf(inp[i]);
}

void
residual_forward(float *out, const float *a, const float *b, long N)
{
	for (long i = 0; i < N; i++)
		out[i] = a[i] + b[i];
}

/* Softmax of one row of n values, in place. */
static inline void
softmax_row(float *x, int n)
{
	float		maxval = -INFINITY;
	float		sum = 0.0f;
	float		scale;

	for (int i = 0; i < n; i++)
		if (x[i] > maxval)
			maxval = x[i];
	for (int i = 0; i < n; i++)
	{
		x[i] = expf(x[i] - maxval);
		sum += x[i];
	}
	scale = 1.0f / sum;
	for (int i = 0; i < n; i++)
		x[i] *= scale;
}

void
softmax_forward(float *x, int N, int C)
{
	for (int n = 0; n < N; n++)
		softmax_row(x + (long) n * C, C);
}

void
attention_mask_forward(float *out, const int32_t *mask, int B, int T)
{
	for (long i = 0; i < (long) B * T; i++)
		out[i] = (mask == NULL || mask[i] != 0) ? 0.0f : -FLT_MAX;
}

void
attention_forward(float *out, const float *q, const float *k, const float *v,
				  const float *addmask, float *att, int B, int T, int C, int NH)
{
	int			hs = C / NH;
	float		scale = 1.0f / sqrtf((float) hs);

	for (int b = 0; b < B; b++)
	{
		const float *am = addmask + (long) b * T;

		for (int h = 0; h < NH; h++)
		{
			long		off = (long) b * T * C + (long) h * hs;
			float	   *a = att + (long) h * T * T;

			/* a (T,T) = q_bh (T,hs) . k_bh^T (hs,T) / sqrt(hs) */
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hs,
						scale, q + off, C, k + off, C, 0.0f, a, T);
			for (int t = 0; t < T; t++)
			{
				float	   *row = a + (long) t * T;

				for (int s = 0; s < T; s++)
					row[s] += am[s];
				softmax_row(row, T);
			}
			/* out_bh (T,hs) = a (T,T) . v_bh (T,hs) */
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, T,
						1.0f, a, T, v + off, C, 0.0f, out + off, C);
		}
	}
}
