/*
 * test_layers_grad.c
 *	  Finite-difference gradient checks of every backward pass in layers.c.
 *
 * Each layer gets a scalar loss L = sum(out * R) with a fixed random R (so
 * that dout = R; the cross-entropy is its own loss), its backward pass
 * gives the analytic gradients, and central differences
 * (L(x + eps) - L(x - eps)) / (2 eps), with eps = 1e-3 and the layer run
 * in float (L summed in double), give the numeric ones on up to 64 random
 * coordinates of every input and parameter.  A coordinate passes when
 * |numeric - analytic| <= 1e-2 * max(|numeric|, |analytic|) + 1e-3 (the
 * absolute part covers float rounding of L, about 1e-4 here); the largest
 * absolute and relative differences are printed.  Also: the training
 * forwards give the inference forwards' values, gradients accumulate, the
 * padding token gets no embedding gradient, dropout masks are
 * reproducible, and attention gives masked keys no gradient.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"
#include "tap.h"

#define FD_EPS		1e-3f
#define FD_RTOL		1e-2
#define FD_ATOL		1e-3
#define FD_COORDS	64

static uint32_t rng_state = 12345;

static uint32_t
rnd_u32(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

/* Uniform in [-scale, scale). */
static float
rnd(float scale)
{
	return scale * ((float) (rnd_u32() >> 8) / (float) (1 << 24) * 2.0f - 1.0f);
}

static float *
rnd_array(long n, float scale)
{
	float	   *a = malloc(n * sizeof(float));

	for (long i = 0; i < n; i++)
		a[i] = rnd(scale);
	return a;
}

static float *
zeros(long n)
{
	return calloc(n, sizeof(float));
}

static double
dot(const float *a, const float *b, long n)
{
	double		s = 0.0;

	for (long i = 0; i < n; i++)
		s += (double) a[i] * b[i];
	return s;
}

/* The loss of the layer under test at its current inputs. */
typedef double (*loss_fn) (void *ctx);

/*
 * Compares grad (n) with central differences of f over x on up to
 * FD_COORDS random coordinates; one TAP line.
 */
static void
check_grad(const char *name, float *x, const float *grad, long n, loss_fn f,
		   void *ctx)
{
	double		max_abs = 0.0,
				max_rel = 0.0;
	int			bad = 0;
	long		coords = n < FD_COORDS ? n : FD_COORDS;

	for (long c = 0; c < coords; c++)
	{
		long		i = n <= FD_COORDS ? c : (long) (rnd_u32() % (uint32_t) n);
		float		saved = x[i];
		double		plus,
					minus,
					fd,
					an = grad[i],
					diff,
					scale;

		x[i] = saved + FD_EPS;
		plus = f(ctx);
		x[i] = saved - FD_EPS;
		minus = f(ctx);
		x[i] = saved;
		/* the step actually taken, after rounding to float */
		fd = (plus - minus) / ((double) (saved + FD_EPS) - (double) (saved - FD_EPS));
		diff = fabs(fd - an);
		scale = fmax(fabs(fd), fabs(an));
		if (diff > max_abs)
			max_abs = diff;
		if (scale > 1e-3 && diff / scale > max_rel)
			max_rel = diff / scale;
		if (!(diff <= FD_RTOL * scale + FD_ATOL))
		{
			if (bad < 3)
				diag("%s[%ld]: numeric %.6g analytic %.6g", name, i, fd, an);
			bad++;
		}
	}
	ok(bad == 0, "%s: %ld coordinates, max abs diff %.2e, max rel err %.2e "
	   "(tol %.0e rel + %.0e abs)", name, coords, max_abs, max_rel, FD_RTOL, FD_ATOL);
}

/* ---- embeddings ---------------------------------------------------------- */

typedef struct
{
	int			B,
				T,
				C,
				V,
				P,
				TV;
	int32_t    *ids,
			   *types;
	float	   *wte,
			   *wpe,
			   *wtt,
			   *out,
			   *R;
} emb_case;

static double
emb_loss(void *p)
{
	emb_case   *e = p;

	embeddings_forward(e->out, e->ids, e->types, e->wte, e->wpe, e->wtt, e->B, e->T, e->C);
	return dot(e->out, e->R, (long) e->B * e->T * e->C);
}

