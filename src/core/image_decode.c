/*
 * image_decode.c
 *	  JPEG (libjpeg-turbo) and PNG (libpng) decoding into 8-bit RGB.
 *
 * Both libraries report errors by calling a function that must not return.
 * Their error handlers here record the library's message and longjmp back
 * into the decoder function that called setjmp (jpeg_decode_rgb,
 * png_decode_rgb); nothing longjmps across this file's boundary.  Locals
 * that change after setjmp and are used after a longjmp are volatile.
 * Neither library ever prints (output_message / the warning function only
 * record) or exits.
 *
 * libjpeg treats corrupt entropy data and a premature end of file as
 * warnings (it pads with zeros and goes on); here every warning about
 * corrupt data fails the decode with MMSA_ERR_FORMAT, so truncated and
 * damaged files are reported rather than decoded into grey blocks.
 */
#include "image.h"

#include <limits.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

/* libjpeg-turbo's TJFLAG_LIMITSCANS limit: progressive files with more scans are refused. */
#define JPEG_MAX_SCANS 500

void
image_decode_options_init(image_decode_options *opt)
{
	opt->max_pixels = IMAGE_DEFAULT_MAX_PIXELS;
	opt->target_short_side = 0;
	opt->no_orientation = 0;
}

void
image_free(mmsa_image *img)
{
	if (img == NULL)
		return;
	free(img->rgb);
	img->rgb = NULL;
	img->width = 0;
	img->height = 0;
}

/*
 * Names the format of data from its first bytes, or returns NULL.
 */
const char *
image_detect_format(const uint8_t *data, size_t len, char *buf, size_t bufsize)
{
	const char *name = NULL;

	if (len >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF)
		name = "JPEG";
	else if (len >= 8 && memcmp(data, "\x89PNG\r\n\x1a\n", 8) == 0)
		name = "PNG";
	else if (len >= 6 && (memcmp(data, "GIF87a", 6) == 0 || memcmp(data, "GIF89a", 6) == 0))
		name = "GIF";
	else if (len >= 12 && memcmp(data, "RIFF", 4) == 0 && memcmp(data + 8, "WEBP", 4) == 0)
		name = "WebP";
	else if (len >= 2 && data[0] == 'B' && data[1] == 'M')
		name = "BMP";
	else if (len >= 4 && (memcmp(data, "II*\0", 4) == 0 || memcmp(data, "MM\0*", 4) == 0))
		name = "TIFF";
	else if (len >= 12 && memcmp(data + 4, "ftyp", 4) == 0)
	{
		char		brand[5];

		for (int i = 0; i < 4; i++)
		{
			uint8_t		c = data[8 + i];

			brand[i] = (c >= 0x20 && c < 0x7F) ? (char) c : '?';
		}
		brand[4] = '\0';
		snprintf(buf, bufsize, "HEIC/AVIF (ftyp brand %s)", brand);
		return buf;
	}
	if (name != NULL)
		snprintf(buf, bufsize, "%s", name);
	return name != NULL ? buf : NULL;
}

/* ---- EXIF orientation ------------------------------------------------- */

static unsigned
exif_u16(const uint8_t *p, int big_endian)
{
	return big_endian ? (unsigned) ((p[0] << 8) | p[1]) : (unsigned) ((p[1] << 8) | p[0]);
}

static uint32_t
exif_u32(const uint8_t *p, int big_endian)
{
	return big_endian
		? ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) | ((uint32_t) p[2] << 8) | p[3]
		: ((uint32_t) p[3] << 24) | ((uint32_t) p[2] << 16) | ((uint32_t) p[1] << 8) | p[0];
}

/*
 * Orientation (1-8) from TIFF-structured EXIF data (starting at the byte
 * order mark "II" / "MM"): IFD0's tag 0x0112, type SHORT.  Every read is
 * bounds-checked; anything malformed or out of range gives 1 (as is).
 */
