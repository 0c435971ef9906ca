/*
 * cmd_pack.c
 *	  `mmsa pack`: writes the prepacked weights sidecars (packfile.h) of a
 *	  model, DIR/text/model.packed and DIR/image/model.packed, which the
 *	  encoders then map read-only and share between processes instead of
 *	  building a private copy each (bert.h, resnet.h), and their int8
 *	  weights, model.int8.packed: the text encoder's always (its
 *	  activations are quantized per token as it runs), the image
 *	  encoder's where a calibration.json gives its activation scales.
 *
 *	  mmsa pack --model DIR [--force]
 *
 * DIR is a model directory (text/ and image/), or a bare text (BERT) or
 * image (ResNet-50) directory.  An encoder directory without
 * model.safetensors (e.g. text/ holding only vocab.txt) is skipped.  A
 * sidecar that already matches its source is left alone unless --force.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bert.h"
#include "cli.h"
#include "packfile.h"
#include "resnet.h"

static void
pack_usage(FILE *out)
{
	fprintf(out,
			"usage: mmsa pack --model DIR [--force]\n"
			"  writes DIR/text/model.packed and DIR/image/model.packed (or DIR/model.packed\n"
			"  for a bare text or image directory): the encoders' weights as inference uses\n"
			"  them, mapped read-only and shared by every process that loads the model;\n"
			"  and their int8 weights, model.int8.packed, likewise: the text encoder's\n"
			"  always, the image encoder's where its directory has a calibration.json\n"
			"  (mmsa calibrate).\n"
			"  --force   rewrite sidecars that are already up to date\n");
}

static int
file_exists(const char *dir, const char *name)
{
	char		path[4096];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* 1 when dir/config.json says "architecture": "resnet50". */
static int
is_resnet_dir(const char *dir)
{
	char		path[4096];
	json_error_t jerr;
	json_t	   *root;
	int			yes;

	snprintf(path, sizeof(path), "%s/config.json", dir);
	root = json_load_file(path, 0, &jerr);
	if (root == NULL)
		return 0;
	yes = json_is_string(json_object_get(root, "architecture")) &&
		strcmp(json_string_value(json_object_get(root, "architecture")), "resnet50") == 0;
	json_decref(root);
	return yes;
}

/*
 * One sidecar of an encoder directory: its file, a word for the "wrote"
 * line, whether the file matches its source now, and how to write it.
 */
typedef struct pack_sidecar
{
	const char *file;
	const char *tag;
	int			(*current) (const char *dir);
	mmsa_status (*write) (const char *dir, const char *path, mmsa_error *err);
} pack_sidecar;

/* Writes one sidecar, unless it is current (and not force). */
static int
pack_one(const char *dir, const pack_sidecar *s, int force)
{
	char		path[4096];
	mmsa_error	err;
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, s->file);
	if (!force && s->current(dir))
	{
		printf("mmsa pack: %s is up to date\n", path);
		return 0;
	}
	if (s->write(dir, path, &err) != MMSA_OK)
	{
		fprintf(stderr, "mmsa pack: %s\n", err.message);
		return 1;
	}
	if (stat(path, &st) == 0)
		printf("mmsa pack: wrote %s (%.1f MB%s)\n", path, st.st_size / 1e6, s->tag);
	return 0;
}

/* Whether the BERT model maps a model.packed made from its weights. */
static int
text_current(const char *dir)
{
	bert_model *m = NULL;
	mmsa_error	err;
	int			current = bert_model_load(dir, &m, &err) == MMSA_OK && m->pack.map != NULL;

	bert_model_free(m);
	return current;
}

static mmsa_status
text_write(const char *dir, const char *path, mmsa_error *err)
{
	bert_model *m = NULL;
	mmsa_status status = bert_model_load_flags(dir, BERT_LOAD_NO_SIDECAR, &m, err);

	if (status == MMSA_OK)
		status = bert_model_write_packed(m, path, err);
	bert_model_free(m);
	return status;
}

/* Whether the BERT model's model.int8.packed is valid for its weights. */
static int
text_int8_current(const char *dir)
{
	bert_model *m = NULL;
	mmsa_error	err;
	int			current = bert_model_load_flags(dir, BERT_LOAD_UNPACKED, &m, &err) == MMSA_OK &&
		bert_model_set_precision(m, MMSA_PRECISION_INT8, &err) == MMSA_OK;

	bert_model_free(m);
	return current;
}

