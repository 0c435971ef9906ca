/*
 * test_text_dataset.c
 *	  The tokenized training texts of src/core/text_dataset.h:
 *	  text_dataset_add with the real bert-base-uncased vocabulary
 *	  (offsets, labels, [CLS]/[SEP], truncation), the seeded
 *	  length-bucketed batch plan (a permutation, batch bounds, determinism,
 *	  short length spread inside a batch), padded batches, BERT's masking
 *	  (shares of chosen / [MASK] / random / unchanged positions, labels,
 *	  never [CLS]/[SEP]/padding, determinism), and the seeded draws.
 *
 *	  The vocabulary is $MMSA_VOCAB, else $MMSA_ROOT/weights/text/vocab.txt,
 *	  else ./weights/text/vocab.txt; the checks that need it are skipped
 *	  when none exists.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tap.h"
#include "text_dataset.h"
#include "tokenizer.h"

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;

static uint32_t
rng_next(void)
{
	rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t) (rng_state >> 33);
}

static void
skip(int count, const char *why)
{
	for (int i = 0; i < count; i++)
	{
		tap_count++;
		printf("ok %d # skip %s\n", tap_count, why);
	}
	fflush(stdout);
}

static const char *
find_vocab(void)
{
	static char path[4096];
	const char *env = getenv("MMSA_VOCAB");
	const char *root = getenv("MMSA_ROOT");

	if (env != NULL && env[0] != '\0')
		return env;
	if (root != NULL && root[0] != '\0')
	{
		snprintf(path, sizeof(path), "%s/weights/text/vocab.txt", root);
		return path;
	}
	return "weights/text/vocab.txt";
}

/* ---- text_dataset_add with the real tokenizer ------------------------- */

#define ADD_TESTS 16

static void
test_add(void)
{
	const char *path = find_vocab();
	bert_tokenizer *tok = NULL;
	mmsa_error	err;
	text_dataset d = {0};
	const char *texts[] = {
		"How I feel today #legday",
		"",
		"What a wonderful, wonderful morning by the sea with my friends and family",
		"sad."
	};
	int			labels[] = {2, 1, 0, 2};
	int			all_cls = 1,
				all_sep = 1,
				offsets_ok = 1;
	int32_t		cls,
				sep;

	if (access(path, R_OK) != 0)
	{
		diag("no vocabulary at %s (run src/tools/fetch-vocab.sh, or set MMSA_VOCAB)", path);
		skip(ADD_TESTS, "no vocabulary file");
		return;
	}
	if (bert_tokenizer_load(path, &tok, &err) != MMSA_OK)
	{
		ok(0, "bert_tokenizer_load %s: %s", path, err.message);
		skip(ADD_TESTS - 1, "vocabulary does not load");
		return;
	}
	cls = bert_tokenizer_cls_id(tok);
	sep = bert_tokenizer_sep_id(tok);

	ok(text_dataset_add(&d, tok, texts, labels, 4, 64, &err) == MMSA_OK,
	   "add 4 labelled texts");
	ok(d.n == 4, "n is 4 (got %lld)", (long long) d.n);
	ok(d.offsets[0] == 0 && d.offsets[4] == d.n_ids, "offsets[0] = 0 and offsets[n] = n_ids");
	for (int i = 0; i < 4; i++)
	{
		int64_t		s = d.offsets[i],
					e = d.offsets[i + 1];

		if (e - s < 2)
			offsets_ok = 0;
		else
		{
			all_cls &= d.ids[s] == cls;
			all_sep &= d.ids[e - 1] == sep;
		}
	}
	ok(offsets_ok, "every text has at least [CLS] [SEP]");
	ok(all_cls && all_sep, "every text starts with [CLS] (%d) and ends with [SEP] (%d)", cls, sep);
	ok(d.labels[0] == 2 && d.labels[1] == 1 && d.labels[2] == 0 && d.labels[3] == 2,
	   "labels copied");
	ok(text_dataset_length(&d, 1) == 2, "the empty text is kept as [CLS] [SEP] (length %d)",
	   text_dataset_length(&d, 1));
	{
		/* "how i feel today # leg ##day" = 7 pieces + 2 */
		int32_t		ref[64];
		int			nref = 0;

		bert_tokenize(tok, texts[0], strlen(texts[0]), 64, ref, &nref, &err);
		ok(nref == text_dataset_length(&d, 0) &&
		   memcmp(ref, d.ids + d.offsets[0], sizeof(int32_t) * nref) == 0,
		   "text 0 holds bert_tokenize's ids (%d ids)", nref);
		ok(nref == 9, "text 0 has 9 ids ([CLS] how i feel today # leg ##day [SEP]), got %d", nref);
	}

	/* unlabelled, truncated */
	{
		const char *more[] = {texts[2], "ok"};
		int64_t		n_before = d.n,
					ids_before = d.n_ids;

		ok(text_dataset_add(&d, tok, more, NULL, 2, 8, &err) == MMSA_OK,
		   "add 2 unlabelled texts with max_len 8");
		ok(d.n == 6 && d.offsets[6] == d.n_ids, "n is 6 and offsets[n] = n_ids");
		ok(d.labels[n_before] == -1 && d.labels[n_before + 1] == -1, "labels NULL gives -1");
		ok(text_dataset_length(&d, n_before) == 8,
		   "long text truncated to max_len 8 (got %d)", text_dataset_length(&d, n_before));
		ok(d.ids[d.offsets[n_before]] == cls && d.ids[d.offsets[n_before] + 7] == sep,
		   "truncated text starts with [CLS] and ends with [SEP]");
		ok(d.offsets[n_before] == ids_before && text_dataset_length(&d, n_before + 1) == 3,
		   "appended after the first texts; \"ok\" is [CLS] ok [SEP]");
	}
	ok(text_dataset_add(&d, tok, texts, NULL, 1, 1, &err) == MMSA_ERR_INVALID,
	   "max_len 1 is refused");

	text_dataset_free(&d);
	bert_tokenizer_free(tok);
}

