/*
 * resnet.c
 *	  ResNet-50 v1 inference (see resnet.h): loading torchvision-named
 *	  safetensors weights with BatchNorm folded into the convolutions, and
 *	  the batched forward pass over (C, B, H, W) activations.
 */
#include "resnet.h"
#include "cpu.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cblas.h>

#include "conv.h"
#include "gemm.h"
#include "packfile.h"
#include "resnet_internal.h"
#include "safetensors.h"

#define GEMM_MR_FOR_PACK GEMM_MR

#define RESNET_MAX_BATCH 1024
/*
 * The pass buffer holds the phase planes of the stride-2 convolutions
 * (conv2d_work_floats), whole, and at least this many tiles per image of
 * 64 channels of Winograd's V (about 288 KiB: 32 tiles of the 56x56
 * layers); the 1x1 stride-1 convolutions need no buffer.  Winograd
 * convolutions use all of it (winograd_placement), and do larger
 * transforms in passes (groups of tiles), which change no result.  The
 * stem's planes (2.1 MB an image) make it larger than this.
 */
#define RESNET_PASS_TILES 32

static const int stage_blocks[4] = {3, 4, 6, 3};
static const int stage_width[4] = {64, 128, 256, 512};

static void
set_conv_shape(resnet_conv *c, int cin, int cout, int k, int stride, int pad)
{
	c->cin = cin;
	c->cout = cout;
	c->k = k;
	c->stride = stride;
	c->pad = pad;
	c->winograd = (k == 3 && stride == 1 && pad == 1) ? WINOGRAD_F4 : 0;
	c->weight = NULL;
	c->bias = NULL;
}

/*
 * Fills in the shapes of every convolution for the model's stride
 * placement: the first block of stages 2-4 halves the resolution, on its
 * 3x3 convolution (torchvision) or on its first 1x1 convolution (Keras),
 * and always on the shortcut's 1x1 convolution.
 */
static void
resnet_plan(resnet_model *m)
{
	int			in_ch = 64;
	int			n = 0;

	int			id = 0;

	set_conv_shape(&m->stem, 3, 64, 7, 2, 3);
	m->stem.id = id++;
	for (int s = 0; s < 4; s++)
		for (int i = 0; i < stage_blocks[s]; i++)
		{
			resnet_block *b = &m->blocks[n++];
			int			w = stage_width[s];
			int			stride = (s > 0 && i == 0) ? 2 : 1;
			int			s1 = m->stride_on == RESNET_STRIDE_ON_1X1 ? stride : 1;
			int			s3 = m->stride_on == RESNET_STRIDE_ON_3X3 ? stride : 1;

			set_conv_shape(&b->conv1, in_ch, w, 1, s1, 0);
			set_conv_shape(&b->conv2, w, w, 3, s3, 1);
			/*
			 * On the 7x7 maps of stage 5 a batch of one image has only 4
			 * tiles of F(4x4, 3x3): its 36 transformed weight matrices (4
			 * times the size of the 3x3 kernels, 36 MiB per convolution)
			 * would be streamed from memory for very little work (im2col
			 * measured 3.7 ms there against 5.4 ms, one thread).  F(2x2,
			 * 3x3) has 16 tiles of 2x2 there, 16 matrices (16 MiB), and
			 * 1.7 times fewer multiplications than im2col.
			 */
			if (s == 3 && b->conv2.winograd)
				b->conv2.winograd = WINOGRAD_F2;
			set_conv_shape(&b->conv3, w, 4 * w, 1, 1, 0);
			b->has_downsample = (i == 0);
			if (b->has_downsample)
				set_conv_shape(&b->downsample, in_ch, 4 * w, 1, stride, 0);
			in_ch = 4 * w;
			b->conv1.id = id++;
			b->conv2.id = id++;
			if (b->has_downsample)
				b->downsample.id = id++;
			b->conv3.id = id++;
		}
}

/* Floats of a convolution's packed weights (Winograd: 36 matrices). */
static size_t
conv_weight_floats(const resnet_conv *c)
{
	return c->winograd ? winograd_packed_floats(c->cout, c->cin, c->winograd) :
		conv2d_packed_floats(c->cout, c->cin, c->k);
}

/*
 * Reads conv_name.weight (and conv_name.bias when present) and the
 * BatchNorm bn_name.{weight,bias,running_mean,running_var} of c, and
 * writes the folded weight (cout, cin, k, k) to folded and bias to bias:
 * w' = w * g / sqrt(var + eps),  b' = (b - mean) * g / sqrt(var + eps) + beta.
 */
