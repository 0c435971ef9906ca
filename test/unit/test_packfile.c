/*
 * test_packfile.c
 *	  The shared prepacked weights (packfile.h): a BERT and a ResNet-50
 *	  loaded through their sidecar give the same results bit for bit as the
 *	  private build, point every weight into the read-only mapping, and a
 *	  missing, stale, truncated or hostile sidecar is ignored (private
 *	  build, same results), never a crash.  Heads (fusion_load) read their
 *	  parameters in place in the file's mapping.
 */
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bert.h"
#include "fusion.h"
#include "packfile.h"
#include "resnet.h"
#include "safetensors.h"
#include "tap.h"

#define V 50
#define C 32
#define L 2
#define NH 4
#define IC 64
#define P 300

static uint64_t rng = 88172645463325252ULL;

static float
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (float) ((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

/* A tiny BERT stored in F16 (so that loading converts). */
static int
write_tiny_bert(const char *dir)
{
	char		path[512];
	FILE	   *f;
	st_write_tensor t[64];
	float	   *arrays[64];
	char		names[64][96];
	int			n = 0;
	mmsa_error	err;
	mmsa_status status;

#define ADD(name_, d0, d1, base) \
	do { \
		long n_ = (long) (d0) * ((d1) ? (d1) : 1); \
		snprintf(names[n], sizeof(names[n]), "%s", (name_)); \
		arrays[n] = malloc(n_ * sizeof(float)); \
		for (long i_ = 0; i_ < n_; i_++) \
			arrays[n][i_] = (base) + 0.3f * rnd(); \
		t[n] = (st_write_tensor) {names[n], ST_F16, (d1) ? 2 : 1, {(d0), (d1)}, arrays[n]}; \
		n++; \
	} while (0)

	snprintf(path, sizeof(path), "%s/config.json", dir);
	if ((f = fopen(path, "w")) == NULL)
		return 0;
	fprintf(f, "{\"vocab_size\": %d, \"hidden_size\": %d, \"num_hidden_layers\": %d,"
			" \"num_attention_heads\": %d, \"intermediate_size\": %d,"
			" \"max_position_embeddings\": %d, \"type_vocab_size\": 2,"
			" \"layer_norm_eps\": 1e-12, \"hidden_act\": \"gelu\"}\n",
			V, C, L, NH, IC, P);
	fclose(f);
	ADD("embeddings.word_embeddings.weight", V, C, 0.0f);
	ADD("embeddings.position_embeddings.weight", P, C, 0.0f);
	ADD("embeddings.token_type_embeddings.weight", 2, C, 0.0f);
	ADD("embeddings.LayerNorm.weight", C, 0, 1.0f);
	ADD("embeddings.LayerNorm.bias", C, 0, 0.0f);
	for (int l = 0; l < L; l++)
	{
		static const char *const what[16] = {
			"attention.self.query.weight", "attention.self.query.bias",
			"attention.self.key.weight", "attention.self.key.bias",
			"attention.self.value.weight", "attention.self.value.bias",
			"attention.output.dense.weight", "attention.output.dense.bias",
			"attention.output.LayerNorm.weight", "attention.output.LayerNorm.bias",
			"intermediate.dense.weight", "intermediate.dense.bias",
			"output.dense.weight", "output.dense.bias",
		"output.LayerNorm.weight", "output.LayerNorm.bias"};
		static const int d0[16] = {C, C, C, C, C, C, C, C, C, C, IC, IC, C, C, C, C};
		static const int d1[16] = {C, 0, C, 0, C, 0, C, 0, 0, 0, C, 0, IC, 0, 0, 0};

		for (int j = 0; j < 16; j++)
		{
			char		nm[96];

			snprintf(nm, sizeof(nm), "encoder.layer.%d.%s", l, what[j]);
			ADD(nm, d0[j], d1[j], strstr(what[j], "LayerNorm.weight") ? 1.0f : 0.0f);
		}
	}
	ADD("pooler.dense.weight", C, C, 0.0f);
	ADD("pooler.dense.bias", C, 0, 0.0f);
#undef ADD
	snprintf(path, sizeof(path), "%s/model.safetensors", dir);
	status = safetensors_write(path, t, n, NULL, NULL, 0, &err);
	for (int i = 0; i < n; i++)
		free(arrays[i]);
	return status == MMSA_OK;
}

/* hidden (B,T,C) and pooled (B,C) of a fixed batch; B*T > 256 takes the OpenBLAS path. */
static int
bert_run(bert_model *m, int B, int T, float *hidden, float *pooled)
{
	int32_t    *ids = malloc(sizeof(int32_t) * B * T);
	mmsa_error	err;
	int			rc;

	for (int i = 0; i < B * T; i++)
		ids[i] = (i * 7 + 3) % V;
	rc = bert_forward(m, ids, NULL, B, T, hidden, pooled, &err) == MMSA_OK;
	free(ids);
	return rc;
}

/* Loads dir with flags and compares its outputs with the reference ones. */
static void
bert_check(const char *dir, int flags, int expect_mapped, const float *ref_s,
		   const float *ref_l, const char *what)
{
	bert_model *m = NULL;
	mmsa_error	err;
	float	   *hs = calloc(3 * 20 * C + 3 * C, sizeof(float));
	float	   *hl = calloc(2 * 150 * C + 2 * C, sizeof(float));

	if (!ok(bert_model_load_flags(dir, flags, &m, &err) == MMSA_OK, "%s: loads", what))
	{
		diag("%s", err.message);
		free(hs);
		free(hl);
		return;
	}
	ok((m->pack.map != NULL) == expect_mapped, "%s: %s", what,
	   expect_mapped ? "weights mapped from the sidecar" : "private build");
	if (expect_mapped)
	{
		const char *lo = (const char *) m->pack.map,
				   *hi = lo + m->pack.map_size;
		int			inside = 1;

#define IN(p) ((const char *) (p) >= lo && (const char *) (p) < hi)
		inside &= IN(m->word_emb) && IN(m->pos_emb) && IN(m->type_emb) && IN(m->emb_ln_w) &&
			IN(m->pool_w) && IN(m->pool_b) && IN(m->packed_block);
		for (int l = 0; l < L; l++)
			inside &= IN(m->layers[l].q_w) && IN(m->layers[l].ln2_b) && IN(m->layers[l].inter_w) &&
				IN(m->packed[l].qkv) && IN(m->packed[l].out);
#undef IN
		ok(inside && m->file.map == NULL, "%s: every weight points into the mapping, "
		   "model.safetensors not mapped", what);
	}
	ok(bert_run(m, 3, 20, hs, hs + 3 * 20 * C) &&
	   memcmp(hs, ref_s, sizeof(float) * (3 * 20 * C + 3 * C)) == 0,
	   "%s: packed path (60 tokens) bit-identical", what);
	ok(bert_run(m, 2, 150, hl, hl + 2 * 150 * C) &&
	   memcmp(hl, ref_l, sizeof(float) * (2 * 150 * C + 2 * C)) == 0,
	   "%s: OpenBLAS path (300 tokens) bit-identical", what);
	bert_model_free(m);
	free(hs);
	free(hl);
}

static int
copy_file(const char *from, const char *to, long truncate_at)
{
	FILE	   *in = fopen(from, "rb"),
			   *out = fopen(to, "wb");
	char		buf[65536];
	size_t		n;
	long		total = 0;

	if (!in || !out)
	{
		if (in)
			fclose(in);
		if (out)
			fclose(out);
		return 0;
	}
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
	{
		if (truncate_at >= 0 && total + (long) n > truncate_at)
			n = truncate_at - total;
		fwrite(buf, 1, n, out);
		total += n;
		if (truncate_at >= 0 && total >= truncate_at)
			break;
	}
	fclose(in);
	fclose(out);
	return 1;
}

/* Overwrites 8 bytes at off in path. */
static void
poke(const char *path, long off, uint64_t value)
{
	int			fd = open(path, O_WRONLY);

	if (fd >= 0)
	{
		if (pwrite(fd, &value, 8, off) != 8)
			diag("pwrite failed");
		close(fd);
	}
}

static void
test_bert(const char *tmp)
{
	char		dir[512],
				packed[512],
				saved[512];
	bert_model *m = NULL;
	mmsa_error	err;
	float	   *ref_s = calloc(3 * 20 * C + 3 * C, sizeof(float));
	float	   *ref_l = calloc(2 * 150 * C + 2 * C, sizeof(float));

	snprintf(dir, sizeof(dir), "%s/mmsa-test-packfile-%d", tmp, (int) getpid());
	mkdir(dir, 0700);
	snprintf(packed, sizeof(packed), "%s/model.packed", dir);
	snprintf(saved, sizeof(saved), "%s/saved.packed", dir);
	if (!ok(write_tiny_bert(dir), "tiny F16 BERT written"))
		return;

	/* reference: the private build */
	if (!ok(bert_model_load(dir, &m, &err) == MMSA_OK && m->pack.map == NULL,
			"no sidecar: private build"))
		return;
	ok(bert_run(m, 3, 20, ref_s, ref_s + 3 * 20 * C) &&
	   bert_run(m, 2, 150, ref_l, ref_l + 2 * 150 * C), "reference outputs");
	ok(bert_model_write_packed(m, packed, &err) == MMSA_OK, "sidecar written");
	bert_model_free(m);
	copy_file(packed, saved, -1);

	bert_check(dir, 0, 1, ref_s, ref_l, "BERT sidecar");
	bert_check(dir, BERT_LOAD_NO_SIDECAR, 0, ref_s, ref_l, "BERT_LOAD_NO_SIDECAR");

	/* hostile or stale sidecars: ignored */
	copy_file(saved, packed, 1000);
	bert_check(dir, 0, 0, ref_s, ref_l, "truncated sidecar");
	copy_file(saved, packed, 100);
	bert_check(dir, 0, 0, ref_s, ref_l, "sidecar shorter than its header");
	copy_file(saved, packed, -1);
	poke(packed, offsetof(mmsa_pack_header, data_floats), (uint64_t) 1 << 38);
	bert_check(dir, 0, 0, ref_s, ref_l, "sidecar claiming more data than it has");
	copy_file(saved, packed, -1);
	poke(packed, offsetof(mmsa_pack_header, config), 5000);
	bert_check(dir, 0, 0, ref_s, ref_l, "sidecar of another configuration");
	copy_file(saved, packed, -1);
	poke(packed, offsetof(mmsa_pack_header, config) + 7 * 8, 0);
	bert_check(dir, 0, 0, ref_s, ref_l, "sidecar whose pooler flag disagrees with its size");
	copy_file(saved, packed, -1);
	poke(packed, offsetof(mmsa_pack_header, src_hash), 12345);
	bert_check(dir, 0, 0, ref_s, ref_l, "stale sidecar (other source hash)");
	copy_file(saved, packed, -1);
	poke(packed, 0, 0x4141414141414141ULL);
	bert_check(dir, 0, 0, ref_s, ref_l, "sidecar with a bad magic");
	{
		mmsa_pack_map pm;
		mmsa_pack_identity id = {0, 0};

		ok(mmsa_pack_open("/nonexistent/model.packed", MMSA_PACK_KIND_BERT, &id, &pm, &err) ==
		   MMSA_ERR_IO, "missing sidecar: MMSA_ERR_IO");
		ok(mmsa_pack_open(saved, MMSA_PACK_KIND_RESNET, &id, &pm, &err) == MMSA_ERR_FORMAT &&
		   pm.map == NULL, "sidecar of another kind: MMSA_ERR_FORMAT (%s)", err.message);
	}

	/* a changed source (same size, other data) makes the sidecar stale */
	copy_file(saved, packed, -1);
	{
		char		src[512];
		struct stat st;

		snprintf(src, sizeof(src), "%s/model.safetensors", dir);
		stat(src, &st);
		poke(src, st.st_size - 8, 0x3c003c003c003c00ULL);	/* F16 ones in the pooler bias */
		ok(bert_model_load(dir, &m, &err) == MMSA_OK && m->pack.map == NULL,
		   "changed model.safetensors: sidecar stale, private build");
		bert_model_free(m);
		unlink(src);
	}
	unlink(packed);
	unlink(saved);
	{
		char		p[512];

		snprintf(p, sizeof(p), "%s/config.json", dir);
		unlink(p);
	}
	rmdir(dir);
	free(ref_s);
	free(ref_l);
}

static void
test_resnet(const char *tmp)
{
	const char *src = getenv("MMSA_IMAGE_MODEL");
	char		dir[512],
				path[512],
				from[1024];
	resnet_model *a = NULL,
			   *b = NULL;
	mmsa_error	err;
	float	   *img,
			   *la,
			   *lb,
			   *pa,
			   *pb;
	struct stat st;
	static const char *const files[3] = {"config.json", "model.safetensors", "labels.txt"};

	if (src == NULL || *src == '\0')
		src = "weights/image";
	snprintf(from, sizeof(from), "%s/model.safetensors", src);
	if (stat(from, &st) != 0)
	{
		ok(1, "# SKIP no ResNet-50 at %s (MMSA_IMAGE_MODEL)", src);
		return;
	}
	snprintf(dir, sizeof(dir), "%s/mmsa-test-packfile-rn-%d", tmp, (int) getpid());
	mkdir(dir, 0700);
	for (int i = 0; i < 3; i++)
	{
		char		target[1024];

		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		if (realpath(src, target) == NULL)
			snprintf(target, sizeof(target), "%s", src);
		strncat(target, "/", sizeof(target) - strlen(target) - 1);
		strncat(target, files[i], sizeof(target) - strlen(target) - 1);
		if (symlink(target, path) != 0)
			diag("symlink %s failed", path);
	}
	snprintf(path, sizeof(path), "%s/model.packed", dir);
	img = malloc(sizeof(float) * 3 * 224 * 224);
	la = malloc(sizeof(float) * 1000);
	lb = malloc(sizeof(float) * 1000);
	pa = malloc(sizeof(float) * 49 * 2048);
	pb = malloc(sizeof(float) * 49 * 2048);
	for (int i = 0; i < 3 * 224 * 224; i++)
		img[i] = rnd() * 2.0f;
	if (ok(resnet_model_load(dir, &a, &err) == MMSA_OK && a->pack.map == NULL && a->arena != NULL,
		   "ResNet-50 without sidecar: private build") &&
		ok(resnet_model_write_packed(a, path, &err) == MMSA_OK, "ResNet-50 sidecar written") &&
		ok(resnet_model_load(dir, &b, &err) == MMSA_OK && b->pack.map != NULL && b->arena == NULL,
		   "ResNet-50 with sidecar: mapped, no private arena"))
	{
		const char *lo = b->pack.map,
				   *hi = lo + b->pack.map_size;

		ok((const char *) b->stem.weight >= lo && (const char *) (b->fc_bias + 1000) <= hi &&
		   (const char *) b->blocks[15].conv3.weight >= lo &&
		   (const char *) b->blocks[15].conv3.weight < hi, "ResNet-50 weights point into the mapping");
		ok(resnet_forward(a, img, 1, pa, NULL, la, &err) == MMSA_OK &&
		   resnet_forward(b, img, 1, pb, NULL, lb, &err) == MMSA_OK &&
		   memcmp(la, lb, sizeof(float) * 1000) == 0 &&
		   memcmp(pa, pb, sizeof(float) * 49 * 2048) == 0,
		   "ResNet-50 through the sidecar: feature map and logits bit-identical");

		/*
		 * The image in the model's own input slot, and the image inside a
		 * batch of three run at once (other pass sizes, other layout): the
		 * very same floats.
		 */
		{
			float	   *slot = resnet_input_slot(b, &err),
					   *img3 = malloc(sizeof(float) * 3 * 3 * 224 * 224),
					   *p3 = malloc(sizeof(float) * 3 * 49 * 2048),
					   *l3 = malloc(sizeof(float) * 3 * 1000);
			size_t		px = (size_t) 3 * 224 * 224;

			if (slot != NULL)
				memcpy(slot, img, sizeof(float) * px);
			ok(slot != NULL && resnet_forward(b, slot, 1, pb, NULL, lb, &err) == MMSA_OK &&
			   memcmp(la, lb, sizeof(float) * 1000) == 0 &&
			   memcmp(pa, pb, sizeof(float) * 49 * 2048) == 0,
			   "ResNet-50 from its input slot: bit-identical");
			for (size_t i = 0; i < px; i++)
			{
				img3[i] = rnd();
				img3[px + i] = img[i];
				img3[2 * px + i] = -img[i];
			}
			b->sub_batch = 3;
			ok(resnet_forward(b, img3, 3, p3, NULL, l3, &err) == MMSA_OK &&
			   memcmp(la, l3 + 1000, sizeof(float) * 1000) == 0 &&
			   memcmp(pa, p3 + 49 * 2048, sizeof(float) * 49 * 2048) == 0,
			   "ResNet-50 image in a batch of 3: bit-identical to alone");
			memcpy(slot, img, sizeof(float) * px);
			ok(resnet_forward(b, slot, 1, pb, NULL, lb, &err) == MMSA_OK &&
			   memcmp(la, lb, sizeof(float) * 1000) == 0,
			   "ResNet-50 input slot still valid after a larger batch: bit-identical");
			free(img3);
			free(p3);
			free(l3);
		}
		resnet_model_free(b);
		b = NULL;
		/* truncated: ignored */
		truncate(path, 4096);
		ok(resnet_model_load(dir, &b, &err) == MMSA_OK && b->pack.map == NULL,
		   "truncated ResNet-50 sidecar ignored");
	}
	resnet_model_free(a);
	resnet_model_free(b);
	unlink(path);
	for (int i = 0; i < 3; i++)
	{
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	rmdir(dir);
	free(img);
	free(la);
	free(lb);
	free(pa);
	free(pb);
}

static void
test_fusion(const char *tmp)
{
	fusion_config cfg = fusion_default_config(FUSION_CMAC);
	fusion_model *m = NULL,
			   *m2 = NULL;
	mmsa_error	err;
	char		path[512];
	int			B = 2,
				T = 5;
	float	   *H_T,
			   *F_T,
			   *H_I,
			   *F_I;
	float		l1[6],
				l2[6];

	cfg.hidden = 16;
	cfg.heads = 2;
	cfg.image_width = 24;
	cfg.image_tokens = 3;
	cfg.ffn = 32;
	H_T = malloc(sizeof(float) * B * T * 16);
	F_T = malloc(sizeof(float) * B * 16);
	H_I = malloc(sizeof(float) * B * 3 * 24);
	F_I = malloc(sizeof(float) * B * 24);
	for (int i = 0; i < B * T * 16; i++)
		H_T[i] = rnd();
	for (int i = 0; i < B * 16; i++)
		F_T[i] = rnd();
	for (int i = 0; i < B * 3 * 24; i++)
		H_I[i] = rnd();
	for (int i = 0; i < B * 24; i++)
		F_I[i] = rnd();
	snprintf(path, sizeof(path), "%s/mmsa-test-packfile-%d.safetensors", tmp, (int) getpid());
	if (ok(fusion_create(&cfg, 7, &m, &err) == MMSA_OK && fusion_save(m, path, &err) == MMSA_OK &&
		   fusion_load(path, &m2, &err) == MMSA_OK, "head saved and loaded"))
	{
		ok(fusion_forward(m, H_T, NULL, F_T, H_I, F_I, B, T, l1, 0, 0, &err) == MMSA_OK &&
		   fusion_forward(m2, H_T, NULL, F_T, H_I, F_I, B, T, l2, 0, 0, &err) == MMSA_OK &&
		   memcmp(l1, l2, sizeof(l1)) == 0, "head read in place: same logits");
		ok(fusion_params(m2) != NULL && (fusion_params(m2)[0] += 1.0f) != 0.0f,
		   "fusion_params of a loaded head: a writable private copy");
		ok(fusion_backward(m2, l2, NULL, NULL, &err) != MMSA_OK || fusion_grads(m2) != NULL,
		   "gradients allocated on demand");
	}
	fusion_free(m);
	fusion_free(m2);
	unlink(path);
	free(H_T);
	free(F_T);
	free(H_I);
	free(F_I);
}

int
main(void)
{
	const char *tmp = getenv("MMSA_TMP");

	if (tmp == NULL || *tmp == '\0')
		tmp = "/tmp";
	test_bert(tmp);
	test_fusion(tmp);
	test_resnet(tmp);
	return tap_done();
}
