/*
 * image_preprocess.c
 *	  Resize + centre crop + normalisation of a decoded RGB image into the
 *	  float tensor (3, crop, crop) a ResNet-50 takes, as torchvision's
 *	  Resize(resize) + CenterCrop(crop) + ToTensor + Normalize do on a PIL
 *	  image.
 *
 * The resize is Pillow's Image.resize(size, BILINEAR) reproduced bit for
 * bit (Pillow 9.x, src/libImaging/Resample.c): a separable triangle filter
 * whose support grows with the downscale factor, coefficients normalised
 * in double and rounded to 22-bit fixed point, a horizontal pass into a
 * uint8 intermediate image (rounded, clipped), then a vertical pass.  Each
 * output pixel depends only on its own coefficients, so only the part of
 * the resized image that survives the crop is computed; the values are the
 * same as resizing everything and cropping afterwards.
 */
#include "image.h"

#include <jansson.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PRECISION_BITS (32 - 8 - 2)	/* Pillow's fixed point for 8-bit images */

void
image_preprocess_config_torchvision(image_preprocess_config *cfg)
{
	cfg->resize = 256;
	cfg->crop = 224;
	cfg->bgr = 0;
	cfg->scale = 1.0f / 255.0f;
	cfg->mean[0] = 0.485f;
	cfg->mean[1] = 0.456f;
	cfg->mean[2] = 0.406f;
	cfg->std[0] = 0.229f;
	cfg->std[1] = 0.224f;
	cfg->std[2] = 0.225f;
}

void
image_preprocess_config_caffe(image_preprocess_config *cfg)
{
	cfg->resize = 256;
	cfg->crop = 224;
	cfg->bgr = 1;
	cfg->scale = 1.0f;
	cfg->mean[0] = 103.939f;
	cfg->mean[1] = 116.779f;
	cfg->mean[2] = 123.68f;
	cfg->std[0] = cfg->std[1] = cfg->std[2] = 1.0f;
}

mmsa_status
image_preprocess_config_check(const image_preprocess_config *cfg, mmsa_error *err)
{
	if (cfg->crop < 1 || cfg->crop > IMAGE_MAX_PREPROCESS_SIDE)
		return mmsa_set_error(err, MMSA_ERR_INVALID, "preprocess: crop %d is not in 1..%d",
							  cfg->crop, IMAGE_MAX_PREPROCESS_SIDE);
	if (cfg->resize != 0 && (cfg->resize < cfg->crop || cfg->resize > IMAGE_MAX_PREPROCESS_SIDE))
		return mmsa_set_error(err, MMSA_ERR_INVALID,
							  "preprocess: resize %d must be 0 or in crop (%d)..%d",
							  cfg->resize, cfg->crop, IMAGE_MAX_PREPROCESS_SIDE);
	if (!isfinite(cfg->scale))
		return mmsa_set_error(err, MMSA_ERR_INVALID, "preprocess: scale is not finite");
	for (int c = 0; c < 3; c++)
	{
		if (!isfinite(cfg->mean[c]) || !isfinite(cfg->std[c]) || cfg->std[c] == 0.0f)
			return mmsa_set_error(err, MMSA_ERR_INVALID,
								  "preprocess: mean[%d] / std[%d] must be finite, std non-zero", c, c);
	}
	return MMSA_OK;
}

/* Reads a 3-number JSON array into v. */
static mmsa_status
json_float3(const json_t *a, const char *key, float *v, mmsa_error *err)
{
	if (!json_is_array(a) || json_array_size(a) != 3)
		return mmsa_set_error(err, MMSA_ERR_INVALID, "preprocess: \"%s\" must be an array of 3 numbers", key);
	for (int c = 0; c < 3; c++)
	{
		const json_t *x = json_array_get(a, c);

		if (!json_is_number(x))
			return mmsa_set_error(err, MMSA_ERR_INVALID, "preprocess: \"%s\"[%d] is not a number", key, c);
		v[c] = (float) json_number_value(x);
	}
	return MMSA_OK;
}