mmsa_status
resnet_fold_conv(safetensors_file *f, const resnet_conv *c, const char *conv_name,
				 const char *bn_name, float eps, float *folded, float *bias,
				 mmsa_error *err)
{
	char		name[128];
	int64_t		wshape[4] = {c->cout, c->cin, c->k, c->k};
	int64_t		vshape[1] = {c->cout};
	const float *w,
			   *cb = NULL,
			   *gamma,
			   *beta,
			   *mean,
			   *var;
	size_t		per_out = (size_t) c->cin * c->k * c->k;

	snprintf(name, sizeof(name), "%s.weight", conv_name);
	if ((w = safetensors_get_f32(f, name, 4, wshape, err)) == NULL)
		return err ? err->status : MMSA_ERR_FORMAT;
	snprintf(name, sizeof(name), "%s.bias", conv_name);
	if (safetensors_find(f, name) != NULL &&
		(cb = safetensors_get_f32(f, name, 1, vshape, err)) == NULL)
		return err ? err->status : MMSA_ERR_FORMAT;
	snprintf(name, sizeof(name), "%s.weight", bn_name);
	if ((gamma = safetensors_get_f32(f, name, 1, vshape, err)) == NULL)
		return err ? err->status : MMSA_ERR_FORMAT;
	snprintf(name, sizeof(name), "%s.bias", bn_name);
	if ((beta = safetensors_get_f32(f, name, 1, vshape, err)) == NULL)
		return err ? err->status : MMSA_ERR_FORMAT;
	snprintf(name, sizeof(name), "%s.running_mean", bn_name);
	if ((mean = safetensors_get_f32(f, name, 1, vshape, err)) == NULL)
		return err ? err->status : MMSA_ERR_FORMAT;
	snprintf(name, sizeof(name), "%s.running_var", bn_name);
	if ((var = safetensors_get_f32(f, name, 1, vshape, err)) == NULL)
		return err ? err->status : MMSA_ERR_FORMAT;

	for (int o = 0; o < c->cout; o++)
	{
		double		scale;

		if (!(var[o] >= 0.0f) || !isfinite(var[o]))
			return mmsa_set_error(err, MMSA_ERR_FORMAT,
								  "tensor \"%s.running_var\" has a negative or non-finite value at %d",
								  bn_name, o);
		scale = gamma[o] / sqrt((double) var[o] + eps);
		for (size_t i = 0; i < per_out; i++)
			folded[o * per_out + i] = (float) (w[o * per_out + i] * scale);
		bias[o] = (float) (((cb ? cb[o] : 0.0) - mean[o]) * scale + beta[o]);
	}
	return MMSA_OK;
}

/*
 * Folds c (resnet_fold_conv) and writes its weight, (transformed and)
 * packed, and bias into c->weight / c->bias (already pointing into the
 * arena).
 */
static mmsa_status
load_folded_conv(safetensors_file *f, resnet_conv *c, const char *conv_name,
				 const char *bn_name, float eps, mmsa_error *err)
{
	size_t		per_out = (size_t) c->cin * c->k * c->k;
	float	   *folded;
	mmsa_status status;

	/* fold into a scratch copy, then (transform and) pack into the arena */
	folded = malloc(sizeof(float) * (per_out * c->cout +
									 (c->winograd ? (size_t) winograd_positions(c->winograd) * c->cout * c->cin : 0)));
	if (folded == NULL)
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
	if ((status = resnet_fold_conv(f, c, conv_name, bn_name, eps, folded, c->bias, err)) != MMSA_OK)
	{
		free(folded);
		return status;
	}
	if (c->winograd)
	{
		float	   *U = folded + per_out * c->cout;

		winograd_weight_transform(U, folded, c->cout, c->cin, c->winograd);
		winograd_weight_pack(c->weight, U, c->cout, c->cin, c->winograd);
	}
	else
		conv2d_weight_pack(c->weight, folded, c->cout, c->cin, c->k);
	free(folded);
	return MMSA_OK;
}

/*
 * The convolution with forward place id (resnet_conv.id), and its tensors'
 * names in model.safetensors (each of 64 bytes); NULL past the last.
 */
resnet_conv *
resnet_conv_at(resnet_model *m, int id, char *conv_name, char *bn_name)
{
	if (id == 0)
	{
		snprintf(conv_name, 64, "conv1");
		snprintf(bn_name, 64, "bn1");
		return &m->stem;
	}
	for (int s = 0, n = 0; s < 4; s++)
		for (int i = 0; i < stage_blocks[s]; i++, n++)
		{
			resnet_block *b = &m->blocks[n];
			resnet_conv *convs[3] = {&b->conv1, &b->conv2, &b->conv3};

			for (int j = 0; j < 3; j++)
				if (convs[j]->id == id)
				{
					snprintf(conv_name, 64, "layer%d.%d.conv%d", s + 1, i, j + 1);
					snprintf(bn_name, 64, "layer%d.%d.bn%d", s + 1, i, j + 1);
					return convs[j];
				}
			if (b->has_downsample && b->downsample.id == id)
			{
				snprintf(conv_name, 64, "layer%d.%d.downsample.0", s + 1, i);
				snprintf(bn_name, 64, "layer%d.%d.downsample.1", s + 1, i);
				return &b->downsample;
			}
		}
	return NULL;
}

/*
 * Points c's weight and bias into the arena at *cursor and advances it,
 * each rounded to 64 bytes (the sidecar layout, packfile.h).  With a NULL
 * arena it only counts.
 */
