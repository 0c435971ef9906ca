/*
 * cmd_features.c
 *	  `mmsa features`: runs ResNet-50 over the images of a posts file and
 *	  writes the image-feature cache (see src/core/feature_cache.h).
 *
 *	  mmsa features --image-model DIR --posts CSV --images DIR --out FILE
 *	                [--split NAME] [--limit N] [--threads N] [--batch N]
 *	                [--chunk N] [--force]
 *
 * The image of post <id> is IMAGES/<id>.jpg (decoded by content).  Images
 * are decoded and preprocessed as the model's config.json says (as the
 * extension does: torchvision's preprocessing when it says nothing).
 *
 * Resuming: the posts are cut into chunks of --chunk images (default 256);
 * each finished chunk is written to FILE.part-NNNNN (a cache file of its
 * own, written atomically).  A re-run reuses every part whose ids and image
 * model match, so an interrupted run continues where it stopped.  At the
 * end the parts are joined into FILE (atomically) and removed.  When FILE
 * already holds the same ids made with the same model files, nothing is
 * recomputed (--force recomputes anyway).
 */
#include <cblas.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "csv.h"
#include "feature_cache.h"
#include "image.h"
#include "resnet.h"
#include "safetensors.h"

#define IMAGE_FLOATS ((size_t) 3 * RESNET_IMAGE_SIZE * RESNET_IMAGE_SIZE)
#define TOKEN_VALUES ((size_t) RESNET_TOKENS * RESNET_FEATURES)

static void
features_usage(FILE *out)
{
	fprintf(out,
			"usage: mmsa features --image-model DIR --posts CSV --images DIR --out FILE.safetensors\n"
			"                     [--split NAME] [--limit N] [--threads N] [--batch N] [--chunk N] [--force]\n"
			"Writes pooled F32 (N,2048), ids I64 (N) and tokens F16 (N,49,2048) for the\n"
			"posts' images IMAGES/<id>.jpg.  Re-running resumes from FILE.part-* chunks.\n");
}

/*
 * Whether the cache at path holds exactly ids[0..n) made from the model's
 * current files with the same preprocessing.
 */
static int
cache_matches(const char *path, const char *model_dir, const char *preprocess,
			  const int64_t *ids, int64_t n)
{
	feature_cache c;
	mmsa_error	err;
	int			same;

	if (feature_cache_open(path, model_dir, &c, &err) != MMSA_OK)
		return 0;
	same = c.rows.n == n && c.preprocess_json != NULL && strcmp(c.preprocess_json, preprocess) == 0 &&
		memcmp(c.rows.ids, ids, sizeof(int64_t) * n) == 0;
	feature_cache_close(&c);
	return same;
}

