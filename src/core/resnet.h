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
#include <stdint.h>

#include "conv.h"
#include "mmsa_error.h"
#include "packfile.h"
#include "precision.h"

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

/*
 * A convolution's int8 form (qgemm.h), in the mapped int8 sidecar
 * (model.int8.packed, resnet_int8.c): weights int8 per output channel,
 * packed; the scale of each output channel's sums (weight scale times the
 * activation scale) and the reciprocal of the activation scale.
 */
typedef struct resnet_qconv
{
	const int8_t *weight;		/* qgemm_pack_a of (cout, cin * k * k) */
	const float *scale;			/* (cout) */
	const float *act_inv;		/* (cin * k * k) 1 / activation scale of
								 * each row of the product */
} resnet_qconv;

/* One convolution with its BatchNorm folded in. */
typedef struct resnet_conv
{
	int			id;				/* place in a forward pass: stem 0, then each
								 * block's conv1, conv2, downsample, conv3 */
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
	resnet_qconv q;				/* int8 form, when the model runs at int8 */
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

	/*
	 * int8 (resnet_model_set_precision): the mapped int8 sidecar, and the
	 * calibration statistics being gathered (resnet_calibrate), or NULL
	 */
	mmsa_precision precision;
	mmsa_pack_map qpack;
	int			int8_all;		/* every convolution but the stem at int8
								 * (measurement: mmsa bench --profile) */
	struct resnet_calibration *calib;	/* being gathered, or NULL */
	char	   *dir;
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

/*
 * int8 inference (resnet_int8.c).
 *
 * The 1x1 convolutions (resnet_int8_plan) run on the integer kernels of
 * qgemm.h: their weights int8 per output channel, their inputs unsigned
 * 7-bit with one scale per tensor.  The scales come from a calibration
 * that runs the fp32 network twice over the same images (resnet_calibrate
 * with pass 1, then 2): the first records the largest input value of
 * every convolution but the stem, the second a histogram of each input
 * over [0, that largest]; resnet_calibration_finish then picks for each
 * the clip value (the value quantized to 127) that minimizes the expected
 * squared error of quantization over its histogram (rounding below the
 * clip, clipping above).  (A scale per input channel, folded into the
 * weights, was measured and rejected: test/bench/HISTORY.md.)
 * resnet_calibration_write stores the clips and the images' identity as
 * JSON (dir/calibration.json).
 * resnet_model_write_int8 quantizes the folded weights and writes them
 * with the scales as the int8 sidecar dir/model.int8.packed, whose header
 * records the model's identity, the calibration file's hash and image
 * count, and a checksum of its data.  resnet_model_set_precision(m,
 * MMSA_PRECISION_INT8) maps it read-only (shared by every process) and
 * verifies it: a missing one is MMSA_ERR_IO, a stale, corrupt or foreign
 * one MMSA_ERR_FORMAT, never used.
 */
#define RESNET_CALIB_FILE "calibration.json"
#define RESNET_INT8_FILE "model.int8.packed"
#define RESNET_INT8_MAX_K (512 * 9)	/* the longest product: 3x3 x 512 */
#define RESNET_CALIB_BINS 2048

/* [0], the stem's, is unused */
typedef struct resnet_calibration
{
	int			pass;			/* 1: maxima, 2: histograms */
	int			images;			/* of pass 1 */
	uint64_t	ids_hash;		/* FNV-1a of the image names, in order */
	char		source[128];	/* what the images are */
	char		model_hash[17];	/* the model.safetensors it was made for (read) */
	float		max[RESNET_CONVS];	/* largest input value */
	float		clip[RESNET_CONVS];	/* resnet_calibration_finish */
	double		hist[RESNET_CONVS][RESNET_CALIB_BINS];	/* pass 2 */
} resnet_calibration;

/* Adds B images (B, 3, 224, 224) to cal's pass (cal->pass). */
mmsa_status resnet_calibrate(resnet_model *m, const float *images, int B,
							 resnet_calibration *cal, mmsa_error *err);
void		resnet_calibration_finish(resnet_calibration *cal);
mmsa_status resnet_calibration_write(const resnet_model *m, const resnet_calibration *cal,
									 const char *path, mmsa_error *err);

/* Reads what _write wrote (the clips) into cal; *file_hash: FNV-1a of the file. */
mmsa_status resnet_calibration_read(const char *path, resnet_calibration *cal,
									uint64_t *file_hash, mmsa_error *err);

/* Writes dir/model.int8.packed from dir/model.safetensors and dir/calibration.json. */
mmsa_status resnet_model_write_int8(const char *dir, mmsa_error *err);

/* fp32 or int8 for the next forward passes (int8: see above). */
mmsa_status resnet_model_set_precision(resnet_model *m, mmsa_precision p, mmsa_error *err);

/* Whether convolution c runs at int8 when the model does (the per-layer choice). */
int			resnet_int8_plan(const resnet_model *m, const resnet_conv *c);

/* Softmax over each row of x: (B, n), in place. */
void		resnet_softmax(float *x, int B, int n);

#endif