static void
place_conv(resnet_conv *c, float **cursor)
{
	c->weight = *cursor;
	*cursor += MMSA_PACK_ROUND(conv_weight_floats(c));
	c->bias = *cursor;
	*cursor += MMSA_PACK_ROUND(c->cout);
}

/*
 * Reads config.json: architecture, stride placement, BatchNorm epsilon,
 * number of classes, the preprocessing object and the labels file name
 * (copied into labels_file, empty when none).
 */
static mmsa_status
load_config(const char *dir, resnet_model *m, char *labels_file,
			size_t labels_size, mmsa_error *err)
{
	char		path[4096];
	json_error_t jerr;
	json_t	   *root,
			   *v;
	mmsa_status status = MMSA_OK;
	const char *s;

	labels_file[0] = '\0';
	snprintf(path, sizeof(path), "%s/config.json", dir);
	root = json_load_file(path, 0, &jerr);
	if (root == NULL)
	{
		struct stat st;

		if (stat(path, &st) != 0)
			return mmsa_set_error(err, MMSA_ERR_IO, "could not read \"%s\": %s",
								  path, strerror(errno));
		return mmsa_set_error(err, MMSA_ERR_FORMAT, "\"%s\" is not valid JSON: %s (line %d)",
							  path, jerr.text, jerr.line);
	}
	if (!json_is_object(root))
	{
		status = mmsa_set_error(err, MMSA_ERR_FORMAT, "\"%s\" is not a JSON object", path);
		goto done;
	}

	v = json_object_get(root, "architecture");
	if (!json_is_string(v) || strcmp(json_string_value(v), "resnet50") != 0)
	{
		status = mmsa_set_error(err, MMSA_ERR_FORMAT,
								"\"%s\": \"architecture\" must be \"resnet50\"", path);
		goto done;
	}

	v = json_object_get(root, "stride_on");
	s = json_is_string(v) ? json_string_value(v) : "";
	if (strcmp(s, "3x3") == 0)
		m->stride_on = RESNET_STRIDE_ON_3X3;
	else if (strcmp(s, "1x1") == 0)
		m->stride_on = RESNET_STRIDE_ON_1X1;
	else
	{
		status = mmsa_set_error(err, MMSA_ERR_FORMAT,
								"\"%s\": \"stride_on\" must be \"3x3\" (torchvision) or \"1x1\" (Keras)", path);
		goto done;
	}

	v = json_object_get(root, "batchnorm_eps");
	if (!json_is_number(v) || !(json_number_value(v) > 0.0) || json_number_value(v) > 1.0)
	{
		status = mmsa_set_error(err, MMSA_ERR_FORMAT,
								"\"%s\": \"batchnorm_eps\" must be a number in (0, 1]", path);
		goto done;
	}
	m->bn_eps = (float) json_number_value(v);

	v = json_object_get(root, "num_classes");
	if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 100000)
	{
		status = mmsa_set_error(err, MMSA_ERR_FORMAT,
								"\"%s\": \"num_classes\" must be an integer in 1..100000", path);
		goto done;
	}
	m->num_classes = (int) json_integer_value(v);

	v = json_object_get(root, "preprocess");
	if (v != NULL)
	{
		if (!json_is_object(v))
		{
			status = mmsa_set_error(err, MMSA_ERR_FORMAT,
									"\"%s\": \"preprocess\" must be an object", path);
			goto done;
		}
		m->preprocess_json = json_dumps(v, JSON_COMPACT);
		if (m->preprocess_json == NULL)
		{
			status = mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
			goto done;
		}
	}

	v = json_object_get(root, "labels");
	if (v != NULL)
	{
		if (!json_is_string(v) || json_string_length(v) == 0 ||
			json_string_length(v) >= labels_size ||
			strchr(json_string_value(v), '/') != NULL)
		{
			status = mmsa_set_error(err, MMSA_ERR_FORMAT,
									"\"%s\": \"labels\" must be a file name in the model directory", path);
			goto done;
		}
		strcpy(labels_file, json_string_value(v));
	}

done:
	json_decref(root);
	return status;
}

/* Reads num_classes lines of class names from dir/file. */
static mmsa_status
load_labels(const char *dir, const char *file, resnet_model *m, mmsa_error *err)
{
	char		path[4096];
	FILE	   *fp;
	char		line[1024];
	int			n = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fp = fopen(path, "r");
	if (fp == NULL)
		return mmsa_set_error(err, MMSA_ERR_IO, "could not open labels file \"%s\": %s",
							  path, strerror(errno));
	m->labels = calloc(m->num_classes, sizeof(char *));
	if (m->labels == NULL)
	{
		fclose(fp);
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
	}
	while (fgets(line, sizeof(line), fp) != NULL)
	{
		size_t		len = strcspn(line, "\r\n");

		line[len] = '\0';
		if (n >= m->num_classes)
		{
			n++;
			break;
		}
		if ((m->labels[n] = strdup(line)) == NULL)
		{
			fclose(fp);
			return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
		}
		n++;
	}
	fclose(fp);
	if (n != m->num_classes)
		return mmsa_set_error(err, MMSA_ERR_FORMAT,
							  "labels file \"%s\" has %s%d lines; expected %d (num_classes)",
							  path, n > m->num_classes ? "more than " : "",
							  n > m->num_classes ? m->num_classes : n, m->num_classes);
	return MMSA_OK;
}

