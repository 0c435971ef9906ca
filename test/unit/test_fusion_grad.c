/*
 * test_fusion_grad.c
 *	  Finite-difference gradient checks of the seven fusion heads
 *	  (src/core/fusion.c), save/load round trips, input checks, and the
 *	  driver for test/t/fusion_reference.t.
 *
 * Every kind is built tiny (C = 16, 2 heads, FFN 32, 49 image tokens of
 * width 8, B = 2, T = 5 with the first row padded after 3 tokens), its
 * parameters redrawn at O(1) scale (random LayerNorm scales and biases
 * too), and run in training mode with dropout 0.1 on every site (masks
 * fixed by the seed, so the loss is a smooth function).  The loss is
 * L = sum(logits * R) for a fixed random R (dlogits = R), summed in
 * double.  Central differences with eps = 1e-3 on EVERY parameter and
 * every element of H_T and F_T must match the analytic gradients:
 * |numeric - analytic| <= 1e-2 * max(|numeric|, |analytic|) + 1e-3.
 * Also: padded text positions get exactly zero dH_T; training with
 * dropout 0 gives the inference logits; save -> load gives the same
 * parameters bit for bit and the same logits; bad inputs give errors.
 *
 *	 test_fusion_grad                 the tests (TAP)
 *	 test_fusion_grad --compare DIR   for each kind K with DIR/model_K.safetensors:
 *	     load it, run DIR/inputs.safetensors through forward (dropout off)
 *	     and backward with dlogits, write DIR/out_K.safetensors (logits,
 *	     dH_T, dF_T, grad.<parameter name>)
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fusion.h"
#include "safetensors.h"
#include "tap.h"

#define FD_EPS		1e-3f
#define FD_RTOL		1e-2
#define FD_ATOL		1e-3

#define TB 2
#define TT 5
#define TC 16
#define TNH 2
#define TDI 8
#define TNI 49
#define TFF 32

static uint64_t rng_state = 0x12345678abcdefULL;

static double
rnd_uniform(void)				/* [-1, 1) */
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (double) (rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

typedef struct inputs
{
	float		H_T[TB * TT * TC];
	int32_t		mask[TB * TT];
	float		F_T[TB * TC];
	float		H_I[TB * TNI * TDI];
	float		F_I[TB * TDI];
	float		R[TB * FUSION_CLASSES];
} inputs;

static void
make_inputs(inputs *in)
{
	for (int i = 0; i < TB * TT * TC; i++)
		in->H_T[i] = (float) rnd_uniform();
	for (int i = 0; i < TB * TC; i++)
		in->F_T[i] = (float) rnd_uniform();
	for (int i = 0; i < TB * TNI * TDI; i++)
		in->H_I[i] = (float) (rnd_uniform() + 1.0);	/* post-ReLU-like */
	for (int i = 0; i < TB * TDI; i++)
		in->F_I[i] = (float) (rnd_uniform() + 1.0);
	for (int i = 0; i < TB * FUSION_CLASSES; i++)
		in->R[i] = (float) rnd_uniform();
	for (int b = 0; b < TB; b++)
		for (int t = 0; t < TT; t++)
			in->mask[b * TT + t] = b == 0 ? t < 3 : 1;
}

/* O(1) parameters: Xavier-like weights, LN scales near 1, nonzero biases. */
static void
redraw_params(fusion_model *m)
{
	float	   *p = fusion_params(m);

	for (int i = 0; i < fusion_num_tensors(m); i++)
	{
		const fusion_tensor *t = fusion_tensor_at(m, i);
		int			is_ln = strstr(t->name, "norm") || strstr(t->name, "LayerNorm");
		int			is_bias = strstr(t->name, ".bias") != NULL;

		for (size_t j = 0; j < t->numel; j++)
		{
			double		u = rnd_uniform();

			p[t->offset + j] = (float) (is_bias ? 0.2 * u
										: is_ln ? 1.0 + 0.3 * u
										: 1.5 * u / sqrt((double) t->shape[1]));
		}
	}
}

static fusion_config
tiny_config(fusion_kind kind)
{
	fusion_config c = fusion_default_config(kind);

	c.hidden = TC;
	c.heads = TNH;
	c.image_width = TDI;
	c.image_tokens = TNI;
	c.ffn = TFF;
	return c;
}

typedef struct fd_ctx
{
	fusion_model *m;
	inputs	   *in;
	int			training;
} fd_ctx;

static double
loss_of(fd_ctx *c)
{
	float		logits[TB * FUSION_CLASSES];
	mmsa_error	err = {0};
	double		L = 0.0;

	if (fusion_forward(c->m, c->in->H_T, c->in->mask, c->in->F_T, c->in->H_I,
					   c->in->F_I, TB, TT, logits, c->training, 77, &err) != MMSA_OK)
		return NAN;
	for (int i = 0; i < TB * FUSION_CLASSES; i++)
		L += (double) logits[i] * c->in->R[i];
	return L;
}

/* FD check of every coordinate of x against grad; returns number of failures. */
static int
fd_check(fd_ctx *c, float *x, const float *grad, long n, const char *kind,
		 const char *name, double *max_abs, double *max_rel)
{
	int			bad = 0;

	for (long i = 0; i < n; i++)
	{
		float		saved = x[i];
		double		plus,
					minus,
					fd,
					an = grad[i],
					diff,
					scale;

		x[i] = saved + FD_EPS;
		plus = loss_of(c);
		x[i] = saved - FD_EPS;
		minus = loss_of(c);
		x[i] = saved;
		fd = (plus - minus) / ((double) (saved + FD_EPS) - (double) (saved - FD_EPS));
		diff = fabs(fd - an);
		scale = fmax(fabs(fd), fabs(an));
		if (diff > *max_abs || diff != diff)
			*max_abs = diff != diff ? INFINITY : diff;
		if (scale > 1e-3 && diff / scale > *max_rel)
			*max_rel = diff / scale;
		if (!(diff <= FD_RTOL * scale + FD_ATOL))
		{
			if (bad < 3)
				diag("%s %s[%ld]: numeric %.6g analytic %.6g", kind, name, i, fd, an);
			bad++;
		}
	}
	return bad;
}

static void
check_kind(fusion_kind kind)
{
	fusion_config cfg = tiny_config(kind);
	const char *kn = fusion_kind_name(kind);
	fusion_model *m = NULL;
	mmsa_error	err = {0};
	inputs		in;
	fd_ctx		c;
	float		logits[TB * FUSION_CLASSES],
				logits2[TB * FUSION_CLASSES];
	float	   *grads,
			   *dH_T = calloc(TB * TT * TC, sizeof(float)),
			   *dF_T = calloc(TB * TC, sizeof(float));
	double		max_abs = 0.0,
				max_rel = 0.0;
	int			bad = 0,
				uses = fusion_inputs(kind);
	size_t		np;

	make_inputs(&in);
	if (!ok(fusion_create(&cfg, 42, &m, &err) == MMSA_OK, "%s: create (%s)", kn,
			err.status ? err.message : "ok"))
		return;
	redraw_params(m);
	np = fusion_num_params(m);
	c.m = m;
	c.in = &in;
	c.training = 1;

	/* analytic gradients */
	fusion_zero_grad(m);
	ok(fusion_forward(m, in.H_T, in.mask, in.F_T, in.H_I, in.F_I, TB, TT,
					  logits, 1, 77, &err) == MMSA_OK &&
	   fusion_backward(m, in.R, dH_T, dF_T, &err) == MMSA_OK,
	   "%s: forward and backward run", kn);
	grads = malloc(np * sizeof(float));
	memcpy(grads, fusion_grads(m), np * sizeof(float));

	/* every parameter, by tensor */
	for (int i = 0; i < fusion_num_tensors(m); i++)
	{
		const fusion_tensor *t = fusion_tensor_at(m, i);

		bad += fd_check(&c, fusion_params(m) + t->offset, grads + t->offset,
						(long) t->numel, kn, t->name, &max_abs, &max_rel);
	}
	ok(bad == 0, "%s: all %zu parameters in %d tensors: max abs diff %.2e, "
	   "max rel err %.2e (tol %.0e rel + %.0e abs)", kn, np,
	   fusion_num_tensors(m), max_abs, max_rel, FD_RTOL, FD_ATOL);

	/* dH_T and dF_T */
	max_abs = max_rel = 0.0;
	bad = fd_check(&c, in.H_T, dH_T, TB * TT * TC, kn, "H_T", &max_abs, &max_rel);
	bad += fd_check(&c, in.F_T, dF_T, TB * TC, kn, "F_T", &max_abs, &max_rel);
	ok(bad == 0, "%s: dH_T (%d) and dF_T (%d): max abs diff %.2e, max rel err %.2e",
	   kn, TB * TT * TC, TB * TC, max_abs, max_rel);
	{
		double		pad = 0.0,
					all = 0.0;

		for (int t = 3; t < TT; t++)
			for (int d = 0; d < TC; d++)
				pad += fabs(dH_T[t * TC + d]);
		for (int i = 0; i < TB * TT * TC; i++)
			all += fabs(dH_T[i]);
		ok(pad == 0.0 && ((uses & FUSION_USES_HT) ? all > 0.0 : all == 0.0),
		   "%s: dH_T zero at padded tokens (sum |.| %g), %s elsewhere (sum |.| %g)",
		   kn, pad, (uses & FUSION_USES_HT) ? "nonzero" : "zero", all);
	}

	/* dropout off: training with p = 0 is inference; dropout on differs */
	{
		fusion_model *m0;
		fusion_config c0 = cfg;

		c0.dropout = c0.attn_dropout = 0.0f;
		fusion_create(&c0, 42, &m0, &err);
		memcpy(fusion_params(m0), fusion_params(m), np * sizeof(float));
		fusion_forward(m0, in.H_T, in.mask, in.F_T, in.H_I, in.F_I, TB, TT,
					   logits2, 1, 77, &err);
		fusion_forward(m, in.H_T, in.mask, in.F_T, in.H_I, in.F_I, TB, TT,
					   logits, 0, 0, &err);
		tap_close_within(logits, logits2, TB * FUSION_CLASSES, 0.0,
						 "dropout 0 in training mode = inference");
		fusion_free(m0);
	}

	/* save -> load */
	{
		char		path[512];
		const char *tmp = getenv("MMSA_TMP");
		fusion_model *m2 = NULL;

		snprintf(path, sizeof(path), "%s/test_fusion_%s_%d.safetensors",
				 tmp && *tmp ? tmp : "/tmp", kn, (int) getpid());
		if (ok(fusion_save(m, path, &err) == MMSA_OK &&
			   fusion_load(path, &m2, &err) == MMSA_OK, "%s: save and load %s",
			   kn, err.status ? err.message : "ok"))
		{
			ok(fusion_get_config(m2)->kind == kind &&
			   fusion_num_params(m2) == np &&
			   fusion_num_tensors(m2) == fusion_num_tensors(m) &&
			   memcmp(fusion_params(m2), fusion_params(m), np * sizeof(float)) == 0,
			   "%s: loaded model has the same kind and %zu parameters bit for bit", kn, np);
			fusion_forward(m2, in.H_T, in.mask, in.F_T, in.H_I, in.F_I, TB, TT,
						   logits2, 0, 0, &err);
			tap_close_within(logits, logits2, TB * FUSION_CLASSES, 0.0,
							 "loaded model gives the same logits");
			fusion_free(m2);
		}
		unlink(path);
	}

	/* input checks */
	if (uses & FUSION_USES_HT)
	{
		int32_t		saved = in.mask[1];

		in.mask[1] = 2;
		ok(fusion_forward(m, in.H_T, in.mask, in.F_T, in.H_I, in.F_I, TB, TT,
						  logits, 0, 0, &err) == MMSA_ERR_INVALID,
		   "%s: mask value 2 rejected (%s)", kn, err.message);
		in.mask[1] = saved;
		ok(fusion_forward(m, NULL, in.mask, in.F_T, in.H_I, in.F_I, TB, TT,
						  logits, 0, 0, &err) == MMSA_ERR_INVALID,
		   "%s: missing H_T rejected (%s)", kn, err.message);
		ok(fusion_backward(m, in.R, NULL, NULL, &err) == MMSA_ERR_INVALID,
		   "%s: backward after a failed forward rejected", kn);
	}
	free(grads);
	free(dH_T);
	free(dF_T);
	fusion_free(m);
}

static void
check_misc(void)
{
	mmsa_error	err = {0};
	fusion_model *m = NULL;
	fusion_config c = tiny_config(FUSION_CMAC);
	int32_t		mask[TB * TT] = {0};
	static inputs in;
	float		logits[TB * FUSION_CLASSES];

	for (int k = 0; k < FUSION_N_KINDS; k++)
		ok(fusion_kind_from_name(fusion_kind_name((fusion_kind) k)) == k,
		   "kind name %s round trips", fusion_kind_name((fusion_kind) k));
	ok(fusion_kind_from_name("clip") == -1, "unknown kind name gives -1");
	c.heads = 3;
	ok(fusion_create(&c, 1, &m, &err) == MMSA_ERR_INVALID && m == NULL,
	   "hidden not divisible by heads rejected (%s)", err.message);
	c.heads = TNH;
	fusion_create(&c, 1, &m, &err);
	make_inputs(&in);
	for (int t = 0; t < TT; t++)
		mask[t] = 1;
	ok(fusion_forward(m, in.H_T, mask, in.F_T, in.H_I, in.F_I, TB, TT, logits,
					  0, 0, &err) == MMSA_ERR_INVALID,
	   "mask row without tokens rejected (%s)", err.message);
	ok(fusion_forward(m, in.H_T, mask, in.F_T, in.H_I, in.F_I, 1 << 20, 100,
					  logits, 0, 0, &err) == MMSA_ERR_LIMIT,
	   "batch beyond the token limit rejected before reading (%s)", err.message);
	ok(fusion_forward(m, in.H_T, mask, in.F_T, in.H_I, in.F_I, 0, TT,
					  logits, 0, 0, &err) == MMSA_ERR_INVALID,
	   "empty batch rejected (%s)", err.message);
	fusion_free(m);
	ok(fusion_load("/nonexistent/fusion.safetensors", &m, &err) != MMSA_OK && m == NULL,
	   "load of a missing file fails cleanly");
	{
		/* a file with the right metadata but a missing tensor */
		fusion_model *mb,
				   *mc = NULL;
		fusion_config cb = tiny_config(FUSION_BERT);
		char		path[512];
		const char *tmp = getenv("MMSA_TMP");

		fusion_create(&cb, 1, &mb, &err);
		snprintf(path, sizeof(path), "%s/test_fusion_bad_%d.safetensors",
				 tmp && *tmp ? tmp : "/tmp", (int) getpid());
		fusion_save(mb, path, &err);
		fusion_free(mb);
		/* rewrite the kind: nativecombine has other tensor names */
		{
			safetensors_file f;
			st_write_tensor wt[2];
			const char *keys[6] = {"mmsa.fusion.kind", "mmsa.fusion.hidden",
				"mmsa.fusion.heads", "mmsa.fusion.image_width",
			"mmsa.fusion.image_tokens", "mmsa.fusion.ffn"};
			const char *vals[6] = {"nativecombine", "16", "2", "8", "49", "32"};

			safetensors_open(path, &f, &err);
			for (int i = 0; i < 2; i++)
			{
				wt[i].name = f.tensors[i].name;
				wt[i].dtype = ST_F32;
				wt[i].ndim = f.tensors[i].ndim;
				memcpy(wt[i].shape, f.tensors[i].shape, sizeof(wt[i].shape));
				wt[i].data = f.tensors[i].data;
			}
			safetensors_write(path, wt, 2, keys, vals, 6, &err);
			safetensors_close(&f);
		}
		ok(fusion_load(path, &mc, &err) == MMSA_ERR_FORMAT && mc == NULL,
		   "load of a file whose tensors do not fit the kind fails (%s)", err.message);
		unlink(path);
	}
	fusion_free(m);
}

/* ---- driver for fusion_reference.t ----------------------------------------- */

static int
driver_compare(const char *dir)
{
	char		path[1024];
	safetensors_file in;
	mmsa_error	err = {0};
	const st_tensor *tH;
	int			B,
				T,
				done = 0;
	const float *H_T,
			   *F_T,
			   *H_I,
			   *F_I,
			   *dlogits;
	const int32_t *mask;

	snprintf(path, sizeof(path), "%s/inputs.safetensors", dir);
	if (safetensors_open(path, &in, &err) != MMSA_OK)
		goto fail0;
	tH = safetensors_find(&in, "H_T");
	if (!tH || tH->ndim != 3 || !safetensors_find(&in, "mask") ||
		safetensors_find(&in, "mask")->dtype != ST_I32)
	{
		mmsa_set_error(&err, MMSA_ERR_FORMAT, "inputs: H_T (B,T,C) and I32 mask needed");
		goto fail;
	}
	B = (int) tH->shape[0];
	T = (int) tH->shape[1];
	H_T = safetensors_get_f32(&in, "H_T", 3, NULL, &err);
	F_T = safetensors_get_f32(&in, "F_T", 2, NULL, &err);
	H_I = safetensors_get_f32(&in, "H_I", 3, NULL, &err);
	F_I = safetensors_get_f32(&in, "F_I", 2, NULL, &err);
	dlogits = safetensors_get_f32(&in, "dlogits", 2, NULL, &err);
	mask = safetensors_find(&in, "mask")->data;
	if (!H_T || !F_T || !H_I || !F_I || !dlogits)
		goto fail;

	for (int k = 0; k < FUSION_N_KINDS; k++)
	{
		fusion_model *m = NULL;
		const char *kn = fusion_kind_name((fusion_kind) k);
		float	   *logits,
				   *dH_T,
				   *dF_T;
		st_write_tensor *wt;
		char	   (*names)[80];
		int			n,
					C;

		snprintf(path, sizeof(path), "%s/model_%s.safetensors", dir, kn);
		if (access(path, R_OK) != 0)
			continue;
		if (fusion_load(path, &m, &err) != MMSA_OK)
			goto fail;
		C = fusion_get_config(m)->hidden;
		n = fusion_num_tensors(m);
		logits = malloc((size_t) B * FUSION_CLASSES * sizeof(float));
		dH_T = malloc((size_t) B * T * C * sizeof(float));
		dF_T = malloc((size_t) B * C * sizeof(float));
		wt = calloc(n + 3, sizeof(*wt));
		names = calloc(n, sizeof(*names));
		fusion_zero_grad(m);
		if (fusion_forward(m, H_T, mask, F_T, H_I, F_I, B, T, logits, 0, 0, &err) != MMSA_OK ||
			fusion_backward(m, dlogits, dH_T, dF_T, &err) != MMSA_OK)
		{
			fusion_free(m);
			goto fail;
		}
		wt[0] = (st_write_tensor)
		{
			"logits", ST_F32, 2, {B, FUSION_CLASSES}, logits
		};
		wt[1] = (st_write_tensor)
		{
			"dH_T", ST_F32, 3, {B, T, C}, dH_T
		};
		wt[2] = (st_write_tensor)
		{
			"dF_T", ST_F32, 2, {B, C}, dF_T
		};
		for (int i = 0; i < n; i++)
		{
			const fusion_tensor *t = fusion_tensor_at(m, i);

			snprintf(names[i], 80, "grad.%s", t->name);
			wt[3 + i].name = names[i];
			wt[3 + i].dtype = ST_F32;
			wt[3 + i].ndim = t->ndim;
			wt[3 + i].shape[0] = t->shape[0];
			wt[3 + i].shape[1] = t->shape[1];
			wt[3 + i].data = fusion_grads(m) + t->offset;
		}
		snprintf(path, sizeof(path), "%s/out_%s.safetensors", dir, kn);
		if (safetensors_write(path, wt, n + 3, NULL, NULL, 0, &err) != MMSA_OK)
		{
			fusion_free(m);
			goto fail;
		}
		free(logits);
		free(dH_T);
		free(dF_T);
		free(wt);
		free(names);
		fusion_free(m);
		done++;
	}
	safetensors_close(&in);
	printf("%d models\n", done);
	return done > 0 ? 0 : 1;

fail:
	safetensors_close(&in);
fail0:
	fprintf(stderr, "test_fusion_grad --compare: %s\n", err.message);
	return 1;
}

int
main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--compare") == 0)
		return driver_compare(argv[2]);
	if (argc != 1)
	{
		fprintf(stderr, "usage: %s [--compare DIR]\n", argv[0]);
		return 2;
	}
	for (int k = 0; k < FUSION_N_KINDS; k++)
		check_kind((fusion_kind) k);
	check_misc();
	return tap_done();
}