/* ---- text_dataset_add_ids -------------------------------------------- */

static void
test_add_ids(void)
{
	text_dataset d = {0};
	int32_t		a[] = {101, 7592, 2088, 102},
				b[] = {101, 102};
	mmsa_error	err;

	ok(text_dataset_add_ids(&d, a, 4, 2, &err) == MMSA_OK &&
	   text_dataset_add_ids(&d, b, 2, -1, &err) == MMSA_OK, "add_ids: two texts appended");
	ok(d.n == 2 && d.n_ids == 6 && d.offsets[0] == 0 && d.offsets[1] == 4 && d.offsets[2] == 6,
	   "add_ids: n 2, n_ids 6, offsets 0 4 6");
	ok(memcmp(d.ids, a, sizeof(a)) == 0 && memcmp(d.ids + 4, b, sizeof(b)) == 0 &&
	   d.labels[0] == 2 && d.labels[1] == -1, "add_ids: ids and labels copied");
	text_dataset_free(&d);
}

/* ---- the batch plan --------------------------------------------------- */

/* A synthetic data set of n texts with lengths in [2, 2 + spread). */
static void
make_synthetic(text_dataset *d, int64_t n, int spread)
{
	int64_t		total = 0;

	memset(d, 0, sizeof(*d));
	d->offsets = malloc(sizeof(int64_t) * (n + 1));
	d->labels = malloc(sizeof(int32_t) * n);
	d->offsets[0] = 0;
	for (int64_t i = 0; i < n; i++)
	{
		total += 2 + (int) (rng_next() % spread);
		d->offsets[i + 1] = total;
		d->labels[i] = (int32_t) (i % 3);
	}
	d->ids = malloc(sizeof(int32_t) * total);
	for (int64_t i = 0; i < n; i++)
	{
		int64_t		s = d->offsets[i],
					e = d->offsets[i + 1];

		d->ids[s] = 101;
		for (int64_t k = s + 1; k < e - 1; k++)
			d->ids[k] = 1000 + (int32_t) (rng_next() % 29000);
		d->ids[e - 1] = 102;
	}
	d->n = n;
	d->n_ids = total;
	d->cap_n = n + 1;
	d->cap_ids = total;
}