int
cmd_features(int argc, char **argv)
{
	const char *model_dir = NULL,
			   *posts_path = NULL,
			   *images_dir = NULL,
			   *out_path = NULL,
			   *split = NULL;
	long		limit = -1;
	int			threads = 0,
				batch = 8,
				chunk = 256,
				force = 0;
	mmsa_posts	posts = {0};
	resnet_model *m = NULL;
	image_preprocess_config pcfg;
	image_workspace ws = {0};
	feature_cache_source src;
	char	   *preprocess = NULL;
	mmsa_error	err;
	float	   *inputs = NULL,
			   *pooled = NULL,
			   *tokens = NULL;
	float	   *chunk_pooled = NULL;
	uint16_t   *chunk_tokens = NULL;
	feature_cache *parts = NULL;
	feature_rows *rows = NULL;
	int			n_chunks = 0;
	int64_t		n;
	int			rc = 1;
	char		part_path[4096];

	for (int i = 1; i < argc; i++)
	{
		const char *a = argv[i];
		int			has_value = i + 1 < argc;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
		{
			features_usage(stdout);
			return 0;
		}
		else if (strcmp(a, "--image-model") == 0 && has_value)
			model_dir = argv[++i];
		else if (strcmp(a, "--posts") == 0 && has_value)
			posts_path = argv[++i];
		else if (strcmp(a, "--images") == 0 && has_value)
			images_dir = argv[++i];
		else if (strcmp(a, "--out") == 0 && has_value)
			out_path = argv[++i];
		else if (strcmp(a, "--split") == 0 && has_value)
			split = argv[++i];
		else if (strcmp(a, "--limit") == 0 && has_value)
			limit = atol(argv[++i]);
		else if (strcmp(a, "--threads") == 0 && has_value)
			threads = atoi(argv[++i]);
		else if (strcmp(a, "--batch") == 0 && has_value)
			batch = atoi(argv[++i]);
		else if (strcmp(a, "--chunk") == 0 && has_value)
			chunk = atoi(argv[++i]);
		else if (strcmp(a, "--force") == 0)
			force = 1;
		else
		{
			fprintf(stderr, "mmsa features: unknown or incomplete option \"%s\"\n", a);
			features_usage(stderr);
			return 2;
		}
	}
	if (!model_dir || !posts_path || !images_dir || !out_path)
	{
		fprintf(stderr, "mmsa features: --image-model, --posts, --images and --out are required\n");
		features_usage(stderr);
		return 2;
	}
	if (batch < 1 || batch > 256 || chunk < 1 || chunk > 100000 || limit == 0 || limit < -1)
	{
		fprintf(stderr, "mmsa features: --batch must be 1..256, --chunk 1..100000, --limit > 0\n");
		return 2;
	}
	if (strlen(out_path) > 4000)
	{
		fprintf(stderr, "mmsa features: output path too long\n");
		return 2;
	}
	if (threads > 0)
		openblas_set_num_threads(threads);

	/* the posts */
	if (posts_load(posts_path, split, &posts, &err) != MMSA_OK ||
		posts_check_unique_ids(&posts, posts_path, &err) != MMSA_OK)
	{
		fprintf(stderr, "mmsa features: %s\n", err.message);
		goto done;
	}
	if (posts.numeric_ids == NULL)
	{
		fprintf(stderr, "mmsa features: %s: ids must be integers (images are <id>.jpg)\n", posts_path);
		goto done;
	}
	n = posts.n;
	if (limit > 0 && limit < n)
		n = limit;
	if (n == 0)
	{
		fprintf(stderr, "mmsa features: no posts%s%s in %s\n", split ? " in split " : "", split ? split : "",
				posts_path);
		goto done;
	}

	/* the model and its preprocessing, as src/pg/model_cache.c does */
	if (feature_cache_source_of(model_dir, &src, &err) != MMSA_OK ||
		resnet_model_load(model_dir, &m, &err) != MMSA_OK)
	{
		fprintf(stderr, "mmsa features: %s: %s\n", mmsa_status_name(err.status), err.message);
		goto done;
	}
	image_preprocess_config_torchvision(&pcfg);
	if (m->preprocess_json != NULL)
	{
		json_t	   *obj = json_loads(m->preprocess_json, 0, NULL);

		if (obj == NULL || image_preprocess_config_from_json(obj, &pcfg, &err) != MMSA_OK)
		{
			fprintf(stderr, "mmsa features: %s/config.json: bad preprocess object%s%s\n", model_dir,
					obj ? ": " : "", obj ? err.message : "");
			json_decref(obj);
			goto done;
		}
		json_decref(obj);
	}
	if (image_preprocess_config_check(&pcfg, &err) != MMSA_OK || pcfg.crop != RESNET_IMAGE_SIZE)
	{
		fprintf(stderr, "mmsa features: preprocessing unusable (crop %d, want %d)\n", pcfg.crop, RESNET_IMAGE_SIZE);
		goto done;
	}
	{
		/* the configuration in use, recorded so a change is detected */
		json_t	   *o = json_pack("{s:i,s:i,s:s,s:f,s:[f,f,f],s:[f,f,f]}",
								  "resize", pcfg.resize, "crop", pcfg.crop,
								  "channel_order", pcfg.bgr ? "BGR" : "RGB", "scale", (double) pcfg.scale,
								  "mean", (double) pcfg.mean[0], (double) pcfg.mean[1], (double) pcfg.mean[2],
								  "std", (double) pcfg.std[0], (double) pcfg.std[1], (double) pcfg.std[2]);

		preprocess = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		json_decref(o);
		if (preprocess == NULL)
		{
			fprintf(stderr, "mmsa features: out of memory\n");
			goto done;
		}
	}

	if (!force && cache_matches(out_path, model_dir, preprocess, posts.numeric_ids, n))
	{
		fprintf(stderr, "mmsa features: %s is up to date (%lld images)\n", out_path, (long long) n);
		rc = 0;
		goto done;
	}

	n_chunks = (int) ((n + chunk - 1) / chunk);
	inputs = malloc(sizeof(float) * IMAGE_FLOATS * batch);
	pooled = malloc(sizeof(float) * RESNET_FEATURES * batch);
	tokens = malloc(sizeof(float) * TOKEN_VALUES * batch);
	chunk_pooled = malloc(sizeof(float) * RESNET_FEATURES * chunk);
	chunk_tokens = malloc(sizeof(uint16_t) * TOKEN_VALUES * chunk);
	parts = calloc(n_chunks, sizeof(feature_cache));
	rows = calloc(n_chunks, sizeof(feature_rows));
	if (!inputs || !pooled || !tokens || !chunk_pooled || !chunk_tokens || !parts || !rows)
	{
		fprintf(stderr, "mmsa features: out of memory\n");
		goto done;
	}

	{
		int64_t		todo = 0,
					done_images = 0;
		double		t0 = (cli_now_ms() / 1e3),
					last_report = 0;

		/* which chunks are already there */
		for (int c = 0; c < n_chunks; c++)
		{
			int64_t		first = (int64_t) c * chunk,
						count = (first + chunk <= n) ? chunk : n - first;

			snprintf(part_path, sizeof(part_path), "%s.part-%05d", out_path, c);
			if (force || !cache_matches(part_path, model_dir, preprocess, posts.numeric_ids + first, count))
				todo += count;
		}
		if (todo < n)
			fprintf(stderr, "mmsa features: resuming: %lld of %lld images already done\n",
					(long long) (n - todo), (long long) n);

		for (int c = 0; c < n_chunks; c++)
		{
			int64_t		first = (int64_t) c * chunk,
						count = (first + chunk <= n) ? chunk : n - first;
			feature_rows part;

			snprintf(part_path, sizeof(part_path), "%s.part-%05d", out_path, c);
			if (!force && cache_matches(part_path, model_dir, preprocess, posts.numeric_ids + first, count))
				continue;
			for (int64_t b0 = 0; b0 < count; b0 += batch)
			{
				int			B = (int) ((b0 + batch <= count) ? batch : count - b0);

				for (int b = 0; b < B; b++)
				{
					int64_t		id = posts.numeric_ids[first + b0 + b];
					char		path[4096];
					uint8_t    *data;
					size_t		len;
					mmsa_image	img = {0};

					snprintf(path, sizeof(path), "%s/%lld.jpg", images_dir, (long long) id);
					if (cli_read_file(path, CLI_MAX_IMAGE_FILE_BYTES, &data, &len, &err) != MMSA_OK)
					{
						fprintf(stderr, "\nmmsa features: post %lld (%s line %lld): %s\n",
								(long long) id, posts_path, (long long) posts.lines[first + b0 + b],
								err.message);
						goto done;
					}
					if (image_decode(data, len, NULL, &img, &err) != MMSA_OK ||
						image_preprocess(&img, &pcfg, &ws, inputs + IMAGE_FLOATS * b, &err) != MMSA_OK)
					{
						fprintf(stderr, "\nmmsa features: \"%s\": %s: %s\n", path, mmsa_status_name(err.status),
								err.message);
						free(data);
						image_free(&img);
						goto done;
					}
					free(data);
					image_free(&img);
				}
				if (resnet_forward(m, inputs, B, tokens, pooled, NULL, &err) != MMSA_OK)
				{
					fprintf(stderr, "\nmmsa features: %s: %s\n", mmsa_status_name(err.status), err.message);
					goto done;
				}
				memcpy(chunk_pooled + (size_t) b0 * RESNET_FEATURES, pooled, sizeof(float) * RESNET_FEATURES * B);
				for (size_t i = 0; i < TOKEN_VALUES * B; i++)
					chunk_tokens[(size_t) b0 * TOKEN_VALUES + i] = st_f32_to_f16(tokens[i]);
				done_images += B;
				{
					double		t = (cli_now_ms() / 1e3) - t0;

					if (t - last_report >= 2.0 || done_images == todo)
					{
						char		eta[32],
									el[32];

						cli_format_duration(eta, sizeof(eta), (todo - done_images) * t / done_images);
						cli_format_duration(el, sizeof(el), t);
						fprintf(stderr, "\rmmsa features: %lld/%lld images, %.2f images/s, %s elapsed, ETA %s   ",
								(long long) done_images, (long long) todo, done_images / t, el, eta);
						last_report = t;
					}
				}
			}
			part.n = count;
			part.ids = posts.numeric_ids + first;
			part.pooled = chunk_pooled;
			part.tokens = chunk_tokens;
			if (feature_cache_write(part_path, &src, preprocess, &part, 1, &err) != MMSA_OK)
			{
				fprintf(stderr, "\nmmsa features: %s\n", err.message);
				goto done;
			}
		}
		if (done_images > 0)
			fprintf(stderr, "\n");
	}

	/* join the parts */
	for (int c = 0; c < n_chunks; c++)
	{
		snprintf(part_path, sizeof(part_path), "%s.part-%05d", out_path, c);
		if (feature_cache_open(part_path, model_dir, &parts[c], &err) != MMSA_OK)
		{
			fprintf(stderr, "mmsa features: %s\n", err.message);
			goto done;
		}
		rows[c] = parts[c].rows;
	}
	if (feature_cache_write(out_path, &src, preprocess, rows, n_chunks, &err) != MMSA_OK)
	{
		fprintf(stderr, "mmsa features: %s\n", err.message);
		goto done;
	}
	for (int c = 0; c < n_chunks; c++)
	{
		feature_cache_close(&parts[c]);
		snprintf(part_path, sizeof(part_path), "%s.part-%05d", out_path, c);
		remove(part_path);
	}
	fprintf(stderr, "mmsa features: wrote %s: %lld images\n", out_path, (long long) n);
	rc = 0;

done:
	if (parts)
		for (int c = 0; c < n_chunks; c++)
			feature_cache_close(&parts[c]);
	free(parts);
	free(rows);
	free(inputs);
	free(pooled);
	free(tokens);
	free(chunk_pooled);
	free(chunk_tokens);
	free(preprocess);
	image_workspace_free(&ws);
	resnet_model_free(m);
	posts_free(&posts);
	return rc;
}