/* Points every weight and bias into base, in the layout's order; returns the floats used. */
static size_t
place_all(resnet_model *m, float *base)
{
	float	   *cursor = base;

	place_conv(&m->stem, &cursor);
	for (int n = 0; n < 16; n++)
	{
		resnet_block *b = &m->blocks[n];

		place_conv(&b->conv1, &cursor);
		place_conv(&b->conv2, &cursor);
		place_conv(&b->conv3, &cursor);
		if (b->has_downsample)
			place_conv(&b->downsample, &cursor);
	}
	m->fc_weight = cursor;
	cursor += MMSA_PACK_ROUND(conv2d_packed_floats(m->num_classes, RESNET_FEATURES, 1));
	m->fc_bias = cursor;
	cursor += MMSA_PACK_ROUND(m->num_classes);
	return (size_t) (cursor - base);
}

/* The sidecar header's description of the layout (and of what it was folded with). */
static void
pack_config(const resnet_model *m, size_t total, int64_t config[MMSA_PACK_CONFIG])
{
	uint32_t	eps_bits;

	memcpy(&eps_bits, &m->bn_eps, sizeof(eps_bits));
	memset(config, 0, sizeof(int64_t) * MMSA_PACK_CONFIG);
	config[0] = m->stride_on;
	config[1] = m->num_classes;
	config[2] = eps_bits;
	config[3] = (int64_t) total;
	config[4] = GEMM_MR_FOR_PACK;
	config[5] = WINOGRAD_POSITIONS;
	config[6] = m->blocks[15].conv2.winograd;	/* stage 5: F(2x2, 3x3) */
}

mmsa_status
resnet_model_load(const char *dir, resnet_model **out, mmsa_error *err)
{
	return resnet_model_load_flags(dir, 0, out, err);
}

mmsa_status
resnet_model_load_flags(const char *dir, int flags, resnet_model **out,
						mmsa_error *err)
{
	resnet_model *m;
	safetensors_file f;
	char		path[4096];
	char		labels_file[256];
	char		conv_name[64],
				bn_name[64];
	size_t		total;
	mmsa_status status;
	int64_t		fc_wshape[2],
				fc_bshape[1];
	const float *fc_w,
			   *fc_b;

	*out = NULL;
	/* the kernels' path: an error, not SIGILL, on a CPU without AVX2 */
	if ((status = mmsa_isa_init(err)) != MMSA_OK)
		return status;
	memset(&f, 0, sizeof(f));
	m = calloc(1, sizeof(resnet_model));
	if (m == NULL)
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
	m->sub_batch = RESNET_SUB_BATCH;
	if ((m->dir = strdup(dir)) == NULL)
	{
		free(m);
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
	}

	if ((status = load_config(dir, m, labels_file, sizeof(labels_file), err)) != MMSA_OK)
		goto fail;
	if (labels_file[0] != '\0' &&
		(status = load_labels(dir, labels_file, m, err)) != MMSA_OK)
		goto fail;

	resnet_plan(m);
	total = place_all(m, NULL);
	m->arena_floats = total;

	snprintf(path, sizeof(path), "%s/model.safetensors", dir);
	if ((status = mmsa_pack_identity_of(path, &m->source_id, err)) != MMSA_OK)
		goto fail;

	/* the shared sidecar, when it is there and made for this model */
	if (!(flags & RESNET_LOAD_NO_SIDECAR))
	{
		char		ppath[4096];
		mmsa_error	perr;
		int64_t		want[MMSA_PACK_CONFIG];

		snprintf(ppath, sizeof(ppath), "%s/%s", dir, MMSA_PACK_FILE);
		pack_config(m, total, want);
		if (mmsa_pack_open(ppath, MMSA_PACK_KIND_RESNET, &m->source_id, &m->pack, &perr) == MMSA_OK)
		{
			if (m->pack.data_floats == total &&
				memcmp(m->pack.config, want, sizeof(want)) == 0)
			{
				/* read-only: nothing writes the weights during inference */
				place_all(m, (float *) m->pack.data);
				*out = m;
				return MMSA_OK;
			}
			mmsa_pack_close(&m->pack);
		}
	}

	m->arena = aligned_alloc(64, total * sizeof(float));
	if (m->arena == NULL)
	{
		status = mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory for %zu weights", total);
		goto fail;
	}
	memset(m->arena, 0, total * sizeof(float));
	place_all(m, m->arena);

	if ((status = safetensors_open(path, &f, err)) != MMSA_OK)
		goto fail;

	for (int id = 0; id < RESNET_CONVS; id++)
	{
		resnet_conv *c = resnet_conv_at(m, id, conv_name, bn_name);

		if ((status = load_folded_conv(&f, c, conv_name, bn_name, m->bn_eps, err)) != MMSA_OK)
			goto fail;
	}

	fc_wshape[0] = m->num_classes;
	fc_wshape[1] = RESNET_FEATURES;
	fc_bshape[0] = m->num_classes;
	if ((fc_w = safetensors_get_f32(&f, "fc.weight", 2, fc_wshape, err)) == NULL ||
		(fc_b = safetensors_get_f32(&f, "fc.bias", 1, fc_bshape, err)) == NULL)
	{
		status = err ? err->status : MMSA_ERR_FORMAT;
		goto fail;
	}
	conv2d_weight_pack(m->fc_weight, fc_w, m->num_classes, RESNET_FEATURES, 1);
	memcpy(m->fc_bias, fc_b, sizeof(float) * m->num_classes);

	safetensors_close(&f);
	*out = m;
	return MMSA_OK;

fail:
	safetensors_close(&f);
	resnet_model_free(m);
	return status;
}