static void
test_plan(void)
{
	text_dataset d;
	int			sizes[] = {1, 7, 64};
	int64_t		n = 1000;
	mmsa_error	err;

	make_synthetic(&d, n, 120);
	for (int si = 0; si < 3; si++)
	{
		int			bs = sizes[si];
		text_plan	p,
					q,
					r;
		int		   *seen = calloc(n, sizeof(int));
		int			perm = 1,
					mono = 1,
					sizes_ok = 1,
					full = 0;
		int64_t		expect_batches = (n + bs - 1) / bs;
		int			minlen = 1 << 30,
					maxlen = 0;
		double		spread_sum = 0;

		ok(text_dataset_plan(&d, bs, 42, &p, &err) == MMSA_OK, "plan batch %d", bs);
		ok(p.n_batches == expect_batches, "batch %d: %lld batches (expected %lld)", bs,
		   (long long) p.n_batches, (long long) expect_batches);
		for (int64_t i = 0; i < n; i++)
		{
			if (p.order[i] < 0 || p.order[i] >= n || seen[p.order[i]]++)
				perm = 0;
		}
		ok(perm, "batch %d: every index appears exactly once in order", bs);
		ok(p.batch_start[0] == 0 && p.batch_start[p.n_batches] == n,
		   "batch %d: batch_start goes from 0 to n", bs);
		for (int64_t b = 0; b < p.n_batches; b++)
		{
			int64_t		len = p.batch_start[b + 1] - p.batch_start[b];
			int			lo = 1 << 30,
						hi = 0;

			if (len <= 0)
				mono = 0;
			if (len > bs)
				sizes_ok = 0;
			if (len == bs)
				full++;
			for (int64_t k = p.batch_start[b]; k < p.batch_start[b + 1]; k++)
			{
				int			l = text_dataset_length(&d, p.order[k]);

				lo = l < lo ? l : lo;
				hi = l > hi ? l : hi;
			}
			if (len > 0)
				spread_sum += hi - lo;
		}
		for (int64_t i = 0; i < n; i++)
		{
			int			l = text_dataset_length(&d, i);

			minlen = l < minlen ? l : minlen;
			maxlen = l > maxlen ? l : maxlen;
		}
		ok(mono, "batch %d: batch_start strictly increasing", bs);
		ok(sizes_ok && full >= p.n_batches - 1,
		   "batch %d: every batch holds at most %d texts, all but one exactly", bs, bs);
		if (bs > 1)
		{
			double		avg = spread_sum / p.n_batches;

			ok(avg < 0.25 * (maxlen - minlen),
			   "batch %d: average length spread in a batch %.2f < a quarter of overall %d",
			   bs, avg, maxlen - minlen);
		}

		ok(text_dataset_plan(&d, bs, 42, &q, &err) == MMSA_OK &&
		   q.n_batches == p.n_batches &&
		   memcmp(p.order, q.order, sizeof(int64_t) * n) == 0 &&
		   memcmp(p.batch_start, q.batch_start, sizeof(int64_t) * (p.n_batches + 1)) == 0,
		   "batch %d: the same seed gives the identical plan", bs);
		ok(text_dataset_plan(&d, bs, 43, &r, &err) == MMSA_OK &&
		   memcmp(p.order, r.order, sizeof(int64_t) * n) != 0,
		   "batch %d: another seed gives another order", bs);
		text_plan_free(&p);
		text_plan_free(&q);
		text_plan_free(&r);
		free(seen);
	}
	{
		text_plan	p;

		ok(text_dataset_plan(&d, 0, 1, &p, &err) == MMSA_ERR_INVALID, "batch size 0 refused");
	}
	text_dataset_free(&d);
}

/* ---- padded batches --------------------------------------------------- */

