/*
 * text_dataset.c
 *	  Tokenized training texts, seeded length-bucketed batches and BERT's
 *	  masking (see text_dataset.h).
 */
#include <stdlib.h>
#include <string.h>

#include "text_dataset.h"

/* Batches per length-sorted pool of text_dataset_plan. */
#define PLAN_POOL_BATCHES 64

/* splitmix64's output function */
static inline uint64_t
mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static inline uint64_t
seeded_bits(uint64_t seed, uint64_t i)
{
	return mix64(mix64(seed) + (i + 1) * 0x9E3779B97F4A7C15ULL);
}

double
seeded_uniform(uint64_t seed, uint64_t i)
{
	return (double) (seeded_bits(seed, i) >> 11) * (1.0 / 9007199254740992.0);
}

int64_t
seeded_below(uint64_t seed, uint64_t i, int64_t n)
{
	/* 128-bit multiply-shift: unbiased enough for n far below 2^64 */
	return (int64_t) (((unsigned __int128) seeded_bits(seed, i) * (uint64_t) n) >> 64);
}

void
seeded_shuffle(int64_t *a, int64_t n, uint64_t seed)
{
	for (int64_t i = n - 1; i > 0; i--)
	{
		int64_t		j = seeded_below(seed, (uint64_t) i, i + 1);
		int64_t		t = a[i];

		a[i] = a[j];
		a[j] = t;
	}
}

/* Grows d's arrays to hold n_more texts of at most max_len ids each. */
static mmsa_status
dataset_reserve(text_dataset *d, int64_t n_more, int max_len, mmsa_error *err)
{
	int64_t		need_n = d->n + n_more;
	int64_t		need_ids = d->n_ids + n_more * max_len;

	if (need_n + 1 > d->cap_n)
	{
		int64_t    *off = realloc(d->offsets, sizeof(int64_t) * (need_n + 1));
		int32_t    *lab;

		if (off == NULL)
			return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory for %lld texts",
								  (long long) need_n);
		d->offsets = off;
		lab = realloc(d->labels, sizeof(int32_t) * (need_n + 1));
		if (lab == NULL)
			return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory for %lld texts",
								  (long long) need_n);
		d->labels = lab;
		d->cap_n = need_n + 1;
	}
	if (need_ids > d->cap_ids)
	{
		int32_t    *ids = realloc(d->ids, sizeof(int32_t) * need_ids);

		if (ids == NULL)
			return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory for %lld token ids",
								  (long long) need_ids);
		d->ids = ids;
		d->cap_ids = need_ids;
	}
	if (d->n == 0)
		d->offsets[0] = 0;
	return MMSA_OK;
}

mmsa_status
text_dataset_add(text_dataset *d, const bert_tokenizer *tok,
				 const char *const *texts, const int *labels, int64_t n,
				 int max_len, mmsa_error *err)
{
	mmsa_status status;

	if (max_len < 2)
		return mmsa_set_error(err, MMSA_ERR_INVALID, "max_len must be at least 2");
	status = dataset_reserve(d, n, max_len, err);
	if (status != MMSA_OK)
		return status;
	for (int64_t i = 0; i < n; i++)
	{
		int			n_ids;

		status = bert_tokenize(tok, texts[i], strlen(texts[i]), max_len,
							   d->ids + d->n_ids, &n_ids, err);
		if (status != MMSA_OK)
			return status;
		d->labels[d->n] = labels != NULL ? labels[i] : -1;
		d->n_ids += n_ids;
		d->n++;
		d->offsets[d->n] = d->n_ids;
	}
	return MMSA_OK;
}

mmsa_status
text_dataset_add_ids(text_dataset *d, const int32_t *ids, int n, int label,
					 mmsa_error *err)
{
	mmsa_status status = dataset_reserve(d, 1, n, err);

	if (status != MMSA_OK)
		return status;
	memcpy(d->ids + d->n_ids, ids, sizeof(int32_t) * n);
	d->labels[d->n] = label;
	d->n_ids += n;
	d->n++;
	d->offsets[d->n] = d->n_ids;
	return MMSA_OK;
}

void
text_dataset_free(text_dataset *d)
{
	free(d->offsets);
	free(d->ids);
	free(d->labels);
	memset(d, 0, sizeof(*d));
}

/* qsort context-free comparison: by length, then index (a total order). */
typedef struct len_index
{
	int			len;
	int64_t		index;
} len_index;

static int
cmp_len_index(const void *a, const void *b)
{
	const len_index *x = a,
			   *y = b;

	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return (x->index > y->index) - (x->index < y->index);
}

