/*
 * layer_avx2.c
 *	  layers.c's per-path kernels (layer_kernels.h) compiled for AVX2 + FMA.
 */
#define LAYER_KERNELS_TABLE layer_kernels_avx2
#define LAYER_KERNELS_NAME "avx2"
#include "layer_kernels.h"
