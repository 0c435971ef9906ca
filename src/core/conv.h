/*
 * conv.h
 *	  Convolution-network layers for the image encoder (ResNet-50).
 *
 * Activations are kept channel-major with the batch inside, (C, B, H, W):
 * row c of the matrix (C, B*H*W) holds channel c of every image, so a 1x1
 * stride-1 convolution of the whole batch is one matrix product
 * out = W (Cout, Cin) x inp (Cin, B*H*W) with no copying, and a k x k
 * convolution is the same product over the im2col unfolding, gathered as
 * the product packs it (stride 2: copied from the input's phase planes,
 * every other pixel).  The products run on
 * gemm.c with the weights packed once at load (conv2d_weight_pack,
 * winograd_weight_pack), split between the threads of a conv_exec.
 */
#ifndef MMSA_CONV_H
#define MMSA_CONV_H

#include <stddef.h>
#include <stdint.h>

#include "mmsa_error.h"
#include "threadpool.h"

#define CONV_MAX_THREADS 64

/*
 * Threads for the layers: a pool (NULL: the caller alone) and one packing
 * buffer for gemm.c per thread.
 */
typedef struct conv_exec
{
	mmsa_pool  *pool;
	int			nthreads;
	float	   *bpack[CONV_MAX_THREADS];
	void	   *qwork[CONV_MAX_THREADS];	/* int8 products' (qgemm.h) */
	size_t		qwork_bytes;
} conv_exec;

/*
 * Starts nthreads threads in all (the caller included); 1 = no pool.  The
 * layer functions below that take an ex need one (conv_exec_init(ex, 1)
 * runs everything on the caller).
 */
mmsa_status conv_exec_init(conv_exec *ex, int nthreads, mmsa_error *err);
void		conv_exec_free(conv_exec *ex);

/*
 * Work buffers for int8 convolutions (qconv2d_forward) over products of
 * up to max_k (Cin * k * k), once per ex: none until a model runs at int8.
 */
mmsa_status conv_exec_reserve_int8(conv_exec *ex, int max_k, mmsa_error *err);

/*
 * Packed weights of a k x k convolution (Cout, Cin, k, k), as gemm_pack_a
 * of the (Cout, Cin*k*k) matrix: conv2d_packed_floats floats.
 */
size_t		conv2d_packed_floats(int Cout, int Cin, int k);
void		conv2d_weight_pack(float *packed, const float *w, int Cout, int Cin, int k);

/* Output size of a convolution or pooling along one axis. */
static inline int
conv_out_size(int in, int k, int stride, int pad)
{
	return (in + 2 * pad - k) / stride + 1;
}

/*
 * out: (Cout, B, Ho, Wo) = act(weight * inp + bias [+ residual])
 * inp: (Cin, B, H, W), weight: (Cout, Cin, k, k) packed by conv2d_weight_pack,
 * bias: (Cout) or NULL,
 * residual: (Cout, B, Ho, Wo) or NULL (added before the ReLU), relu: 0/1.
 * Zero padding of `pad` on every side.  A stride-2 convolution given a
 * work buffer of conv2d_work_floats floats reads its input through phase
 * planes built there (plain copies of every other pixel); without one,
 * or for other strides, the im2col unfolding is gathered block by block
 * into the packing buffers of ex (through offset tables when output rows
 * are short: B * H * W must fit in an int).  The results are the same
 * floats either way.  out must not overlap inp or work; residual may be
 * out itself only where gemm_residual_in_place_ok(Cin * k * k).
 */
size_t		conv2d_work_floats(int Cin, int B, int H, int W, int k, int stride, int pad);
void		conv2d_forward(const conv_exec *ex, float *out, const float *inp, const float *weight,
						   const float *bias, const float *residual, int relu,
						   int B, int Cin, int H, int W, int Cout,
						   int k, int stride, int pad, float *work, size_t work_floats);

/*
 * conv2d_forward at int8 (qgemm.h): qweight (Cout, Cin * k * k) packed by
 * qgemm_pack_a, scale (Cout) of each output channel's sums, act_inv (Cin *
 * k * k) the reciprocals of the activation scales of the product's rows
 * (qgemm.h: each input channel's, once per tap); the input is quantized as it
 * is packed (a 1x1 stride-1 convolution reads it in place, others gather
 * their im2col rows), and bias, residual and ReLU are applied to the float
 * results as they are stored.  ex must hold work buffers for
 * Cin * k * k (conv_exec_reserve_int8).  residual may be out itself.
 */
void		qconv2d_forward(const conv_exec *ex, float *out, const float *inp,
							const int8_t *qweight, const float *scale, const float *act_inv,
							const float *bias, const float *residual, int relu,
							int B, int Cin, int H, int W, int Cout,
							int k, int stride, int pad);