mmsa_status
text_dataset_plan(const text_dataset *d, int batch_size, uint64_t seed,
				  text_plan *plan, mmsa_error *err)
{
	int64_t		n = d->n;
	int64_t		pool = (int64_t) batch_size * PLAN_POOL_BATCHES;
	int64_t		n_batches = (n + batch_size - 1) / batch_size;
	len_index  *tmp;
	int64_t    *border;
	int64_t    *order;

	memset(plan, 0, sizeof(*plan));
	if (batch_size < 1 || n < 1)
		return mmsa_set_error(err, MMSA_ERR_INVALID, "empty data set or batch size < 1");
	plan->order = malloc(sizeof(int64_t) * n);
	plan->batch_start = malloc(sizeof(int64_t) * (n_batches + 1));
	order = malloc(sizeof(int64_t) * n);
	border = malloc(sizeof(int64_t) * n_batches);
	tmp = malloc(sizeof(len_index) * (pool < n ? pool : n));
	if (plan->order == NULL || plan->batch_start == NULL || order == NULL ||
		border == NULL || tmp == NULL)
	{
		free(order);
		free(border);
		free(tmp);
		text_plan_free(plan);
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory for a batch plan");
	}

	/* shuffle, then sort each pool by length */
	for (int64_t i = 0; i < n; i++)
		order[i] = i;
	seeded_shuffle(order, n, seed);
	for (int64_t p0 = 0; p0 < n; p0 += pool)
	{
		int64_t		m = n - p0 < pool ? n - p0 : pool;

		for (int64_t i = 0; i < m; i++)
		{
			tmp[i].index = order[p0 + i];
			tmp[i].len = text_dataset_length(d, order[p0 + i]);
		}
		qsort(tmp, m, sizeof(len_index), cmp_len_index);
		for (int64_t i = 0; i < m; i++)
			order[p0 + i] = tmp[i].index;
	}

	/* the batches, in a shuffled order */
	for (int64_t b = 0; b < n_batches; b++)
		border[b] = b;
	seeded_shuffle(border, n_batches, seed ^ 0x5851F42D4C957F2DULL);
	{
		int64_t		k = 0;

		for (int64_t b = 0; b < n_batches; b++)
		{
			int64_t		s = border[b] * batch_size;
			int64_t		e = s + batch_size < n ? s + batch_size : n;

			plan->batch_start[b] = k;
			for (int64_t i = s; i < e; i++)
				plan->order[k++] = order[i];
		}
		plan->batch_start[n_batches] = k;
	}
	plan->n_batches = n_batches;
	free(order);
	free(border);
	free(tmp);
	return MMSA_OK;
}

void
text_plan_free(text_plan *plan)
{
	free(plan->order);
	free(plan->batch_start);
	memset(plan, 0, sizeof(*plan));
}

int
text_dataset_batch(const text_dataset *d, const int64_t *idx, int B,
				   int32_t pad_id, int32_t *ids, int32_t *mask, int32_t *labels)
{
	int			T = 1;

	for (int b = 0; b < B; b++)
		if (text_dataset_length(d, idx[b]) > T)
			T = text_dataset_length(d, idx[b]);
	for (int b = 0; b < B; b++)
	{
		const int32_t *src = d->ids + d->offsets[idx[b]];
		int			len = text_dataset_length(d, idx[b]);

		for (int t = 0; t < T; t++)
		{
			ids[b * T + t] = t < len ? src[t] : pad_id;
			mask[b * T + t] = t < len;
		}
		if (labels != NULL)
			labels[b] = d->labels[idx[b]];
	}
	return T;
}

int
mlm_mask(int32_t *ids, const int32_t *mask, int32_t *labels, int B, int T,
		 float p, int32_t mask_id, int32_t cls_id, int32_t sep_id,
		 int32_t first_random, int32_t vocab_size, uint64_t seed)
{
	int			chosen = 0;

	for (int i = 0; i < B * T; i++)
	{
		double		u,
					r;

		labels[i] = -100;
		if (!mask[i] || ids[i] == cls_id || ids[i] == sep_id)
			continue;
		u = seeded_uniform(seed, 3 * (uint64_t) i);
		if (u >= p)
			continue;
		labels[i] = ids[i];
		chosen++;
		r = seeded_uniform(seed, 3 * (uint64_t) i + 1);
		if (r < 0.8)
			ids[i] = mask_id;
		else if (r < 0.9)
			ids[i] = first_random +
				(int32_t) seeded_below(seed, 3 * (uint64_t) i + 2, vocab_size - first_random);
	}
	return chosen;
}
