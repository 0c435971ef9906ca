/*
 * safetensors.c
 *	  Hugging Face safetensors files: mmap'ed zero-copy reading with every
 *	  header field bounds-checked, and writing.
 *
 * Format: u64 little-endian header length N, then N bytes of UTF-8 JSON,
 * then the data area.  Each tensor's data_offsets [begin, end) are relative
 * to the start of the data area.
 */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Headers larger than this are refused (real ones are a few hundred KB). */
#define ST_MAX_HEADER_SIZE (100 * 1024 * 1024)

struct st_owned_buffer
{
	st_owned_buffer *next;
	char	   *name;
	float	   *data;
};

static const struct
{
	const char *name;
	st_dtype	dtype;
	size_t		size;
}			st_dtypes[] = {
	{"F32", ST_F32, 4},
	{"F16", ST_F16, 2},
	{"BF16", ST_BF16, 2},
	{"F64", ST_F64, 8},
	{"I64", ST_I64, 8},
	{"I32", ST_I32, 4},
	{"I16", ST_I16, 2},
	{"I8", ST_I8, 1},
	{"U8", ST_U8, 1},
	{"BOOL", ST_BOOL, 1},
};

#define N_DTYPES (sizeof(st_dtypes) / sizeof(st_dtypes[0]))

size_t
st_dtype_size(st_dtype dtype)
{
	for (size_t i = 0; i < N_DTYPES; i++)
		if (st_dtypes[i].dtype == dtype)
			return st_dtypes[i].size;
	return 0;
}

const char *
st_dtype_name(st_dtype dtype)
{
	for (size_t i = 0; i < N_DTYPES; i++)
		if (st_dtypes[i].dtype == dtype)
			return st_dtypes[i].name;
	return "?";
}

static int
st_dtype_from_name(const char *name, st_dtype *dtype)
{
	for (size_t i = 0; i < N_DTYPES; i++)
		if (strcmp(st_dtypes[i].name, name) == 0)
		{
			*dtype = st_dtypes[i].dtype;
			return 1;
		}
	return 0;
}

/*
 * Half-precision conversions, bit-exact with IEEE 754 binary16 (round to
 * nearest even on the way down, as numpy and PyTorch do).
 */
float
st_f16_to_f32(uint16_t h)
{
	uint32_t	sign = (uint32_t) (h & 0x8000) << 16;
	uint32_t	exp = (h >> 10) & 0x1f;
	uint32_t	mant = h & 0x3ff;
	uint32_t	bits;
	float		f;

	if (exp == 0)
	{
		if (mant == 0)
			bits = sign;
		else
		{
			/* subnormal: normalise */
			exp = 127 - 15 + 1;
			while ((mant & 0x400) == 0)
			{
				mant <<= 1;
				exp--;
			}
			mant &= 0x3ff;
			bits = sign | (exp << 23) | (mant << 13);
		}
	}
	else if (exp == 31)
		bits = sign | 0x7f800000 | (mant << 13);
	else
		bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
	memcpy(&f, &bits, 4);
	return f;
}

uint16_t
st_f32_to_f16(float f)
{
	uint32_t	x;
	uint32_t	sign;
	int32_t		exp;
	uint32_t	mant;

	memcpy(&x, &f, 4);
	sign = (x >> 16) & 0x8000;
	exp = (int32_t) ((x >> 23) & 0xff);
	mant = x & 0x7fffff;

	if (exp == 0xff)			/* inf or nan */
		return (uint16_t) (sign | 0x7c00 | (mant ? 0x200 : 0));
	exp = exp - 127 + 15;
	if (exp >= 31)				/* overflow to inf */
		return (uint16_t) (sign | 0x7c00);
	if (exp <= 0)
	{
		/* subnormal or zero */
		uint32_t	shift;
		uint32_t	half;
		uint32_t	rounded;

		if (exp < -10)
			return (uint16_t) sign;
		mant |= 0x800000;
		shift = (uint32_t) (14 - exp);
		half = 1u << (shift - 1);
		rounded = mant >> shift;
		if ((mant & ((1u << shift) - 1)) > half ||
			((mant & ((1u << shift) - 1)) == half && (rounded & 1)))
			rounded++;
		return (uint16_t) (sign | rounded);
	}
	else
	{
		uint32_t	h = sign | ((uint32_t) exp << 10) | (mant >> 13);
		uint32_t	rest = mant & 0x1fff;

		if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
			h++;				/* may carry into the exponent: correct */
		return (uint16_t) h;
	}
}

