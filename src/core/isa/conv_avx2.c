/*
 * conv_avx2.c
 *	  conv.c's kernels (conv_kernels.h) compiled for AVX2 + FMA.
 */
#define CONV_KERNELS_TABLE conv_kernels_avx2
#define CONV_KERNELS_NAME "avx2"
#include "conv_kernels.h"