static void
test_embeddings(void)
{
	emb_case	e = {2, 5, 8, 11, 7, 2};
	long		N = (long) e.B * e.T;
	int32_t		ids[10] = {3, 0, 5, 3, 10, 1, 2, 0, 0, 0};
	int32_t		types[10] = {0, 0, 1, 1, 1, 0, 1, 0, 0, 1};
	float	   *dwte,
			   *dwpe,
			   *dwtt;
	int			pad_clean = 1;

	e.ids = ids;
	e.types = types;
	e.wte = rnd_array((long) e.V * e.C, 1);
	e.wpe = rnd_array((long) e.P * e.C, 1);
	e.wtt = rnd_array((long) e.TV * e.C, 1);
	e.out = zeros(N * e.C);
	e.R = rnd_array(N * e.C, 1);
	dwte = zeros((long) e.V * e.C);
	dwpe = zeros((long) e.P * e.C);
	dwtt = zeros((long) e.TV * e.C);
	embeddings_backward(dwte, dwpe, dwtt, e.R, ids, types, 0, e.B, e.T, e.C);
	for (int i = 0; i < e.C; i++)
		pad_clean &= dwte[i] == 0.0f;
	ok(pad_clean, "embeddings_backward: the padding token (id 0) gets no gradient");
	/* without pad_id the padding row must get one, else the check is void */
	{
		float	   *all = zeros((long) e.V * e.C);
		int			nonzero = 0;

		embeddings_backward(all, NULL, NULL, e.R, ids, types, -1, e.B, e.T, e.C);
		for (int i = 0; i < e.C; i++)
			nonzero |= all[i] != 0.0f;
		ok(nonzero, "embeddings_backward: with pad_id -1 row 0 gets its gradient");
		free(all);
	}
	/* the loss is linear, so compare on rows other than pad */
	check_grad("embeddings_backward dwte (rows 1..V-1)", e.wte + e.C, dwte + e.C,
			   (long) (e.V - 1) * e.C, emb_loss, &e);
	check_grad("embeddings_backward dwpe", e.wpe, dwpe, (long) e.P * e.C, emb_loss, &e);
	check_grad("embeddings_backward dwtt", e.wtt, dwtt, (long) e.TV * e.C, emb_loss, &e);
	free(e.wte);
	free(e.wpe);
	free(e.wtt);
	free(e.out);
	free(e.R);
	free(dwte);
	free(dwpe);
	free(dwtt);
}

/* ---- layernorm ----------------------------------------------------------- */

typedef struct
{
	int			N,
				C;
	float	   *inp,
			   *w,
			   *b,
			   *out,
			   *mean,
			   *rstd,
			   *R;
} ln_case;

static double
ln_loss(void *p)
{
	ln_case    *l = p;

	layernorm_forward_train(l->out, l->mean, l->rstd, l->inp, l->w, l->b, l->N, l->C, 1e-5f);
	return dot(l->out, l->R, (long) l->N * l->C);
}

static void
test_layernorm(void)
{
	ln_case		l = {6, 37};
	long		n = (long) l.N * l.C;
	float	   *din = zeros(n),
			   *dw = zeros(l.C),
			   *db = zeros(l.C),
			   *ref = zeros(n);

	l.inp = rnd_array(n, 2);
	l.w = rnd_array(l.C, 1);
	l.b = rnd_array(l.C, 1);
	l.out = zeros(n);
	l.mean = zeros(l.N);
	l.rstd = zeros(l.N);
	l.R = rnd_array(n, 1);
	ln_loss(&l);
	layernorm_forward(ref, l.inp, l.w, l.b, l.N, l.C, 1e-5f);
	ok(memcmp(ref, l.out, n * sizeof(float)) == 0,
	   "layernorm_forward_train gives layernorm_forward's values exactly");
	layernorm_backward(din, dw, db, l.R, l.inp, l.w, l.mean, l.rstd, l.N, l.C);
	check_grad("layernorm_backward dinp", l.inp, din, n, ln_loss, &l);
	check_grad("layernorm_backward dweight", l.w, dw, l.C, ln_loss, &l);
	check_grad("layernorm_backward dbias", l.b, db, l.C, ln_loss, &l);
	/* accumulation: a second call doubles every gradient */
	{
		float	   *din2 = malloc(n * sizeof(float));
		double		worst = 0.0;

		memcpy(din2, din, n * sizeof(float));
		layernorm_backward(din2, NULL, NULL, l.R, l.inp, l.w, l.mean, l.rstd, l.N, l.C);
		for (long i = 0; i < n; i++)
			worst = fmax(worst, fabs(din2[i] - 2.0 * din[i]));
		ok(worst < 1e-5, "layernorm_backward adds into dinp (max |2g - g - g| %.2g)", worst);
		free(din2);
	}
	free(l.inp);
	free(l.w);
	free(l.b);
	free(l.out);
	free(l.mean);
	free(l.rstd);
	free(l.R);
	free(din);
	free(dw);
	free(db);
	free(ref);
}