float
st_bf16_to_f32(uint16_t h)
{
	uint32_t	bits = (uint32_t) h << 16;
	float		f;

	memcpy(&f, &bits, 4);
	return f;
}

static int
st_tensor_compare(const void *a, const void *b)
{
	return strcmp(((const st_tensor *) a)->name, ((const st_tensor *) b)->name);
}

static int
st_tensor_compare_offset(const void *a, const void *b)
{
	const uint8_t *pa = ((const st_tensor *) a)->data;
	const uint8_t *pb = ((const st_tensor *) b)->data;

	return pa < pb ? -1 : pa > pb ? 1 : 0;
}

/* Reads a JSON integer in [0, max] into *out. */
static int
json_get_bounded_int(json_t *value, int64_t max, int64_t *out)
{
	json_int_t	v;

	if (!json_is_integer(value))
		return 0;
	v = json_integer_value(value);
	if (v < 0 || v > max)
		return 0;
	*out = (int64_t) v;
	return 1;
}

/*
 * Parses one tensor entry of the header into t, checking it against the
 * data area of data_size bytes.
 */
static mmsa_status
parse_tensor_entry(const char *path, const char *name, json_t *entry,
				   const uint8_t *data, size_t data_size,
				   st_tensor *t, mmsa_error *err)
{
	json_t	   *dtype_json = json_object_get(entry, "dtype");
	json_t	   *shape_json = json_object_get(entry, "shape");
	json_t	   *offsets_json = json_object_get(entry, "data_offsets");
	int64_t		begin,
				end;
	int64_t		numel = 1;
	size_t		elem_size;

	if (!json_is_object(entry))
		return mmsa_set_error(err, MMSA_ERR_FORMAT,
							  "safetensors file \"%s\": entry \"%s\" is not an object", path, name);
	if (!json_is_string(dtype_json) ||
		!st_dtype_from_name(json_string_value(dtype_json), &t->dtype))
		return mmsa_set_error(err, MMSA_ERR_FORMAT,
							  "safetensors file \"%s\": tensor \"%s\" has a missing or unknown dtype",
							  path, name);
	if (!json_is_array(shape_json) || json_array_size(shape_json) > ST_MAX_DIMS)
		return mmsa_set_error(err, MMSA_ERR_FORMAT,
							  "safetensors file \"%s\": tensor \"%s\" has a missing shape or more than %d dimensions",
							  path, name, ST_MAX_DIMS);
	t->ndim = (int) json_array_size(shape_json);
	for (int d = 0; d < t->ndim; d++)
	{
		if (!json_get_bounded_int(json_array_get(shape_json, d), INT64_C(1) << 40, &t->shape[d]))
			return mmsa_set_error(err, MMSA_ERR_FORMAT,
								  "safetensors file \"%s\": tensor \"%s\" has an invalid dimension %d",
								  path, name, d);
		if (t->shape[d] != 0 && numel > INT64_MAX / t->shape[d])
			return mmsa_set_error(err, MMSA_ERR_FORMAT,
								  "safetensors file \"%s\": tensor \"%s\" shape overflows", path, name);
		numel *= t->shape[d];
	}
	if (!json_is_array(offsets_json) || json_array_size(offsets_json) != 2 ||
		!json_get_bounded_int(json_array_get(offsets_json, 0), (int64_t) data_size, &begin) ||
		!json_get_bounded_int(json_array_get(offsets_json, 1), (int64_t) data_size, &end) ||
		end < begin)
		return mmsa_set_error(err, MMSA_ERR_FORMAT,
							  "safetensors file \"%s\": tensor \"%s\" has data_offsets outside the file's %zu data bytes (truncated or corrupt file?)",
							  path, name, data_size);
	elem_size = st_dtype_size(t->dtype);
	if (numel > INT64_MAX / (int64_t) elem_size || numel * (int64_t) elem_size != end - begin)
		return mmsa_set_error(err, MMSA_ERR_FORMAT,
							  "safetensors file \"%s\": tensor \"%s\" has %lld bytes of data but its shape and dtype need %lld",
							  path, name, (long long) (end - begin), (long long) (numel * (int64_t) elem_size));
	t->numel = numel;
	t->data = data + begin;
	t->nbytes = (size_t) (end - begin);
	return MMSA_OK;
}

