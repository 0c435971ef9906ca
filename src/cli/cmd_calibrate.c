/*
 * cmd_calibrate.c
 *	  `mmsa calibrate`: the activation scales of ResNet-50's int8 form
 *	  (resnet.h), from the fp32 network run over training images.
 *
 *	  mmsa calibrate --model DIR --posts CSV --images DIR [--split train]
 *	                 [--count N] [--batch B] [--threads N] [--out FILE]
 *
 * Takes the first N posts (default 256) of the split, in file order, runs
 * their images IMAGES/<id>.jpg through the network twice (resnet.h: the
 * largest input of every convolution but the stem, then a histogram of
 * it) and writes the clip chosen for each, with the model's identity and
 * the images' (count, FNV-1a of their names), to DIR/calibration.json (or
 * FILE).  Deterministic: the same images give the
 * same file, whatever the batch and threads.  `mmsa pack` then writes the
 * int8 sidecar from it.
 */
#include <cblas.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "csv.h"
#include "image.h"
#include "resnet.h"

#define IMAGE_FLOATS ((size_t) 3 * RESNET_IMAGE_SIZE * RESNET_IMAGE_SIZE)

static void
calibrate_usage(FILE *out)
{
	fprintf(out,
			"usage: mmsa calibrate --model DIR --posts CSV --images DIR [--split train]\n"
			"                      [--count N] [--batch B] [--threads N] [--out FILE]\n"
			"Records the largest input of each convolution of the ResNet-50 in DIR over the\n"
			"images of the first N posts (default 256) of the split (default train), for\n"
			"its int8 form: DIR/calibration.json, or FILE.  `mmsa pack` then writes\n"
			"DIR/model.int8.packed from it.\n");
}

/* decodes and preprocesses IMAGES/<id>.jpg into dst; -1 (said) on failure */
static int
load_image(const char *images_dir, const char *id, const image_preprocess_config *pcfg,
		   image_workspace *ws, float *dst)
{
	char		path[4096];
	uint8_t    *data = NULL;
	size_t		len;
	mmsa_image	img;
	mmsa_error	err;
	int			rc = 0;

	snprintf(path, sizeof(path), "%s/%s.jpg", images_dir, id);
	if (cli_read_file(path, CLI_MAX_IMAGE_FILE_BYTES, &data, &len, &err) != MMSA_OK ||
		image_decode(data, len, NULL, &img, &err) != MMSA_OK)
	{
		fprintf(stderr, "mmsa calibrate: %s: %s\n", path, err.message);
		free(data);
		return -1;
	}
	free(data);
	if (image_preprocess(&img, pcfg, ws, dst, &err) != MMSA_OK)
	{
		fprintf(stderr, "mmsa calibrate: %s: %s\n", path, err.message);
		rc = -1;
	}
	image_free(&img);
	return rc;
}

