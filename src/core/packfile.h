/*
 * packfile.h
 *	  Prepacked weight files ("model.packed" sidecars): the float arrays an
 *	  encoder's inference code uses (F32 copies of converted tensors, BatchNorm
 *	  folded in, weights in gemm.c's packed panels), written once by
 *	  `mmsa pack` and mapped read-only (MAP_SHARED, PROT_READ) at load, so
 *	  that every process (PostgreSQL backend) that loads the same model
 *	  shares one copy of the weights through the page cache instead of
 *	  building a private one.
 *
 * File layout (native byte order, checked by an endianness marker):
 *   MMSA_PACK_HEADER_BYTES of header (mmsa_pack_header), then data_floats
 *   floats.  The data starts 256 bytes into a page-aligned mapping, so it is
 *   64-byte aligned; the encoders lay their arrays out in it at offsets
 *   rounded to 16 floats, computed from their configuration (never read
 *   from the file), and the file size must be exactly header + data.
 *
 * The header records which encoder (kind), the layout's sizes (config,
 * checked by the encoder against its config.json), and the identity of the
 * source model.safetensors: its size and a 64-bit FNV-1a hash of its
 * safetensors header plus 16 blocks of 4 KiB at evenly spaced offsets.
 * Not its mtime: `make install` copies files and changes mtimes.  A
 * sidecar whose identity or sizes do not match is stale and ignored.
 */
#ifndef MMSA_PACKFILE_H
#define MMSA_PACKFILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mmsa_error.h"

#define MMSA_PACK_MAGIC "MMSAPACK"
#define MMSA_PACK_VERSION 1
#define MMSA_PACK_HEADER_BYTES 256
#define MMSA_PACK_CONFIG 16
#define MMSA_PACK_FILE "model.packed"

#define MMSA_PACK_KIND_BERT 1
#define MMSA_PACK_KIND_RESNET 2
#define MMSA_PACK_KIND_RESNET_INT8 3	/* resnet_int8.c */
#define MMSA_PACK_KIND_BERT_INT8 4	/* bert_int8.c */

/* n floats rounded up to a whole number of 64-byte lines */
#define MMSA_PACK_ROUND(n) (((size_t) (n) + 15) / 16 * 16)

typedef struct mmsa_pack_identity
{
	uint64_t	size;
	uint64_t	hash;
} mmsa_pack_identity;

typedef struct mmsa_pack_header
{
	char		magic[8];
	uint32_t	version;
	uint32_t	kind;
	uint32_t	header_bytes;
	uint32_t	endian;			/* 0x01020304 */
	uint64_t	src_size;
	uint64_t	src_hash;
	uint64_t	data_floats;
	int64_t		config[MMSA_PACK_CONFIG];
	uint8_t		reserved[MMSA_PACK_HEADER_BYTES - 48 - 8 * MMSA_PACK_CONFIG];
} mmsa_pack_header;

/* A mapped sidecar. */
typedef struct mmsa_pack_map
{
	void	   *map;
	size_t		map_size;
	const float *data;			/* data_floats floats, 64-byte aligned */
	size_t		data_floats;
	int64_t		config[MMSA_PACK_CONFIG];
} mmsa_pack_map;

/* 64-bit FNV-1a of n bytes, continuing from h (MMSA_FNV1A_OFFSET to start). */
#define MMSA_FNV1A_OFFSET 0xcbf29ce484222325ULL
#define MMSA_FNV1A_PRIME 0x100000001b3ULL
uint64_t	mmsa_fnv1a(uint64_t h, const void *data, size_t n);

/*
 * A checksum of n 4-byte words (n even), 64 bits at a time: what the int8
 * sidecars record of their data, to refuse a corrupt one.
 */
uint64_t	mmsa_pack_checksum(const void *data, size_t n);

/* The identity of a source file (see above).  MMSA_ERR_IO when unreadable. */
mmsa_status mmsa_pack_identity_of(const char *path, mmsa_pack_identity *id,
								  mmsa_error *err);

/*
 * Maps path when it is a well-formed sidecar of kind whose source identity
 * is *id; the caller then checks pm->config and pm->data_floats against its
 * own layout.  MMSA_ERR_IO: no such file; MMSA_ERR_FORMAT: malformed,
 * truncated, of another kind or version, or stale (pm is left empty).
 */
mmsa_status mmsa_pack_open(const char *path, uint32_t kind,
						   const mmsa_pack_identity *id, mmsa_pack_map *pm,
						   mmsa_error *err);
void		mmsa_pack_close(mmsa_pack_map *pm);

/*
 * mmsa_pack_open for an encoder's int8 sidecar (model.int8.packed), with
 * its errors worded for the user who asked for int8: missing, MMSA_ERR_IO
 * ("the <what> has no int8 weights", naming `mmsa pack --model <dir>`,
 * which writes it<from>); malformed or stale, MMSA_ERR_FORMAT; of another
 * layout (a config entry i in the mask check differing from want[i], or
 * other than want[0] words of data), or whose data does not match the
 * checksum in config[sum_at], MMSA_ERR_FORMAT, each with how to rebuild it.
 * pm is left closed on error.
 */
mmsa_status mmsa_pack_open_int8(const char *path, uint32_t kind,
								const mmsa_pack_identity *id,
								const int64_t want[MMSA_PACK_CONFIG], unsigned check,
								int sum_at, const char *what, const char *dir,
								const char *from, mmsa_pack_map *pm, mmsa_error *err);

/* Streaming writer: to path.tmp, renamed onto path by _end. */
typedef struct mmsa_pack_writer
{
	FILE	   *fp;
	char		path[4096];
	char		tmp[4112];
	size_t		floats;			/* announced */
	size_t		written;
} mmsa_pack_writer;

mmsa_status mmsa_pack_write_begin(mmsa_pack_writer *w, const char *path,
								  uint32_t kind, const int64_t config[MMSA_PACK_CONFIG],
								  const mmsa_pack_identity *id, size_t floats,
								  mmsa_error *err);
/* n floats, then zeros up to MMSA_PACK_ROUND(n) */
mmsa_status mmsa_pack_write_floats(mmsa_pack_writer *w, const float *data,
								   size_t n, mmsa_error *err);
mmsa_status mmsa_pack_write_end(mmsa_pack_writer *w, mmsa_error *err);
void		mmsa_pack_write_abort(mmsa_pack_writer *w);

#endif