static int
exif_orientation(const uint8_t *tiff, size_t len)
{
	int			big_endian;
	uint32_t	ifd;
	unsigned	count;

	if (len < 8)
		return 1;
	if (tiff[0] == 'I' && tiff[1] == 'I')
		big_endian = 0;
	else if (tiff[0] == 'M' && tiff[1] == 'M')
		big_endian = 1;
	else
		return 1;
	if (exif_u16(tiff + 2, big_endian) != 42)
		return 1;
	ifd = exif_u32(tiff + 4, big_endian);
	if (ifd > len || len - ifd < 2)
		return 1;
	count = exif_u16(tiff + ifd, big_endian);
	for (unsigned i = 0; i < count; i++)
	{
		size_t		entry = (size_t) ifd + 2 + (size_t) i * 12;
		unsigned	tag,
					type,
					value;

		if (entry > len || len - entry < 12)
			return 1;
		tag = exif_u16(tiff + entry, big_endian);
		if (tag != 0x0112)
			continue;
		type = exif_u16(tiff + entry + 2, big_endian);
		if (type != 3 || exif_u32(tiff + entry + 4, big_endian) < 1)
			return 1;
		value = exif_u16(tiff + entry + 8, big_endian);
		return (value >= 1 && value <= 8) ? (int) value : 1;
	}
	return 1;
}

/*
 * Applies EXIF orientation o (2-8) to img, as Pillow's exif_transpose:
 * 2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90 clockwise,
 * 7 transverse, 8 rotate 90 counter-clockwise.  Source pixel (x, y) of a
 * w x h image goes to the output position given below.
 */
static mmsa_status
image_apply_orientation(mmsa_image *img, int o, mmsa_error *err)
{
	int			w = img->width,
				h = img->height;
	int			ow = (o >= 5) ? h : w,
				oh = (o >= 5) ? w : h;
	uint8_t    *out;

	if (o < 2 || o > 8)
		return MMSA_OK;
	out = malloc((size_t) w * h * 3);
	if (out == NULL)
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory rotating a %dx%d image", w, h);
	for (int y = 0; y < h; y++)
	{
		const uint8_t *src = img->rgb + (size_t) y * w * 3;

		for (int x = 0; x < w; x++)
		{
			int			ox,
						oy;

			switch (o)
			{
				case 2:
					ox = w - 1 - x, oy = y;
					break;
				case 3:
					ox = w - 1 - x, oy = h - 1 - y;
					break;
				case 4:
					ox = x, oy = h - 1 - y;
					break;
				case 5:
					ox = y, oy = x;
					break;
				case 6:
					ox = h - 1 - y, oy = x;
					break;
				case 7:
					ox = h - 1 - y, oy = w - 1 - x;
					break;
				default:		/* 8 */
					ox = y, oy = w - 1 - x;
					break;
			}
			memcpy(out + ((size_t) oy * ow + ox) * 3, src + (size_t) x * 3, 3);
		}
	}
	free(img->rgb);
	img->rgb = out;
	img->width = ow;
	img->height = oh;
	return MMSA_OK;
}

/* Checks w x h against the pixel limit; the product cannot overflow int64. */
static mmsa_status
check_pixel_limit(const char *what, int64_t w, int64_t h, int64_t max_pixels, mmsa_error *err)
{
	if (w <= 0 || h <= 0)
		return mmsa_set_error(err, MMSA_ERR_FORMAT, "%s: invalid image size %lldx%lld",
							  what, (long long) w, (long long) h);
	if (w > INT_MAX / 4 || h > INT_MAX / 4 || w * h > max_pixels)
		return mmsa_set_error(err, MMSA_ERR_LIMIT,
							  "%s: image of %lldx%lld pixels exceeds the limit of %lld pixels",
							  what, (long long) w, (long long) h, (long long) max_pixels);
	return MMSA_OK;
}

/* ---- JPEG -------------------------------------------------------------- */

typedef struct jpeg_error_state
{
	struct jpeg_error_mgr pub;	/* must be first */
	jmp_buf		jump;
	char		message[JMSG_LENGTH_MAX];
} jpeg_error_state;

/* libjpeg fatal error: record the message and jump back to the decoder. */
static void
jpeg_error_exit_cb(j_common_ptr cinfo)
{
	jpeg_error_state *st = (jpeg_error_state *) cinfo->err;

	(*cinfo->err->format_message) (cinfo, st->message);
	longjmp(st->jump, 1);
}

