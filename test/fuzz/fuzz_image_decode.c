/*
 * fuzz_image_decode.c
 *	  libFuzzer target for the image decoder and preprocessing.
 *
 *	  clang -g -O1 -fsanitize=fuzzer,address -Isrc/core \
 *	      test/fuzz/fuzz_image_decode.c src/core/image_decode.c \
 *	      src/core/image_preprocess.c src/core/mmsa_error.c \
 *	      -ljpeg -lpng -lz -ljansson -lm -o build/fuzz/fuzz_image_decode
 *	  build/fuzz/fuzz_image_decode CORPUS_DIR
 *
 *	  Each input is decoded as an image file, with a 1-megapixel limit,
 *	  at full size and with DCT scaling to a short side of 32, then
 *	  preprocessed (resize 64, crop 56).  Any crash, sanitizer report,
 *	  leak or broken invariant (abort below) is a finding.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"

#define FUZZ_MAX_PIXELS ((int64_t) 1 << 20)

static void
check_result(mmsa_status s, const mmsa_image *img, const mmsa_error *err)
{
	if (s == MMSA_OK)
	{
		if (img->rgb == NULL || img->width < 1 || img->height < 1 ||
			(int64_t) img->width * img->height > FUZZ_MAX_PIXELS)
			abort();
		/* touch the first and last pixel: the buffer must be that large */
		if (img->rgb[0] + img->rgb[(size_t) img->width * img->height * 3 - 1] > 510)
			abort();
	}
	else
	{
		if (img->rgb != NULL || img->width != 0 || err->status != s || err->message[0] == '\0' ||
			memchr(err->message, '\0', sizeof(err->message)) == NULL)
			abort();
	}
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static float tensor[3 * 56 * 56];
	image_decode_options opt;
	image_preprocess_config cfg;
	mmsa_image	img = {0};
	mmsa_error	err;
	mmsa_status s;

	mmsa_clear_error(&err);
	image_decode_options_init(&opt);
	opt.max_pixels = FUZZ_MAX_PIXELS;
	image_preprocess_config_torchvision(&cfg);
	cfg.resize = 64;
	cfg.crop = 56;

	s = image_decode(data, size, &opt, &img, &err);
	check_result(s, &img, &err);
	if (s == MMSA_OK)
	{
		if (image_preprocess(&img, &cfg, NULL, tensor, &err) != MMSA_OK)
		{
			/* only an extreme aspect ratio may be refused */
			if (err.status != MMSA_ERR_LIMIT)
				abort();
		}
		image_free(&img);
	}

	opt.target_short_side = 32;
	s = image_decode(data, size, &opt, &img, &err);
	check_result(s, &img, &err);
	if (s == MMSA_OK)
	{
		cfg.resize = 0;			/* squash straight to 56 x 56 */
		if (image_preprocess(&img, &cfg, NULL, tensor, &err) != MMSA_OK)
			abort();
		image_free(&img);
	}
	return 0;
}
