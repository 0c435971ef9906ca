/*
 * test_image_decode.c
 *	  Unit tests of the image decoder and preprocessing.  Self-contained:
 *	  the JPEG and PNG inputs are encoded here with libjpeg and libpng, and
 *	  the hostile ones derived from them (every truncation, bit flips,
 *	  patched headers), so `make unit` needs no fixtures.  The comparison
 *	  with Pillow / torchvision is test/t/image_decode_reference.t.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <png.h>
#include <zlib.h>
#include <jansson.h>

#include "image.h"
#include "tap.h"

/* ---- encoders for the test inputs --------------------------------------- */

/* A w x h test picture: a distinct colour per pixel (gradients). */
static uint8_t *
make_rgb(int w, int h)
{
	uint8_t    *p = malloc((size_t) w * h * 3);

	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++)
		{
			uint8_t    *q = p + ((size_t) y * w + x) * 3;

			q[0] = (uint8_t) (x * 255 / (w > 1 ? w - 1 : 1));
			q[1] = (uint8_t) (y * 255 / (h > 1 ? h - 1 : 1));
			q[2] = (uint8_t) ((x + y) * 255 / (w + h > 2 ? w + h - 2 : 1));
		}
	return p;
}

/* JPEG of rgb (w x h), quality 90, optional progressive and APP1 payload. */
static uint8_t *
encode_jpeg(const uint8_t *rgb, int w, int h, int progressive,
			const uint8_t *app1, unsigned app1_len, size_t *len)
{
	struct jpeg_compress_struct c;
	struct jpeg_error_mgr jerr;
	unsigned char *buf = NULL;
	unsigned long size = 0;

	c.err = jpeg_std_error(&jerr);
	jpeg_create_compress(&c);
	jpeg_mem_dest(&c, &buf, &size);
	c.image_width = w;
	c.image_height = h;
	c.input_components = 3;
	c.in_color_space = JCS_RGB;
	jpeg_set_defaults(&c);
	jpeg_set_quality(&c, 90, TRUE);
	if (progressive)
		jpeg_simple_progression(&c);
	jpeg_start_compress(&c, TRUE);
	if (app1 != NULL)
		jpeg_write_marker(&c, JPEG_APP0 + 1, app1, app1_len);
	while (c.next_scanline < c.image_height)
	{
		JSAMPROW	row = (JSAMPROW) (rgb + (size_t) c.next_scanline * w * 3);

		jpeg_write_scanlines(&c, &row, 1);
	}
	jpeg_finish_compress(&c);
	jpeg_destroy_compress(&c);
	*len = size;
	return buf;
}

typedef struct membuf
{
	uint8_t    *data;
	size_t		len;
	size_t		cap;
} membuf;

static void
png_write_cb(png_structp png, png_bytep data, png_size_t n)
{
	membuf	   *m = png_get_io_ptr(png);

	if (m->len + n > m->cap)
	{
		m->cap = (m->len + n) * 2;
		m->data = realloc(m->data, m->cap);
	}
	memcpy(m->data + m->len, data, n);
	m->len += n;
}

static void
png_flush_cb(png_structp png)
{
	(void) png;
}