mmsa_status
resnet_model_write_packed(const resnet_model *m, const char *path, mmsa_error *err)
{
	mmsa_pack_writer w;
	int64_t		config[MMSA_PACK_CONFIG];
	const float *data = m->arena ? m->arena : m->pack.data;
	mmsa_status status;

	if (data == NULL)
		return mmsa_set_error(err, MMSA_ERR_INVALID, "no weights to write");
	pack_config(m, m->arena_floats, config);
	if ((status = mmsa_pack_write_begin(&w, path, MMSA_PACK_KIND_RESNET, config,
										&m->source_id, m->arena_floats, err)) != MMSA_OK)
		return status;
	/* the arena is already laid out in rounded slots */
	if ((status = mmsa_pack_write_floats(&w, data, m->arena_floats, err)) != MMSA_OK)
		return status;
	return mmsa_pack_write_end(&w, err);
}

static void
free_workspace(resnet_model *m)
{
	if (m->work != m->slot)
		free(m->work);			/* else kept: the caller holds the slot */
	m->work = NULL;
	free(m->col);
	m->col = NULL;
	m->work_floats = 0;
	m->col_floats = 0;
	m->ws_batch = 0;
}

void
resnet_model_free(resnet_model *m)
{
	if (m == NULL)
		return;
	free_workspace(m);
	free(m->slot);
	conv_exec_free(&m->exec);
	if (m->labels)
		for (int i = 0; i < m->num_classes; i++)
			free(m->labels[i]);
	free(m->labels);
	free(m->preprocess_json);
	free(m->arena);
	mmsa_pack_close(&m->pack);
	mmsa_pack_close(&m->qpack);
	free(m->dir);
	free(m);
}

/*
 * The activations of a chunk live in one work buffer of work_floats
 * floats, laid out block by block from both ends (resnet_forward_chunk):
 * a block's input X sits at one end; its second product T2 next to it;
 * its first product T1 (dead once T2 is computed) and, where the residual
 * cannot be added in place, the shortcut D, after T2; the output Y at the
 * other end, or over X itself when the block has no downsample and the
 * last product may add its residual in place (gemm_residual_in_place_ok).
 * The next block's input is where Y is.  The buffer is sized by the
 * largest such set, not by four copies of the largest activation.
 *
 * A Winograd convolution's V and M go in what it leaves free of the buffer
 * (the spare) and in the pass buffer col, whichever way gives the largest
 * passes (winograd_placement); every one is given room for a tile of M in
 * the spare, and col for a tile of V.
 */
typedef struct block_sizes
{
	int			H1,				/* after conv1 */
				H2;				/* after conv2 (and the block) */
	size_t		x,				/* floats of X, T1, T2, Y (and D) */
				t1,
				t2,
				y;
	int			in_place;		/* conv3 adds its residual in place */
} block_sizes;

static void
get_block_sizes(const resnet_block *b, int H, int B, block_sizes *s)
{
	s->H1 = conv_out_size(H, 1, b->conv1.stride, 0);
	s->H2 = conv_out_size(s->H1, 3, b->conv2.stride, 1);
	s->x = (size_t) b->conv1.cin * B * H * H;
	s->t1 = (size_t) b->conv1.cout * B * s->H1 * s->H1;
	s->t2 = (size_t) b->conv2.cout * B * s->H2 * s->H2;
	s->y = (size_t) b->conv3.cout * B * s->H2 * s->H2;
	s->in_place = gemm_residual_in_place_ok(b->conv3.cin * b->conv3.k * b->conv3.k);
}