mmsa_status
safetensors_open(const char *path, safetensors_file *f, mmsa_error *err)
{
	int			fd;
	struct stat st;
	uint64_t	header_len = 0;
	const uint8_t *bytes;
	json_t	   *root = NULL;
	json_error_t jerr;
	const char *key;
	json_t	   *value;
	size_t		data_size;
	int			n;
	mmsa_status status = MMSA_OK;

	memset(f, 0, sizeof(*f));

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return mmsa_set_error(err, MMSA_ERR_IO, "could not open safetensors file \"%s\": %s",
							  path, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
	{
		close(fd);
		return mmsa_set_error(err, MMSA_ERR_IO, "\"%s\" is not a regular file", path);
	}
	if (st.st_size < 8)
	{
		close(fd);
		return mmsa_set_error(err, MMSA_ERR_FORMAT,
							  "safetensors file \"%s\" is truncated (%lld bytes)", path, (long long) st.st_size);
	}
	f->map_size = (size_t) st.st_size;
	f->map = mmap(NULL, f->map_size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (f->map == MAP_FAILED)
	{
		f->map = NULL;
		return mmsa_set_error(err, MMSA_ERR_IO, "could not map safetensors file \"%s\": %s",
							  path, strerror(errno));
	}
	f->path = strdup(path);
	if (f->path == NULL)
	{
		status = mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
		goto fail;
	}

	bytes = (const uint8_t *) f->map;
	for (int i = 7; i >= 0; i--)
		header_len = (header_len << 8) | bytes[i];
	if (header_len < 2 || header_len > ST_MAX_HEADER_SIZE || header_len > f->map_size - 8)
	{
		status = mmsa_set_error(err, MMSA_ERR_FORMAT,
								"safetensors file \"%s\": header length %llu does not fit the file's %zu bytes (truncated or not a safetensors file?)",
								path, (unsigned long long) header_len, f->map_size);
		goto fail;
	}
	data_size = f->map_size - 8 - (size_t) header_len;

	root = json_loadb((const char *) bytes + 8, (size_t) header_len,
					  JSON_REJECT_DUPLICATES | JSON_DISABLE_EOF_CHECK, &jerr);
	if (root == NULL || !json_is_object(root))
	{
		status = mmsa_set_error(err, MMSA_ERR_FORMAT,
								"safetensors file \"%s\": header is not a JSON object (%s)",
								path, root == NULL ? jerr.text : "wrong type");
		goto fail;
	}

	n = (int) json_object_size(root);
	f->tensors = calloc((size_t) n + 1, sizeof(st_tensor));
	if (f->tensors == NULL)
	{
		status = mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
		goto fail;
	}

	json_object_foreach(root, key, value)
	{
		if (strcmp(key, "__metadata__") == 0)
		{
			const char *mkey;
			json_t	   *mvalue;
			int			m = 0;

			if (!json_is_object(value))
			{
				status = mmsa_set_error(err, MMSA_ERR_FORMAT,
										"safetensors file \"%s\": __metadata__ is not an object", path);
				goto fail;
			}
			f->metadata_keys = calloc(json_object_size(value) + 1, sizeof(char *));
			f->metadata_values = calloc(json_object_size(value) + 1, sizeof(char *));
			if (f->metadata_keys == NULL || f->metadata_values == NULL)
			{
				status = mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
				goto fail;
			}
			json_object_foreach(value, mkey, mvalue)
			{
				if (!json_is_string(mvalue))
				{
					status = mmsa_set_error(err, MMSA_ERR_FORMAT,
											"safetensors file \"%s\": metadata \"%s\" is not a string", path, mkey);
					goto fail;
				}
				f->metadata_keys[m] = strdup(mkey);
				f->metadata_values[m] = strdup(json_string_value(mvalue));
				f->n_metadata = ++m;
				if (f->metadata_keys[m - 1] == NULL || f->metadata_values[m - 1] == NULL)
				{
					status = mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
					goto fail;
				}
			}
			continue;
		}

		{
			st_tensor  *t = &f->tensors[f->n_tensors];

			status = parse_tensor_entry(path, key, value, bytes + 8 + header_len,
										data_size, t, err);
			if (status != MMSA_OK)
				goto fail;
			t->name = strdup(key);
			if (t->name == NULL)
			{
				status = mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
				goto fail;
			}
			f->n_tensors++;
		}
	}
	json_decref(root);
	root = NULL;

	/* as the format requires, no two tensors may share bytes */
	qsort(f->tensors, (size_t) f->n_tensors, sizeof(st_tensor), st_tensor_compare_offset);
	for (int i = 1; i < f->n_tensors; i++)
	{
		const st_tensor *prev = &f->tensors[i - 1];

		if ((const uint8_t *) prev->data + prev->nbytes > (const uint8_t *) f->tensors[i].data)
		{
			status = mmsa_set_error(err, MMSA_ERR_FORMAT,
									"safetensors file \"%s\": tensors \"%s\" and \"%s\" overlap",
									path, prev->name, f->tensors[i].name);
			goto fail;
		}
	}
	qsort(f->tensors, (size_t) f->n_tensors, sizeof(st_tensor), st_tensor_compare);
	return MMSA_OK;

fail:
	if (root != NULL)
		json_decref(root);
	safetensors_close(f);
	return status;
}

void
safetensors_close(safetensors_file *f)
{
	st_owned_buffer *b = f->owned;

	while (b != NULL)
	{
		st_owned_buffer *next = b->next;

		free(b->name);
		free(b->data);
		free(b);
		b = next;
	}
	if (f->tensors != NULL)
		for (int i = 0; i < f->n_tensors; i++)
			free(f->tensors[i].name);
	free(f->tensors);
	for (int i = 0; i < f->n_metadata; i++)
	{
		free(f->metadata_keys[i]);
		free(f->metadata_values[i]);
	}
	free(f->metadata_keys);
	free(f->metadata_values);
	if (f->map != NULL)
		munmap(f->map, f->map_size);
	free(f->path);
	memset(f, 0, sizeof(*f));
}

const st_tensor *
safetensors_find(const safetensors_file *f, const char *name)
{
	st_tensor	key;

	if (f->tensors == NULL || f->n_tensors == 0)
		return NULL;
	key.name = (char *) name;
	return bsearch(&key, f->tensors, (size_t) f->n_tensors, sizeof(st_tensor), st_tensor_compare);
}

const char *
safetensors_metadata(const safetensors_file *f, const char *key)
{
	for (int i = 0; i < f->n_metadata; i++)
		if (strcmp(f->metadata_keys[i], key) == 0)
			return f->metadata_values[i];
	return NULL;
}

/* Formats a shape as "(a, b, c)" into buf. */
static const char *
format_shape(char *buf, size_t size, int ndim, const int64_t *shape)
{
	size_t		used = 0;

	used += (size_t) snprintf(buf + used, size - used, "(");
	for (int d = 0; d < ndim && used < size; d++)
		used += (size_t) snprintf(buf + used, size - used, d ? ", %lld" : "%lld", (long long) shape[d]);
	if (used < size)
		snprintf(buf + used, size - used, ")");
	return buf;
}

const float *
safetensors_get_f32(safetensors_file *f, const char *name,
					int ndim, const int64_t *shape, mmsa_error *err)
{
	const st_tensor *t = safetensors_find(f, name);
	st_owned_buffer *owned;
	float	   *out;

	if (t == NULL)
	{
		mmsa_set_error(err, MMSA_ERR_FORMAT, "safetensors file \"%s\" has no tensor \"%s\"",
					   f->path ? f->path : "?", name);
		return NULL;
	}
	if (shape != NULL)
	{
		int			same = (t->ndim == ndim);

		for (int d = 0; same && d < ndim; d++)
			same = (t->shape[d] == shape[d]);
		if (!same)
		{
			char		want[128],
						have[128];

			mmsa_set_error(err, MMSA_ERR_FORMAT,
						   "tensor \"%s\" in \"%s\" has shape %s, expected %s",
						   name, f->path, format_shape(have, sizeof(have), t->ndim, t->shape),
						   format_shape(want, sizeof(want), ndim, shape));
			return NULL;
		}
	}
	if (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16 && t->dtype != ST_F64)
	{
		mmsa_set_error(err, MMSA_ERR_UNSUPPORTED, "tensor \"%s\" in \"%s\" has dtype %s; expected a floating-point type",
					   name, f->path, st_dtype_name(t->dtype));
		return NULL;
	}
	if (t->dtype == ST_F32 && ((uintptr_t) t->data % sizeof(float)) == 0)
		return (const float *) t->data;

	/* converted once, kept until close */
	for (owned = f->owned; owned != NULL; owned = owned->next)
		if (strcmp(owned->name, name) == 0)
			return owned->data;

	owned = calloc(1, sizeof(st_owned_buffer));
	out = malloc((size_t) (t->numel > 0 ? t->numel : 1) * sizeof(float));
	if (owned == NULL || out == NULL || (owned->name = strdup(name)) == NULL)
	{
		free(owned);
		free(out);
		mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory converting tensor \"%s\"", name);
		return NULL;
	}
	{
		const uint8_t *src = (const uint8_t *) t->data;

		for (int64_t i = 0; i < t->numel; i++)
		{
			switch (t->dtype)
			{
				case ST_F32:
					memcpy(&out[i], src + 4 * i, 4);
					break;
				case ST_F16:
					{
						uint16_t	h;

						memcpy(&h, src + 2 * i, 2);
						out[i] = st_f16_to_f32(h);
						break;
					}
				case ST_BF16:
					{
						uint16_t	h;

						memcpy(&h, src + 2 * i, 2);
						out[i] = st_bf16_to_f32(h);
						break;
					}
				default:
					{
						double		d;

						memcpy(&d, src + 8 * i, 8);
						out[i] = (float) d;
						break;
					}
			}
		}
	}
	owned->data = out;
	owned->next = f->owned;
	f->owned = owned;
	return out;
}

/* Writes all of buf to fd. */
static int
write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0)
	{
		ssize_t		w = write(fd, p, len);

		if (w < 0)
		{
			if (errno == EINTR)
				continue;
			return 0;
		}
		p += w;
		len -= (size_t) w;
	}
	return 1;
}