/* ---- matmul -------------------------------------------------------------- */

typedef struct
{
	int			N,
				C,
				OC;
	float	   *inp,
			   *w,
			   *b,
			   *out,
			   *R;
} mm_case;

static double
mm_loss(void *p)
{
	mm_case    *m = p;

	matmul_forward(NULL, m->out, m->inp, m->w, m->b, m->N, m->C, m->OC);
	return dot(m->out, m->R, (long) m->N * m->OC);
}

static void
test_matmul(void)
{
	mm_case		m = {9, 13, 7};
	float	   *din = zeros((long) m.N * m.C),
			   *dw = zeros((long) m.OC * m.C),
			   *db = zeros(m.OC);

	m.inp = rnd_array((long) m.N * m.C, 1);
	m.w = rnd_array((long) m.OC * m.C, 1);
	m.b = rnd_array(m.OC, 1);
	m.out = zeros((long) m.N * m.OC);
	m.R = rnd_array((long) m.N * m.OC, 1);
	matmul_backward(NULL, din, dw, db, m.R, m.inp, m.w, m.N, m.C, m.OC);
	check_grad("matmul_backward dinp", m.inp, din, (long) m.N * m.C, mm_loss, &m);
	check_grad("matmul_backward dweight", m.w, dw, (long) m.OC * m.C, mm_loss, &m);
	check_grad("matmul_backward dbias", m.b, db, m.OC, mm_loss, &m);
	free(m.inp);
	free(m.w);
	free(m.b);
	free(m.out);
	free(m.R);
	free(din);
	free(dw);
	free(db);
}

/* ---- elementwise: gelu, tanh, residual, dropout ---------------------------- */

typedef struct
{
	int			kind;			/* 0 gelu, 1 tanh, 2 residual, 3 dropout */
	long		n;
	float		p;
	uint64_t	seed;
	float	   *a,
			   *b,
			   *out,
			   *R;
} ew_case;

static double
ew_loss(void *p)
{
	ew_case    *e = p;

	switch (e->kind)
	{
		case 0:
			gelu_forward(e->out, e->a, e->n);
			break;
		case 1:
			tanh_forward(e->out, e->a, e->n);
			break;
		case 2:
			residual_forward(e->out, e->a, e->b, e->n);
			break;
		default:
			dropout_forward(e->out, e->a, e->p, e->seed, e->n);
			break;
	}
	return dot(e->out, e->R, e->n);
}

static void
test_elementwise(void)
{
	ew_case		e = {0, 200, 0.3f, 77};
	float	   *da = zeros(e.n),
			   *db = zeros(e.n);

	e.a = rnd_array(e.n, 4);
	e.b = rnd_array(e.n, 4);
	e.out = zeros(e.n);
	e.R = rnd_array(e.n, 1);

	gelu_backward(da, e.a, e.R, e.n);
	check_grad("gelu_backward (x in [-4, 4])", e.a, da, e.n, ew_loss, &e);

	e.kind = 1;
	memset(da, 0, e.n * sizeof(float));
	tanh_forward(e.out, e.a, e.n);
	tanh_backward(da, e.out, e.R, e.n);
	check_grad("tanh_backward", e.a, da, e.n, ew_loss, &e);

	e.kind = 2;
	memset(da, 0, e.n * sizeof(float));
	residual_backward(da, db, e.R, e.n);
	check_grad("residual_backward da", e.a, da, e.n, ew_loss, &e);
	check_grad("residual_backward db", e.b, db, e.n, ew_loss, &e);

	e.kind = 3;
	memset(da, 0, e.n * sizeof(float));
	dropout_backward(da, e.R, e.p, e.seed, e.n);
	check_grad("dropout_backward (p 0.3, fixed seed)", e.a, da, e.n, ew_loss, &e);

	/* the mask: its rate, reproducibility, dependence on the seed */
	{
		long		n = 100000,
					dropped = 0,
					same = 0,
					differ = 0;
		float	   *x = malloc(n * sizeof(float)),
				   *y = malloc(n * sizeof(float)),
				   *z = malloc(n * sizeof(float));
		int			scaled = 1;

		for (long i = 0; i < n; i++)
			x[i] = 1.0f;
		dropout_forward(y, x, 0.1f, 5, n);
		dropout_forward(z, x, 0.1f, 5, n);
		for (long i = 0; i < n; i++)
		{
			dropped += y[i] == 0.0f;
			same += y[i] == z[i];
			scaled &= y[i] == 0.0f || fabsf(y[i] - 1.0f / 0.9f) < 1e-6f;
		}
		dropout_forward(z, x, 0.1f, 6, n);
		for (long i = 0; i < n; i++)
			differ += (y[i] == 0.0f) != (z[i] == 0.0f);
		ok(fabs(dropped / (double) n - 0.1) < 0.005 && scaled,
		   "dropout p 0.1 drops %.4f of 1e5 and scales the rest by 1/0.9", dropped / (double) n);
		ok(same == n && differ > n / 10,
		   "dropout masks: the same seed gives the same mask, another seed %ld differences", differ);
		dropout_forward(z, x, 0.0f, 6, n);
		ok(memcmp(x, z, n * sizeof(float)) == 0, "dropout p 0 is the identity");
		free(x);
		free(y);
		free(z);
	}
	free(e.a);
	free(e.b);
	free(e.out);
	free(e.R);
	free(da);
	free(db);
}