mmsa_status
image_preprocess_config_from_json(const json_t *obj, image_preprocess_config *cfg, mmsa_error *err)
{
	const char *key;
	json_t	   *value;
	mmsa_status status;

	image_preprocess_config_torchvision(cfg);
	if (!json_is_object(obj))
		return mmsa_set_error(err, MMSA_ERR_INVALID, "preprocess: configuration is not a JSON object");
	json_object_foreach((json_t *) obj, key, value)
	{
		if (strcmp(key, "resize") == 0 || strcmp(key, "crop") == 0)
		{
			json_int_t	n;

			if (!json_is_integer(value))
				return mmsa_set_error(err, MMSA_ERR_INVALID, "preprocess: \"%s\" must be an integer", key);
			n = json_integer_value(value);
			if (n < 0 || n > IMAGE_MAX_PREPROCESS_SIDE)
				return mmsa_set_error(err, MMSA_ERR_INVALID, "preprocess: \"%s\" %lld out of range 0..%d",
									  key, (long long) n, IMAGE_MAX_PREPROCESS_SIDE);
			if (key[0] == 'r')
				cfg->resize = (int) n;
			else
				cfg->crop = (int) n;
		}
		else if (strcmp(key, "channel_order") == 0)
		{
			const char *s = json_string_value(value);

			if (s != NULL && strcmp(s, "RGB") == 0)
				cfg->bgr = 0;
			else if (s != NULL && strcmp(s, "BGR") == 0)
				cfg->bgr = 1;
			else
				return mmsa_set_error(err, MMSA_ERR_INVALID,
									  "preprocess: \"channel_order\" must be \"RGB\" or \"BGR\"");
		}
		else if (strcmp(key, "scale") == 0)
		{
			if (!json_is_number(value))
				return mmsa_set_error(err, MMSA_ERR_INVALID, "preprocess: \"scale\" must be a number");
			cfg->scale = (float) json_number_value(value);
		}
		else if (strcmp(key, "mean") == 0)
		{
			if ((status = json_float3(value, key, cfg->mean, err)) != MMSA_OK)
				return status;
		}
		else if (strcmp(key, "std") == 0)
		{
			if ((status = json_float3(value, key, cfg->std, err)) != MMSA_OK)
				return status;
		}
		else
			return mmsa_set_error(err, MMSA_ERR_INVALID, "preprocess: unknown key \"%s\"", key);
	}
	return image_preprocess_config_check(cfg, err);
}

mmsa_status
image_preprocess_config_load(const char *path, image_preprocess_config *cfg, mmsa_error *err)
{
	json_error_t jerr;
	json_t	   *root;
	mmsa_status status;

	root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		return mmsa_set_error(err, MMSA_ERR_FORMAT, "%s:%d: %s", path, jerr.line, jerr.text);
	status = image_preprocess_config_from_json(root, cfg, err);
	json_decref(root);
	return status;
}

mmsa_status
image_preprocess_config_from_string(const char *json, image_preprocess_config *cfg,
									mmsa_error *err)
{
	json_error_t jerr;
	json_t	   *root;
	mmsa_status status;

	image_preprocess_config_torchvision(cfg);
	if (json == NULL)
		return image_preprocess_config_check(cfg, err);
	root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		return mmsa_set_error(err, MMSA_ERR_FORMAT, "bad preprocessing object: %s", jerr.text);
	status = image_preprocess_config_from_json(root, cfg, err);
	json_decref(root);
	if (status == MMSA_OK)
		status = image_preprocess_config_check(cfg, err);
	return status;
}

void
image_resize_output_size(int width, int height, int resize, int *out_width, int *out_height)
{
	int			short_side = width <= height ? width : height;
	int			long_side = width <= height ? height : width;
	/* Python: int(requested_new_short * long / short), a correctly rounded division */
	double		new_long = (double) ((int64_t) resize * long_side) / (double) short_side;
	int			long_out = new_long >= (double) INT32_MAX ? INT32_MAX : (int) new_long;

	if (width <= height)
	{
		*out_width = resize;
		*out_height = long_out;
	}
	else
	{
		*out_width = long_out;
		*out_height = resize;
	}
}

void
image_workspace_free(image_workspace *ws)
{
	if (ws == NULL)
		return;
	free(ws->buf);
	ws->buf = NULL;
	ws->cap = 0;
	free(ws->crop);
	ws->crop = NULL;
	ws->crop_cap = 0;
}

/* ---- Pillow's bilinear resampling --------------------------------------- */

