/*
 * resnet_internal.h
 *	  What resnet.c shares with resnet_int8.c: the folding of a
 *	  convolution's BatchNorm, and the convolutions in forward order with
 *	  their tensors' names.
 */
#ifndef MMSA_RESNET_INTERNAL_H
#define MMSA_RESNET_INTERNAL_H

#include "resnet.h"
#include "safetensors.h"

/*
 * Folds the BatchNorm bn_name into convolution conv_name of c's shape:
 * folded (cout, cin, k, k) and bias (cout).
 */
mmsa_status resnet_fold_conv(safetensors_file *f, const resnet_conv *c,
							 const char *conv_name, const char *bn_name,
							 float eps, float *folded, float *bias,
							 mmsa_error *err);

/*
 * The convolution with forward place id (0 .. RESNET_CONVS - 1) and its
 * tensors' names (64 bytes each); NULL past the last.
 */
resnet_conv *resnet_conv_at(resnet_model *m, int id, char *conv_name, char *bn_name);

/* Adds n input values of convolution id to cal's pass (resnet_int8.c). */
void		resnet_calibration_add(resnet_calibration *cal, int id, const float *x, size_t n);

#endif
