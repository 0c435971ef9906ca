/*
 * cmd_classify.c
 *	  `mmsa classify`: ImageNet top-k classes of images with ResNet-50.
 *
 *	  mmsa classify --model DIR [-k 5] [--batch 8] [--threads N] IMAGE...
 *	  mmsa classify --model DIR --raw FILE ...
 *
 * Images are decoded and preprocessed as the model's config.json says
 * ("preprocess").  --raw reads already preprocessed float32 tensors
 * (N, 3, 224, 224) instead.  The --save-* options write float32 arrays
 * (little-endian, C order) for the tests: the network inputs (N,3,224,224),
 * logits (N,classes), pooled features (N,2048) and the 49-token map
 * (N,49,2048).
 *
 * Output, one line per image and rank:  FILE<TAB>RANK<TAB>CLASS<TAB>PROB<TAB>LABEL
 */
#include <cblas.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "image.h"
#include "resnet.h"

#define IMAGE_FLOATS ((size_t) 3 * RESNET_IMAGE_SIZE * RESNET_IMAGE_SIZE)

static void
classify_usage(FILE *out)
{
	fprintf(out,
			"usage: mmsa classify --model DIR [-k N] [--batch N] [--threads N] IMAGE...\n"
			"       mmsa classify --model DIR --raw FILE [options]\n"
			"options:\n"
			"  -k N              classes to print per image (default 5)\n"
			"  --batch N         images per forward pass (default 8)\n"
			"  --threads N       OpenBLAS threads (default: OpenBLAS's own)\n"
			"  --precision P     fp32 (default) or int8 (needs DIR/model.int8.packed)\n"
			"  --raw FILE        float32 (N,3,224,224) preprocessed inputs instead of images\n"
			"  --save-inputs F   write the preprocessed inputs (N,3,224,224) float32\n"
			"  --save-logits F   write the logits (N,classes) float32\n"
			"  --save-pooled F   write the pooled features (N,2048) float32\n"
			"  --save-tokens F   write the feature map (N,49,2048) float32\n"
			"output: FILE<TAB>RANK<TAB>CLASS<TAB>PROBABILITY<TAB>LABEL\n");
}

static FILE *
open_output(const char *path)
{
	FILE	   *fp;

	if (path == NULL)
		return NULL;
	fp = fopen(path, "wb");
	if (fp == NULL)
		fprintf(stderr, "mmsa classify: could not create \"%s\": %s\n", path, strerror(errno));
	return fp;
}

static int
write_floats(FILE *fp, const float *x, size_t n)
{
	return fp == NULL || fwrite(x, sizeof(float), n, fp) == n ? 0 : -1;
}

/* Prints the top-k classes of each image from its probabilities. */
static void
print_topk(const resnet_model *m, const char *const *names, const float *probs,
		   int B, int k)
{
	int			C = m->num_classes;

	for (int b = 0; b < B; b++)
	{
		const float *p = probs + (size_t) b * C;
		int			best[64];

		for (int r = 0; r < k; r++)
		{
			int			arg = -1;

			for (int c = 0; c < C; c++)
			{
				int			taken = 0;

				for (int q = 0; q < r; q++)
					if (best[q] == c)
						taken = 1;
				if (!taken && (arg < 0 || p[c] > p[arg]))
					arg = c;
			}
			best[r] = arg;
			printf("%s\t%d\t%d\t%.6f\t%s\n", names[b], r + 1, arg, p[arg],
				   m->labels ? m->labels[arg] : "-");
		}
	}
	fflush(stdout);
}

