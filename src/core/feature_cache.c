/*
 * feature_cache.c
 *	  Writing and reading the image-feature cache (see feature_cache.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "feature_cache.h"
#include "resnet.h"

#define POOLED_BYTES_PER_ROW ((int64_t) RESNET_FEATURES * 4)
#define TOKENS_BYTES_PER_ROW ((int64_t) RESNET_TOKENS * RESNET_FEATURES * 2)

static mmsa_status
stat_file(const char *dir, const char *name, int64_t *size, int64_t *mtime_ns, mmsa_error *err)
{
	char		path[2048];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (stat(path, &st) != 0)
		return mmsa_set_error(err, MMSA_ERR_IO, "could not stat \"%s\": %s", path, strerror(errno));
	*size = (int64_t) st.st_size;
	*mtime_ns = (int64_t) st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	return MMSA_OK;
}

mmsa_status
feature_cache_source_of(const char *model_dir, feature_cache_source *src, mmsa_error *err)
{
	mmsa_status status;

	memset(src, 0, sizeof(*src));
	if (strlen(model_dir) >= sizeof(src->model_dir))
		return mmsa_set_error(err, MMSA_ERR_INVALID, "model directory name too long");
	strcpy(src->model_dir, model_dir);
	if ((status = stat_file(model_dir, "model.safetensors", &src->model_size, &src->model_mtime_ns, err)) != MMSA_OK)
		return status;
	return stat_file(model_dir, "config.json", &src->config_size, &src->config_mtime_ns, err);
}

/* Adds one tensor's entry to the header. */
static void
add_entry(json_t *root, const char *name, const char *dtype, int64_t n, int ndim2, int64_t d1, int64_t d2,
		  int64_t begin, int64_t end)
{
	json_t	   *t = json_object();
	json_t	   *shape = json_array();

	json_array_append_new(shape, json_integer(n));
	if (ndim2 >= 2)
		json_array_append_new(shape, json_integer(d1));
	if (ndim2 >= 3)
		json_array_append_new(shape, json_integer(d2));
	json_object_set_new(t, "dtype", json_string(dtype));
	json_object_set_new(t, "shape", shape);
	json_object_set_new(t, "data_offsets", json_pack("[II]", (json_int_t) begin, (json_int_t) end));
	json_object_set_new(root, name, t);
}

static void
set_meta_int(json_t *meta, const char *key, int64_t v)
{
	char		buf[32];

	snprintf(buf, sizeof(buf), "%" PRId64, v);
	json_object_set_new(meta, key, json_string(buf));
}

mmsa_status
feature_cache_write(const char *path, const feature_cache_source *src,
					const char *preprocess_json, const feature_rows *parts,
					int n_parts, mmsa_error *err)
{
	int64_t		n = 0;
	int64_t		pooled_bytes,
				ids_bytes,
				tokens_bytes;
	json_t	   *root,
			   *meta;
	char	   *header = NULL;
	size_t		header_len,
				padded;
	char		tmp[4096];
	FILE	   *fp = NULL;
	uint8_t		len_bytes[8];
	int			ok = 1;

	for (int p = 0; p < n_parts; p++)
		n += parts[p].n;
	pooled_bytes = n * POOLED_BYTES_PER_ROW;
	ids_bytes = n * 8;
	tokens_bytes = n * TOKENS_BYTES_PER_ROW;

	/* pooled first, then ids, then tokens: each stays 8-byte aligned */
	root = json_object();
	meta = json_object();
	add_entry(root, "pooled", "F32", n, 2, RESNET_FEATURES, 0, 0, pooled_bytes);
	add_entry(root, "ids", "I64", n, 1, 0, 0, pooled_bytes, pooled_bytes + ids_bytes);
	add_entry(root, "tokens", "F16", n, 3, RESNET_TOKENS, RESNET_FEATURES,
			  pooled_bytes + ids_bytes, pooled_bytes + ids_bytes + tokens_bytes);
	json_object_set_new(meta, "format", json_string(FEATURE_CACHE_FORMAT));
	json_object_set_new(meta, "image_model", json_string(src->model_dir));
	set_meta_int(meta, "image_model_size", src->model_size);
	set_meta_int(meta, "image_model_mtime_ns", src->model_mtime_ns);
	set_meta_int(meta, "image_config_size", src->config_size);
	set_meta_int(meta, "image_config_mtime_ns", src->config_mtime_ns);
	if (preprocess_json)
		json_object_set_new(meta, "preprocess", json_string(preprocess_json));
	json_object_set_new(root, "__metadata__", meta);
	header = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (header == NULL)
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory writing \"%s\"", path);
	header_len = strlen(header);
	padded = (header_len + 7) & ~(size_t) 7;
	for (int i = 0; i < 8; i++)
		len_bytes[i] = (uint8_t) ((uint64_t) padded >> (8 * i));

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fp = fopen(tmp, "wb");
	if (fp == NULL)
	{
		free(header);
		return mmsa_set_error(err, MMSA_ERR_IO, "could not create \"%s\": %s", tmp, strerror(errno));
	}
	ok = fwrite(len_bytes, 1, 8, fp) == 8 &&
		fwrite(header, 1, header_len, fp) == header_len &&
		fwrite("        ", 1, padded - header_len, fp) == padded - header_len;
	free(header);
	for (int p = 0; p < n_parts && ok; p++)
		ok = fwrite(parts[p].pooled, POOLED_BYTES_PER_ROW, parts[p].n, fp) == (size_t) parts[p].n;
	for (int p = 0; p < n_parts && ok; p++)
		ok = fwrite(parts[p].ids, 8, parts[p].n, fp) == (size_t) parts[p].n;
	for (int p = 0; p < n_parts && ok; p++)
		ok = fwrite(parts[p].tokens, TOKENS_BYTES_PER_ROW, parts[p].n, fp) == (size_t) parts[p].n;
	if (fclose(fp) != 0)
		ok = 0;
	if (!ok || rename(tmp, path) != 0)
	{
		int			e = errno;

		remove(tmp);
		return mmsa_set_error(err, MMSA_ERR_IO, "could not write \"%s\": %s", path, strerror(e));
	}
	return MMSA_OK;
}