static double
bilinear_filter(double x)
{
	if (x < 0.0)
		x = -x;
	if (x < 1.0)
		return 1.0 - x;
	return 0.0;
}

/* Coefficients per output pixel along an axis of in_size -> out_size. */
static int
bilinear_ksize(int in_size, int out_size)
{
	double		filterscale = (double) in_size / out_size;

	if (filterscale < 1.0)
		filterscale = 1.0;
	return (int) ceil(filterscale) * 2 + 1;
}

/*
 * Pillow's precompute_coeffs + normalize_coeffs_8bpc for the output
 * positions first .. first+n-1 of an axis resized in_size -> out_size:
 * bounds (n,2) = first input index and count, kk (n,ksize) fixed point.
 * w is scratch of ksize doubles.
 */
static void
bilinear_coeffs(int in_size, int out_size, int first, int n, int ksize,
				int32_t *bounds, int32_t *kk, double *w)
{
	double		scale = (double) in_size / out_size;
	double		filterscale = scale < 1.0 ? 1.0 : scale;
	double		support = 1.0 * filterscale;
	double		ss = 1.0 / filterscale;

	for (int i = 0; i < n; i++)
	{
		int			xx = first + i;
		double		center = 0.0 + (xx + 0.5) * scale;
		double		ww = 0.0;
		int			xmin = (int) (center - support + 0.5);
		int			xmax = (int) (center + support + 0.5);
		int32_t    *k = kk + (size_t) i * ksize;
		int			x;

		if (xmin < 0)
			xmin = 0;
		if (xmax > in_size)
			xmax = in_size;
		xmax -= xmin;
		if (xmax > ksize)
			xmax = ksize;		/* cannot happen; keeps the writes in bounds */
		for (x = 0; x < xmax; x++)
		{
			w[x] = bilinear_filter((x + xmin - center + 0.5) * ss);
			ww += w[x];
		}
		for (x = 0; x < xmax; x++)
		{
			if (ww != 0.0)
				w[x] /= ww;
			k[x] = w[x] < 0 ? (int32_t) (-0.5 + w[x] * (1 << PRECISION_BITS))
				: (int32_t) (0.5 + w[x] * (1 << PRECISION_BITS));
		}
		for (; x < ksize; x++)
			k[x] = 0;
		bounds[2 * i] = xmin;
		bounds[2 * i + 1] = xmax < 0 ? 0 : xmax;
	}
}

static inline uint8_t
clip8(int32_t in)
{
	if (in >= (1 << PRECISION_BITS << 8))
		return 255;
	if (in <= 0)
		return 0;
	return (uint8_t) (in >> PRECISION_BITS);
}

/* Rounds x up to a multiple of 16 bytes (keeps workspace parts aligned). */
static size_t
align16(size_t x)
{
	return (x + 15) & ~(size_t) 15;
}

/* Grows ws to at least size bytes, keeping its contents. */
static mmsa_status
workspace_reserve(image_workspace *ws, size_t size, mmsa_error *err)
{
	void	   *nb;

	if (ws->cap >= size)
		return MMSA_OK;
	nb = realloc(ws->buf, size);
	if (nb == NULL)
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory resizing (%zu bytes)", size);
	ws->buf = nb;
	ws->cap = size;
	return MMSA_OK;
}

/*
 * Resizes in (h,w,3) to (rh,rw,3) with Pillow's bilinear filter and writes
 * the region of that result at (left, top) of size cw x ch into region
 * (ch,cw,3).  ws provides the coefficient and intermediate buffers.
 */
