/*
 * image.h
 *	  Decoding images from bytes (JPEG, PNG) and preprocessing them into the
 *	  float tensor a ResNet-50 takes.
 *
 * Decoding goes by content (magic bytes), never by file name.  JPEG is
 * decoded with libjpeg-turbo, PNG with libpng; every other format gives
 * MMSA_ERR_UNSUPPORTED naming the format seen.  The result is always 8-bit
 * RGB, (H,W,3), with:
 *	  - JPEG: grayscale replicated, CMYK/YCCK read as Adobe (inverted) CMYK
 *		and converted exactly as Pillow's convert("RGB") does, the EXIF
 *		Orientation (IFD0 tag 0x0112, values 1-8) applied as Pillow's
 *		ImageOps.exif_transpose does, and optionally the library's DCT
 *		scaling (k/8, k = 1..8) to the smallest size whose short side still
 *		covers a requested target.
 *	  - PNG: palette, gray, gray+alpha, 16-bit (high byte kept, as Pillow
 *		does), tRNS, interlaced; alpha composited over WHITE:
 *		out = (c * a + 255 * (255 - a) + 127) / 255 (integer division);
 *		an eXIf chunk's orientation is applied as for JPEG.
 *	  - A header claiming more than max_pixels pixels is refused with
 *		MMSA_ERR_LIMIT before any large allocation.  Corrupt or truncated
 *		data (including libjpeg's "corrupt data" warnings) gives
 *		MMSA_ERR_FORMAT; empty input gives MMSA_ERR_INVALID.
 *
 * Preprocessing (image_preprocess) reproduces torchvision's
 * Resize(resize) + CenterCrop(crop) + ToTensor + Normalize on a PIL image:
 * the shorter side is resized to `resize` with Pillow's antialiased
 * bilinear filter (bit-exact: Pillow's coefficients, 22-bit fixed point,
 * uint8 intermediate pass), the crop offsets are rounded half-to-even as
 * Python's round() does, and each value is (pixel * scale - mean[c]) /
 * std[c] in channel order RGB or BGR.
 */
#ifndef MMSA_IMAGE_H
#define MMSA_IMAGE_H

#include <stddef.h>
#include <stdint.h>

/* jansson's object type, declared here so that users of this header need not
 * include <jansson.h> (whose json_object clashes with PostgreSQL's). */
typedef struct json_t json_t;

#include "mmsa_error.h"

/* Default pixel limit of image_decode: 50 megapixels. */
#define IMAGE_DEFAULT_MAX_PIXELS ((int64_t) 50 * 1000 * 1000)

/* Largest crop / resize accepted in a preprocessing configuration. */
#define IMAGE_MAX_PREPROCESS_SIDE 8192

/* A decoded image: 8-bit RGB, row-major, (height, width, 3). */
typedef struct mmsa_image
{
	int			width;
	int			height;
	uint8_t    *rgb;			/* (H,W,3), malloc'ed; image_free frees it */
} mmsa_image;

typedef struct image_decode_options
{
	int64_t		max_pixels;		/* refuse larger images; <= 0: the default */
	int			target_short_side;	/* JPEG DCT scaling target; 0: full size */
	int			no_orientation; /* non-zero: ignore the EXIF orientation */
} image_decode_options;

/* Decode options with the defaults: 50 MP, full size, orientation applied. */
void		image_decode_options_init(image_decode_options *opt);

/*
 * Name of the format the first bytes of data show ("JPEG", "PNG", "GIF",
 * "WebP", "BMP", "TIFF", "HEIC/AVIF (ftyp brand xxxx)"), or NULL when
 * unknown.  buf receives the name (at least 64 bytes).
 */
const char *image_detect_format(const uint8_t *data, size_t len, char *buf, size_t bufsize);

/*
 * Decodes data (len bytes) into out.  opt may be NULL for the defaults.
 * On error out is left empty (width = height = 0, rgb = NULL).
 */
mmsa_status image_decode(const uint8_t *data, size_t len,
						 const image_decode_options *opt,
						 mmsa_image *out, mmsa_error *err);

/* Frees img->rgb and empties img (safe on an empty image). */
void		image_free(mmsa_image *img);

/*
 * Preprocessing configuration.  resize = 0 means: resize straight to
 * crop x crop (aspect not kept), no cropping.  Otherwise resize >= crop.
 */
typedef struct image_preprocess_config
{
	int			resize;			/* shorter side after resizing (256) */
	int			crop;			/* centre crop side (224) */
	int			bgr;			/* non-zero: channel order B,G,R */
	float		scale;			/* pixel multiplier (1/255 or 1) */
	float		mean[3];		/* in output channel order */
	float		std[3];			/* in output channel order */
} image_preprocess_config;

/* torchvision ImageNet: RGB, 1/255, mean .485 .456 .406, std .229 .224 .225 */
void		image_preprocess_config_torchvision(image_preprocess_config *cfg);

/* Caffe / Keras ResNet-50: BGR, scale 1, mean 103.939 116.779 123.68, std 1 */
void		image_preprocess_config_caffe(image_preprocess_config *cfg);

/*
 * Reads a configuration from a JSON object with the keys "resize", "crop",
 * "channel_order" ("RGB" or "BGR"), "scale", "mean" [3], "std" [3].  Keys
 * left out keep the torchvision defaults; unknown keys are an error.
 */
mmsa_status image_preprocess_config_from_json(const json_t *obj,
											  image_preprocess_config *cfg,
											  mmsa_error *err);

/* The same, from a JSON file. */
mmsa_status image_preprocess_config_load(const char *path,
										 image_preprocess_config *cfg,
										 mmsa_error *err);

/*
 * The configuration of a model's "preprocess" object given as JSON text
 * (resnet_model.preprocess_json), torchvision's when json is NULL, checked.
 */
mmsa_status image_preprocess_config_from_string(const char *json,
												image_preprocess_config *cfg,
												mmsa_error *err);

/* Checks a configuration's values (sizes, std != 0, finite numbers). */
mmsa_status image_preprocess_config_check(const image_preprocess_config *cfg,
										  mmsa_error *err);

/*
 * Size after "resize the shorter side to `resize`" as torchvision computes
 * it: the long side is int(resize * long / short).
 */
void		image_resize_output_size(int width, int height, int resize,
									 int *out_width, int *out_height);

/*
 * Work buffers for image_preprocess, grown as needed and reused across
 * calls.  Zero-initialise it; image_workspace_free releases it.
 */
typedef struct image_workspace
{
	void	   *buf;			/* resampling coefficients and intermediate rows */
	size_t		cap;
	uint8_t    *crop;			/* the cropped uint8 pixels, (crop,crop,3) */
	size_t		crop_cap;
} image_workspace;

void		image_workspace_free(image_workspace *ws);

/*
 * Resizes (Pillow bilinear) and centre-crops img and writes the normalised
 * tensor out: (3, crop, crop) float32.  ws may be NULL (buffers are then
 * allocated for this call only).
 */
mmsa_status image_preprocess(const mmsa_image *img,
							 const image_preprocess_config *cfg,
							 image_workspace *ws, float *out,
							 mmsa_error *err);

/*
 * Pillow's Image.resize(BILINEAR) of an RGB image, in full: in (H,W,3) to
 * out (out_height,out_width,3).  Mainly for tests; image_preprocess
 * computes only the cropped part with the same arithmetic.
 */
mmsa_status image_resize_bilinear(const uint8_t *in, int width, int height,
								  uint8_t *out, int out_width, int out_height,
								  mmsa_error *err);

#endif