mmsa_status
safetensors_write(const char *path, const st_write_tensor *tensors, int n_tensors,
				  const char *const *metadata_keys, const char *const *metadata_values,
				  int n_metadata, mmsa_error *err)
{
	json_t	   *root = json_object();
	char	   *header = NULL;
	char	   *tmp_path = NULL;
	size_t		header_len,
				padded_len;
	uint8_t		len_bytes[8];
	uint64_t	offset = 0;
	int			fd = -1;
	mmsa_status status = MMSA_OK;
	size_t		chunk_cap = 1 << 16;
	uint16_t   *chunk = NULL;

	if (root == NULL)
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
	for (int i = 0; i < n_tensors; i++)
	{
		const st_write_tensor *t = &tensors[i];
		json_t	   *entry = json_object();
		json_t	   *shape = json_array();
		int64_t		numel = 1;

		if (t->dtype != ST_F32 && t->dtype != ST_F16)
		{
			json_decref(entry);
			json_decref(shape);
			status = mmsa_set_error(err, MMSA_ERR_INVALID, "can only write F32 or F16 tensors");
			goto done;
		}
		for (int d = 0; d < t->ndim; d++)
		{
			json_array_append_new(shape, json_integer(t->shape[d]));
			numel *= t->shape[d];
		}
		json_object_set_new(entry, "dtype", json_string(st_dtype_name(t->dtype)));
		json_object_set_new(entry, "shape", shape);
		json_object_set_new(entry, "data_offsets",
							json_pack("[I,I]", (json_int_t) offset,
									  (json_int_t) (offset + (uint64_t) numel * st_dtype_size(t->dtype))));
		offset += (uint64_t) numel * st_dtype_size(t->dtype);
		json_object_set_new(root, t->name, entry);
	}
	if (n_metadata > 0)
	{
		json_t	   *meta = json_object();

		for (int i = 0; i < n_metadata; i++)
			json_object_set_new(meta, metadata_keys[i], json_string(metadata_values[i]));
		json_object_set_new(root, "__metadata__", meta);
	}
	header = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (header == NULL)
	{
		status = mmsa_set_error(err, MMSA_ERR_NOMEM, "could not serialise safetensors header");
		goto done;
	}
	header_len = strlen(header);
	padded_len = (header_len + 7) & ~(size_t) 7;
	for (int i = 0; i < 8; i++)
		len_bytes[i] = (uint8_t) ((uint64_t) padded_len >> (8 * i));

	tmp_path = malloc(strlen(path) + 5);
	if (tmp_path == NULL)
	{
		status = mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
		goto done;
	}
	sprintf(tmp_path, "%s.tmp", path);
	fd = open(tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
	{
		status = mmsa_set_error(err, MMSA_ERR_IO, "could not create \"%s\": %s", tmp_path, strerror(errno));
		goto done;
	}
	if (!write_all(fd, len_bytes, 8) || !write_all(fd, header, header_len) ||
		!write_all(fd, "        ", padded_len - header_len))
		goto write_failed;
	for (int i = 0; i < n_tensors; i++)
	{
		const st_write_tensor *t = &tensors[i];
		int64_t		numel = 1;

		for (int d = 0; d < t->ndim; d++)
			numel *= t->shape[d];
		if (t->dtype == ST_F32)
		{
			if (!write_all(fd, t->data, (size_t) numel * sizeof(float)))
				goto write_failed;
			continue;
		}
		if (chunk == NULL && (chunk = malloc(chunk_cap * sizeof(uint16_t))) == NULL)
		{
			status = mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
			goto done;
		}
		for (int64_t start = 0; start < numel; start += (int64_t) chunk_cap)
		{
			size_t		n = (size_t) ((numel - start) < (int64_t) chunk_cap ? (numel - start) : (int64_t) chunk_cap);

			for (size_t j = 0; j < n; j++)
				chunk[j] = st_f32_to_f16(t->data[start + (int64_t) j]);
			if (!write_all(fd, chunk, n * sizeof(uint16_t)))
				goto write_failed;
		}
	}
	if (fsync(fd) != 0 || close(fd) != 0)
	{
		fd = -1;
		goto write_failed;
	}
	fd = -1;
	if (rename(tmp_path, path) != 0)
	{
		status = mmsa_set_error(err, MMSA_ERR_IO, "could not rename \"%s\" to \"%s\": %s",
								tmp_path, path, strerror(errno));
		unlink(tmp_path);
	}
	goto done;

write_failed:
	status = mmsa_set_error(err, MMSA_ERR_IO, "could not write \"%s\": %s", tmp_path, strerror(errno));
	if (fd >= 0)
		close(fd);
	fd = -1;
	unlink(tmp_path);
done:
	free(chunk);
	free(tmp_path);
	free(header);
	json_decref(root);
	return status;
}
