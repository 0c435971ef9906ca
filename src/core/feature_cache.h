/*
 * feature_cache.h
 *	  A cache of ResNet-50 image features for a set of posts, in one
 *	  safetensors file (written by `mmsa features`, read by training):
 *
 *	    pooled  F32 (N, 2048)      F_I, the pooled vector of each image
 *	    ids     I64 (N)            the post ids, in row order
 *	    tokens  F16 (N, 49, 2048)  H_I, the 7x7 map before pooling
 *
 *	  F16 keeps H_I to 200,704 bytes an image: 4,511 MVSA-Single images take
 *	  905 MB of tokens plus 37 MB of pooled vectors (F32 would be 1.85 GB).
 *	  __metadata__ records format "mmsa-image-features-1", the image model's
 *	  directory and the size and modification time (ns) of its
 *	  model.safetensors and config.json, and the preprocessing used, so that
 *	  a cache made with other weights is detected as stale.
 */
#ifndef MMSA_FEATURE_CACHE_H
#define MMSA_FEATURE_CACHE_H

#include <stdint.h>

#include "mmsa_error.h"
#include "safetensors.h"

#define FEATURE_CACHE_FORMAT "mmsa-image-features-1"

/* What a cache was made from. */
typedef struct feature_cache_source
{
	char		model_dir[1024];
	int64_t		model_size;		/* model.safetensors */
	int64_t		model_mtime_ns;
	int64_t		config_size;	/* config.json */
	int64_t		config_mtime_ns;
} feature_cache_source;

/* Stats model_dir/model.safetensors and model_dir/config.json. */
mmsa_status feature_cache_source_of(const char *model_dir,
									feature_cache_source *src,
									mmsa_error *err);

/* Rows to write: n images' ids, pooled (n,2048) F32, tokens (n,49,2048) F16. */
typedef struct feature_rows
{
	int64_t		n;
	const int64_t *ids;
	const float *pooled;
	const uint16_t *tokens;
} feature_rows;

/*
 * Writes the rows of parts[0..n_parts) one after the other into one cache
 * file, streaming (no copy of the whole set in memory), to path.tmp and then
 * renamed to path.  preprocess_json (may be NULL) is recorded as metadata.
 */
mmsa_status feature_cache_write(const char *path,
								const feature_cache_source *src,
								const char *preprocess_json,
								const feature_rows *parts, int n_parts,
								mmsa_error *err);

/* An open cache: pointers into the mapped file. */
typedef struct feature_cache
{
	safetensors_file file;
	feature_cache_source source;	/* as recorded */
	const char *preprocess_json;	/* as recorded, or NULL */
	feature_rows rows;
} feature_cache;

/*
 * Opens and checks a cache (format, dtypes, shapes agreeing on N).  When
 * model_dir is not NULL, the recorded model file sizes and times must
 * equal those of model_dir's files now, else MMSA_ERR_INVALID ("stale").
 * On error *c is left closed.
 */
mmsa_status feature_cache_open(const char *path, const char *model_dir,
							   feature_cache *c, mmsa_error *err);
void		feature_cache_close(feature_cache *c);

/* Row of the post with this id, or -1 (linear scan). */
int64_t		feature_cache_find(const feature_cache *c, int64_t id);

#endif