/* Floats of the work buffer a block needs (layout above). */
static size_t
block_work_floats(const resnet_block *b, const block_sizes *s)
{
	size_t		far,
				m = 0;

	if (!b->has_downsample && s->in_place)
		far = 0;				/* Y over X */
	else if (b->has_downsample && s->in_place)
		far = s->y;				/* the shortcut straight into Y */
	else if (b->has_downsample)
		far = 2 * s->y;			/* D after T2, Y at the other end */
	else
		far = s->y;
	if (b->conv2.winograd)		/* one tile of M in conv2's spare */
		m = winograd_pass_floats(b->conv2.cout, 1, b->conv2.winograd);
	if (s->t1 + m > far)
		far = s->t1 + m;
	return s->x + s->t2 + far;
}

/*
 * Floats of pass buffer convolution c over H x H needs for B images: for
 * Winograd, all of its transform when that is at most cap, else cap, but
 * never less than one tile; for stride 2, its phase planes; none for the
 * others.
 */
static size_t
pass_floats(const resnet_conv *c, int H, int B, size_t cap)
{
	size_t		need,
				least;

	if (c->winograd)
	{
		int			C = c->cin > c->cout ? c->cin : c->cout;

		need = winograd_floats(C, B, H, H, c->winograd);
		least = winograd_pass_floats(C, 1, c->winograd);
	}
	else						/* stride 2: the phase planes, whole */
		return conv2d_work_floats(c->cin, B, H, H, c->k, c->stride, c->pad);
	if (need > cap)
		need = cap;
	return need > least ? need : least;
}

/*
 * Sizes the work buffers for a batch of B (see above): the activations'
 * buffer, and the pass buffer (RESNET_PASS_TILES per image at most).
 * Grown only, never shrunk.
 */
static mmsa_status
ensure_workspace(resnet_model *m, int B, mmsa_error *err)
{
	size_t		cap = winograd_pass_floats(64, RESNET_PASS_TILES * B, WINOGRAD_F4);
	size_t		work,
				col = 0,
				need;
	int			H = RESNET_IMAGE_SIZE;
	int			C;

	if (B <= m->ws_batch)
		return MMSA_OK;

	/* stem: image at the start, convolution at the end, max pool at the start */
	{
		const resnet_conv *c = &m->stem;
		int			Ho = conv_out_size(H, c->k, c->stride, c->pad),
					Hp = conv_out_size(Ho, 3, 2, 1);
		size_t		si = (size_t) 3 * B * H * H,
					so = (size_t) c->cout * B * Ho * Ho,
					sp = (size_t) c->cout * B * Hp * Hp;

		work = so + (si > sp ? si : sp);
		col = pass_floats(c, H, B, cap);
		H = Hp;
		C = c->cout;
	}
	for (int n = 0; n < 16; n++)
	{
		const resnet_block *b = &m->blocks[n];
		block_sizes s;

		get_block_sizes(b, H, B, &s);
		if ((need = block_work_floats(b, &s)) > work)
			work = need;
		if ((need = pass_floats(&b->conv1, H, B, cap)) > col)
			col = need;
		if ((need = pass_floats(&b->conv2, s.H1, B, cap)) > col)
			col = need;
		if ((need = pass_floats(&b->conv3, s.H2, B, cap)) > col)
			col = need;
		if (b->has_downsample && (need = pass_floats(&b->downsample, H, B, cap)) > col)
			col = need;
		H = s.H2;
		C = b->conv3.cout;
	}
	/* head: features, pooled features and the classifier's work after them */
	need = (size_t) C * B * H * H + (size_t) C * B + (size_t) (C + m->num_classes) * B;
	if (need > work)
		work = need;

	free_workspace(m);
	if ((m->work = malloc(sizeof(float) * work)) == NULL ||
		(col > 0 && (m->col = malloc(sizeof(float) * col)) == NULL))
	{
		free_workspace(m);
		return mmsa_set_error(err, MMSA_ERR_NOMEM,
							  "out of memory for ResNet work buffers (batch %d)", B);
	}
	m->work_floats = work;
	m->col_floats = col;
	m->ws_batch = B;
	return MMSA_OK;
}

float *
resnet_input_slot(resnet_model *m, mmsa_error *err)
{
	if (m->slot == NULL)
	{
		if (ensure_workspace(m, 1, err) != MMSA_OK)
			return NULL;
		m->slot = m->work;
	}
	return m->slot;
}

/*
 * Where a Winograd convolution puts V (its transformed input) and M (its
 * products), of the pass buffer col (free during a Winograd convolution)
 * and the spare: the placement of the three below that holds the most
 * tiles per pass (up to WINOGRAD_PASS_MAX_TILES), the first of them on a
 * tie.  The first always holds a tile (ensure_workspace); the others count
 * only when they hold more.  Larger passes, up to that bound, stream the
 * weights fewer times (the 56x56 layers of blocks 2 and 3 went from passes
 * of 32 tiles to 2 passes); at equal passes, V in col and M in the spare
 * measured faster than both in the spare.
 */
