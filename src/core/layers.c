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
matmul_forward_cols(float *out, const float *inp, const float *weight,
					const float *bias, int N, int C, int OC, int o0, int o1)
{
	int			width = o1 - o0;

	if (width <= 0)
		return;
	/*
	 * Start from the bias (or zero) and let sgemm accumulate onto it: one
	 * pass over out instead of sgemm's own beta pass plus a bias pass.
	 */
	for (int n = 0; n < N; n++)
	{
		float	   *o = out + (long) n * OC + o0;

		if (bias != NULL)
			memcpy(o, bias + o0, width * sizeof(float));
		else
			memset(o, 0, width * sizeof(float));
	}
	/* out[:, o0:o1] (N,width) += inp (N,C) . weight[o0:o1]^T (C,width) */
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, width, C,
				1.0f, inp, C, weight + (long) o0 * C, C, 1.0f, out + o0, OC);
}

void
matmul_forward(float *out, const float *inp, const float *weight,
			   const float *bias, int N, int C, int OC)
{
	matmul_forward_cols(out, inp, weight, bias, N, C, OC, 0, OC);
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
attention_head_forward(float *out, const float *q, const float *k,
					   const float *v, const float *addmask, float *att,
					   int T, int C, int hs)
{
	float		scale = 1.0f / sqrtf((float) hs);

	/* att (T,T) = q_h (T,hs) . k_h^T (hs,T) / sqrt(hs) */
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hs,
				scale, q, C, k, C, 0.0f, att, T);
	for (int t = 0; t < T; t++)
	{
		float	   *row = att + (long) t * T;

		for (int s = 0; s < T; s++)
			row[s] += addmask[s];
		softmax_row(row, T);
	}
	/* out_h (T,hs) = att (T,T) . v_h (T,hs) */
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, T,
				1.0f, att, T, v, C, 0.0f, out, C);
}

void
attention_forward(float *out, const float *q, const float *k, const float *v,
				  const float *addmask, float *att, int B, int T, int C, int NH)
{
	int			hs = C / NH;

	for (int b = 0; b < B; b++)
	{
		for (int h = 0; h < NH; h++)
		{
			long		off = (long) b * T * C + (long) h * hs;

			attention_head_forward(out + off, q + off, k + off, v + off,
								   addmask + (long) b * T,
								   att + (long) h * T * T, T, C, hs);
		}
	}
}