static mmsa_status
text_int8_write(const char *dir, const char *path, mmsa_error *err)
{
	(void) path;
	return bert_model_write_int8(dir, err);
}

/* Whether the ResNet-50 model maps a model.packed made from its weights. */
static int
image_current(const char *dir)
{
	resnet_model *m = NULL;
	mmsa_error	err;
	int			current = resnet_model_load(dir, &m, &err) == MMSA_OK && m->pack.map != NULL;

	resnet_model_free(m);
	return current;
}

static mmsa_status
image_write(const char *dir, const char *path, mmsa_error *err)
{
	resnet_model *m = NULL;
	mmsa_status status = resnet_model_load_flags(dir, RESNET_LOAD_NO_SIDECAR, &m, err);

	if (status == MMSA_OK)
		status = resnet_model_write_packed(m, path, err);
	resnet_model_free(m);
	return status;
}

/*
 * Whether dir/model.int8.packed is valid for this model.safetensors and was
 * made from the calibration.json there now.
 */
static int
image_int8_current(const char *dir)
{
	resnet_model *m = NULL;
	resnet_calibration cal;
	uint64_t	hash;
	mmsa_error	err;
	char		path[4096];
	int			current;

	snprintf(path, sizeof(path), "%s/%s", dir, RESNET_CALIB_FILE);
	if (resnet_calibration_read(path, &cal, &hash, &err) != MMSA_OK)
		return 0;
	current = resnet_model_load(dir, &m, &err) == MMSA_OK &&
		resnet_model_set_precision(m, MMSA_PRECISION_INT8, &err) == MMSA_OK &&
		(uint64_t) m->qpack.config[5] == hash;
	resnet_model_free(m);
	return current;
}

static mmsa_status
image_int8_write(const char *dir, const char *path, mmsa_error *err)
{
	(void) path;
	return resnet_model_write_int8(dir, err);
}

static const pack_sidecar text_sidecars[] = {
	{MMSA_PACK_FILE, "", text_current, text_write},
	{BERT_INT8_FILE, ", int8", text_int8_current, text_int8_write},
};
static const pack_sidecar image_sidecars[] = {
	{MMSA_PACK_FILE, "", image_current, image_write},
	{RESNET_INT8_FILE, ", int8", image_int8_current, image_int8_write},
};

/* Packs one encoder directory; skips one without weights. */
static int
pack_encoder(const char *dir, int force)
{
	int			rc;

	if (!file_exists(dir, "config.json") || !file_exists(dir, "model.safetensors"))
	{
		printf("mmsa pack: %s has no config.json and model.safetensors: skipped\n", dir);
		return 0;
	}
	if (!is_resnet_dir(dir))
		return pack_one(dir, &text_sidecars[0], force) | pack_one(dir, &text_sidecars[1], force);
	rc = pack_one(dir, &image_sidecars[0], force);
	/* the image encoder's int8 weights need its activation scales */
	if (!file_exists(dir, RESNET_CALIB_FILE))
	{
		printf("mmsa pack: %s has no %s: no int8 weights\n", dir, RESNET_CALIB_FILE);
		return rc;
	}
	return rc | pack_one(dir, &image_sidecars[1], force);
}

int
cmd_pack(int argc, char **argv)
{
	const char *dir = NULL;
	int			force = 0;
	char		sub[4096];
	struct stat st;
	int			rc = 0,
				found = 0;

	for (int i = 1; i < argc; i++)
	{
		if (strcmp(argv[i], "--model") == 0 && i + 1 < argc)
			dir = argv[++i];
		else if (strcmp(argv[i], "--force") == 0)
			force = 1;
		else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
		{
			pack_usage(stdout);
			return 0;
		}
		else
		{
			pack_usage(stderr);
			return 2;
		}
	}
	if (dir == NULL)
	{
		pack_usage(stderr);
		return 2;
	}
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
	{
		fprintf(stderr, "mmsa pack: \"%s\" is not a directory\n", dir);
		return 1;
	}
	if (file_exists(dir, "config.json"))
		return pack_encoder(dir, force);
	for (int k = 0; k < 2; k++)
	{
		snprintf(sub, sizeof(sub), "%s/%s", dir, k == 0 ? "text" : "image");
		if (stat(sub, &st) == 0 && S_ISDIR(st.st_mode))
		{
			found = 1;
			rc |= pack_encoder(sub, force);
		}
	}
	if (!found)
	{
		fprintf(stderr, "mmsa pack: \"%s\" has neither text/ nor image/ nor config.json\n", dir);
		return 1;
	}
	return rc;
}