int
cmd_classify(int argc, char **argv)
{
	const char *model_dir = NULL,
			   *raw_path = NULL;
	const char *save_inputs = NULL,
			   *save_logits = NULL,
			   *save_pooled = NULL,
			   *save_tokens = NULL;
	int			topk = 5,
				batch = 8,
				threads = 0;
	char	  **image_paths = NULL;
	int			n_images = 0;
	mmsa_precision precision = MMSA_PRECISION_DEFAULT;
	resnet_model *m = NULL;
	mmsa_error	err;
	image_preprocess_config pcfg;
	image_workspace ws = {0};
	float	   *inputs = NULL,
			   *logits = NULL,
			   *pooled = NULL,
			   *tokens = NULL;
	const char **names = NULL;
	char	  **raw_names = NULL;
	FILE	   *f_inputs = NULL,
			   *f_logits = NULL,
			   *f_pooled = NULL,
			   *f_tokens = NULL,
			   *f_raw = NULL;
	int			rc = 0;
	int			n_raw = 0;

	for (int i = 1; i < argc; i++)
	{
		const char *a = argv[i];
		int			has_value = i + 1 < argc;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
		{
			classify_usage(stdout);
			return 0;
		}
		else if (strcmp(a, "--model") == 0 && has_value)
			model_dir = argv[++i];
		else if (strcmp(a, "-k") == 0 && has_value)
			topk = atoi(argv[++i]);
		else if (strcmp(a, "--batch") == 0 && has_value)
			batch = atoi(argv[++i]);
		else if (strcmp(a, "--threads") == 0 && has_value)
			threads = atoi(argv[++i]);
		else if (strcmp(a, "--precision") == 0 && has_value)
		{
			if (mmsa_precision_parse(argv[++i], &precision, &err) != MMSA_OK)
			{
				fprintf(stderr, "mmsa classify: %s\n", err.message);
				return 2;
			}
		}
		else if (strcmp(a, "--raw") == 0 && has_value)
			raw_path = argv[++i];
		else if (strcmp(a, "--save-inputs") == 0 && has_value)
			save_inputs = argv[++i];
		else if (strcmp(a, "--save-logits") == 0 && has_value)
			save_logits = argv[++i];
		else if (strcmp(a, "--save-pooled") == 0 && has_value)
			save_pooled = argv[++i];
		else if (strcmp(a, "--save-tokens") == 0 && has_value)
			save_tokens = argv[++i];
		else if (strcmp(a, "--") == 0)
		{
			while (++i < argc)
				argv[n_images++] = argv[i];
			break;
		}
		else if (a[0] == '-')
		{
			fprintf(stderr, "mmsa classify: unknown or incomplete option \"%s\"\n", a);
			classify_usage(stderr);
			return 2;
		}
		else
			argv[n_images++] = argv[i];	/* images, compacted to the front */
	}
	image_paths = argv;
	if (model_dir == NULL || (n_images == 0 && raw_path == NULL) ||
		(n_images > 0 && raw_path != NULL))
	{
		fprintf(stderr, "mmsa classify: give --model and either images or --raw\n");
		classify_usage(stderr);
		return 2;
	}
	if (batch < 1 || batch > 256 || topk < 1 || topk > 64)
	{
		fprintf(stderr, "mmsa classify: --batch must be 1..256 and -k 1..64\n");
		return 2;
	}
	if (threads > 0)
		openblas_set_num_threads(threads);

	if (resnet_model_load(model_dir, &m, &err) != MMSA_OK ||
		resnet_model_set_precision(m, precision, &err) != MMSA_OK)
	{
		fprintf(stderr, "mmsa classify: %s: %s\n", mmsa_status_name(err.status), err.message);
		resnet_model_free(m);
		return 1;
	}
	if (topk > m->num_classes)
		topk = m->num_classes;

	if (raw_path == NULL)
	{
		json_t	   *obj;

		if (m->preprocess_json == NULL)
		{
			fprintf(stderr, "mmsa classify: %s/config.json has no \"preprocess\" object\n", model_dir);
			rc = 1;
			goto done;
		}
		obj = json_loads(m->preprocess_json, 0, NULL);
		if (obj == NULL ||
			image_preprocess_config_from_json(obj, &pcfg, &err) != MMSA_OK ||
			image_preprocess_config_check(&pcfg, &err) != MMSA_OK)
		{
			if (obj == NULL)
				fprintf(stderr, "mmsa classify: bad preprocess object\n");
			else
				fprintf(stderr, "mmsa classify: %s/config.json: preprocess: %s\n", model_dir, err.message);
			json_decref(obj);
			rc = 1;
			goto done;
		}
		json_decref(obj);
		if (pcfg.crop != RESNET_IMAGE_SIZE)
		{
			fprintf(stderr, "mmsa classify: preprocess crop is %d; the model takes %d\n",
					pcfg.crop, RESNET_IMAGE_SIZE);
			rc = 1;
			goto done;
		}
	}
	else
	{
		long		size;

		f_raw = fopen(raw_path, "rb");
		if (f_raw == NULL || fseek(f_raw, 0, SEEK_END) != 0 || (size = ftell(f_raw)) < 0 ||
			fseek(f_raw, 0, SEEK_SET) != 0)
		{
			fprintf(stderr, "mmsa classify: could not read \"%s\": %s\n", raw_path, strerror(errno));
			rc = 1;
			goto done;
		}
		if (size == 0 || size % (IMAGE_FLOATS * sizeof(float)) != 0)
		{
			fprintf(stderr, "mmsa classify: \"%s\" has %ld bytes, not a whole number of (3,224,224) float32 images\n",
					raw_path, size);
			rc = 1;
			goto done;
		}
		n_raw = (int) (size / (IMAGE_FLOATS * sizeof(float)));
		raw_names = calloc(n_raw, sizeof(char *));
		if (raw_names == NULL)
		{
			rc = 1;
			goto done;
		}
		for (int i = 0; i < n_raw; i++)
		{
			char		buf[64];

			snprintf(buf, sizeof(buf), "raw[%d]", i);
			raw_names[i] = strdup(buf);
		}
	}

	inputs = malloc(sizeof(float) * IMAGE_FLOATS * batch);
	logits = malloc(sizeof(float) * (size_t) m->num_classes * batch);
	pooled = malloc(sizeof(float) * (size_t) RESNET_FEATURES * batch);
	tokens = save_tokens ? malloc(sizeof(float) * (size_t) RESNET_TOKENS * RESNET_FEATURES * batch) : NULL;
	names = calloc(batch, sizeof(char *));
	if (inputs == NULL || logits == NULL || pooled == NULL || names == NULL ||
		(save_tokens && tokens == NULL))
	{
		fprintf(stderr, "mmsa classify: out of memory\n");
		rc = 1;
		goto done;
	}
	if ((save_inputs && (f_inputs = open_output(save_inputs)) == NULL) ||
		(save_logits && (f_logits = open_output(save_logits)) == NULL) ||
		(save_pooled && (f_pooled = open_output(save_pooled)) == NULL) ||
		(save_tokens && (f_tokens = open_output(save_tokens)) == NULL))
	{
		rc = 1;
		goto done;
	}

	{
		int			total = raw_path ? n_raw : n_images;
		int			next = 0;

		while (next < total)
		{
			int			B = 0;

			/* gather up to `batch` inputs; images that fail are reported and skipped */
			while (B < batch && next < total)
			{
				float	   *dst = inputs + IMAGE_FLOATS * B;

				if (raw_path)
				{
					if (fread(dst, sizeof(float), IMAGE_FLOATS, f_raw) != IMAGE_FLOATS)
					{
						fprintf(stderr, "mmsa classify: short read from \"%s\"\n", raw_path);
						rc = 1;
						goto done;
					}
					names[B++] = raw_names[next++];
				}
				else
				{
					const char *path = image_paths[next++];
					uint8_t    *data;
					size_t		len;
					mmsa_image	img = {0};

					if (cli_read_file(path, CLI_MAX_IMAGE_FILE_BYTES, &data, &len, &err) != MMSA_OK)
					{
						fprintf(stderr, "mmsa classify: %s\n", err.message);
						rc = 1;
						continue;
					}
					if (image_decode(data, len, NULL, &img, &err) != MMSA_OK ||
						image_preprocess(&img, &pcfg, &ws, dst, &err) != MMSA_OK)
					{
						fprintf(stderr, "mmsa classify: \"%s\": %s: %s\n", path,
								mmsa_status_name(err.status), err.message);
						rc = 1;
						free(data);
						image_free(&img);
						continue;
					}
					free(data);
					image_free(&img);
					names[B++] = path;
				}
			}
			if (B == 0)
				break;
			if (resnet_forward(m, inputs, B, tokens, pooled, logits, &err) != MMSA_OK)
			{
				fprintf(stderr, "mmsa classify: %s: %s\n", mmsa_status_name(err.status), err.message);
				rc = 1;
				goto done;
			}
			if (write_floats(f_inputs, inputs, IMAGE_FLOATS * B) != 0 ||
				write_floats(f_logits, logits, (size_t) m->num_classes * B) != 0 ||
				write_floats(f_pooled, pooled, (size_t) RESNET_FEATURES * B) != 0 ||
				write_floats(f_tokens, tokens, (size_t) RESNET_TOKENS * RESNET_FEATURES * B) != 0)
			{
				fprintf(stderr, "mmsa classify: write error: %s\n", strerror(errno));
				rc = 1;
				goto done;
			}
			resnet_softmax(logits, B, m->num_classes);
			print_topk(m, names, logits, B, topk);
		}
	}

done:
	{
		FILE	   *outs[4] = {f_inputs, f_logits, f_pooled, f_tokens};

		for (int i = 0; i < 4; i++)
			if (outs[i] && fclose(outs[i]) != 0)
			{
				fprintf(stderr, "mmsa classify: write error: %s\n", strerror(errno));
				rc = 1;
			}
	}
	if (f_raw)
		fclose(f_raw);
	if (raw_names)
		for (int i = 0; i < n_raw; i++)
			free(raw_names[i]);
	free(raw_names);
	free(names);
	free(inputs);
	free(logits);
	free(pooled);
	free(tokens);
	image_workspace_free(&ws);
	resnet_model_free(m);
	return rc;
}
