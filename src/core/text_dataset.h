/*
 * text_dataset.h
 *	  Tokenized texts for training the text encoder: one flat array of
 *	  WordPiece ids with per-text offsets, optional labels, seeded
 *	  length-bucketed batching, and BERT's masked-language-model masking.
 *
 * Batching (text_dataset_plan): the texts are shuffled with a permutation
 * drawn from the seed, cut into pools of 64 batches, each pool sorted by
 * length and cut into batches, and the batches shuffled again.  A batch is
 * padded only to its longest text, so short tweets cost little.  The plan
 * depends only on (texts, batch size, seed): an interrupted run that
 * restarts at batch k of the same epoch sees the same batches.
 *
 * Masking (mlm_mask) follows BERT (Devlin et al. 2019, section 3.1):
 * each real token other than [CLS]/[SEP] is chosen with probability p
 * (0.15); a chosen token becomes [MASK] with probability 0.8, a random
 * vocabulary token with 0.1, stays itself with 0.1, and is labelled with
 * its original id; every other position is labelled -100 (ignored).
 * Draws are counter-based from the seed, so a step is reproducible.
 */
#ifndef MMSA_TEXT_DATASET_H
#define MMSA_TEXT_DATASET_H

#include <stdint.h>

#include "mmsa_error.h"
#include "tokenizer.h"

typedef struct text_dataset
{
	int64_t		n;				/* texts */
	int64_t		n_ids;			/* ids in all texts */
	int64_t    *offsets;		/* (n+1) text i is ids[offsets[i]..offsets[i+1]) */
	int32_t    *ids;			/* (n_ids) [CLS] pieces... [SEP] per text */
	int32_t    *labels;			/* (n) 0..2, or -1 when unlabelled */
	int64_t		cap_n,
				cap_ids;		/* allocated sizes */
} text_dataset;

/* A batch plan: order[batch_start[b] .. batch_start[b+1]) are batch b. */
typedef struct text_plan
{
	int64_t		n_batches;
	int64_t    *order;			/* (n) text indices */
	int64_t    *batch_start;	/* (n_batches+1) */
} text_plan;

/*
 * Tokenizes texts[0..n) (NUL-terminated UTF-8) to at most max_len ids
 * each and appends them with labels[i] (labels NULL: all -1).  Texts that
 * give no piece between [CLS] and [SEP] (empty or only unknown spaces) are
 * kept: the classifier still sees them.
 */
mmsa_status text_dataset_add(text_dataset *d, const bert_tokenizer *tok,
							 const char *const *texts, const int *labels,
							 int64_t n, int max_len, mmsa_error *err);

/* Appends one text given as ids (n of them, at most the max_len used). */
mmsa_status text_dataset_add_ids(text_dataset *d, const int32_t *ids, int n,
								 int label, mmsa_error *err);

void		text_dataset_free(text_dataset *d);

static inline int
text_dataset_length(const text_dataset *d, int64_t i)
{
	return (int) (d->offsets[i + 1] - d->offsets[i]);
}

/* The seeded, length-bucketed batch plan described above. */
mmsa_status text_dataset_plan(const text_dataset *d, int batch_size,
							  uint64_t seed, text_plan *plan, mmsa_error *err);

void		text_plan_free(text_plan *plan);

/*
 * Fills a padded batch from the texts idx[0..B): ids and mask (B,T) with
 * T the longest length (returned), padding pad_id and mask 0; labels (B)
 * when not NULL.  ids and mask must hold B * max_len entries.
 */
int			text_dataset_batch(const text_dataset *d, const int64_t *idx, int B,
							   int32_t pad_id, int32_t *ids, int32_t *mask,
							   int32_t *labels);

/*
 * BERT's masking of a padded batch in place: ids (B,T) are changed as
 * described above and labels (B,T) get the original ids of the chosen
 * positions, -100 elsewhere.  Returns the number of chosen positions.
 * Positions with mask 0 and the ids cls_id, sep_id are never chosen;
 * random replacements are drawn from [first_random, vocab_size), which
 * skips [PAD], [unused*] and the other special entries at the start of the
 * BERT vocabulary.
 */
int			mlm_mask(int32_t *ids, const int32_t *mask, int32_t *labels,
					 int B, int T, float p, int32_t mask_id, int32_t cls_id,
					 int32_t sep_id, int32_t first_random, int32_t vocab_size,
					 uint64_t seed);

/* A uniform draw in [0,1) and an integer in [0,n) from (seed, i). */
double		seeded_uniform(uint64_t seed, uint64_t i);
int64_t		seeded_below(uint64_t seed, uint64_t i, int64_t n);

/* Fisher-Yates shuffle of a[0..n) with draws from seed. */
void		seeded_shuffle(int64_t *a, int64_t n, uint64_t seed);

#endif