/*
 * Winograd convolutions for 3x3 stride-1 pad-1 convolutions, F(m x m, 3x3)
 * with output tiles of m = WINOGRAD_F4 or WINOGRAD_F2: each (m+2)x(m+2)
 * input tile (stride m) is transformed (V = B^T d B), the (m+2)^2
 * transformed positions are that many matrix products M = U (Cout, Cin) x
 * V (Cin, tiles), and each m x m output tile is A^T M A.  F(4x4, 3x3): 36
 * multiplications per 16 outputs instead of 144; F(2x2, 3x3): 16 per 4
 * instead of 36, with transformed weights 16/9 (not 4) times the size of
 * the kernels, for small maps where the weights are streamed from memory
 * for little work.
 *
 * winograd_weight_transform: U: (P, Cout, Cin) = G g G^T of w: (Cout, Cin,
 * 3, 3), P = winograd_positions(m).
 * winograd_weight_pack: the P matrices U[p] each packed by gemm_pack_a,
 * winograd_packed_floats floats.
 * winograd_floats: floats of one transformed tensor (P, C, tiles) for a
 * batch of B images of H x W; winograd_pass_floats, for `tiles` tiles.
 * The P matrices (C, tiles) lie WINOGRAD_ROW_PAD floats apart: with
 * strides of a multiple of 4 KiB (64 channels x 32 tiles, 256 x 16) the
 * 36 stores of a tile's transform would all fall into one set of the L1
 * cache.
 */
#define WINOGRAD_F4 4			/* F(4x4, 3x3): output tiles of 4 x 4 */
#define WINOGRAD_F2 2			/* F(2x2, 3x3): output tiles of 2 x 2 */
#define WINOGRAD_POSITIONS 36	/* the most positions: F(4x4, 3x3)'s 6 x 6 */
#define WINOGRAD_ROW_PAD 16

/* Transformed positions of F(m x m, 3x3): (m + 2)^2. */
static inline int
winograd_positions(int m)
{
	return (m + 2) * (m + 2);
}

void		winograd_weight_transform(float *U, const float *w, int Cout, int Cin, int m);
size_t		winograd_packed_floats(int Cout, int Cin, int m);
void		winograd_weight_pack(float *Up, const float *U, int Cout, int Cin, int m);
size_t		winograd_floats(int C, int B, int H, int W, int m);
size_t		winograd_pass_floats(int C, int tiles, int m);

/*
 * Most tiles per pass of conv2d_winograd_forward when V holds v_floats
 * floats and M m_floats (at least 1: each holds winograd_pass_floats(C, 1,
 * m)), never over WINOGRAD_PASS_MAX_TILES.
 */
#define WINOGRAD_PASS_MAX_TILES 128
int			winograd_pass_tiles(int Cin, int Cout, size_t v_floats, size_t m_floats, int m);

/*
 * out: (Cout, B, H, W) = act(conv3x3(inp) + bias [+ residual]), stride 1,
 * zero padding 1, with Up from winograd_weight_pack for the same m.  V and
 * M are work buffers of v_floats and m_floats floats, at least
 * winograd_pass_floats(Cin, 1, m) and winograd_pass_floats(Cout, 1, m);
 * the tiles are done in passes of nearly equal size, of at most
 * winograd_pass_tiles(..) (all at once when there are no more and V holds
 * winograd_floats(Cin, B, H, W, m) and M winograd_floats(Cout, B, H, W,
 * m)), with the same results whatever the sizes.  Neither may
 * overlap inp, out or residual, nor each other.
 */
void		conv2d_winograd_forward(const conv_exec *ex, float *out,
									const float *inp, const float *Up,
									const float *bias, const float *residual,
									int relu, int B, int Cin, int H, int W,
									int Cout, float *V, size_t v_floats,
									float *M, size_t m_floats, int m);

/*
 * out: (C, B, Ho, Wo) = max over k x k windows of inp: (C, B, H, W), with
 * stride and padding; padded cells never win (-inf padding, as PyTorch).
 * On inputs >= 0 (after a ReLU) this equals Keras' ZeroPadding2D followed
 * by a 'valid' MaxPooling2D.
 */
void		maxpool2d_forward(const conv_exec *ex, float *out, const float *inp, int C, int B,
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
 * out: (B, OC) = inp: (B, IC) x weight^T + bias, weight: (OC, IC) packed
 * by conv2d_weight_pack(.., OC, IC, 1).  work: (IC + OC) * B floats.
 */
void		linear_forward(const conv_exec *ex, float *out, const float *inp,
						   const float *weight, const float *bias,
						   int B, int IC, int OC, float *work);

#endif