/* ---- attention ----------------------------------------------------------- */

typedef struct
{
	int			B,
				T,
				C,
				NH;
	float		p;
	uint64_t	seed;
	float	   *q,
			   *k,
			   *v,
			   *addmask,
			   *att,
			   *scratch,
			   *out,
			   *R;
} att_case;

static double
att_loss(void *p)
{
	att_case   *a = p;

	attention_forward_train(NULL, a->out, a->att, a->scratch, a->q, a->k, a->v, a->addmask,
							a->B, a->T, a->C, a->NH, a->p, a->seed);
	return dot(a->out, a->R, (long) a->B * a->T * a->C);
}

static void
test_attention(float p)
{
	att_case	a = {3, 6, 16, 2, p, 99};
	long		n = (long) a.B * a.T * a.C;
	int32_t		mask[18] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0};
	float	   *dq = zeros(n),
			   *dk = zeros(n),
			   *dv = zeros(n);
	char		name[128];

	a.q = rnd_array(n, 1.5f);
	a.k = rnd_array(n, 1.5f);
	a.v = rnd_array(n, 1);
	a.addmask = zeros((long) a.B * a.T);
	a.att = zeros((long) a.B * a.NH * a.T * a.T);
	a.scratch = zeros(2L * a.T * a.T);
	a.out = zeros(n);
	a.R = rnd_array(n, 1);
	attention_mask_forward(a.addmask, mask, a.B, a.T);
	att_loss(&a);
	if (p == 0.0f)
	{
		float	   *ref = zeros(n),
				   *att = zeros((long) a.NH * a.T * a.T);

		attention_forward(ref, a.q, a.k, a.v, a.addmask, att, a.B, a.T, a.C, a.NH);
		tap_close_within(a.out, ref, n, 1e-5,
						 "attention_forward_train (sgemm.c) with p 0 against attention_forward (OpenBLAS)");
		free(ref);
		free(att);
	}
	attention_backward(NULL, dq, dk, dv, a.scratch, a.R, a.q, a.k, a.v, a.att,
					   a.B, a.T, a.C, a.NH, a.p, a.seed);
	snprintf(name, sizeof(name), "attention_backward dq (padding, dropout %.1f)", p);
	check_grad(name, a.q, dq, n, att_loss, &a);
	snprintf(name, sizeof(name), "attention_backward dk (padding, dropout %.1f)", p);
	check_grad(name, a.k, dk, n, att_loss, &a);
	snprintf(name, sizeof(name), "attention_backward dv (padding, dropout %.1f)", p);
	check_grad(name, a.v, dv, n, att_loss, &a);
	/* on 3 threads, the (batch row, head) pairs split: the same bits */
	{
		mmsa_pool  *pool = NULL;
		mmsa_error	err;
		float	   *out3 = zeros(n),
				   *att3 = zeros((long) a.B * a.NH * a.T * a.T),
				   *scratch3 = zeros(3 * 2L * a.T * a.T),
				   *dq3 = zeros(n),
				   *dk3 = zeros(n),
				   *dv3 = zeros(n);

		att_loss(&a);
		if (mmsa_pool_create(3, &pool, &err) != MMSA_OK)
			ok(0, "pool of 3 threads: %s", err.message);
		else
		{
			attention_forward_train(pool, out3, att3, scratch3, a.q, a.k, a.v, a.addmask,
									a.B, a.T, a.C, a.NH, a.p, a.seed);
			attention_backward(pool, dq3, dk3, dv3, scratch3, a.R, a.q, a.k, a.v, att3,
							   a.B, a.T, a.C, a.NH, a.p, a.seed);
			ok(memcmp(out3, a.out, n * sizeof(float)) == 0 &&
			   memcmp(att3, a.att, (long) a.B * a.NH * a.T * a.T * sizeof(float)) == 0 &&
			   memcmp(dq3, dq, n * sizeof(float)) == 0 &&
			   memcmp(dk3, dk, n * sizeof(float)) == 0 &&
			   memcmp(dv3, dv, n * sizeof(float)) == 0,
			   "attention forward and backward on 3 threads equal 1 thread bit for bit (dropout %.1f)", p);
			mmsa_pool_free(pool);
		}
		free(out3);
		free(att3);
		free(scratch3);
		free(dq3);
		free(dk3);
		free(dv3);
	}
	/* padded keys (mask 0) must get exactly zero gradient */
	{
		int			clean = 1;

		for (int b = 0; b < a.B; b++)
			for (int t = 0; t < a.T; t++)
				if (mask[b * a.T + t] == 0)
					for (int i = 0; i < a.C; i++)
					{
						long		o = ((long) b * a.T + t) * a.C + i;

						clean &= dk[o] == 0.0f && dv[o] == 0.0f;
					}
		ok(clean, "attention_backward: padded keys get no dk, dv (dropout %.1f)", p);
	}
	free(a.q);
	free(a.k);
	free(a.v);
	free(a.addmask);
	free(a.att);
	free(a.scratch);
	free(a.out);
	free(a.R);
	free(dq);
	free(dk);
	free(dv);
}