/*
 * libjpeg message: level -1 is a warning.  Warnings about metadata are
 * ignored; every other warning (corrupt entropy data, premature end of
 * file, ...) is treated as a fatal error.  Trace messages are dropped.
 */
static void
jpeg_emit_message_cb(j_common_ptr cinfo, int msg_level)
{
	jpeg_error_state *st = (jpeg_error_state *) cinfo->err;

	if (msg_level >= 0)
		return;
	switch (cinfo->err->msg_code)
	{
		case JWRN_ADOBE_XFORM:
		case JWRN_JFIF_MAJOR:
		case JWRN_BOGUS_ICC:
			cinfo->err->num_warnings++;
			return;
		default:
			break;
	}
	cinfo->err->num_warnings++;
	(*cinfo->err->format_message) (cinfo, st->message);
	longjmp(st->jump, 1);
}

/* Never print. */
static void
jpeg_output_message_cb(j_common_ptr cinfo)
{
	(void) cinfo;
}

/* Refuses progressive files with absurd numbers of scans (CPU exhaustion). */
static void
jpeg_progress_cb(j_common_ptr cinfo)
{
	if (cinfo->is_decompressor &&
		((j_decompress_ptr) cinfo)->input_scan_number > JPEG_MAX_SCANS)
	{
		jpeg_error_state *st = (jpeg_error_state *) cinfo->err;

		snprintf(st->message, sizeof(st->message),
				 "progressive JPEG has more than %d scans", JPEG_MAX_SCANS);
		longjmp(st->jump, 1);
	}
}

/*
 * Orientation from the first APP1 "Exif\0" marker saved by libjpeg, as
 * Pillow reads it (info["exif"] is the first such marker).
 */
static int
jpeg_exif_orientation(j_decompress_ptr cinfo)
{
	for (jpeg_saved_marker_ptr m = cinfo->marker_list; m != NULL; m = m->next)
	{
		if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 &&
			memcmp(m->data, "Exif\0", 5) == 0)
			return exif_orientation(m->data + 6, m->data_length - 6);
	}
	return 1;
}

/*
 * Adobe (inverted) CMYK to RGB, as Pillow's "CMYK;I" unpacking followed by
 * convert("RGB"): with C = 255 - raw c and nk = 255 - K = raw k,
 * R = nk - round(C * nk / 255) in Pillow's MULDIV255 arithmetic.
 */
static void
cmyk_inverted_to_rgb(const uint8_t *in, uint8_t *out, int n)
{
	for (int i = 0; i < n; i++)
	{
		int			nk = in[3];

		for (int c = 0; c < 3; c++)
		{
			int			t = (255 - in[c]) * nk + 128;
			int			v = nk - (((t >> 8) + t) >> 8);

			out[c] = (uint8_t) (v < 0 ? 0 : (v > 255 ? 255 : v));
		}
		in += 4;
		out += 3;
	}
}

