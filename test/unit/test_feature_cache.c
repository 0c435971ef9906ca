/*
 * test_feature_cache.c
 *	  The image-feature cache: written from two parts, read back (values,
 *	  ids, alignment, metadata), stale when the model files change, refused
 *	  when it is not a cache.  Uses small stand-in model files in MMSA_TMP
 *	  (only their size and time matter here).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "feature_cache.h"
#include "resnet.h"
#include "tap.h"

static void
write_text(const char *path, const char *text)
{
	FILE	   *fp = fopen(path, "w");

	fputs(text, fp);
	fclose(fp);
}

int
main(void)
{
	const char *tmp = getenv("MMSA_TMP") ? getenv("MMSA_TMP") : "/tmp";
	char		dir[2048],
				path[2048],
				file[2100];
	feature_cache_source src;
	feature_cache c;
	mmsa_error	err = {0};
	int64_t		ids_a[2] = {11, 12},
				ids_b[1] = {40};
	float	   *pooled = malloc(sizeof(float) * 3 * RESNET_FEATURES);
	uint16_t   *tokens = malloc(sizeof(uint16_t) * 3 * RESNET_TOKENS * RESNET_FEATURES);
	feature_rows parts[2];
	int			same = 1;

	snprintf(dir, sizeof(dir), "%s/test_feature_cache_model", tmp);
	mkdir(dir, 0755);
	snprintf(file, sizeof(file), "%s/model.safetensors", dir);
	write_text(file, "weights");
	snprintf(file, sizeof(file), "%s/config.json", dir);
	write_text(file, "{}");
	snprintf(path, sizeof(path), "%s/test_feature_cache.safetensors", tmp);

	for (int i = 0; i < 3 * RESNET_FEATURES; i++)
		pooled[i] = (float) i * 0.25f - 100.0f;
	for (int i = 0; i < 3 * RESNET_TOKENS * RESNET_FEATURES; i++)
		tokens[i] = st_f32_to_f16((float) (i % 1000) * 0.5f);
	parts[0] = (feature_rows) {2, ids_a, pooled, tokens};
	parts[1] = (feature_rows) {1, ids_b, pooled + 2 * RESNET_FEATURES,
	tokens + (size_t) 2 * RESNET_TOKENS * RESNET_FEATURES};

	ok(feature_cache_source_of(dir, &src, &err) == MMSA_OK && src.model_size == 7 && src.config_size == 2,
	   "source: sizes of the model files");
	ok(feature_cache_write(path, &src, "{\"crop\":224}", parts, 2, &err) == MMSA_OK, "write from two parts (%s)",
	   err.message);
	ok(feature_cache_open(path, dir, &c, &err) == MMSA_OK, "open, checked against the model (%s)", err.message);
	ok(c.rows.n == 3 && c.rows.ids[0] == 11 && c.rows.ids[1] == 12 && c.rows.ids[2] == 40, "ids of both parts in order");
	for (int i = 0; i < 3 * RESNET_FEATURES && c.rows.n == 3; i++)
		if (c.rows.pooled[i] != pooled[i])
			same = 0;
	if (c.rows.n == 3 && memcmp(c.rows.tokens, tokens, sizeof(uint16_t) * 3 * RESNET_TOKENS * RESNET_FEATURES) != 0)
		same = 0;
	ok(c.rows.n == 3 && same, "pooled and tokens read back bit for bit");
	ok(((uintptr_t) c.rows.pooled & 3) == 0 && ((uintptr_t) c.rows.ids & 7) == 0, "pooled and ids aligned in the mapping");
	ok(c.preprocess_json && strcmp(c.preprocess_json, "{\"crop\":224}") == 0 && c.source.model_size == 7,
	   "metadata read back");
	ok(feature_cache_find(&c, 40) == 2 && feature_cache_find(&c, 41) == -1, "feature_cache_find");
	feature_cache_close(&c);

	/* the model file changes: stale */
	{
		struct timeval tv[2] = {{1000000, 0}, {1000000, 0}};

		snprintf(file, sizeof(file), "%s/model.safetensors", dir);
		utimes(file, tv);
	}
	ok(feature_cache_open(path, dir, &c, &err) == MMSA_ERR_INVALID && strstr(err.message, "stale"),
	   "model file with another time: stale (%s)", err.message);
	ok(feature_cache_open(path, NULL, &c, &err) == MMSA_OK && c.rows.n == 3, "opened without the check");
	feature_cache_close(&c);

	/* not a cache */
	{
		st_write_tensor t = {"pooled", ST_F32, 2, {3, RESNET_FEATURES}, pooled};

		ok(safetensors_write(path, &t, 1, NULL, NULL, 0, &err) == MMSA_OK, "plain safetensors written");
		ok(feature_cache_open(path, NULL, &c, &err) == MMSA_ERR_FORMAT && strstr(err.message, "not an image-feature cache"),
		   "plain safetensors refused (%s)", err.message);
	}
	ok(feature_cache_open("/nonexistent.safetensors", NULL, &c, &err) != MMSA_OK, "missing file refused");

	remove(path);
	snprintf(file, sizeof(file), "%s/model.safetensors", dir);
	remove(file);
	snprintf(file, sizeof(file), "%s/config.json", dir);
	remove(file);
	rmdir(dir);
	free(pooled);
	free(tokens);
	return tap_done();
}
