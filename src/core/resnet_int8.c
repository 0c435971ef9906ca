/*
 * resnet_int8.c
 *	  int8 inference of ResNet-50 (see resnet.h): the calibration of the
 *	  activation scales, the quantized sidecar (model.int8.packed) and its
 *	  verification at load, and the per-layer choice of precision.
 *
 * Sidecar data, in 4-byte words, for each convolution but the stem in
 * forward order (resnet_conv.id 1 .. 52), each part rounded to 64 bytes:
 *   scale (cout floats): the scale of each output channel's sums;
 *   act_inv (cin * k * k floats): 1 / activation scale of each row of the
 *     product (127 / clip; the calibration gives one per tensor);
 *   weight: qgemm_pack_a of the int8 weights (cout, cin * k * k), each
 *     column scaled by its row's activation scale before quantization (with
 *     one scale per tensor, only the output channels' scales change).
 * Header config: [0] words, [1] RESNET_CONVS, [2] QGEMM_MR, [3]
 * QGEMM_ACT_MAX, [4] calibration images, [5] FNV-1a of calibration.json,
 * [6] FNV-1a of the calibration images' names, [7] checksum of the data,
 * [8] stride placement, [9] RESNET_INT8_LAYOUT.
 */
#include "resnet.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qgemm.h"
#include "resnet_internal.h"
#include "safetensors.h"

#define RESNET_INT8_LAYOUT 1
/* ---- the per-layer choice --------------------------------------------- */

/*
 * Which convolutions run at int8 when the model does.  Measured on the
 * hosts of test/bench/HISTORY.md (mmsa bench resnet --precision int8
 * --profile prints fp32 and int8 side by side): the 1x1 convolutions run at
 * int8, about half the time of fp32 with the AVX2 kernels (2026-12-07,
 * AMD EPYC, avx2 fma: 0.48x to 0.73x).  The 3x3 ones stay fp32: Winograd
 * does them with 2.25 (F(4x4, 3x3)) or 4 (F(2x2, 3x3)) multiplications per
 * output and input channel against im2col's 9, and the int8 product over
 * the unfolding measured 1.1x to 3.3x slower than fp32 Winograd there.  The
 * stem stays fp32 too: it has no int8 form (3 signed input channels give
 * the integer kernels little to do, and the first layer is the most
 * sensitive to rounding).  The choice is fixed, not measured at load, so
 * that a model gives the same results on every host with the same kernels.
 */
int
resnet_int8_plan(const resnet_model *m, const resnet_conv *c)
{
	(void) m;
	return c->id > 0 && c->k == 1;
}

/* ---- calibration ------------------------------------------------------ */

void
resnet_calibration_add(resnet_calibration *cal, int id, const float *x, size_t n)
{
	if (cal->pass == 1)
	{
		float		mx = cal->max[id];

		for (size_t i = 0; i < n; i++)
			mx = x[i] > mx ? x[i] : mx;
		cal->max[id] = mx;
	}
	else if (cal->max[id] > 0.0f)
	{
		double	   *h = cal->hist[id];
		float		scale = RESNET_CALIB_BINS / cal->max[id];

		for (size_t i = 0; i < n; i++)
			if (x[i] > 0.0f)	/* zeros (many, after a ReLU) quantize exactly */
			{
				int			bin = (int) (x[i] * scale);

				h[bin < RESNET_CALIB_BINS ? bin : RESNET_CALIB_BINS - 1] += 1.0;
			}
	}
}

mmsa_status
resnet_calibrate(resnet_model *m, const float *images, int B,
				 resnet_calibration *cal, mmsa_error *err)
{
	mmsa_precision saved = m->precision;
	mmsa_status status;

	m->calib = cal;
	m->precision = MMSA_PRECISION_FP32;
	status = resnet_forward(m, images, B, NULL, NULL, NULL, err);
	m->precision = saved;
	m->calib = NULL;
	if (status == MMSA_OK && cal->pass == 1)
		cal->images += B;
	return status;
}