static void
winograd_placement(const resnet_model *m, const resnet_conv *c, float *spare,
				   size_t spare_floats, float **V, size_t *vf, float **M, size_t *mf)
{
	size_t		half = m->col_floats / 2;
	struct
	{
		float	   *V;
		size_t		vf;
		float	   *M;
		size_t		mf;
	}			way[3] = {
		{m->col, m->col_floats, spare, spare_floats},
		{m->col, half, m->col + half, m->col_floats - half},
		{spare, spare_floats / 2, spare + spare_floats / 2, spare_floats - spare_floats / 2},
	};
	int			best = -1,
				best_tiles = 0;

	for (int i = 0; i < 3; i++)
	{
		int			tiles = winograd_pass_tiles(c->cin, c->cout, way[i].vf, way[i].mf,
												c->winograd);

		if (tiles > best_tiles)
		{
			best = i;
			best_tiles = tiles;
		}
	}
	*V = way[best].V;
	*vf = way[best].vf;
	*M = way[best].M;
	*mf = way[best].mf;
}

/*
 * Runs one convolution of the model over (cin, B, H, W) into out, with
 * spare_floats floats free at spare (see above; a Winograd convolution
 * uses them and the pass buffer, a stride-2 one the pass buffer).
 */
static void
conv_forward_one(resnet_model *m, const resnet_conv *c, float *out, const float *inp,
				 const float *residual, int relu, int B, int H,
				 float *spare, size_t spare_floats)
{
	if (m->precision == MMSA_PRECISION_INT8 && c->q.weight &&
		(m->int8_all || resnet_int8_plan(m, c)))
		qconv2d_forward(&m->exec, out, inp, c->q.weight, c->q.scale, c->q.act_inv,
						c->bias, residual, relu, B, c->cin, H, H, c->cout,
						c->k, c->stride, c->pad);
	else if (c->winograd)
	{
		float	   *V,
				   *M;
		size_t		vf,
					mf;

		winograd_placement(m, c, spare, spare_floats, &V, &vf, &M, &mf);
		conv2d_winograd_forward(&m->exec, out, inp, c->weight, c->bias, residual, relu,
								B, c->cin, H, H, c->cout, V, vf, M, mf, c->winograd);
	}
	else
		conv2d_forward(&m->exec, out, inp, c->weight, c->bias, residual, relu,
					   B, c->cin, H, H, c->cout, c->k, c->stride, c->pad,
					   m->col, m->col_floats);
}

