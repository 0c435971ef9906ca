/*
 * layer_generic.c
 *	  layers.c's per-path kernels (layer_kernels.h) for the portable build.
 */
#define LAYER_KERNELS_TABLE layer_kernels_generic
#define LAYER_KERNELS_NAME "generic"
#include "layer_kernels.h"
