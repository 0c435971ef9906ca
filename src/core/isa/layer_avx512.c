/*
 * layer_avx512.c
 *	  layers.c's per-path kernels (layer_kernels.h) compiled for AVX-512 (F, BW, VL).
 */
#define LAYER_KERNELS_TABLE layer_kernels_avx512
#define LAYER_KERNELS_NAME "avx512"
#include "layer_kernels.h"