static mmsa_status
jpeg_decode_rgb(const uint8_t *data, size_t len, const image_decode_options *opt,
				mmsa_image *out, mmsa_error *err)
{
	struct jpeg_decompress_struct cinfo;
	struct jpeg_progress_mgr progress;
	jpeg_error_state jerr;
	uint8_t    *volatile rgb = NULL;
	uint8_t    *volatile cmyk_row = NULL;
	volatile int created = 0;
	mmsa_status status = MMSA_OK;
	int			orientation = 1;
	int			w = 0,
				h = 0;

	memset(&cinfo, 0, sizeof(cinfo));
	cinfo.err = jpeg_std_error(&jerr.pub);
	jerr.pub.error_exit = jpeg_error_exit_cb;
	jerr.pub.emit_message = jpeg_emit_message_cb;
	jerr.pub.output_message = jpeg_output_message_cb;
	jerr.message[0] = '\0';

	if (setjmp(jerr.jump))
	{
		/* a libjpeg error or corrupt-data warning */
		if (created)
			jpeg_destroy_decompress(&cinfo);
		free(rgb);
		free(cmyk_row);
		return mmsa_set_error(err, MMSA_ERR_FORMAT, "corrupt or truncated JPEG: %s", jerr.message);
	}
	jpeg_create_decompress(&cinfo);
	created = 1;
	progress.progress_monitor = jpeg_progress_cb;
	cinfo.progress = &progress;
	jpeg_mem_src(&cinfo, data, (unsigned long) len);
	jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);
	jpeg_read_header(&cinfo, TRUE);
	/* the saved markers are freed by jpeg_finish_decompress: read them now */
	if (!opt->no_orientation)
		orientation = jpeg_exif_orientation(&cinfo);

	/* the header's claim, before anything the size of the image exists */
	status = check_pixel_limit("JPEG", cinfo.image_width, cinfo.image_height,
							   opt->max_pixels, err);
	if (status != MMSA_OK)
		goto done;
	/* libjpeg's own allocations (progressive coefficient buffers) stay bounded */
	if (opt->max_pixels <= ((int64_t) LONG_MAX - (64L << 20)) / 10)
		cinfo.mem->max_memory_to_use = (long) (opt->max_pixels * 10 + (64L << 20));

	if (cinfo.num_components == 4)
		cinfo.out_color_space = JCS_CMYK;	/* CMYK or YCCK: libjpeg gives CMYK */
	else
		cinfo.out_color_space = JCS_RGB;	/* also expands grayscale */

	if (opt->target_short_side > 0)
	{
		/* smallest k/8 scale whose short side still covers the target */
		for (int k = 1; k <= 8; k++)
		{
			cinfo.scale_num = k;
			cinfo.scale_denom = 8;
			jpeg_calc_output_dimensions(&cinfo);
			if ((int64_t) cinfo.output_width >= opt->target_short_side &&
				(int64_t) cinfo.output_height >= opt->target_short_side)
				break;
		}
	}
	jpeg_calc_output_dimensions(&cinfo);
	status = check_pixel_limit("JPEG", cinfo.output_width, cinfo.output_height,
							   opt->max_pixels, err);
	if (status != MMSA_OK)
		goto done;

	jpeg_start_decompress(&cinfo);
	w = (int) cinfo.output_width;
	h = (int) cinfo.output_height;
	if ((cinfo.out_color_space == JCS_CMYK && cinfo.output_components != 4) ||
		(cinfo.out_color_space == JCS_RGB && cinfo.output_components != 3))
	{
		status = mmsa_set_error(err, MMSA_ERR_FORMAT, "JPEG: unexpected %d output components",
								cinfo.output_components);
		goto done;
	}
	rgb = malloc((size_t) w * h * 3);
	if (cinfo.out_color_space == JCS_CMYK)
		cmyk_row = malloc((size_t) w * 4);
	if (rgb == NULL || (cinfo.out_color_space == JCS_CMYK && cmyk_row == NULL))
	{
		status = mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory decoding a %dx%d JPEG", w, h);
		goto done;
	}
	while (cinfo.output_scanline < cinfo.output_height)
	{
		unsigned	y = cinfo.output_scanline;
		JSAMPROW	row;

		if ((y & 63) == 0 && mmsa_interrupted())
		{
			status = mmsa_set_error(err, MMSA_ERR_CANCELED, "JPEG decoding canceled");
			goto done;
		}
		row = (cmyk_row != NULL) ? cmyk_row : rgb + (size_t) y * w * 3;
		if (jpeg_read_scanlines(&cinfo, &row, 1) != 1)
		{
			status = mmsa_set_error(err, MMSA_ERR_FORMAT, "JPEG: no scanline %u", y);
			goto done;
		}
		if (cmyk_row != NULL)
			cmyk_inverted_to_rgb(cmyk_row, rgb + (size_t) y * w * 3, w);
	}
	jpeg_finish_decompress(&cinfo);

done:
	jpeg_destroy_decompress(&cinfo);
	created = 0;
	free(cmyk_row);
	if (status != MMSA_OK)
	{
		free(rgb);
		return status;
	}
	out->rgb = rgb;
	out->width = w;
	out->height = h;
	status = image_apply_orientation(out, orientation, err);
	if (status != MMSA_OK)
		image_free(out);
	return status;
}

