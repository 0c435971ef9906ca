/*
 * safetensors.h
 *	  Reading and writing Hugging Face safetensors files.
 *
 * A safetensors file is an 8-byte little-endian header length N, N bytes of
 * JSON ({"name": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]},
 * ..., "__metadata__": {"k": "v"}}), then the tensor bytes.  Files are
 * mapped read-only with mmap, so the operating system shares their pages
 * between every process that opens the same file, and F32 tensors are used
 * in place (zero-copy).  Every header field is checked against the file size
 * before any tensor byte is read: a truncated or hostile file gives an
 * MMSA_ERR_FORMAT error, never an out-of-bounds read.
 */
#ifndef MMSA_SAFETENSORS_H
#define MMSA_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "mmsa_error.h"

#define ST_MAX_DIMS 8

typedef enum st_dtype
{
	ST_F32,
	ST_F16,
	ST_BF16,
	ST_F64,
	ST_I64,
	ST_I32,
	ST_I16,
	ST_I8,
	ST_U8,
	ST_BOOL
} st_dtype;

typedef struct st_tensor
{
	char	   *name;
	st_dtype	dtype;
	int			ndim;
	int64_t		shape[ST_MAX_DIMS];
	int64_t		numel;
	const void *data;			/* points into the mapping */
	size_t		nbytes;
} st_tensor;

typedef struct st_owned_buffer st_owned_buffer;

typedef struct safetensors_file
{
	char	   *path;
	void	   *map;
	size_t		map_size;
	int			n_tensors;
	st_tensor  *tensors;		/* sorted by name */
	int			n_metadata;
	char	  **metadata_keys;
	char	  **metadata_values;
	st_owned_buffer *owned;		/* converted copies, freed on close */
} safetensors_file;

/* Size in bytes of one element of dtype. */
size_t		st_dtype_size(st_dtype dtype);
const char *st_dtype_name(st_dtype dtype);

/* Maps and validates path.  On error *f is left empty (safe to close). */
mmsa_status safetensors_open(const char *path, safetensors_file *f, mmsa_error *err);

/* Unmaps and frees everything, including buffers from safetensors_get_f32. */
void		safetensors_close(safetensors_file *f);

/* The tensor called name, or NULL. */
const st_tensor *safetensors_find(const safetensors_file *f, const char *name);

/* The metadata value for key, or NULL. */
const char *safetensors_metadata(const safetensors_file *f, const char *key);

/*
 * Returns the tensor called name as float32, checking that it has exactly
 * the ndim/shape given (shape may be NULL to accept any shape).  F32
 * tensors that are 4-byte aligned are returned in place; F16, BF16 and F64
 * tensors (and misaligned F32) are converted once into a buffer that the
 * file owns until safetensors_close.  Returns NULL and fills err when the
 * tensor is missing, has another shape, or has a non-float dtype.
 */
const float *safetensors_get_f32(safetensors_file *f, const char *name,
								 int ndim, const int64_t *shape,
								 mmsa_error *err);

/* One tensor to write. */
typedef struct st_write_tensor
{
	const char *name;
	st_dtype	dtype;			/* ST_F32 or ST_F16 (converted from data) */
	int			ndim;
	int64_t		shape[ST_MAX_DIMS];
	const float *data;			/* float32 values, numel of them */
} st_write_tensor;

/*
 * Writes a safetensors file (atomically: to path.tmp, then rename).
 * Metadata is n_metadata string pairs (may be 0).
 */
mmsa_status safetensors_write(const char *path,
							  const st_write_tensor *tensors, int n_tensors,
							  const char *const *metadata_keys,
							  const char *const *metadata_values,
							  int n_metadata, mmsa_error *err);

/* IEEE half <-> float conversions (round to nearest even). */
float		st_f16_to_f32(uint16_t h);
uint16_t	st_f32_to_f16(float f);
float		st_bf16_to_f32(uint16_t h);

#endif