/* ---- cross-entropy ------------------------------------------------------- */

typedef struct
{
	int			N,
				V;
	int32_t    *targets;
	float	   *weights,
			   *logits,
			   *probs;
} ce_case;

static double
ce_loss(void *p)
{
	ce_case    *c = p;

	return crossentropy_forward(c->probs, c->logits, c->targets, c->weights, c->N, c->V);
}

static void
test_crossentropy(void)
{
	int32_t		targets[6] = {2, -100, 0, 4, 4, 1};
	float		weights[5] = {0.5f, 2.0f, 1.0f, 0.25f, 3.0f};
	ce_case		c = {6, 5, targets, weights};
	float	   *dlogits = zeros(30);
	double		want = 0.0,
				wsum = 0.0;
	float		loss;

	c.logits = rnd_array(30, 3);
	c.probs = zeros(30);
	loss = crossentropy_forward(c.probs, c.logits, targets, weights, c.N, c.V);
	for (int n = 0; n < c.N; n++)
	{
		double		mx = -1e30,
					s = 0.0;

		if (targets[n] < 0)
			continue;
		for (int i = 0; i < c.V; i++)
			mx = fmax(mx, c.logits[n * c.V + i]);
		for (int i = 0; i < c.V; i++)
			s += exp(c.logits[n * c.V + i] - mx);
		want += weights[targets[n]] * (log(s) + mx - c.logits[n * c.V + targets[n]]);
		wsum += weights[targets[n]];
	}
	want /= wsum;
	ok(fabs(loss - want) < 1e-5, "crossentropy_forward: weighted mean with an ignored row, %.6f vs %.6f in double",
	   loss, want);
	crossentropy_backward(dlogits, c.probs, targets, weights, c.N, c.V, 1.0f);
	check_grad("crossentropy_backward dlogits (class weights, ignore_index)",
			   c.logits, dlogits, 30, ce_loss, &c);
	{
		int			clean = 1;

		for (int i = 0; i < c.V; i++)
			clean &= dlogits[1 * c.V + i] == 0.0f;
		ok(clean, "crossentropy_backward: the ignored row gets no gradient");
	}
	/* no weights: the plain mean */
	memset(dlogits, 0, 30 * sizeof(float));
	c.weights = NULL;
	crossentropy_forward(c.probs, c.logits, targets, NULL, c.N, c.V);
	crossentropy_backward(dlogits, c.probs, targets, NULL, c.N, c.V, 1.0f);
	check_grad("crossentropy_backward dlogits (no weights)", c.logits, dlogits, 30, ce_loss, &c);
	free(c.logits);
	free(c.probs);
	free(dlogits);
}

int
main(void)
{
	test_embeddings();
	test_layernorm();
	test_matmul();
	test_elementwise();
	test_attention(0.0f);
	test_attention(0.2f);
	test_crossentropy();
	return tap_done();
}