/*
 * The clip of one input: over the candidates (the histogram's bin edges
 * from 1/64 of the largest value up), the one that minimizes the
 * histogram's squared error, each bin taken at its centre v:
 * (v - s round(v / s))^2 below the clip (s = clip / 127), (v - clip)^2
 * above.  The first of equal minima wins: deterministic.
 */
static float
tensor_clip(const double *h, float mx)
{
	double		w = (double) mx / RESNET_CALIB_BINS,
				best = -1.0,
				best_clip = mx;

	for (int t = RESNET_CALIB_BINS / 64; t <= RESNET_CALIB_BINS; t++)
	{
		double		clip = t * w,
					s = clip / QGEMM_ACT_MAX,
					cost = 0.0;

		for (int j = 0; j < RESNET_CALIB_BINS; j++)
		{
			double		v = (j + 0.5) * w,
						e;

			if (h[j] == 0)
				continue;
			e = v > clip ? v - clip : v - s * nearbyint(v / s);
			cost += h[j] * e * e;
		}
		if (best < 0.0 || cost < best)
		{
			best = cost;
			best_clip = clip;
		}
	}
	return (float) best_clip;
}

/* Every input's clip; 1 for an input that was zero on every image. */
void
resnet_calibration_finish(resnet_calibration *cal)
{
	for (int id = 1; id < RESNET_CONVS; id++)
		cal->clip[id] = cal->max[id] > 0.0f ? tensor_clip(cal->hist[id], cal->max[id]) : 1.0f;
}

static void
hex64(char *buf, uint64_t v)
{
	snprintf(buf, 17, "%016llx", (unsigned long long) v);
}

mmsa_status
resnet_calibration_write(const resnet_model *m, const resnet_calibration *cal,
						 const char *path, mmsa_error *err)
{
	json_t	   *root = json_object(),
			   *clips = json_array();
	char		h[17],
				tmp[4112];
	int			bad;

	json_object_set_new(root, "format", json_integer(RESNET_INT8_LAYOUT));
	json_object_set_new(root, "method", json_string("per tensor: histogram, least squared error"));
	json_object_set_new(root, "activation_max", json_integer(QGEMM_ACT_MAX));
	hex64(h, m->source_id.hash);
	json_object_set_new(root, "model", json_pack("{s:I, s:s}", "size", (json_int_t) m->source_id.size,
												 "hash", h));
	hex64(h, cal->ids_hash);
	json_object_set_new(root, "images", json_pack("{s:s, s:i, s:s}", "source", cal->source,
												  "count", cal->images, "names_fnv1a64", h));
	for (int id = 0; id < RESNET_CONVS; id++)
		json_array_append_new(clips, id == 0 ? json_null() : json_real(cal->max[id]));
	json_object_set_new(root, "act_max", clips);
	clips = json_array();
	for (int id = 0; id < RESNET_CONVS; id++)
		json_array_append_new(clips, id == 0 ? json_null() : json_real(cal->clip[id]));
	json_object_set_new(root, "act_clip", clips);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	bad = json_dump_file(root, tmp, JSON_INDENT(1) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9)) != 0;
	json_decref(root);
	if (bad || rename(tmp, path) != 0)
	{
		remove(tmp);
		return mmsa_set_error(err, MMSA_ERR_IO, "could not write \"%s\"", path);
	}
	return MMSA_OK;
}