int
cmd_calibrate(int argc, char **argv)
{
	const char *model_dir = NULL,
			   *posts_path = NULL,
			   *images_dir = NULL,
			   *split = "train",
			   *out_path = NULL;
	int			count = 256,
				batch = 8,
				threads = 0,
				rc = 1;
	mmsa_posts	posts = {0};
	resnet_model *m = NULL;
	resnet_calibration *cal = NULL;
	image_preprocess_config pcfg;
	image_workspace ws = {0};
	float	   *inputs = NULL;
	mmsa_error	err;
	char		path[4096];
	json_t	   *obj;
	uint64_t	h = MMSA_FNV1A_OFFSET;

	for (int i = 1; i < argc; i++)
	{
		const char *a = argv[i];
		int			has = i + 1 < argc;

		if (strcmp(a, "--help") == 0)
		{
			calibrate_usage(stdout);
			return 0;
		}
		else if (strcmp(a, "--model") == 0 && has)
			model_dir = argv[++i];
		else if (strcmp(a, "--posts") == 0 && has)
			posts_path = argv[++i];
		else if (strcmp(a, "--images") == 0 && has)
			images_dir = argv[++i];
		else if (strcmp(a, "--split") == 0 && has)
			split = argv[++i];
		else if (strcmp(a, "--out") == 0 && has)
			out_path = argv[++i];
		else if (strcmp(a, "--count") == 0 && has)
			count = atoi(argv[++i]);
		else if (strcmp(a, "--batch") == 0 && has)
			batch = atoi(argv[++i]);
		else if (strcmp(a, "--threads") == 0 && has)
			threads = atoi(argv[++i]);
		else
		{
			fprintf(stderr, "mmsa calibrate: unknown or incomplete option \"%s\"\n", a);
			calibrate_usage(stderr);
			return 2;
		}
	}
	if (!model_dir || !posts_path || !images_dir || count < 1 || batch < 1)
	{
		calibrate_usage(stderr);
		return 2;
	}
	if (threads > 0)
		openblas_set_num_threads(threads);
	if (posts_load(posts_path, split, &posts, &err) != MMSA_OK ||
		resnet_model_load(model_dir, &m, &err) != MMSA_OK)
	{
		fprintf(stderr, "mmsa calibrate: %s\n", err.message);
		goto done;
	}
	if (posts.n < count)
	{
		fprintf(stderr, "mmsa calibrate: the split \"%s\" has %lld posts, fewer than %d\n",
				split, (long long) posts.n, count);
		goto done;
	}
	/* the model's preprocessing, or torchvision's where it records none (as SQL does) */
	image_preprocess_config_torchvision(&pcfg);
	obj = m->preprocess_json ? json_loads(m->preprocess_json, 0, NULL) : NULL;
	if ((m->preprocess_json && (obj == NULL || image_preprocess_config_from_json(obj, &pcfg, &err) != MMSA_OK)) ||
		image_preprocess_config_check(&pcfg, &err) != MMSA_OK)
	{
		fprintf(stderr, "mmsa calibrate: %s/config.json: bad preprocess object\n", model_dir);
		json_decref(obj);
		goto done;
	}
	json_decref(obj);
	if ((cal = calloc(1, sizeof(resnet_calibration))) == NULL ||
		(inputs = malloc(sizeof(float) * IMAGE_FLOATS * batch)) == NULL)
	{
		fprintf(stderr, "mmsa calibrate: out of memory\n");
		goto done;
	}
	for (int pass = 1; pass <= 2; pass++)
	{
		cal->pass = pass;
		for (int i0 = 0; i0 < count; i0 += batch)
		{
			int			B = count - i0 < batch ? count - i0 : batch;

			for (int b = 0; b < B; b++)
			{
				const char *id = posts.ids[i0 + b];

				if (pass == 1)	/* each name after a zero byte */
					h = mmsa_fnv1a(mmsa_fnv1a(h, "", 1), id, strlen(id));
				if (load_image(images_dir, id, &pcfg, &ws, inputs + (size_t) b * IMAGE_FLOATS) != 0)
					goto done;
			}
			if (resnet_calibrate(m, inputs, B, cal, &err) != MMSA_OK)
			{
				fprintf(stderr, "mmsa calibrate: %s\n", err.message);
				goto done;
			}
		}
	}
	resnet_calibration_finish(cal);
	cal->ids_hash = h;
	snprintf(cal->source, sizeof(cal->source), "the first %d posts of split %s of %s", count, split,
			 strrchr(posts_path, '/') ? strrchr(posts_path, '/') + 1 : posts_path);
	if (out_path == NULL)
	{
		snprintf(path, sizeof(path), "%s/%s", model_dir, RESNET_CALIB_FILE);
		out_path = path;
	}
	if (resnet_calibration_write(m, cal, out_path, &err) != MMSA_OK)
	{
		fprintf(stderr, "mmsa calibrate: %s\n", err.message);
		goto done;
	}
	printf("mmsa calibrate: wrote %s (%d images of %s)\n", out_path, cal->images, posts_path);
	rc = 0;
done:
	free(cal);
	free(inputs);
	image_workspace_free(&ws);
	resnet_model_free(m);
	posts_free(&posts);
	return rc;
}