void
feature_cache_close(feature_cache *c)
{
	safetensors_close(&c->file);
	memset(c, 0, sizeof(*c));
}

/* Reads an integer metadata value; 0 when absent or malformed (flagged). */
static int
meta_int(const safetensors_file *f, const char *key, int64_t *out)
{
	const char *s = safetensors_metadata(f, key);
	char	   *end;

	if (s == NULL)
		return 0;
	errno = 0;
	*out = strtoll(s, &end, 10);
	return *end == '\0' && end != s && errno == 0;
}

mmsa_status
feature_cache_open(const char *path, const char *model_dir, feature_cache *c,
				   mmsa_error *err)
{
	const st_tensor *pooled,
			   *ids,
			   *tokens;
	const char *format,
			   *dir;
	mmsa_status status;

	memset(c, 0, sizeof(*c));
	if ((status = safetensors_open(path, &c->file, err)) != MMSA_OK)
		return status;
	format = safetensors_metadata(&c->file, "format");
	if (format == NULL || strcmp(format, FEATURE_CACHE_FORMAT) != 0)
	{
		feature_cache_close(c);
		return mmsa_set_error(err, MMSA_ERR_FORMAT, "\"%s\" is not an image-feature cache (format %s, want %s)",
							  path, format ? format : "missing", FEATURE_CACHE_FORMAT);
	}
	pooled = safetensors_find(&c->file, "pooled");
	ids = safetensors_find(&c->file, "ids");
	tokens = safetensors_find(&c->file, "tokens");
	if (!pooled || !ids || !tokens || pooled->dtype != ST_F32 || ids->dtype != ST_I64 ||
		tokens->dtype != ST_F16 || pooled->ndim != 2 || ids->ndim != 1 || tokens->ndim != 3 ||
		pooled->shape[1] != RESNET_FEATURES || tokens->shape[1] != RESNET_TOKENS ||
		tokens->shape[2] != RESNET_FEATURES || pooled->shape[0] != ids->shape[0] ||
		tokens->shape[0] != ids->shape[0] ||
		((uintptr_t) pooled->data & 3) != 0 || ((uintptr_t) ids->data & 7) != 0 ||
		((uintptr_t) tokens->data & 1) != 0)
	{
		feature_cache_close(c);
		return mmsa_set_error(err, MMSA_ERR_FORMAT,
							  "\"%s\": want pooled F32 (N,2048), ids I64 (N), tokens F16 (N,49,2048), aligned", path);
	}
	dir = safetensors_metadata(&c->file, "image_model");
	if (dir == NULL || strlen(dir) >= sizeof(c->source.model_dir) ||
		!meta_int(&c->file, "image_model_size", &c->source.model_size) ||
		!meta_int(&c->file, "image_model_mtime_ns", &c->source.model_mtime_ns) ||
		!meta_int(&c->file, "image_config_size", &c->source.config_size) ||
		!meta_int(&c->file, "image_config_mtime_ns", &c->source.config_mtime_ns))
	{
		feature_cache_close(c);
		return mmsa_set_error(err, MMSA_ERR_FORMAT, "\"%s\": image model metadata missing or malformed", path);
	}
	strcpy(c->source.model_dir, dir);
	c->preprocess_json = safetensors_metadata(&c->file, "preprocess");
	c->rows.n = ids->shape[0];
	c->rows.ids = ids->data;
	c->rows.pooled = pooled->data;
	c->rows.tokens = tokens->data;
	if (model_dir != NULL)
	{
		feature_cache_source now;

		if ((status = feature_cache_source_of(model_dir, &now, err)) != MMSA_OK)
		{
			feature_cache_close(c);
			return status;
		}
		if (now.model_size != c->source.model_size || now.model_mtime_ns != c->source.model_mtime_ns ||
			now.config_size != c->source.config_size || now.config_mtime_ns != c->source.config_mtime_ns)
		{
			feature_cache_close(c);
			return mmsa_set_error(err, MMSA_ERR_INVALID,
								  "\"%s\" is stale: made from image model files of another size or time than %s's now",
								  path, model_dir);
		}
	}
	return MMSA_OK;
}

int64_t
feature_cache_find(const feature_cache *c, int64_t id)
{
	for (int64_t i = 0; i < c->rows.n; i++)
		if (c->rows.ids[i] == id)
			return i;
	return -1;
}
