/*
 * layer_kernels.h
 *	  The elementwise layers of layers.c that run per instruction-set path:
 *	  GELU.  Included once by the file of each path, which defines
 *	  LAYER_KERNELS_TABLE and LAYER_KERNELS_NAME first and is compiled with
 *	  that path's flags: layer_generic.c, layer_avx2.c, layer_avx512.c.  No
 *	  intrinsics: the compiler vectorizes the loop at the path's width; each
 *	  element goes through the same operations (fused where the target has
 *	  FMA), so the AVX2 and AVX-512 builds give the same floats.
 */
#ifndef MMSA_LAYER_KERNELS_H
#define MMSA_LAYER_KERNELS_H

#include "layers_isa.h"

NON_TRAPPING_MATH
static void
gelu(float *out, const float *inp, long N)
{
	const float inv_sqrt2 = 0.70710678118654752f;

	for (long i = 0; i < N; i++)
	{
		float		x = inp[i];

		out[i] = 0.5f * x * (1.0f + erf_approx(x * inv_sqrt2));
	}
}

const layer_kernels LAYER_KERNELS_TABLE = {
	LAYER_KERNELS_NAME,
	gelu
};

#endif