mmsa_status
resnet_calibration_read(const char *path, resnet_calibration *cal,
						uint64_t *file_hash, mmsa_error *err)
{
	json_error_t jerr;
	json_t	   *root,
			   *clips,
			   *images;
	FILE	   *fp;
	char	   *buf;
	size_t		len;
	mmsa_status status = MMSA_OK;

	memset(cal, 0, sizeof(*cal));
	if ((fp = fopen(path, "rb")) == NULL)
		return mmsa_set_error(err, MMSA_ERR_IO, "could not open \"%s\"", path);
	buf = malloc(8 << 20);
	len = buf ? fread(buf, 1, 8 << 20, fp) : 0;
	fclose(fp);
	if (buf == NULL || len == 8 << 20)
	{
		free(buf);
		return mmsa_set_error(err, MMSA_ERR_FORMAT, "\"%s\" is too large for a calibration", path);
	}
	*file_hash = mmsa_fnv1a(MMSA_FNV1A_OFFSET, buf, len);
	root = json_loadb(buf, len, 0, &jerr);
	free(buf);
	if (root == NULL)
		return mmsa_set_error(err, MMSA_ERR_FORMAT, "\"%s\": %s (line %d)", path, jerr.text, jerr.line);
	clips = json_object_get(root, "act_clip");
	images = json_object_get(root, "images");
	if (!json_is_array(clips) || json_array_size(clips) != RESNET_CONVS ||
		!json_is_object(images) || !json_is_integer(json_object_get(images, "count")) ||
		json_integer_value(json_object_get(root, "activation_max")) != QGEMM_ACT_MAX)
	{
		json_decref(root);
		return mmsa_set_error(err, MMSA_ERR_FORMAT,
							  "\"%s\" is not a calibration of this version (act_clip of %d "
							  "convolutions, images, activation_max %d expected)",
							  path, RESNET_CONVS, QGEMM_ACT_MAX);
	}
	cal->images = (int) json_integer_value(json_object_get(images, "count"));
	snprintf(cal->model_hash, sizeof(cal->model_hash), "%s",
			 json_string_value(json_object_get(json_object_get(root, "model"), "hash")) ?
			 json_string_value(json_object_get(json_object_get(root, "model"), "hash")) : "");
	cal->ids_hash = strtoull(json_string_value(json_object_get(images, "names_fnv1a64")) ?
							 json_string_value(json_object_get(images, "names_fnv1a64")) : "0", NULL, 16);
	snprintf(cal->source, sizeof(cal->source), "%s",
			 json_string_value(json_object_get(images, "source")) ?
			 json_string_value(json_object_get(images, "source")) : "");
	for (int id = 1; id < RESNET_CONVS; id++)
	{
		double		v = json_number_value(json_array_get(clips, id));

		if (!json_is_number(json_array_get(clips, id)) || !(v > 0.0) || !isfinite(v))
		{
			status = mmsa_set_error(err, MMSA_ERR_FORMAT,
									"\"%s\": act_clip[%d] must be a positive number", path, id);
			break;
		}
		cal->clip[id] = (float) v;
	}
	json_decref(root);
	return status;
}

/* ---- the sidecar ------------------------------------------------------ */

/* Words of convolution c's three parts (see the top of the file). */
static void
qconv_words(const resnet_conv *c, size_t *scale, size_t *act, size_t *weight)
{
	*scale = MMSA_PACK_ROUND(c->cout);
	*act = MMSA_PACK_ROUND((size_t) c->cin * c->k * c->k);
	*weight = MMSA_PACK_ROUND(qgemm_packed_bytes(c->cout, c->cin * c->k * c->k) / 4);
}

/*
 * Points each convolution's q at base (NULL: only counts) and returns the
 * words of the layout.
 */
static size_t
place_int8(resnet_model *m, const uint32_t *base)
{
	size_t		off = 0;
	char		cn[64],
				bn[64];

	for (int id = 1; id < RESNET_CONVS; id++)
	{
		resnet_conv *c = resnet_conv_at(m, id, cn, bn);
		size_t		ws,
					wa,
					ww;

		qconv_words(c, &ws, &wa, &ww);
		if (base)
		{
			c->q.scale = (const float *) (base + off);
			c->q.act_inv = (const float *) (base + off + ws);
			c->q.weight = (const int8_t *) (base + off + ws + wa);
		}
		off += ws + wa + ww;
	}
	return off;
}

