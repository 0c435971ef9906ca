/*
 * conv_generic.c
 *	  conv.c's kernels (conv_kernels.h) for the portable build: the
 *	  reference of the tests and the path of other architectures.
 */
#define CONV_KERNELS_TABLE conv_kernels_generic
#define CONV_KERNELS_NAME "generic"
#include "conv_kernels.h"