/* conv_forward_one, timed into m->profile when that is set. */
static void
run_conv(resnet_model *m, const resnet_conv *c, float *out, const float *inp,
		 const float *residual, int relu, int B, int H,
		 float *spare, size_t spare_floats)
{
	resnet_profile *prof = m->profile;
	struct timespec t0,
				t1;

	if (m->calib && c->id > 0)	/* calibration: the input's range */
		resnet_calibration_add(m->calib, c->id, inp, (size_t) c->cin * B * H * H);
	if (prof)
	{
		if (c == &m->stem)
		{
			prof->next = 0;
			prof->forwards++;
		}
		clock_gettime(CLOCK_MONOTONIC, &t0);
	}
	conv_forward_one(m, c, out, inp, residual, relu, B, H, spare, spare_floats);
	if (prof && prof->next < RESNET_CONVS)
	{
		clock_gettime(CLOCK_MONOTONIC, &t1);
		prof->ms[prof->next] += (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
		prof->conv[prof->next] = c;
		prof->H[prof->next] = H;
		prof->next++;
	}
}

/*
 * The place of `floats` floats at `off` floats from one end of the work
 * buffer: from the start (side 0) or back from the end (side 1).
 */
static inline float *
work_at(const resnet_model *m, int side, size_t off, size_t floats)
{
	return side == 0 ? m->work + off : m->work + (m->work_floats - off - floats);
}

/*
 * The forward pass of one chunk of B images (see resnet_forward).
 */
static mmsa_status
resnet_forward_chunk(resnet_model *m, const float *images, int B,
					 float *feature_map, float *pooled, float *logits,
					 mmsa_error *err)
{
	mmsa_status status;
	int			H = RESNET_IMAGE_SIZE;
	int			side;			/* the end of the work buffer X is at */
	int			C;
	float	   *x;

	if ((status = ensure_workspace(m, B, err)) != MMSA_OK)
		return status;

	/* stem: 7x7/2 convolution + ReLU, 3x3/2 max pool */
	{
		int			Ho = conv_out_size(H, 7, 2, 3),
					Hp = conv_out_size(Ho, 3, 2, 1);
		size_t		so = (size_t) 64 * B * Ho * Ho;
		float	   *s = work_at(m, 1, 0, so);

		/* one image in the input slot is already in place */
		if (images != m->work)
			nchw_to_cbhw(m->work, images, B, 3, H * H);
		run_conv(m, &m->stem, s, m->work, NULL, 1, B, H, NULL, 0);
		maxpool2d_forward(&m->exec, m->work, s, 64, B, Ho, Ho, 3, 2, 1);
		H = Hp;
	}
	side = 0;
	x = m->work;
	C = 64;

	/* 16 bottleneck blocks (layout above ensure_workspace) */
	for (int n = 0; n < 16; n++)
	{
		const resnet_block *b = &m->blocks[n];
		block_sizes s;
		float	   *t1,
				   *t2,
				   *y,
				   *spare;
		size_t		spare_floats;

		if (mmsa_interrupted())
			return mmsa_set_error(err, MMSA_ERR_CANCELED, "canceled");

		get_block_sizes(b, H, B, &s);
		t2 = work_at(m, side, s.x, s.t2);
		t1 = work_at(m, side, s.x + s.t2, s.t1);
		y = work_at(m, side, m->work_floats - s.y, s.y);	/* the other end */

		/* conv2 (the only Winograd one, V and M): all past T1 is free */
		spare_floats = m->work_floats - s.x - s.t2 - s.t1;
		spare = work_at(m, side, s.x + s.t2 + s.t1, spare_floats);
		run_conv(m, &b->conv1, t1, x, NULL, 1, B, H, NULL, 0);
		run_conv(m, &b->conv2, t2, t1, NULL, 1, B, s.H1, spare, spare_floats);
		if (b->has_downsample)
		{
			/* the shortcut D goes into Y, or just after T2 */
			float	   *d = s.in_place ? y : work_at(m, side, s.x + s.t2, s.y);

			run_conv(m, &b->downsample, d, x, NULL, 0, B, H, NULL, 0);
			run_conv(m, &b->conv3, y, t2, d, 1, B, s.H2, NULL, 0);
		}
		else if (s.in_place)
			y = x;
		else
			run_conv(m, &b->conv3, y, t2, x, 1, B, s.H2, NULL, 0);
		if (y == x)
			run_conv(m, &b->conv3, x, t2, x, 1, B, s.H2, NULL, 0);	/* Y over X */
		else
			side = !side;
		x = y;
		H = s.H2;
		C = b->conv3.cout;
	}
	if (mmsa_interrupted())
		return mmsa_set_error(err, MMSA_ERR_CANCELED, "canceled");

	/* x: (2048, B, 7*7) */
	if (feature_map)
		cbhw_to_token_major(feature_map, x, C, B, H * H);
	if (pooled || logits)
	{
		size_t		sx = (size_t) C * B * H * H;
		float	   *p = pooled ? pooled : work_at(m, side, sx, (size_t) C * B);

		global_avgpool_forward(p, x, C, B, H * H);
		if (logits)
			linear_forward(&m->exec, logits, p, m->fc_weight, m->fc_bias, B, C,
						   m->num_classes,
						   work_at(m, side, sx + (size_t) C * B, (size_t) (C + m->num_classes) * B));
	}
	return MMSA_OK;
}

mmsa_status
resnet_forward(resnet_model *m, const float *images, int B,
			   float *feature_map, float *pooled, float *logits,
			   mmsa_error *err)
{
	int			chunk = m->sub_batch >= 1 ? m->sub_batch : RESNET_SUB_BATCH;

	if (B < 1 || B > RESNET_MAX_BATCH)
		return mmsa_set_error(err, MMSA_ERR_LIMIT, "batch of %d images; must be 1..%d",
							  B, RESNET_MAX_BATCH);
	if (images == NULL)
		return mmsa_set_error(err, MMSA_ERR_INVALID, "no images");
	/* as many threads as OpenBLAS is set to (the callers' setting) */
	if (m->exec.nthreads != openblas_get_num_threads())
	{
		mmsa_status status;

		conv_exec_free(&m->exec);
		if ((status = conv_exec_init(&m->exec, openblas_get_num_threads(), err)) != MMSA_OK)
			return status;
	}
	if (m->precision == MMSA_PRECISION_INT8)
	{
		mmsa_status status = conv_exec_reserve_int8(&m->exec, RESNET_INT8_MAX_K, err);

		if (status != MMSA_OK)
			return status;
	}
	for (int b0 = 0; b0 < B; b0 += chunk)
	{
		int			n = B - b0 < chunk ? B - b0 : chunk;
		mmsa_status status;

		status = resnet_forward_chunk(m, images + (size_t) b0 * 3 * RESNET_IMAGE_SIZE * RESNET_IMAGE_SIZE, n,
									  feature_map ? feature_map + (size_t) b0 * RESNET_TOKENS * RESNET_FEATURES : NULL,
									  pooled ? pooled + (size_t) b0 * RESNET_FEATURES : NULL,
									  logits ? logits + (size_t) b0 * m->num_classes : NULL,
									  err);
		if (status != MMSA_OK)
			return status;
	}
	return MMSA_OK;
}

void
resnet_softmax(float *x, int B, int n)
{
	for (int b = 0; b < B; b++)
	{
		float	   *row = x + (size_t) b * n;
		float		mx = row[0];
		double		sum = 0.0;

		for (int i = 1; i < n; i++)
			if (row[i] > mx)
				mx = row[i];
		for (int i = 0; i < n; i++)
		{
			row[i] = expf(row[i] - mx);
			sum += row[i];
		}
		for (int i = 0; i < n; i++)
			row[i] = (float) (row[i] / sum);
	}
}