static void
int8_config(const resnet_model *m, size_t words, int images, uint64_t calib_hash,
			uint64_t ids_hash, uint64_t checksum, int64_t config[MMSA_PACK_CONFIG])
{
	memset(config, 0, sizeof(int64_t) * MMSA_PACK_CONFIG);
	config[0] = (int64_t) words;
	config[1] = RESNET_CONVS;
	config[2] = QGEMM_MR;
	config[3] = QGEMM_ACT_MAX;
	config[4] = images;
	config[5] = (int64_t) calib_hash;
	config[6] = (int64_t) ids_hash;
	config[7] = (int64_t) checksum;
	config[8] = m->stride_on;
	config[9] = RESNET_INT8_LAYOUT;
}

/*
 * The int8 parts of convolution c into dst (its words, zeroed), with clip
 * its input's: the folded weights scaled by the activation scale s = clip /
 * 127, then quantized per output channel (qgemm.h), so that scale[o] is the
 * weight scale times s.
 */
static mmsa_status
quantize_conv(safetensors_file *f, const resnet_model *m, const resnet_conv *c,
			  const char *cn, const char *bn, float clip, uint32_t *dst,
			  mmsa_error *err)
{
	int			K = c->cin * c->k * c->k;
	size_t		ws,
				wa,
				ww;
	float	   *folded = malloc(sizeof(float) * (size_t) c->cout * K),
			   *bias = malloc(sizeof(float) * c->cout);
	int8_t	   *q = malloc((size_t) c->cout * K);
	float	   *scale = (float *) dst,
			   *act_inv = (float *) (dst + MMSA_PACK_ROUND(c->cout));
	mmsa_status status = MMSA_OK;

	qconv_words(c, &ws, &wa, &ww);
	if (!folded || !bias || !q)
		status = mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
	else if ((status = resnet_fold_conv(f, c, cn, bn, m->bn_eps, folded, bias, err)) == MMSA_OK)
	{
		for (int k = 0; k < K; k++)
			act_inv[k] = (float) QGEMM_ACT_MAX / clip;
		for (size_t i = 0; i < (size_t) c->cout * K; i++)
			folded[i] *= clip / (float) QGEMM_ACT_MAX;
		qgemm_quantize_rows(q, scale, folded, c->cout, K);
		qgemm_pack_a((int8_t *) (dst + ws + wa), q, c->cout, K, K);
	}
	free(folded);
	free(bias);
	free(q);
	return status;
}

mmsa_status
resnet_model_write_int8(const char *dir, mmsa_error *err)
{
	resnet_model *m = NULL;
	resnet_calibration *cal = malloc(sizeof(resnet_calibration));
	safetensors_file f;
	mmsa_pack_writer w;
	char		path[4096],
				cn[64],
				bn[64],
				want[17];
	uint64_t	calib_hash;
	uint32_t   *data = NULL;
	size_t		words;
	int64_t		config[MMSA_PACK_CONFIG];
	mmsa_status status;

	memset(&f, 0, sizeof(f));
	if (cal == NULL)
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
	snprintf(path, sizeof(path), "%s/%s", dir, RESNET_CALIB_FILE);
	if ((status = resnet_model_load(dir, &m, err)) != MMSA_OK ||
		(status = resnet_calibration_read(path, cal, &calib_hash, err)) != MMSA_OK)
		goto done;
	hex64(want, m->source_id.hash);
	if (strcmp(cal->model_hash, want) != 0)
	{
		status = mmsa_set_error(err, MMSA_ERR_FORMAT,
								"\"%s\" was made for another model.safetensors (hash %s, this one %s): "
								"run `mmsa calibrate` again", path,
								cal->model_hash[0] ? cal->model_hash : "none", want);
		goto done;
	}
	words = place_int8(m, NULL);
	if ((data = calloc(words, sizeof(uint32_t))) == NULL)
	{
		status = mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
		goto done;
	}
	snprintf(path, sizeof(path), "%s/model.safetensors", dir);
	if ((status = safetensors_open(path, &f, err)) != MMSA_OK)
		goto done;
	/* each convolution's parts start at its scale, placed in data */
	place_int8(m, data);
	for (int id = 1; id < RESNET_CONVS; id++)
	{
		resnet_conv *c = resnet_conv_at(m, id, cn, bn);

		if ((status = quantize_conv(&f, m, c, cn, bn, cal->clip[id],
									data + ((const uint32_t *) c->q.scale - data), err)) != MMSA_OK)
			goto done;
	}
	int8_config(m, words, cal->images, calib_hash, cal->ids_hash, mmsa_pack_checksum(data, words), config);
	snprintf(path, sizeof(path), "%s/%s", dir, RESNET_INT8_FILE);
	if ((status = mmsa_pack_write_begin(&w, path, MMSA_PACK_KIND_RESNET_INT8, config,
										&m->source_id, words, err)) == MMSA_OK &&
		(status = mmsa_pack_write_floats(&w, (const float *) data, words, err)) == MMSA_OK)
		status = mmsa_pack_write_end(&w, err);

done:
	safetensors_close(&f);
	free(data);
	free(cal);
	resnet_model_free(m);
	return status;
}