/* ---- PNG --------------------------------------------------------------- */

typedef struct png_state
{
	const uint8_t *data;
	size_t		len;
	size_t		pos;
	int			over_limit;
	char		message[256];
} png_state;

static void
png_error_cb(png_structp png, png_const_charp msg)
{
	png_state  *st = (png_state *) png_get_error_ptr(png);

	snprintf(st->message, sizeof(st->message), "%s", msg);
	png_longjmp(png, 1);
}

/*
 * Warnings are not printed.  libpng reports a size over the user limits as
 * a warning followed by the error "Invalid IHDR data": remember it.
 */
static void
png_warning_cb(png_structp png, png_const_charp msg)
{
	png_state  *st = (png_state *) png_get_error_ptr(png);

	if (strstr(msg, "exceeds user limit") != NULL)
		st->over_limit = 1;
}

static void
png_read_cb(png_structp png, png_bytep dest, png_size_t n)
{
	png_state  *st = (png_state *) png_get_io_ptr(png);

	if (n > st->len - st->pos)
		png_error(png, "premature end of PNG data");
	memcpy(dest, st->data + st->pos, n);
	st->pos += n;
}

/* Ancillary chunks that are skipped unread (no effect on the pixels). */
static const png_byte png_ignored_chunks[] =
"bKGD\0cHRM\0gAMA\0hIST\0iCCP\0iTXt\0oFFs\0pCAL\0pHYs\0sBIT\0sCAL\0sPLT\0sRGB\0tEXt\0tIME\0zTXt\0";

static mmsa_status
png_decode_rgb(const uint8_t *data, size_t len, const image_decode_options *opt,
			   mmsa_image *out, mmsa_error *err)
{
	png_state	st;
	png_structp png;
	png_infop	info;
	uint8_t    *volatile pixels = NULL;
	png_bytep  *volatile rows = NULL;
	mmsa_status status = MMSA_OK;
	png_uint_32 w,
				h;
	int			bit_depth,
				color_type,
				interlace,
				channels;
	int			orientation = 1;

	st.data = data;
	st.len = len;
	st.pos = 0;
	st.over_limit = 0;
	st.message[0] = '\0';
	png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &st, png_error_cb, png_warning_cb);
	if (png == NULL)
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory creating a PNG reader");
	info = png_create_info_struct(png);
	if (info == NULL)
	{
		png_destroy_read_struct(&png, NULL, NULL);
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory creating a PNG reader");
	}
	if (setjmp(png_jmpbuf(png)))
	{
		png_destroy_read_struct(&png, &info, NULL);
		free(pixels);
		free(rows);
		if (st.over_limit)
			return mmsa_set_error(err, MMSA_ERR_LIMIT,
								  "PNG: image width or height exceeds the limit of %lld pixels",
								  (long long) opt->max_pixels);
		return mmsa_set_error(err, MMSA_ERR_FORMAT, "corrupt or truncated PNG: %s", st.message);
	}
	png_set_read_fn(png, &st, png_read_cb);
	png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, png_ignored_chunks,
								(int) (sizeof(png_ignored_chunks) - 1) / 5);
	png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, NULL, 0);
	png_set_user_limits(png,
						(png_uint_32) (opt->max_pixels < 0x7fffffff ? opt->max_pixels : 0x7fffffff),
						(png_uint_32) (opt->max_pixels < 0x7fffffff ? opt->max_pixels : 0x7fffffff));
	png_read_info(png, info);
	png_get_IHDR(png, info, &w, &h, &bit_depth, &color_type, &interlace, NULL, NULL);
	status = check_pixel_limit("PNG", w, h, opt->max_pixels, err);
	if (status != MMSA_OK)
		goto done;

	if (color_type == PNG_COLOR_TYPE_PALETTE)
		png_set_palette_to_rgb(png);
	if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8)
		png_set_expand_gray_1_2_4_to_8(png);
	if (png_get_valid(png, info, PNG_INFO_tRNS))
		png_set_tRNS_to_alpha(png);
	if (bit_depth == 16)
		png_set_strip_16(png);	/* high byte, as Pillow's ";16B" raw modes */
	if (color_type == PNG_COLOR_TYPE_GRAY || color_type == PNG_COLOR_TYPE_GRAY_ALPHA)
		png_set_gray_to_rgb(png);
	png_set_interlace_handling(png);
	png_read_update_info(png, info);
	channels = png_get_channels(png, info);
	if ((channels != 3 && channels != 4) || png_get_bit_depth(png, info) != 8 ||
		png_get_rowbytes(png, info) != (size_t) w * channels)
	{
		status = mmsa_set_error(err, MMSA_ERR_FORMAT, "PNG: unexpected layout after expansion");
		goto done;
	}
	pixels = malloc((size_t) w * h * channels);
	rows = malloc(sizeof(png_bytep) * h);
	if (pixels == NULL || rows == NULL)
	{
		status = mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory decoding a %ux%u PNG", w, h);
		goto done;
	}
	for (png_uint_32 y = 0; y < h; y++)
		rows[y] = pixels + (size_t) y * w * channels;
	png_read_image(png, rows);
	png_read_end(png, info);
	if (!opt->no_orientation)
	{
		png_uint_32 exif_len = 0;
		png_bytep	exif = NULL;

		if (png_get_eXIf_1(png, info, &exif_len, &exif) != 0 && exif != NULL)
			orientation = exif_orientation(exif, exif_len);
	}
	if (channels == 4)
	{
		/* composite over white, in place, RGBA -> RGB */
		const uint8_t *src = pixels;
		uint8_t    *dst = pixels;

		for (size_t i = 0; i < (size_t) w * h; i++)
		{
			unsigned	a = src[3];

			for (int c = 0; c < 3; c++)
				dst[c] = (uint8_t) ((src[c] * a + 255 * (255 - a) + 127) / 255);
			src += 4;
			dst += 3;
		}
	}