static void
test_batch(void)
{
	text_dataset d;
	int64_t		idx[5] = {3, 0, 17, 9, 3};
	int			B = 5;
	int32_t		ids[5 * 64],
				mask[5 * 64],
				labels[5];
	int			T,
				longest = 0,
				good = 1,
				labels_ok = 1;

	make_synthetic(&d, 20, 40);
	for (int b = 0; b < B; b++)
		if (text_dataset_length(&d, idx[b]) > longest)
			longest = text_dataset_length(&d, idx[b]);
	memset(ids, 0x7f, sizeof(ids));
	memset(mask, 0x7f, sizeof(mask));
	T = text_dataset_batch(&d, idx, B, 0, ids, mask, labels);
	ok(T == longest, "T is the longest text (%d, got %d)", longest, T);
	for (int b = 0; b < B; b++)
	{
		int			len = text_dataset_length(&d, idx[b]);
		const int32_t *src = d.ids + d.offsets[idx[b]];

		for (int t = 0; t < T; t++)
		{
			if (t < len && (ids[b * T + t] != src[t] || mask[b * T + t] != 1))
				good = 0;
			if (t >= len && (ids[b * T + t] != 0 || mask[b * T + t] != 0))
				good = 0;
		}
		if (labels[b] != d.labels[idx[b]])
			labels_ok = 0;
	}
	ok(good, "ids copied with mask 1, padded with pad id 0 and mask 0 beyond each length");
	ok(labels_ok, "labels copied");
	T = text_dataset_batch(&d, idx, B, 7, ids, mask, NULL);
	good = 1;
	for (int b = 0; b < B; b++)
		for (int t = text_dataset_length(&d, idx[b]); t < T; t++)
			good &= ids[b * T + t] == 7;
	ok(good, "another pad id (7) is used; labels NULL accepted");
	text_dataset_free(&d);
}

/* ---- masking ---------------------------------------------------------- */

#define MB 64
#define MT 128
#define FIRST_RANDOM 999
#define VOCAB 30522

static void
fill_mlm_batch(int32_t *ids, int32_t *mask)
{
	rng_state = 0x1234567ull;
	for (int b = 0; b < MB; b++)
	{
		/* rows of odd b end early: padded tail with mask 0 */
		int			len = (b % 2) ? 40 + (int) (rng_next() % 80) : MT;

		for (int t = 0; t < MT; t++)
		{
			if (t >= len)
			{
				ids[b * MT + t] = 0;
				mask[b * MT + t] = 0;
			}
			else
			{
				ids[b * MT + t] = t == 0 ? 101 : t == len - 1 ? 102 :
					1000 + (int32_t) (rng_next() % 29000);
				mask[b * MT + t] = 1;
			}
		}
	}
}

static void
test_mlm(void)
{
	static int32_t orig[MB * MT],
				ids[MB * MT],
				mask[MB * MT],
				labels[MB * MT],
				ids2[MB * MT],
				labels2[MB * MT],
				ids3[MB * MT],
				labels3[MB * MT];
	int			eligible = 0,
				chosen,
				counted = 0,
				n_mask = 0,
				n_rand = 0,
				n_same = 0,
				labels_ok = 1,
				never_ok = 1,
				range_ok = 1;
	double		share;

	fill_mlm_batch(orig, mask);
	memcpy(ids, orig, sizeof(ids));
	chosen = mlm_mask(ids, mask, labels, MB, MT, 0.15f, 103, 101, 102,
					  FIRST_RANDOM, VOCAB, 2024);
	for (int i = 0; i < MB * MT; i++)
	{
		int			special = !mask[i] || orig[i] == 101 || orig[i] == 102;

		if (!special)
			eligible++;
		if (labels[i] == -100)
		{
			if (ids[i] != orig[i])
				labels_ok = 0;
			continue;
		}
		counted++;
		if (labels[i] != orig[i])
			labels_ok = 0;
		if (special)
			never_ok = 0;
		if (ids[i] == 103)
			n_mask++;
		else if (ids[i] == orig[i])
			n_same++;
		else
		{
			n_rand++;
			if (ids[i] < FIRST_RANDOM || ids[i] >= VOCAB)
				range_ok = 0;
		}
	}
	share = (double) chosen / eligible;
	diag("eligible %d, chosen %d: mask %d, random %d, unchanged %d",
		 eligible, chosen, n_mask, n_rand, n_same);
	ok(chosen == counted, "returned count %d = positions with a label %d", chosen, counted);
	ok(share > 0.14 && share < 0.16, "chosen share %.4f within 0.15 +- 0.01", share);
	ok(fabs((double) n_mask / chosen - 0.8) < 0.03, "[MASK] share %.3f ~ 0.8",
	   (double) n_mask / chosen);
	/*
	 * A random draw may hit the original id (chance ~1/29500), so random
	 * and unchanged can swap a position at most; the tolerance covers it.
	 */
	ok(fabs((double) n_rand / chosen - 0.1) < 0.03, "random share %.3f ~ 0.1",
	   (double) n_rand / chosen);
	ok(fabs((double) n_same / chosen - 0.1) < 0.03, "unchanged share %.3f ~ 0.1",
	   (double) n_same / chosen);
	ok(labels_ok, "labels: original id where chosen, -100 (and id untouched) elsewhere");
	ok(never_ok, "[CLS], [SEP] and padded positions are never chosen");
	ok(range_ok && n_rand > 0, "random replacements in [%d, %d)", FIRST_RANDOM, VOCAB);

	memcpy(ids2, orig, sizeof(ids2));
	mlm_mask(ids2, mask, labels2, MB, MT, 0.15f, 103, 101, 102, FIRST_RANDOM, VOCAB, 2024);
	ok(memcmp(ids, ids2, sizeof(ids)) == 0 && memcmp(labels, labels2, sizeof(labels)) == 0,
	   "the same seed gives the same masking");
	memcpy(ids3, orig, sizeof(ids3));
	mlm_mask(ids3, mask, labels3, MB, MT, 0.15f, 103, 101, 102, FIRST_RANDOM, VOCAB, 2025);
	ok(memcmp(labels, labels3, sizeof(labels)) != 0 && memcmp(ids, ids3, sizeof(ids)) != 0,
	   "another seed gives another masking");

	/* p = 0: nothing chosen */
	memcpy(ids3, orig, sizeof(ids3));
	ok(mlm_mask(ids3, mask, labels3, MB, MT, 0.0f, 103, 101, 102, FIRST_RANDOM, VOCAB, 1) == 0 &&
	   memcmp(ids3, orig, sizeof(orig)) == 0, "p 0 chooses nothing and changes nothing");
}

