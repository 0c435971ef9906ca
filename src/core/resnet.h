/*
 * resnet.h
 *	  ResNet-50 v1 image encoder (inference).
 *
 * A model directory holds model.safetensors with torchvision's tensor
 * names (conv1.weight, bn1.{weight,bias,running_mean,running_var},
 * layerL.I.convJ.weight, layerL.I.bnJ.*, layerL.0.downsample.{0,1}.*,
 * fc.weight, fc.bias; optionally a bias per convolution, *.convJ.bias,
 * conv1.bias, layerL.0.downsample.0.bias, as Keras weights have), and
 * config.json:
 *
 *   {"architecture": "resnet50",
 *    "stride_on": "3x3" | "1x1",   (torchvision v1.5 | Keras/Caffe v1)
 *    "batchnorm_eps": 1e-5,
 *    "num_classes": 1000,
 *    "preprocess": {"resize": 256, "crop": 224, "channel_order": "RGB",
 *                   "scale": 0.00392156862745098, "mean": [..], "std": [..]},
 *    "labels": "labels.txt"}       (optional, one class name a line)
 *
 * BatchNorm is folded into the convolution weights and biases at load
 * time, and the weights packed for gemm.c: a private copy per process
 * (about 100 MB), unless dir/model.packed (packfile.h, written by
 * resnet_model_write_packed / `mmsa pack`) holds exactly that layout for
 * this model.safetensors and config: then it is mapped read-only and
 * shared by every process, and model.safetensors is not read beyond its
 * identity.  The results are the same bit for bit.  A missing or stale
 * sidecar is ignored (private build).  The forward pass takes a batch of preprocessed images
 * (B, 3, 224, 224) and gives the 7x7x2048 map before pooling as 49 tokens
 * (B, 49, 2048), the pooled vector (B, 2048) and the class logits.
 *
 * A model owns reusable work buffers: one forward pass at a time per model.
 */
#ifndef MMSA_RESNET_H
#define MMSA_RESNET_H

#include <stddef.h>

#include "conv.h"
#include "mmsa_error.h"
#include "packfile.h"

#define RESNET_IMAGE_SIZE 224
#define RESNET_TOKENS 49		/* 7 x 7 positions of the last feature map */
#define RESNET_FEATURES 2048
#define RESNET_CONVS 53			/* stem + 16 blocks x 3 + 4 shortcuts */
#define RESNET_SUB_BATCH 4

typedef enum resnet_stride_on
{
	RESNET_STRIDE_ON_3X3,		/* torchvision v1.5 */
	RESNET_STRIDE_ON_1X1		/* Keras / Caffe v1 */
} resnet_stride_on;

/* One convolution with its BatchNorm folded in. */
typedef struct resnet_conv
{
	int			cin,
				cout,
				k,
				stride,
				pad;
	int			winograd;		/* 3x3 stride 1: WINOGRAD_F4 or _F2, weight
								 * holds U (positions, cout, cin); else 0 */
	float	   *weight;			/* (cout, cin, k, k) (or U) packed for gemm.c,
								 * in the model's arena */
	float	   *bias;			/* (cout) */
} resnet_conv;

typedef struct resnet_block
{
	resnet_conv conv1;			/* 1x1 */
	resnet_conv conv2;			/* 3x3 */
	resnet_conv conv3;			/* 1x1 */
	int			has_downsample;
	resnet_conv downsample;		/* 1x1 on the shortcut */
} resnet_block;

/*
 * Time spent in each convolution, in the order a forward pass runs them
 * (the stem, then each block's conv1, conv2, downsample, conv3), summed
 * over the forward passes while resnet_model.profile points at one: for
 * the benchmark (mmsa bench resnet --profile), off (NULL) otherwise.
 */
#define RESNET_CONVS 53

typedef struct resnet_profile
{
	long		forwards;		/* chunks run while profiling */
	double		ms[RESNET_CONVS];
	const struct resnet_conv *conv[RESNET_CONVS];
	int			H[RESNET_CONVS];	/* input size */
	int			next;			/* the next convolution's place */
} resnet_profile;

typedef struct resnet_model
{
	resnet_stride_on stride_on;
	float		bn_eps;
	int			num_classes;
	resnet_conv stem;			/* 7x7/2 */
	resnet_block blocks[16];
	float	   *fc_weight;		/* (num_classes, 2048), packed for gemm.c */
	float	   *fc_bias;		/* (num_classes) */
	float	   *arena;			/* every folded weight (private build), or NULL */
	size_t		arena_floats;	/* the layout's size, private or mapped */
	mmsa_pack_map pack;			/* the mapped sidecar, when used */
	mmsa_pack_identity source_id;	/* of model.safetensors */
	char	   *preprocess_json;	/* the "preprocess" object as JSON, or NULL */
	char	  **labels;			/* num_classes names, or NULL */

	/*
	 * Images per pass through the network: a larger batch is run in
	 * chunks of this many, which keeps the working set of each layer in
	 * cache (default RESNET_SUB_BATCH; callers may change it after load).
	 */
	int			sub_batch;

	/*
	 * work buffers, grown to the largest chunk seen: the activations (laid
	 * out from both ends, resnet.c) and a pass buffer of col_floats: the
	 * phase planes of the stride-2 convolutions, and Winograd's V, or V
	 * and M (resnet.c: winograd_placement); slot: see resnet_input_slot
	 */
	int			ws_batch;
	size_t		work_floats;
	size_t		col_floats;
	float	   *work;
	float	   *col;
	float	   *slot;
	/* threads: as many as OpenBLAS is set to use, started on first use */
	conv_exec	exec;
	resnet_profile *profile;	/* NULL, or where convolutions are timed */
} resnet_model;

/*
 * Loads dir/config.json and dir/model.safetensors (and the labels file
 * when named).  A missing file gives MMSA_ERR_IO; a missing tensor, a
 * wrong shape or a bad config gives MMSA_ERR_FORMAT.
 */
mmsa_status resnet_model_load(const char *dir, resnet_model **out, mmsa_error *err);

/* resnet_model_load_flags flags */
#define RESNET_LOAD_NO_SIDECAR	0x1 /* build privately even if model.packed matches */

mmsa_status resnet_model_load_flags(const char *dir, int flags,
									resnet_model **out, mmsa_error *err);

/*
 * Writes the folded, packed weights of m (a private build) as a sidecar
 * (path: usually dir/model.packed), atomically.
 */
mmsa_status resnet_model_write_packed(const resnet_model *m, const char *path,
									  mmsa_error *err);

void		resnet_model_free(resnet_model *m);

/*
 * A place for one image (3, 224, 224) inside the model's own work
 * buffers, so that the caller may write an image there and pass it to
 * resnet_forward with B = 1 without another private copy of it; NULL
 * when out of memory (err says so).  The place stays valid as long as
 * the model, but resnet_forward overwrites what it holds: write the image
 * anew before each call.  An image elsewhere is copied in as usual.
 */
float	   *resnet_input_slot(resnet_model *m, mmsa_error *err);

/*
 * images: (B, 3, 224, 224) preprocessed.  Any of feature_map (B, 49, 2048),
 * pooled (B, 2048) and logits (B, num_classes) may be NULL.  Returns
 * MMSA_ERR_CANCELED when interrupted, MMSA_ERR_NOMEM when work buffers
 * cannot be grown.
 */
mmsa_status resnet_forward(resnet_model *m, const float *images, int B,
						   float *feature_map, float *pooled, float *logits,
						   mmsa_error *err);

/* Softmax over each row of x: (B, n), in place. */
void		resnet_softmax(float *x, int B, int n);

#endif