static mmsa_status
resize_region(const uint8_t *in, int w, int h, int rw, int rh,
			  int left, int top, int cw, int ch, uint8_t *region,
			  image_workspace *ws, mmsa_error *err)
{
	int			need_h = (rw != w),
				need_v = (rh != h);
	int			ksize_h = bilinear_ksize(w, rw),
				ksize_v = bilinear_ksize(h, rh);
	int			kmax = ksize_h > ksize_v ? ksize_h : ksize_v;
	size_t		sz_bh = align16(sizeof(int32_t) * 2 * cw),
				sz_kh = align16(sizeof(int32_t) * (size_t) cw * ksize_h),
				sz_bv = align16(sizeof(int32_t) * 2 * ch),
				sz_kv = align16(sizeof(int32_t) * (size_t) ch * ksize_v),
				sz_w = align16(sizeof(double) * kmax);
	size_t		sz_tmp,
				total;
	int32_t    *bounds_h,
			   *kk_h,
			   *bounds_v,
			   *kk_v;
	double	   *scratch;
	uint8_t    *tmp;
	char	   *base;
	int			y_first,
				y_last;
	const uint8_t *src_rows;	/* (rows, src_w, 3) seen by the vertical pass */
	int			src_w;
	int			src_x0;
	mmsa_status status;

	/* coefficients first; their vertical bounds say how many rows the intermediate needs */
	total = sz_bh + sz_kh + sz_bv + sz_kv + sz_w;
	if ((status = workspace_reserve(ws, total, err)) != MMSA_OK)
		return status;
	base = ws->buf;
	bounds_v = (int32_t *) (base + sz_bh + sz_kh);
	kk_v = (int32_t *) (base + sz_bh + sz_kh + sz_bv);
	scratch = (double *) (base + sz_bh + sz_kh + sz_bv + sz_kv);
	if (need_v)
	{
		bilinear_coeffs(h, rh, top, ch, ksize_v, bounds_v, kk_v, scratch);
		y_first = bounds_v[0];
		y_last = y_first;
		for (int i = 0; i < ch; i++)
			if (bounds_v[2 * i] + bounds_v[2 * i + 1] > y_last)
				y_last = bounds_v[2 * i] + bounds_v[2 * i + 1];
	}
	else
	{
		y_first = top;
		y_last = top + ch;
	}
	sz_tmp = need_h ? (size_t) cw * 3 * (size_t) (y_last - y_first) : 0;
	if ((status = workspace_reserve(ws, total + sz_tmp, err)) != MMSA_OK)
		return status;
	base = ws->buf;				/* may have moved; the contents are kept */
	bounds_h = (int32_t *) base;
	kk_h = (int32_t *) (base + sz_bh);
	bounds_v = (int32_t *) (base + sz_bh + sz_kh);
	kk_v = (int32_t *) (base + sz_bh + sz_kh + sz_bv);
	scratch = (double *) (base + sz_bh + sz_kh + sz_bv + sz_kv);
	tmp = (uint8_t *) (base + total);
	if (need_h)
		bilinear_coeffs(w, rw, left, cw, ksize_h, bounds_h, kk_h, scratch);

	/* horizontal pass: source rows y_first..y_last-1, columns of the crop */
	if (need_h)
	{
		for (int y = y_first; y < y_last; y++)
		{
			const uint8_t *row = in + (size_t) y * w * 3;
			uint8_t    *o = tmp + (size_t) (y - y_first) * cw * 3;

			if (((y - y_first) & 63) == 0 && mmsa_interrupted())
				return mmsa_set_error(err, MMSA_ERR_CANCELED, "image resize canceled");
			for (int i = 0; i < cw; i++)
			{
				int			xmin = bounds_h[2 * i],
							xmax = bounds_h[2 * i + 1];
				const int32_t *k = kk_h + (size_t) i * ksize_h;
				const uint8_t *p = row + (size_t) xmin * 3;
				int32_t		s0 = 1 << (PRECISION_BITS - 1),
							s1 = s0,
							s2 = s0;

				for (int x = 0; x < xmax; x++)
				{
					s0 += p[3 * x] * k[x];
					s1 += p[3 * x + 1] * k[x];
					s2 += p[3 * x + 2] * k[x];
				}
				o[3 * i] = clip8(s0);
				o[3 * i + 1] = clip8(s1);
				o[3 * i + 2] = clip8(s2);
			}
		}
		src_rows = tmp;
		src_w = cw;
		src_x0 = 0;
	}
	else
	{
		src_rows = in + (size_t) y_first * w * 3;
		src_w = w;
		src_x0 = left;
	}

	/* vertical pass */
	for (int j = 0; j < ch; j++)
	{
		uint8_t    *o = region + (size_t) j * cw * 3;

		if (!need_v)
		{
			memcpy(o, src_rows + ((size_t) j * src_w + src_x0) * 3, (size_t) cw * 3);
			continue;
		}
		{
			int			ymin = bounds_v[2 * j] - y_first,
						ymax = bounds_v[2 * j + 1];
			const int32_t *k = kk_v + (size_t) j * ksize_v;

			for (int i = 0; i < cw; i++)
			{
				const uint8_t *p = src_rows + ((size_t) ymin * src_w + src_x0 + i) * 3;
				size_t		stride = (size_t) src_w * 3;
				int32_t		s0 = 1 << (PRECISION_BITS - 1),
							s1 = s0,
							s2 = s0;

				for (int y = 0; y < ymax; y++)
				{
					s0 += p[0] * k[y];
					s1 += p[1] * k[y];
					s2 += p[2] * k[y];
					p += stride;
				}
				o[3 * i] = clip8(s0);
				o[3 * i + 1] = clip8(s1);
				o[3 * i + 2] = clip8(s2);
			}
		}
	}
	return MMSA_OK;
}