/* ---- seeded draws ----------------------------------------------------- */

static void
test_seeded(void)
{
	int64_t		a[257],
				b[257];
	int			seen[257] = {0};
	int			perm = 1,
				moved = 0,
				in_range = 1,
				hit[10] = {0},
				all_hit = 1;

	for (int i = 0; i < 257; i++)
		a[i] = b[i] = i;
	seeded_shuffle(a, 257, 99);
	for (int i = 0; i < 257; i++)
	{
		if (a[i] < 0 || a[i] >= 257 || seen[a[i]]++)
			perm = 0;
		moved += a[i] != i;
	}
	ok(perm, "seeded_shuffle gives a permutation");
	ok(moved > 200, "seeded_shuffle moves most elements (%d of 257)", moved);
	seeded_shuffle(b, 257, 99);
	ok(memcmp(a, b, sizeof(a)) == 0, "seeded_shuffle: the same seed, the same order");
	for (int i = 0; i < 257; i++)
		b[i] = i;
	seeded_shuffle(b, 257, 100);
	ok(memcmp(a, b, sizeof(a)) != 0, "seeded_shuffle: another seed, another order");

	for (uint64_t i = 0; i < 100000; i++)
	{
		int64_t		n = 1 + (int64_t) (i % 10);
		int64_t		v = seeded_below(7, i, n);

		if (v < 0 || v >= n)
			in_range = 0;
		if (n == 10 && v >= 0 && v < 10)
			hit[v]++;
	}
	for (int k = 0; k < 10; k++)
		all_hit &= hit[k] > 800 && hit[k] < 1200;
	ok(in_range, "seeded_below(seed, i, n) in [0, n) for n 1..10");
	ok(all_hit, "seeded_below(., ., 10) roughly uniform over 10000 draws");
	{
		int			u_ok = 1;

		for (uint64_t i = 0; i < 10000; i++)
		{
			double		u = seeded_uniform(3, i);

			u_ok &= u >= 0.0 && u < 1.0;
		}
		ok(u_ok, "seeded_uniform in [0, 1)");
	}
}

int
main(void)
{
	test_add();
	test_add_ids();
	test_plan();
	test_batch();
	test_mlm();
	test_seeded();
	return tap_done();
}
