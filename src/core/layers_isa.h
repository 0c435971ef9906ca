/*
 * layers_isa.h
 *	  The elementwise layers that run per instruction-set path (GELU, in
 *	  src/core/isa/layer_kernels.h, compiled once per path so that the
 *	  compiler vectorizes it at that path's width), the table of them that
 *	  cpu.c points at the path in use, and erf_approx, which GELU's
 *	  backward pass in layers.c shares.
 */
#ifndef MMSA_LAYERS_ISA_H
#define MMSA_LAYERS_ISA_H

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

typedef struct layer_kernels
{
	const char *name;

	/* out[i] = GELU(inp[i]) (erf form) for i < N */
	void		(*gelu) (float *out, const float *inp, long N);
} layer_kernels;

extern const layer_kernels layer_kernels_generic;
extern const layer_kernels layer_kernels_avx2;
extern const layer_kernels layer_kernels_avx512;

/* The table of the path in use (cpu.c). */
const layer_kernels *mmsa_layer_kernels(void);

#endif