done:
	png_destroy_read_struct(&png, &info, NULL);
	free(rows);
	if (status != MMSA_OK)
	{
		free(pixels);
		return status;
	}
	out->rgb = pixels;
	out->width = (int) w;
	out->height = (int) h;
	status = image_apply_orientation(out, orientation, err);
	if (status != MMSA_OK)
		image_free(out);
	return status;
}

/* ---- entry point -------------------------------------------------------- */

mmsa_status
image_decode(const uint8_t *data, size_t len, const image_decode_options *opt,
			 mmsa_image *out, mmsa_error *err)
{
	image_decode_options defaults;
	char		name[64];

	if (out == NULL)
		return mmsa_set_error(err, MMSA_ERR_INVALID, "image_decode: no output image");
	out->width = out->height = 0;
	out->rgb = NULL;
	if (opt == NULL)
	{
		image_decode_options_init(&defaults);
		opt = &defaults;
	}
	else if (opt->max_pixels <= 0)
	{
		defaults = *opt;
		defaults.max_pixels = IMAGE_DEFAULT_MAX_PIXELS;
		opt = &defaults;
	}
	if (opt->target_short_side < 0)
		return mmsa_set_error(err, MMSA_ERR_INVALID, "negative target short side %d",
							  opt->target_short_side);
	if (data == NULL || len == 0)
		return mmsa_set_error(err, MMSA_ERR_INVALID, "empty image data (0 bytes)");
	if (image_detect_format(data, len, name, sizeof(name)) == NULL)
	{
		char		hex[3 * 8 + 1];
		size_t		n = len < 8 ? len : 8;

		for (size_t i = 0; i < n; i++)
			snprintf(hex + 3 * i, 4, "%02x ", data[i]);
		hex[3 * n - 1] = '\0';
		return mmsa_set_error(err, MMSA_ERR_UNSUPPORTED,
							  "unsupported image format: unknown (first bytes: %s)", hex);
	}
	if (strcmp(name, "JPEG") == 0)
		return jpeg_decode_rgb(data, len, opt, out, err);
	if (strcmp(name, "PNG") == 0)
		return png_decode_rgb(data, len, opt, out, err);
	return mmsa_set_error(err, MMSA_ERR_UNSUPPORTED,
						  "unsupported image format: %s (only JPEG and PNG are decoded)", name);
}