/* PNG of pix (w x h, channels 3 or 4, 8-bit), optional eXIf payload. */
static uint8_t *
encode_png(const uint8_t *pix, int w, int h, int channels, int interlace,
		   const uint8_t *exif, unsigned exif_len, size_t *len)
{
	membuf		m = {0};
	png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	png_infop	info = png_create_info_struct(png);

	png_set_write_fn(png, &m, png_write_cb, png_flush_cb);
	png_set_IHDR(png, info, w, h, 8, channels == 4 ? PNG_COLOR_TYPE_RGB_ALPHA : PNG_COLOR_TYPE_RGB,
				 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
				 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	if (exif != NULL)
		png_set_eXIf_1(png, info, exif_len, (png_bytep) exif);
	png_write_info(png, info);
	{
		int			passes = png_set_interlace_handling(png);

		for (int pass = 0; pass < passes; pass++)
			for (int y = 0; y < h; y++)
				png_write_row(png, (png_const_bytep) (pix + (size_t) y * w * channels));
	}
	png_write_end(png, info);
	png_destroy_write_struct(&png, &info);
	*len = m.len;
	return m.data;
}

/* Minimal TIFF block with IFD0 = { Orientation: o }, little or big endian. */
static size_t
make_exif(uint8_t *out, int o, int big_endian)
{
	static const uint8_t le[] = {'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
	static const uint8_t be[] = {'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0};

	memcpy(out, big_endian ? be : le, sizeof(le));
	if (big_endian)
		out[19] = (uint8_t) o;
	else
		out[18] = (uint8_t) o;
	return sizeof(le);
}

static int
status_is_error(mmsa_status s, const mmsa_error *err, const mmsa_image *img)
{
	return s != MMSA_OK && err->status == s && err->message[0] != '\0' &&
		img->rgb == NULL && img->width == 0 && img->height == 0;
}

static const uint8_t *
pixel(const mmsa_image *img, int x, int y)
{
	return img->rgb + ((size_t) y * img->width + x) * 3;
}

static int	cancel_now = 0;

static int
cancel_hook(void)
{
	return cancel_now;
}

int
main(void)
{
	image_decode_options opt;
	mmsa_image	img = {0};
	mmsa_error	err;
	mmsa_status s;
	uint8_t    *rgb = make_rgb(64, 48);
	size_t		jlen,
				plen,
				len;
	uint8_t    *jpeg = encode_jpeg(rgb, 64, 48, 0, NULL, 0, &jlen);
	uint8_t    *pjpeg = encode_jpeg(rgb, 64, 48, 1, NULL, 0, &len);
	size_t		pjlen = len;
	uint8_t    *png = encode_png(rgb, 64, 48, 3, 0, NULL, 0, &plen);
	int			bad;

	image_decode_options_init(&opt);
	mmsa_clear_error(&err);

	/* ---- good input ---- */
	s = image_decode(jpeg, jlen, &opt, &img, &err);
	ok(s == MMSA_OK && img.width == 64 && img.height == 48, "baseline JPEG decodes 64x48 (%s)", err.message);
	if (s == MMSA_OK)
	{
		int			maxd = 0;

		for (size_t i = 0; i < (size_t) 64 * 48 * 3; i++)
		{
			int			d = abs((int) img.rgb[i] - (int) rgb[i]);

			maxd = d > maxd ? d : maxd;
		}
		ok(maxd <= 12, "JPEG pixels near the encoded ones (max abs diff %d, quality 90)", maxd);
	}
	image_free(&img);
	ok(img.rgb == NULL && img.width == 0, "image_free empties the image");
	image_free(&img);			/* twice is harmless */

	s = image_decode(pjpeg, pjlen, NULL, &img, &err);
	ok(s == MMSA_OK && img.width == 64 && img.height == 48, "progressive JPEG decodes with default options");
	image_free(&img);

	s = image_decode(png, plen, &opt, &img, &err);
	ok(s == MMSA_OK && img.width == 64 && img.height == 48 && memcmp(img.rgb, rgb, 64 * 48 * 3) == 0,
	   "RGB PNG decodes losslessly");
	image_free(&img);
	{
		uint8_t    *ipng = encode_png(rgb, 64, 48, 3, 1, NULL, 0, &len);

		s = image_decode(ipng, len, &opt, &img, &err);
		ok(s == MMSA_OK && img.width == 64 && memcmp(img.rgb, rgb, 64 * 48 * 3) == 0,
		   "interlaced PNG decodes losslessly");
		image_free(&img);
		free(ipng);
	}
	{
		/* RGBA over white: a = 0 -> 255, a = 255 -> c, a = 128 -> (c*128 + 255*127 + 127)/255 */
		uint8_t		rgba[4 * 3] = {10, 20, 30, 0, 10, 20, 30, 255, 10, 20, 30, 128};
		uint8_t    *apng = encode_png(rgba, 3, 1, 4, 0, NULL, 0, &len);

		s = image_decode(apng, len, &opt, &img, &err);
		ok(s == MMSA_OK && img.width == 3 &&
		   pixel(&img, 0, 0)[0] == 255 && pixel(&img, 0, 0)[2] == 255 &&
		   pixel(&img, 1, 0)[0] == 10 && pixel(&img, 1, 0)[2] == 30 &&
		   pixel(&img, 2, 0)[0] == (10 * 128 + 255 * 127 + 127) / 255,
		   "RGBA PNG composited over white");
		image_free(&img);
		free(apng);
	}

	/* ---- EXIF orientation (PNG eXIf, lossless, so pixels can be compared) ---- */
	{
		uint8_t		ex[32];
		int			w = 64,
					h = 48;
		struct
		{
			int			o,
						ow,
						oh;
			int			sx,
						sy;		/* the source pixel that lands at (0,0) */
		}			cases[] = {
			{1, 64, 48, 0, 0}, {2, 64, 48, 63, 0}, {3, 64, 48, 63, 47}, {4, 64, 48, 0, 47},
			{5, 48, 64, 0, 0}, {6, 48, 64, 0, 47}, {7, 48, 64, 63, 47}, {8, 48, 64, 63, 0},
		};

		for (int i = 0; i < 8; i++)
		{
			size_t		exlen = make_exif(ex, cases[i].o, i % 2);
			uint8_t    *epng = encode_png(rgb, w, h, 3, 0, ex, (unsigned) exlen, &len);

			s = image_decode(epng, len, &opt, &img, &err);
			ok(s == MMSA_OK && img.width == cases[i].ow && img.height == cases[i].oh &&
			   memcmp(pixel(&img, 0, 0), rgb + ((size_t) cases[i].sy * w + cases[i].sx) * 3, 3) == 0,
			   "orientation %d (%s-endian EXIF): %dx%d, corner from source (%d,%d)", cases[i].o,
			   i % 2 ? "big" : "little", cases[i].ow, cases[i].oh, cases[i].sx, cases[i].sy);
			image_free(&img);
			if (cases[i].o == 6)
			{
				opt.no_orientation = 1;
				s = image_decode(epng, len, &opt, &img, &err);
				ok(s == MMSA_OK && img.width == 64, "no_orientation keeps the stored layout");
				image_free(&img);
				opt.no_orientation = 0;
			}
			free(epng);
		}
		/* JPEG APP1 Exif with orientation 6 */
		{
			uint8_t		app1[64];
			size_t		n;
			uint8_t    *ej;

			memcpy(app1, "Exif\0\0", 6);
			n = 6 + make_exif(app1 + 6, 6, 0);
			ej = encode_jpeg(rgb, w, h, 0, app1, (unsigned) n, &len);
			s = image_decode(ej, len, &opt, &img, &err);
			ok(s == MMSA_OK && img.width == 48 && img.height == 64, "JPEG EXIF orientation 6 rotates to 48x64");
			image_free(&img);
			free(ej);
			/* hostile EXIF: out-of-range orientation, IFD offset past the end, huge entry count */
			app1[6 + 18] = 9;
			ej = encode_jpeg(rgb, w, h, 0, app1, (unsigned) n, &len);
			s = image_decode(ej, len, &opt, &img, &err);
			ok(s == MMSA_OK && img.width == 64, "orientation 9 is ignored");
			image_free(&img);
			free(ej);
			app1[6 + 18] = 6;
			app1[6 + 4] = 0xF0;
			app1[6 + 7] = 0x7F;
			ej = encode_jpeg(rgb, w, h, 0, app1, (unsigned) n, &len);
			s = image_decode(ej, len, &opt, &img, &err);
			ok(s == MMSA_OK && img.width == 64, "EXIF IFD offset past the end is ignored");
			image_free(&img);
			free(ej);
			app1[6 + 4] = 8;
			app1[6 + 7] = 0;
			app1[6 + 8] = 0xFF;
			app1[6 + 9] = 0xFF;
			app1[6 + 10] = 0x00;	/* first entry no longer the Orientation tag */
			ej = encode_jpeg(rgb, w, h, 0, app1, (unsigned) n, &len);
			s = image_decode(ej, len, &opt, &img, &err);
			ok(s == MMSA_OK && img.width == 64, "EXIF entry count past the end is ignored");
			image_free(&img);
			free(ej);
			ej = encode_jpeg(rgb, w, h, 0, (const uint8_t *) "Exif\0\0II", 8, &len);
			s = image_decode(ej, len, &opt, &img, &err);
			ok(s == MMSA_OK && img.width == 64, "truncated EXIF block is ignored");
			image_free(&img);
			free(ej);
		}
	}

	/* ---- DCT scaling ---- */
	{
		uint8_t    *big = make_rgb(640, 480);
		uint8_t    *bj = encode_jpeg(big, 640, 480, 0, NULL, 0, &len);
		struct
		{
			int			target,
						w,
						h;
		}			cases[] = {{0, 640, 480}, {60, 80, 60}, {61, 160, 120}, {240, 320, 240},
		{241, 400, 300}, {480, 640, 480}, {1000, 640, 480}};

		for (int i = 0; i < 7; i++)
		{
			opt.target_short_side = cases[i].target;
			s = image_decode(bj, len, &opt, &img, &err);
			ok(s == MMSA_OK && img.width == cases[i].w && img.height == cases[i].h,
			   "640x480 JPEG, target %d: decoded at %dx%d (got %dx%d)", cases[i].target,
			   cases[i].w, cases[i].h, img.width, img.height);
			image_free(&img);
		}
		opt.target_short_side = -1;
		s = image_decode(bj, len, &opt, &img, &err);
		ok(s == MMSA_ERR_INVALID, "negative target is invalid");
		opt.target_short_side = 0;

		/* cancellation */
		mmsa_set_interrupt_hook(cancel_hook);
		cancel_now = 1;
		s = image_decode(bj, len, &opt, &img, &err);
		ok(status_is_error(s, &err, &img) && s == MMSA_ERR_CANCELED, "decode canceled by the interrupt hook");
		cancel_now = 0;
		mmsa_set_interrupt_hook(NULL);
		free(bj);
		free(big);
	}

	/* ---- pixel limit ---- */
	opt.max_pixels = 64 * 48 - 1;
	s = image_decode(jpeg, jlen, &opt, &img, &err);
	ok(status_is_error(s, &err, &img) && s == MMSA_ERR_LIMIT, "JPEG over max_pixels: LIMIT (%s)", err.message);
	s = image_decode(png, plen, &opt, &img, &err);
	ok(status_is_error(s, &err, &img) && s == MMSA_ERR_LIMIT, "PNG over max_pixels: LIMIT (%s)", err.message);
	opt.max_pixels = 64 * 48;
	s = image_decode(jpeg, jlen, &opt, &img, &err);
	ok(s == MMSA_OK, "JPEG at exactly max_pixels decodes");
	image_free(&img);
	opt.max_pixels = IMAGE_DEFAULT_MAX_PIXELS;
	{
		/* SOF0 size patched to 65500 x 65500 (JPEG sizes are 16-bit) */
		uint8_t    *h = malloc(jlen);
		size_t		sof = 0;

		memcpy(h, jpeg, jlen);
		for (size_t i = 2; i + 9 < jlen; i++)
			if (h[i] == 0xFF && h[i + 1] == 0xC0)
			{
				sof = i;
				break;
			}
		h[sof + 5] = 0xFF;
		h[sof + 6] = 0xDC;
		h[sof + 7] = 0xFF;
		h[sof + 8] = 0xDC;
		s = image_decode(h, jlen, &opt, &img, &err);
		ok(sof > 0 && status_is_error(s, &err, &img) && s == MMSA_ERR_LIMIT,
		   "JPEG header claiming 65500x65500: LIMIT (%s)", err.message);
		free(h);
	}
	{
		/* IHDR patched to 100000 x 100000 with a valid CRC */
		uint8_t    *h = malloc(plen);
		uint32_t	crc;

		memcpy(h, png, plen);
		h[16] = 0;
		h[17] = 0x01;
		h[18] = 0x86;
		h[19] = 0xA0;
		memcpy(h + 20, h + 16, 4);
		crc = (uint32_t) crc32(0, h + 12, 17);
		h[29] = crc >> 24;
		h[30] = crc >> 16;
		h[31] = crc >> 8;
		h[32] = crc;
		s = image_decode(h, plen, &opt, &img, &err);
		ok(status_is_error(s, &err, &img) && s == MMSA_ERR_LIMIT,
		   "PNG header claiming 100000x100000: LIMIT (%s)", err.message);
		free(h);
	}

	/* ---- empty, other formats, garbage ---- */
	s = image_decode(jpeg, 0, &opt, &img, &err);
	ok(status_is_error(s, &err, &img) && s == MMSA_ERR_INVALID, "empty input: INVALID (%s)", err.message);
	s = image_decode(NULL, 10, &opt, &img, &err);
	ok(status_is_error(s, &err, &img) && s == MMSA_ERR_INVALID, "NULL input: INVALID");
	{
		struct
		{
			const char *bytes;
			size_t		n;
			const char *name;
		}			fmts[] = {
			{"GIF89a\x01\x00\x01\x00", 10, "GIF"},
			{"RIFF\x10\x00\x00\x00WEBPVP8 ", 16, "WebP"},
			{"BM\x36\x00\x00\x00\x00\x00", 8, "BMP"},
			{"II*\0\x08\x00\x00\x00", 8, "TIFF"},
			{"\0\0\0\x18" "ftypavif\0\0\0\0", 16, "HEIC/AVIF (ftyp brand avif)"},
			{"hello, world", 12, "unknown (first bytes: 68 65 6c 6c 6f 2c 20 77)"},
			{"\xff\xd8", 2, "unknown (first bytes: ff d8)"},
		};

		for (int i = 0; i < 7; i++)
		{
			s = image_decode((const uint8_t *) fmts[i].bytes, fmts[i].n, &opt, &img, &err);
			ok(status_is_error(s, &err, &img) && s == MMSA_ERR_UNSUPPORTED &&
			   strstr(err.message, fmts[i].name) != NULL,
			   "%s: UNSUPPORTED (%s)", fmts[i].name, err.message);
		}
	}

	/* ---- every truncation is an error, never a crash or a padded image ---- */
	bad = 0;
	for (size_t n = 1; n < jlen; n++)
	{
		s = image_decode(jpeg, n, &opt, &img, &err);
		if (!status_is_error(s, &err, &img) || (n >= 3 && s != MMSA_ERR_FORMAT))
		{
			if (bad++ < 3)
				diag("JPEG prefix of %zu bytes: %s %s", n, mmsa_status_name(s), err.message);
		}
		image_free(&img);
	}
	ok(bad == 0, "all %zu truncations of a baseline JPEG fail with FORMAT", jlen - 1);
	bad = 0;
	for (size_t n = 3; n < pjlen; n++)
	{
		s = image_decode(pjpeg, n, &opt, &img, &err);
		if (!status_is_error(s, &err, &img) || s != MMSA_ERR_FORMAT)
			bad++;
		image_free(&img);
	}
	ok(bad == 0, "all truncations of a progressive JPEG fail with FORMAT");
	bad = 0;
	for (size_t n = 8; n < plen; n++)
	{
		s = image_decode(png, n, &opt, &img, &err);
		if (!status_is_error(s, &err, &img) || s != MMSA_ERR_FORMAT)
		{
			if (bad++ < 3)
				diag("PNG prefix of %zu bytes: %s %s", n, mmsa_status_name(s), err.message);
		}
		image_free(&img);
	}
	ok(bad == 0, "all %zu truncations of a PNG fail with FORMAT", plen - 8);

	/* ---- bit flips: no crash; PNG flips past the signature are caught by CRCs ---- */
	{
		uint8_t    *c = malloc(jlen > plen ? jlen : plen);
		int			ok_count = 0,
					err_count = 0,
					weird = 0;

		for (size_t i = 0; i < jlen; i++)
			for (int b = 0; b < 8; b += 3)
			{
				memcpy(c, jpeg, jlen);
				c[i] ^= (uint8_t) (1 << b);
				s = image_decode(c, jlen, &opt, &img, &err);
				if (s == MMSA_OK)
					ok_count += (img.width > 0 && img.rgb != NULL);
				else if (status_is_error(s, &err, &img))
					err_count++;
				else
					weird++;
				image_free(&img);
			}
		ok(weird == 0, "JPEG bit flips: %d decoded, %d refused, none inconsistent", ok_count, err_count);
		bad = 0;
		for (size_t i = 8; i < plen; i++)
		{
			memcpy(c, png, plen);
			c[i] ^= 0x04;
			s = image_decode(c, plen, &opt, &img, &err);
			if (s == MMSA_OK)
			{
				/* only a flip in a chunk length or an ignored chunk can pass; check the pixels */
				if (memcmp(img.rgb, rgb, 64 * 48 * 3) != 0)
					bad++;
			}
			else if (!status_is_error(s, &err, &img))
				bad++;
			image_free(&img);
		}
		ok(bad == 0, "PNG bit flips never give wrong pixels");
		free(c);
	}

	/* ---- preprocessing ---- */
	{
		image_preprocess_config cfg;
		image_workspace ws = {0};
		json_error_t jerr;
		json_t	   *j;
		float	   *out = malloc(sizeof(float) * 3 * 300 * 300);
		int			w,
					h;
		const char *bad_configs[] = {
			"{\"resize\": 256, \"crop\": 224, \"colour\": \"RGB\"}",
			"{\"channel_order\": \"RBG\"}",
			"{\"std\": [1, 0, 1]}",
			"{\"mean\": [1, 2]}",
			"{\"resize\": 200, \"crop\": 224}",
			"{\"crop\": 0}",
			"{\"resize\": 1e3}",
			"[1, 2, 3]",
		};

		image_resize_output_size(640, 480, 256, &w, &h);
		ok(w == 341 && h == 256, "640x480 -> short side 256: 341x256 (int(256*640/480))");
		image_resize_output_size(480, 640, 256, &w, &h);
		ok(w == 256 && h == 341, "480x640 -> 256x341");
		image_resize_output_size(500, 500, 256, &w, &h);
		ok(w == 256 && h == 256, "square -> 256x256");

		j = json_loads("{\"resize\":256,\"crop\":224,\"channel_order\":\"BGR\",\"scale\":1,"
					   "\"mean\":[103.939,116.779,123.68],\"std\":[1,1,1]}", 0, &jerr);
		s = image_preprocess_config_from_json(j, &cfg, &err);
		ok(s == MMSA_OK && cfg.bgr == 1 && cfg.scale == 1.0f && cfg.mean[2] == 123.68f && cfg.crop == 224,
		   "Caffe configuration from JSON");
		json_decref(j);
		for (int i = 0; i < 8; i++)
		{
			j = json_loads(bad_configs[i], 0, &jerr);
			s = image_preprocess_config_from_json(j, &cfg, &err);
			ok(s == MMSA_ERR_INVALID && err.message[0] != '\0', "bad configuration %s: %s", bad_configs[i],
			   err.message);
			json_decref(j);
		}

		/* a pure red image through the Caffe configuration: B,G,R planes */
		{
			mmsa_image	red = {100, 80, malloc(100 * 80 * 3)};

			for (int i = 0; i < 100 * 80; i++)
			{
				red.rgb[3 * i] = 255;
				red.rgb[3 * i + 1] = 0;
				red.rgb[3 * i + 2] = 0;
			}
			image_preprocess_config_caffe(&cfg);
			s = image_preprocess(&red, &cfg, &ws, out, &err);
			ok(s == MMSA_OK && out[0] == -103.939f && out[224 * 224] == -116.779f &&
			   fabsf(out[2 * 224 * 224 + 5000] - (255.0f - 123.68f)) < 1e-4f,
			   "Caffe: constant red image gives B = -103.939, G = -116.779, R = 131.32");
			image_preprocess_config_torchvision(&cfg);
			s = image_preprocess(&red, &cfg, NULL, out, &err);
			ok(s == MMSA_OK && fabsf(out[0] - (1.0f - 0.485f) / 0.229f) < 1e-5f &&
			   fabsf(out[224 * 224 + 7] - (0.0f - 0.456f) / 0.224f) < 1e-5f,
			   "torchvision: constant red image normalised per channel");
			free(red.rgb);
		}

		/*
		 * Centre crop without resampling: an image whose short side is
		 * already `resize` is not resampled; the crop offset is
		 * round((size - crop) / 2) with Python's half-to-even rounding.
		 */
		{
			int			widths[] = {300, 301, 303};
			int			lefts[] = {38, 38, 40};

			image_preprocess_config_torchvision(&cfg);
			cfg.scale = 1.0f;
			for (int c = 0; c < 3; c++)
			{
				cfg.mean[c] = 0.0f;
				cfg.std[c] = 1.0f;
			}
			for (int i = 0; i < 3; i++)
			{
				mmsa_image	g = {widths[i], 256, make_rgb(widths[i], 256)};

				s = image_preprocess(&g, &cfg, &ws, out, &err);
				ok(s == MMSA_OK && out[0] == (float) pixel(&g, lefts[i], 16)[0] &&
				   out[224 * 224 + 223 * 224 + 223] == (float) pixel(&g, lefts[i] + 223, 16 + 223)[1],
				   "width %d: crop starts at x = %d, y = 16", widths[i], lefts[i]);
				free(g.rgb);
			}
		}
		/* a constant image stays constant through any resize */
		{
			mmsa_image	k = {1000, 37, malloc(1000 * 37 * 3)};
			int			allsame = 1;

			memset(k.rgb, 77, 1000 * 37 * 3);
			cfg.resize = 256;
			s = image_preprocess(&k, &cfg, &ws, out, &err);
			for (int i = 0; i < 3 * 224 * 224; i++)
				allsame &= out[i] == 77.0f;
			ok(s == MMSA_OK && allsame, "constant 1000x37 image (upscaled 6.9x, downscaled) stays 77");
			cfg.resize = 0;
			s = image_preprocess(&k, &cfg, &ws, out, &err);
			allsame = 1;
			for (int i = 0; i < 3 * 224 * 224; i++)
				allsame &= out[i] == 77.0f;
			ok(s == MMSA_OK && allsame, "resize 0 (squash to 224x224) of a constant image stays 77");
			free(k.rgb);
		}
		/* an extreme aspect ratio is refused, not allocated */
		{
			mmsa_image	thin = {1, 200000, calloc(200000, 3)};

			cfg.resize = 256;
			s = image_preprocess(&thin, &cfg, &ws, out, &err);
			ok(s == MMSA_ERR_LIMIT, "1x200000 image: resizing to short side 256 refused (%s)", err.message);
			free(thin.rgb);
		}
		/* image_resize_bilinear: identity size copies */
		{
			uint8_t    *o = malloc(64 * 48 * 3);

			s = image_resize_bilinear(rgb, 64, 48, o, 64, 48, &err);
			ok(s == MMSA_OK && memcmp(o, rgb, 64 * 48 * 3) == 0, "resize to the same size is the identity");
			free(o);
		}
		image_workspace_free(&ws);
		free(out);
	}

	free(jpeg);
	free(pjpeg);
	free(png);
	free(rgb);
	return tap_done();
}
