/*
 * conv.h
 *	  Convolution-network layers for the image encoder (ResNet-50).
 *
 * Activations are kept channel-major with the batch inside, (C, B, H, W):
 * row c of the matrix (C, B*H*W) holds channel c of every image, so a 1x1
 * stride-1 convolution of the whole batch is one matrix product
 * out = W (Cout, Cin) x inp (Cin, B*H*W) with no copying, and a k x k
 * convolution is the same product after im2col.  Dense math goes through
 * CBLAS (OpenBLAS).
 */
#ifndef MMSA_CONV_H
#define MMSA_CONV_H

#include <stddef.h>

/* Output size of a convolution or pooling along one axis. */
static inline int
conv_out_size(int in, int k, int stride, int pad)
{
	return (in + 2 * pad - k) / stride + 1;
}

/*
 * Floats of im2col work buffer that conv2d_forward needs to process
 * `images` images at once; 0 when the convolution needs no im2col
 * (1x1, stride 1, no padding).
 */
size_t		conv2d_col_floats(int Cin, int H, int W, int k, int stride, int pad,
							  int images);

/*
 * out: (Cout, B, Ho, Wo) = act(weight * inp + bias [+ residual])
 * inp: (Cin, B, H, W), weight: (Cout, Cin, k, k), bias: (Cout) or NULL,
 * residual: (Cout, B, Ho, Wo) or NULL (added before the ReLU), relu: 0/1.
 * Zero padding of `pad` on every side.  col is a work buffer of col_floats
 * floats, at least conv2d_col_floats(.., 1); images are processed in groups
 * as large as it allows.  out must not overlap inp, residual or col.
 */
void		conv2d_forward(float *out, const float *inp, const float *weight,
						   const float *bias, const float *residual, int relu,
						   int B, int Cin, int H, int W, int Cout,
						   int k, int stride, int pad,
						   float *col, size_t col_floats);

/*
 * out: (C, B, Ho, Wo) = max over k x k windows of inp: (C, B, H, W), with
 * stride and padding; padded cells never win (-inf padding, as PyTorch).
 * On inputs >= 0 (after a ReLU) this equals Keras' ZeroPadding2D followed
 * by a 'valid' MaxPooling2D.
 */
void		maxpool2d_forward(float *out, const float *inp, int C, int B,
							  int H, int W, int k, int stride, int pad);

/*
 * out: (B, C) = mean over the HW positions of inp: (C, B, HW).
 */
void		global_avgpool_forward(float *out, const float *inp, int C, int B,
								   int HW);

/*
 * out: (B, HW, C) token-major copy of inp: (C, B, HW).
 */
void		cbhw_to_token_major(float *out, const float *inp, int C, int B,
								int HW);

/*
 * out: (C, B, HW) from inp: (B, C, HW) (the usual NCHW batch of images).
 */
void		nchw_to_cbhw(float *out, const float *inp, int B, int C, int HW);

/*
 * out: (B, OC) = inp: (B, IC) x weight^T + bias, weight: (OC, IC).
 */
void		linear_forward(float *out, const float *inp, const float *weight,
						   const float *bias, int B, int IC, int OC);

#endif
