/*
 * cmd_decode.c
 *	  `mmsa decode`: decode image files (by content) and optionally
 *	  preprocess them into the ResNet-50 input tensor.
 *
 *	  mmsa decode [--max-pixels N] [--target N] [--no-orientation]
 *	              [--preprocess CONFIG.json] [-o OUTPUT] FILE...
 *
 *	  Prints one line per file: "FILE width=W height=H decode_ms=.. [preprocess_ms=..]"
 *	  (W, H: the decoded image, after EXIF orientation and DCT scaling).
 *	  With -o (one FILE only) writes the decoded RGB as binary PPM (P6), or,
 *	  with --preprocess, the float tensor (3,crop,crop): as safetensors
 *	  (tensor "pixel_values") when OUTPUT ends in .safetensors, else raw
 *	  little-endian float32.  With several files, a last line gives the
 *	  count and the median decode+preprocess time; failures are reported on
 *	  stderr and make the exit status 1.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "image.h"
#include "safetensors.h"

#define DECODE_MAX_FILE_BYTES CLI_MAX_IMAGE_FILE_BYTES

static void
decode_usage(FILE *out)
{
	fprintf(out,
			"usage: mmsa decode [--max-pixels N] [--target N] [--no-orientation]\n"
			"                   [--preprocess CONFIG.json] [-o OUTPUT] FILE...\n"
			"  --max-pixels N      refuse images of more than N pixels (default %lld)\n"
			"  --target N          JPEG: decode at the smallest k/8 scale whose short side is >= N\n"
			"  --no-orientation    do not apply the EXIF orientation\n"
			"  --preprocess FILE   resize/crop/normalise with this JSON configuration\n"
			"                      {\"resize\":256,\"crop\":224,\"channel_order\":\"RGB\",\"scale\":..,\"mean\":[..],\"std\":[..]}\n"
			"  -o OUTPUT           (one FILE) write the RGB as PPM, or the tensor as .safetensors / raw float32\n",
			(long long) IMAGE_DEFAULT_MAX_PIXELS);
}

static mmsa_status
write_ppm(const char *path, const mmsa_image *img, mmsa_error *err)
{
	FILE	   *f = fopen(path, "wb");
	size_t		n = (size_t) img->width * img->height * 3;

	if (f == NULL)
		return mmsa_set_error(err, MMSA_ERR_IO, "cannot create \"%s\": %s", path, strerror(errno));
	fprintf(f, "P6\n%d %d\n255\n", img->width, img->height);
	if (fwrite(img->rgb, 1, n, f) != n || fclose(f) != 0)
		return mmsa_set_error(err, MMSA_ERR_IO, "cannot write \"%s\"", path);
	return MMSA_OK;
}

static mmsa_status
write_tensor(const char *path, const float *x, int crop, mmsa_error *err)
{
	size_t		plen = strlen(path);
	size_t		n = (size_t) 3 * crop * crop;

	if (plen >= 12 && strcmp(path + plen - 12, ".safetensors") == 0)
	{
		st_write_tensor t;

		memset(&t, 0, sizeof(t));
		t.name = "pixel_values";
		t.dtype = ST_F32;
		t.ndim = 3;
		t.shape[0] = 3;
		t.shape[1] = crop;
		t.shape[2] = crop;
		t.data = x;
		return safetensors_write(path, &t, 1, NULL, NULL, 0, err);
	}
	else
	{
		FILE	   *f = fopen(path, "wb");

		if (f == NULL)
			return mmsa_set_error(err, MMSA_ERR_IO, "cannot create \"%s\": %s", path, strerror(errno));
		if (fwrite(x, sizeof(float), n, f) != n || fclose(f) != 0)
			return mmsa_set_error(err, MMSA_ERR_IO, "cannot write \"%s\"", path);
		return MMSA_OK;
	}
}

static int
compare_double(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return (x > y) - (x < y);
}

static int
parse_long(const char *s, long long min, long long max, long long *out)
{
	char	   *end;
	long long	v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return 0;
	*out = v;
	return 1;
}

int
cmd_decode(int argc, char **argv)
{
	image_decode_options opt;
	image_preprocess_config cfg;
	image_workspace ws = {0};
	const char *config_path = NULL;
	const char *output = NULL;
	float	   *tensor = NULL;
	double	   *times = NULL;
	int			first_file,
				n_files,
				n_ok = 0,
				i;

	image_decode_options_init(&opt);
	for (i = 1; i < argc; i++)
	{
		long long	v;

		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
		{
			decode_usage(stdout);
			return 0;
		}
		else if (strcmp(argv[i], "--max-pixels") == 0 && i + 1 < argc)
		{
			if (!parse_long(argv[++i], 1, INT64_MAX, &v))
			{
				fprintf(stderr, "mmsa decode: bad --max-pixels \"%s\"\n", argv[i]);
				return 2;
			}
			opt.max_pixels = v;
		}
		else if (strcmp(argv[i], "--target") == 0 && i + 1 < argc)
		{
			if (!parse_long(argv[++i], 0, 1 << 20, &v))
			{
				fprintf(stderr, "mmsa decode: bad --target \"%s\"\n", argv[i]);
				return 2;
			}
			opt.target_short_side = (int) v;
		}
		else if (strcmp(argv[i], "--no-orientation") == 0)
			opt.no_orientation = 1;
		else if (strcmp(argv[i], "--preprocess") == 0 && i + 1 < argc)
			config_path = argv[++i];
		else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
			output = argv[++i];
		else if (strcmp(argv[i], "--") == 0)
		{
			i++;
			break;
		}
		else if (argv[i][0] == '-' && argv[i][1] != '\0')
		{
			fprintf(stderr, "mmsa decode: unknown or incomplete option \"%s\"\n", argv[i]);
			decode_usage(stderr);
			return 2;
		}
		else
			break;
	}
	first_file = i;
	n_files = argc - first_file;
	if (n_files < 1 || (output != NULL && n_files != 1))
	{
		decode_usage(stderr);
		return 2;
	}
	if (config_path != NULL)
	{
		mmsa_error err;

		mmsa_clear_error(&err);
		if (image_preprocess_config_load(config_path, &cfg, &err) != MMSA_OK)
		{
			fprintf(stderr, "mmsa decode: %s\n", err.message);
			return 1;
		}
		tensor = malloc(sizeof(float) * 3 * cfg.crop * cfg.crop);
	}
	times = malloc(sizeof(double) * n_files);
	if (times == NULL || (config_path != NULL && tensor == NULL))
	{
		fprintf(stderr, "mmsa decode: out of memory\n");
		free(tensor);
		free(times);
		return 1;
	}

	for (i = first_file; i < argc; i++)
	{
		const char *path = argv[i];
		mmsa_error	err;
		mmsa_image	img = {0};
		uint8_t    *data;
		size_t		len;
		double		t0,
					t1,
					t2;
		mmsa_status status;

		mmsa_clear_error(&err);
		status = cli_read_file(path, DECODE_MAX_FILE_BYTES, &data, &len, &err);
		if (status == MMSA_OK)
		{
			t0 = cli_now_ms();
			status = image_decode(data, len, &opt, &img, &err);
			t1 = cli_now_ms();
			free(data);
			t2 = t1;
			if (status == MMSA_OK && tensor != NULL)
			{
				status = image_preprocess(&img, &cfg, &ws, tensor, &err);
				t2 = cli_now_ms();
			}
			if (status == MMSA_OK)
			{
				if (tensor != NULL)
					printf("%s width=%d height=%d decode_ms=%.3f preprocess_ms=%.3f\n",
						   path, img.width, img.height, t1 - t0, t2 - t1);
				else
					printf("%s width=%d height=%d decode_ms=%.3f\n",
						   path, img.width, img.height, t1 - t0);
				times[n_ok++] = t2 - t0;
				if (output != NULL)
					status = tensor != NULL ? write_tensor(output, tensor, cfg.crop, &err)
						: write_ppm(output, &img, &err);
			}
			image_free(&img);
		}
		if (status != MMSA_OK)
			fprintf(stderr, "mmsa decode: %s: %s: %s\n", path, mmsa_status_name(status), err.message);
	}
	if (n_files > 1)
	{
		double		median = 0.0;

		if (n_ok > 0)
		{
			qsort(times, n_ok, sizeof(double), compare_double);
			median = n_ok % 2 ? times[n_ok / 2] : 0.5 * (times[n_ok / 2 - 1] + times[n_ok / 2]);
		}
		printf("decoded %d of %d images; median decode%s time %.3f ms\n",
			   n_ok, n_files, tensor != NULL ? "+preprocess" : "", median);
	}
	image_workspace_free(&ws);
	free(tensor);
	free(times);
	return n_ok == n_files ? 0 : 1;
}