/* Maps and verifies dir/model.int8.packed (see resnet.h). */
static mmsa_status
open_int8(resnet_model *m, mmsa_error *err)
{
	char		path[4096];
	size_t		words = place_int8(m, NULL);
	int64_t		want[MMSA_PACK_CONFIG];
	char		from[64];
	mmsa_status status;

	/* the layout: words, convolutions, MR, ACT_MAX, stride placement, version */
	int8_config(m, words, 0, 0, 0, 0, want);
	snprintf(path, sizeof(path), "%s/%s", m->dir, RESNET_INT8_FILE);
	snprintf(from, sizeof(from), " from %s", RESNET_CALIB_FILE);
	status = mmsa_pack_open_int8(path, MMSA_PACK_KIND_RESNET_INT8, &m->source_id, want,
								 (1u << 0) | (1u << 1) | (1u << 2) | (1u << 3) | (1u << 8) | (1u << 9),
								 7, "image model", m->dir, from, &m->qpack, err);
	if (status != MMSA_OK)
		return status;
	if (status == MMSA_OK)
	{
		char		cn[64],
					bn[64];

		place_int8(m, (const uint32_t *) m->qpack.data);
		for (int id = 1; id < RESNET_CONVS && status == MMSA_OK; id++)
		{
			resnet_conv *c = resnet_conv_at(m, id, cn, bn);

			for (int o = 0; o < c->cout; o++)
				if (!(c->q.scale[o] > 0.0f) || !isfinite(c->q.scale[o]))
				{
					status = mmsa_set_error(err, MMSA_ERR_FORMAT, "\"%s\": bad scale in %s", path, cn);
					break;
				}
			for (int k = 0; k < c->cin * c->k * c->k && status == MMSA_OK; k++)
				if (!(c->q.act_inv[k] > 0.0f) || !isfinite(c->q.act_inv[k]))
					status = mmsa_set_error(err, MMSA_ERR_FORMAT, "\"%s\": bad activation scale in %s",
											path, cn);
		}
	}
	if (status != MMSA_OK)
	{
		char		cn[64],
					bn[64];

		for (int id = 1; id < RESNET_CONVS; id++)
			memset(&resnet_conv_at(m, id, cn, bn)->q, 0, sizeof(resnet_qconv));
		mmsa_pack_close(&m->qpack);
	}
	return status;
}

mmsa_status
resnet_model_set_precision(resnet_model *m, mmsa_precision p, mmsa_error *err)
{
	mmsa_status status;

	if (p == MMSA_PRECISION_INT8 && m->qpack.map == NULL)
	{
		/* the work buffers follow with the threads, in resnet_forward */
		if ((status = open_int8(m, err)) != MMSA_OK)
			return status;
	}
	m->precision = p;
	return MMSA_OK;
}