mmsa_status
image_resize_bilinear(const uint8_t *in, int width, int height,
					  uint8_t *out, int out_width, int out_height, mmsa_error *err)
{
	image_workspace ws = {0};
	mmsa_status status;

	if (in == NULL || out == NULL || width < 1 || height < 1 || out_width < 1 || out_height < 1)
		return mmsa_set_error(err, MMSA_ERR_INVALID, "image_resize_bilinear: bad arguments");
	status = resize_region(in, width, height, out_width, out_height,
						   0, 0, out_width, out_height, out, &ws, err);
	image_workspace_free(&ws);
	return status;
}

/* torchvision's center_crop offset: int(round((size - crop) / 2.0)), half to even */
static int
center_offset(int size, int crop)
{
	int			d = size - crop;
	int			half = d / 2;

	if (d % 2 != 0 && half % 2 != 0)
		half++;
	return half;
}

mmsa_status
image_preprocess(const mmsa_image *img, const image_preprocess_config *cfg,
				 image_workspace *ws, float *out, mmsa_error *err)
{
	image_workspace local = {0};
	image_workspace *use = ws != NULL ? ws : &local;
	int			rw,
				rh,
				left,
				top,
				c;
	uint8_t    *region;
	float		lut[3][256];
	mmsa_status status;

	if (img == NULL || img->rgb == NULL || img->width < 1 || img->height < 1 || out == NULL)
		return mmsa_set_error(err, MMSA_ERR_INVALID, "image_preprocess: empty image");
	if ((status = image_preprocess_config_check(cfg, err)) != MMSA_OK)
		return status;
	c = cfg->crop;
	if (cfg->resize == 0)
	{
		rw = rh = c;
		left = top = 0;
	}
	else
	{
		image_resize_output_size(img->width, img->height, cfg->resize, &rw, &rh);
		if (rw > (1 << 24) || rh > (1 << 24))
			return mmsa_set_error(err, MMSA_ERR_LIMIT,
								  "image_preprocess: a %dx%d image resized to short side %d is too long",
								  img->width, img->height, cfg->resize);
		left = center_offset(rw, c);
		top = center_offset(rh, c);
	}

	if (use->crop_cap < (size_t) c * c * 3)
	{
		free(use->crop);
		use->crop_cap = 0;
		use->crop = malloc((size_t) c * c * 3);
		if (use->crop == NULL)
		{
			image_workspace_free(&local);
			return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory preprocessing");
		}
		use->crop_cap = (size_t) c * c * 3;
	}
	region = use->crop;
	status = resize_region(img->rgb, img->width, img->height, rw, rh, left, top, c, c,
						   region, use, err);
	if (status == MMSA_OK)
	{
		/* value = (pixel * scale - mean) / std, per output channel */
		for (int oc = 0; oc < 3; oc++)
			for (int v = 0; v < 256; v++)
				lut[oc][v] = (float) (((double) v * cfg->scale - cfg->mean[oc]) / cfg->std[oc]);
		for (int oc = 0; oc < 3; oc++)
		{
			int			sc = cfg->bgr ? 2 - oc : oc;
			float	   *o = out + (size_t) oc * c * c;

			for (size_t i = 0; i < (size_t) c * c; i++)
				o[i] = lut[oc][region[3 * i + sc]];
		}
	}
	image_workspace_free(&local);
	return status;
}
