/*
 * fusion.c
 *	  The seven classification heads of fusion.h: building blocks (linear,
 *	  LayerNorm from layers.c; multi-head cross attention, masked mean,
 *	  concatenations, classifier, image projection, encoder layer written
 *	  here), each as a forward/backward pair, and the models on top.
 *
 * Activations live in one arena laid out by fusion_layout; the gradients
 * of the activations live in a second arena with the same layout, so the
 * gradient of an activation x is DACT(m, x).  Backward passes ADD into
 * their input gradients (as layers.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fusion.h"
#include "layers.h"
#include "safetensors.h"

#define LN_EPS 1e-12f

/* ---- parameter and activation handles ----------------------------------- */

typedef struct linear_p
{
	size_t		w,
				b;				/* offsets into params */
	int			in,
				out;
} linear_p;

typedef struct ln_p
{
	size_t		w,
				b;
} ln_p;

typedef struct mha_p
{
	linear_p	q,
				k,
				v,
				o;
} mha_p;

typedef struct encoder_p
{
	mha_p		attn;
	ln_p		ln1;
	linear_p	ff1,
				ff2;
	ln_p		ln2;
} encoder_p;

typedef struct proj_p
{
	linear_p	dense;
	ln_p		ln;
} proj_p;

typedef struct mha_a
{
	float	   *q,
			   *k,
			   *v,
			   *att,
			   *ctx,
			   *out;
} mha_a;

typedef struct encoder_a
{
	mha_a		attn;
	float	   *r1,
			   *h1,
			   *mean1,
			   *rstd1,
			   *f1,
			   *g,
			   *f2,
			   *r2,
			   *mean2,
			   *rstd2,
			   *out;
} encoder_a;

typedef struct proj_a
{
	float	   *lin,
			   *mean,
			   *rstd,
			   *out;
} proj_a;

typedef struct clf_a
{
	float	   *in,
			   *drop,
			   *logits;
} clf_a;

struct fusion_model
{
	fusion_config cfg;
	const float *wts;			/* the parameters read by forward/backward:
								 * params, or in place in file's mapping */
	float	   *params;			/* owned copy, or NULL until fusion_params */
	float	   *grads;			/* allocated on first use (training) */
	safetensors_file *file;		/* fusion_load's mapping when used in place */
	size_t		dacts_cap;
	size_t		n_params;
	fusion_tensor *tensors;
	int			n_tensors;

	/* parameters (those the kind uses) */
	proj_p		image_proj;
	mha_p		attn_i2t,
				attn_t2i;
	encoder_p	encoder;
	linear_p	clf,
				clf_t,
				clf_i;

	/* activations of the last forward */
	float	   *acts;
	float	   *dacts;
	size_t		acts_cap;
	int			B,
				T,
				have_forward,
				training;
	uint64_t	seed;
	const float *H_T,
			   *F_T,
			   *H_I,
			   *F_I;
	float	   *addmask;		/* (B,S) key mask of the text or sequence */
	float	   *qmask;			/* (B,S) 1/0 of valid query positions */
	proj_a		pimg;
	mha_a		i2t,
				t2i;
	float	   *hcat;			/* hstec (B,T+NI,C); ote (B,2,C) */
	encoder_a	enc;
	float	   *pool_a,
			   *pool_b;			/* (B,C) pooled vectors */
	clf_a		c,
				ct,
				ci;
	float	   *scratch;		/* (S) attention backward row */
};

#define DACT(m, p) ((m)->dacts + ((p) - (m)->acts))

/* ---- building blocks --------------------------------------------------- */

/*
 * Multi-head scaled dot-product attention of Tq queries over Tk keys
 * (cross attention; self attention when both come from one sequence).
 * For batch row b, head h (hs = C/NH columns):
 *	 att = softmax(q k^T / sqrt(hs) + addmask_b)  (Tq,Tk)
 *	 out = dropout(att) v                          (Tq,hs)
 * Element ((b*NH + h)*Tq + i)*Tk + j of att is dropped when
 * dropout_uniform(seed, that index) < p.
 * out, q: (B,Tq,C); k, v: (B,Tk,C); addmask: (B,Tk) or NULL;
 * att: (B,NH,Tq,Tk) probabilities before dropout.
 */
static void
cross_attention_forward(float *out, float *att, const float *q,
						const float *k, const float *v, const float *addmask,
						int B, int Tq, int Tk, int C, int NH,
						float p, uint64_t seed)
{
	int			hs = C / NH;
	float		scale = 1.0f / sqrtf((float) hs);

	for (int b = 0; b < B; b++)
		for (int h = 0; h < NH; h++)
			for (int i = 0; i < Tq; i++)
			{
				const float *qi = q + ((size_t) b * Tq + i) * C + h * hs;
				float	   *row = att + (((size_t) b * NH + h) * Tq + i) * Tk;
				float	   *oi = out + ((size_t) b * Tq + i) * C + h * hs;
				float		maxv = -INFINITY,
							sum = 0.0f;

				for (int j = 0; j < Tk; j++)
				{
					const float *kj = k + ((size_t) b * Tk + j) * C + h * hs;
					float		s = 0.0f;

					for (int d = 0; d < hs; d++)
						s += qi[d] * kj[d];
					s = s * scale + (addmask ? addmask[(size_t) b * Tk + j] : 0.0f);
					row[j] = s;
					if (s > maxv)
						maxv = s;
				}
				for (int j = 0; j < Tk; j++)
				{
					row[j] = expf(row[j] - maxv);
					sum += row[j];
				}
				for (int j = 0; j < Tk; j++)
					row[j] /= sum;
				for (int d = 0; d < hs; d++)
					oi[d] = 0.0f;
				for (int j = 0; j < Tk; j++)
				{
					const float *vj = v + ((size_t) b * Tk + j) * C + h * hs;
					float		a = row[j];

					if (p > 0.0f)
						a = dropout_uniform(seed, (uint64_t) (row - att) + j) < p
							? 0.0f : a / (1.0f - p);
					for (int d = 0; d < hs; d++)
						oi[d] += a * vj[d];
				}
			}
}

/*
 * Gradient of cross_attention_forward (same p and seed).
 * dq, dout: (B,Tq,C); dk, dv: (B,Tk,C); att: (B,NH,Tq,Tk); scratch: (Tk).
 */
static void
cross_attention_backward(float *dq, float *dk, float *dv, float *scratch,
						 const float *dout, const float *q, const float *k,
						 const float *v, const float *att,
						 int B, int Tq, int Tk, int C, int NH,
						 float p, uint64_t seed)
{
	int			hs = C / NH;
	float		scale = 1.0f / sqrtf((float) hs);

	for (int b = 0; b < B; b++)
		for (int h = 0; h < NH; h++)
			for (int i = 0; i < Tq; i++)
			{
				size_t		qoff = ((size_t) b * Tq + i) * C + h * hs;
				const float *row = att + (((size_t) b * NH + h) * Tq + i) * Tk;
				const float *doi = dout + qoff;
				float		dot = 0.0f;

				/* datt (through the dropout) and dv */
				for (int j = 0; j < Tk; j++)
				{
					size_t		koff = ((size_t) b * Tk + j) * C + h * hs;
					float		keep = 1.0f,
								g = 0.0f;

					if (p > 0.0f)
						keep = dropout_uniform(seed, (uint64_t) (row - att) + j) < p
							? 0.0f : 1.0f / (1.0f - p);
					for (int d = 0; d < hs; d++)
					{
						g += doi[d] * v[koff + d];
						dv[koff + d] += keep * row[j] * doi[d];
					}
					scratch[j] = g * keep;
					dot += scratch[j] * row[j];
				}
				/* softmax backward, then the scores q k^T * scale */
				for (int j = 0; j < Tk; j++)
				{
					size_t		koff = ((size_t) b * Tk + j) * C + h * hs;
					float		ds = row[j] * (scratch[j] - dot) * scale;

					for (int d = 0; d < hs; d++)
					{
						dq[qoff + d] += ds * k[koff + d];
						dk[koff + d] += ds * q[qoff + d];
					}
				}
			}
}

/*
 * Multi-head attention module Attention(Q, K, V) (fusion.h choice 3):
 * projections, cross_attention_forward, output projection.
 * xq: (B,Tq,C); xkv: (B,Tk,C); a->q, a->ctx, a->out: (B,Tq,C);
 * a->k, a->v: (B,Tk,C); a->att: (B,NH,Tq,Tk).
 */
static void
mha_forward(mha_a *a, const mha_p *P, const float *params, const float *xq,
			const float *xkv, const float *addmask, int B, int Tq, int Tk,
			int C, int NH, float p, uint64_t seed)
{
	matmul_forward(NULL, a->q, xq, params + P->q.w, params + P->q.b, B * Tq, C, C);
	matmul_forward(NULL, a->k, xkv, params + P->k.w, params + P->k.b, B * Tk, C, C);
	matmul_forward(NULL, a->v, xkv, params + P->v.w, params + P->v.b, B * Tk, C, C);
	cross_attention_forward(a->ctx, a->att, a->q, a->k, a->v, addmask,
							B, Tq, Tk, C, NH, p, seed);
	matmul_forward(NULL, a->out, a->ctx, params + P->o.w, params + P->o.b, B * Tq, C, C);
}

/*
 * Gradient of mha_forward: reads the gradient of a->out from the dacts
 * arena (dout), adds into dxq and dxkv (which may be the same array, for
 * self attention) and the parameter gradients.
 */
static void
mha_backward(fusion_model *m, mha_a *a, const mha_p *P, float *dxq,
			 float *dxkv, const float *xq, const float *xkv,
			 int B, int Tq, int Tk, float p, uint64_t seed)
{
	int			C = m->cfg.hidden;
	const float *W = m->wts;
	float	   *G = m->grads;

	matmul_backward(NULL, DACT(m, a->ctx), G + P->o.w, G + P->o.b, DACT(m, a->out),
					a->ctx, W + P->o.w, B * Tq, C, C);
	cross_attention_backward(DACT(m, a->q), DACT(m, a->k), DACT(m, a->v),
							 m->scratch, DACT(m, a->ctx), a->q, a->k, a->v,
							 a->att, B, Tq, Tk, C, m->cfg.heads, p, seed);
	matmul_backward(NULL, dxq, G + P->q.w, G + P->q.b, DACT(m, a->q), xq,
					W + P->q.w, B * Tq, C, C);
	matmul_backward(NULL, dxkv, G + P->k.w, G + P->k.b, DACT(m, a->k), xkv,
					W + P->k.w, B * Tk, C, C);
	matmul_backward(NULL, dxkv, G + P->v.w, G + P->v.b, DACT(m, a->v), xkv,
					W + P->v.w, B * Tk, C, C);
}

/*
 * Transformer encoder layer, post-LN as a BERT layer (fusion.h, hstec):
 *	 r1 = x + Drop(Attention(x, x, x));  h1 = LN_1(r1)
 *	 f2 = Linear(FF->C)(GELU(Linear(C->FF)(h1)))
 *	 r2 = h1 + Drop(f2);  out = LN_2(r2)
 * x: (B,S,C); addmask: (B,S) or NULL; seeds: sites base+0..2.
 */
static void
encoder_forward(fusion_model *m, encoder_a *a, const encoder_p *P,
				const float *x, const float *addmask, int B, int S,
				uint64_t seed)
{
	int			C = m->cfg.hidden,
				FF = m->cfg.ffn;
	long		N = (long) B * S;
	float		pd = m->training ? m->cfg.dropout : 0.0f;
	float		pa = m->training ? m->cfg.attn_dropout : 0.0f;
	const float *W = m->wts;

	mha_forward(&a->attn, &P->attn, W, x, x, addmask, B, S, S, C,
				m->cfg.heads, pa, dropout_site_seed(seed, 0));
	dropout_forward(a->r1, a->attn.out, pd, dropout_site_seed(seed, 1), N * C);
	residual_forward(a->r1, a->r1, x, N * C);
	layernorm_forward_train(a->h1, a->mean1, a->rstd1, a->r1, W + P->ln1.w,
							W + P->ln1.b, N, C, LN_EPS);
	matmul_forward(NULL, a->f1, a->h1, W + P->ff1.w, W + P->ff1.b, N, C, FF);
	gelu_forward(a->g, a->f1, N * FF);
	matmul_forward(NULL, a->f2, a->g, W + P->ff2.w, W + P->ff2.b, N, FF, C);
	dropout_forward(a->r2, a->f2, pd, dropout_site_seed(seed, 2), N * C);
	residual_forward(a->r2, a->r2, a->h1, N * C);
	layernorm_forward_train(a->out, a->mean2, a->rstd2, a->r2, W + P->ln2.w,
							W + P->ln2.b, N, C, LN_EPS);
}

/* Gradient of encoder_forward; d(out) in dacts, adds into dx. */
static void
encoder_backward(fusion_model *m, encoder_a *a, const encoder_p *P,
				 float *dx, const float *x, int B, int S, uint64_t seed)
{
	int			C = m->cfg.hidden,
				FF = m->cfg.ffn;
	long		N = (long) B * S;
	float		pd = m->training ? m->cfg.dropout : 0.0f;
	float		pa = m->training ? m->cfg.attn_dropout : 0.0f;
	const float *W = m->wts;
	float	   *G = m->grads;

	layernorm_backward(DACT(m, a->r2), G + P->ln2.w, G + P->ln2.b,
					   DACT(m, a->out), a->r2, W + P->ln2.w, a->mean2,
					   a->rstd2, N, C);
	residual_backward(DACT(m, a->h1), NULL, DACT(m, a->r2), N * C);
	dropout_backward(DACT(m, a->f2), DACT(m, a->r2), pd,
					 dropout_site_seed(seed, 2), N * C);
	matmul_backward(NULL, DACT(m, a->g), G + P->ff2.w, G + P->ff2.b, DACT(m, a->f2),
					a->g, W + P->ff2.w, N, FF, C);
	gelu_backward(DACT(m, a->f1), a->f1, DACT(m, a->g), N * FF);
	matmul_backward(NULL, DACT(m, a->h1), G + P->ff1.w, G + P->ff1.b,
					DACT(m, a->f1), a->h1, W + P->ff1.w, N, C, FF);
	layernorm_backward(DACT(m, a->r1), G + P->ln1.w, G + P->ln1.b,
					   DACT(m, a->h1), a->r1, W + P->ln1.w, a->mean1,
					   a->rstd1, N, C);
	residual_backward(dx, NULL, DACT(m, a->r1), N * C);
	dropout_backward(DACT(m, a->attn.out), DACT(m, a->r1), pd,
					 dropout_site_seed(seed, 1), N * C);
	mha_backward(m, &a->attn, &P->attn, dx, dx, x, x, B, S, S, pa,
				 dropout_site_seed(seed, 0));
}

/*
 * Image projection P_I(x) = LN(Linear(DI->C)(x)) (fusion.h choice 2).
 * x: (N,DI); a->lin, a->out: (N,C); a->mean, a->rstd: (N).
 */
static void
proj_forward(fusion_model *m, proj_a *a, const proj_p *P, const float *x, int N)
{
	const float *W = m->wts;

	matmul_forward(NULL, a->lin, x, W + P->dense.w, W + P->dense.b, N,
				   P->dense.in, P->dense.out);
	layernorm_forward_train(a->out, a->mean, a->rstd, a->lin, W + P->ln.w,
							W + P->ln.b, N, P->dense.out, LN_EPS);
}

/* Gradient of proj_forward (parameters only: the image encoder is frozen). */
static void
proj_backward(fusion_model *m, proj_a *a, const proj_p *P, const float *x, int N)
{
	const float *W = m->wts;
	float	   *G = m->grads;

	layernorm_backward(DACT(m, a->lin), G + P->ln.w, G + P->ln.b,
					   DACT(m, a->out), a->lin, W + P->ln.w, a->mean,
					   a->rstd, N, P->dense.out);
	matmul_backward(NULL, NULL, G + P->dense.w, G + P->dense.b, DACT(m, a->lin), x,
					W + P->dense.w, N, P->dense.in, P->dense.out);
}

/*
 * Mean over the sequence of the positions with weight 1 (masked mean).
 * out: (B,C); inp: (B,S,C); qmask: (B,S) of 0/1 or NULL for all.
 */
static void
masked_mean_forward(float *out, const float *inp, const float *qmask,
					int B, int S, int C)
{
	for (int b = 0; b < B; b++)
	{
		float		n = 0.0f;

		for (int c = 0; c < C; c++)
			out[(size_t) b * C + c] = 0.0f;
		for (int s = 0; s < S; s++)
		{
			float		w = qmask ? qmask[(size_t) b * S + s] : 1.0f;

			n += w;
			if (w != 0.0f)
				for (int c = 0; c < C; c++)
					out[(size_t) b * C + c] += inp[((size_t) b * S + s) * C + c];
		}
		for (int c = 0; c < C; c++)
			out[(size_t) b * C + c] /= n;
	}
}

/* Gradient of masked_mean_forward: dinp[b,s] += qmask[b,s] dout[b] / n_b. */
static void
masked_mean_backward(float *dinp, const float *dout, const float *qmask,
					 int B, int S, int C)
{
	for (int b = 0; b < B; b++)
	{
		float		n = 0.0f;

		for (int s = 0; s < S; s++)
			n += qmask ? qmask[(size_t) b * S + s] : 1.0f;
		for (int s = 0; s < S; s++)
		{
			float		w = (qmask ? qmask[(size_t) b * S + s] : 1.0f) / n;

			for (int c = 0; c < C; c++)
				dinp[((size_t) b * S + s) * C + c] += w * dout[(size_t) b * C + c];
		}
	}
}

/*
 * Concatenation along the last dimension, out[b] = [x1[b]; x2[b]];
 * x2 NULL (n2 = 0) copies x1.  out: (B,n1+n2); x1: (B,n1); x2: (B,n2).
 */
static void
concat_forward(float *out, const float *x1, int n1, const float *x2, int n2, int B)
{
	for (int b = 0; b < B; b++)
	{
		memcpy(out + (size_t) b * (n1 + n2), x1 + (size_t) b * n1, n1 * sizeof(float));
		if (n2 > 0)
			memcpy(out + (size_t) b * (n1 + n2) + n1, x2 + (size_t) b * n2,
				   n2 * sizeof(float));
	}
}

/* Gradient of concat_forward: dx1 += dout[:, :n1], dx2 += dout[:, n1:]. */
static void
concat_backward(float *dx1, int n1, float *dx2, int n2, const float *dout, int B)
{
	for (int b = 0; b < B; b++)
	{
		const float *d = dout + (size_t) b * (n1 + n2);

		if (dx1)
			for (int i = 0; i < n1; i++)
				dx1[(size_t) b * n1 + i] += d[i];
		if (dx2)
			for (int i = 0; i < n2; i++)
				dx2[(size_t) b * n2 + i] += d[n1 + i];
	}
}

/*
 * Concatenation along the sequence, out[b] = [x1[b]; x2[b]] as tokens.
 * out: (B,S1+S2,C); x1: (B,S1,C); x2: (B,S2,C).  Its gradient is
 * concat_backward with n1 = S1*C, n2 = S2*C.
 */
static void
seqcat_forward(float *out, const float *x1, int S1, const float *x2, int S2,
			   int B, int C)
{
	concat_forward(out, x1, S1 * C, x2, S2 * C, B);
}

/*
 * Classifier(x) = Linear(n->3)(Drop(x)) on x = [x1; x2] (fusion.h choice 0).
 * a->in, a->drop: (B,n1+n2); a->logits: (B,3).
 */
static void
classifier_forward(fusion_model *m, clf_a *a, const linear_p *P,
				   const float *x1, int n1, const float *x2, int n2, int B,
				   uint64_t seed)
{
	float		pd = m->training ? m->cfg.dropout : 0.0f;

	concat_forward(a->in, x1, n1, x2, n2, B);
	dropout_forward(a->drop, a->in, pd, seed, (long) B * (n1 + n2));
	matmul_forward(NULL, a->logits, a->drop, m->wts + P->w, m->wts + P->b,
				   B, n1 + n2, FUSION_CLASSES);
}

/* Gradient of classifier_forward; d(logits) in dacts; adds into dx1, dx2. */
static void
classifier_backward(fusion_model *m, clf_a *a, const linear_p *P,
					float *dx1, int n1, float *dx2, int n2, int B, uint64_t seed)
{
	float		pd = m->training ? m->cfg.dropout : 0.0f;

	matmul_backward(NULL, DACT(m, a->drop), m->grads + P->w, m->grads + P->b,
					DACT(m, a->logits), a->drop, m->wts + P->w,
					B, n1 + n2, FUSION_CLASSES);
	dropout_backward(DACT(m, a->in), DACT(m, a->drop), pd, seed,
					 (long) B * (n1 + n2));
	concat_backward(dx1, n1, dx2, n2, DACT(m, a->in), B);
}

/* ---- parameters ---------------------------------------------------------- */

static const char *const kind_names[FUSION_N_KINDS] = {
	"bert", "resnet", "nativecat", "nativecombine", "cmac", "hstec", "ote"
};

const char *
fusion_kind_name(fusion_kind kind)
{
	return (unsigned) kind < FUSION_N_KINDS ? kind_names[kind] : "?";
}

int
fusion_kind_from_name(const char *name)
{
	for (int i = 0; i < FUSION_N_KINDS; i++)
		if (name && strcmp(name, kind_names[i]) == 0)
			return i;
	return -1;
}

fusion_config
fusion_default_config(fusion_kind kind)
{
	fusion_config c;

	c.kind = kind;
	c.hidden = 768;
	c.heads = 12;
	c.image_width = 2048;
	c.image_tokens = 49;
	c.ffn = 3072;
	c.dropout = 0.1f;
	c.attn_dropout = 0.1f;
	return c;
}

int
fusion_inputs(fusion_kind kind)
{
	switch (kind)
	{
		case FUSION_BERT:
			return FUSION_USES_FT;
		case FUSION_RESNET:
			return FUSION_USES_FI;
		case FUSION_NATIVECAT:
		case FUSION_NATIVECOMBINE:
		case FUSION_OTE:
			return FUSION_USES_FT | FUSION_USES_FI;
		case FUSION_CMAC:
		case FUSION_HSTEC:
			return FUSION_USES_HT | FUSION_USES_FT | FUSION_USES_HI | FUSION_USES_FI;
	}
	return 0;
}

/* Parameter table construction: pass 1 counts (m->tensors NULL), pass 2 fills. */
typedef struct builder
{
	fusion_model *m;
	size_t		off;
	int			n;
	int			cap;
} builder;

static size_t
add_tensor(builder *bd, const char *prefix, const char *name, int ndim,
		   int64_t d0, int64_t d1)
{
	size_t		off = bd->off;
	size_t		numel = (size_t) d0 * (ndim == 2 ? (size_t) d1 : 1);

	if (bd->m->tensors && bd->n < bd->cap)
	{
		fusion_tensor *t = &bd->m->tensors[bd->n];

		snprintf(t->name, sizeof(t->name), "%s.%s", prefix, name);
		t->ndim = ndim;
		t->shape[0] = d0;
		t->shape[1] = ndim == 2 ? d1 : 0;
		t->offset = off;
		t->numel = numel;
	}
	bd->n++;
	bd->off += numel;
	return off;
}

static linear_p
add_linear(builder *bd, const char *prefix, int in, int out)
{
	char		p[64];
	linear_p	l;

	snprintf(p, sizeof(p), "%s", prefix);
	l.w = add_tensor(bd, p, "weight", 2, out, in);
	l.b = add_tensor(bd, p, "bias", 1, out, 0);
	l.in = in;
	l.out = out;
	return l;
}

static ln_p
add_ln(builder *bd, const char *prefix, int C)
{
	ln_p		l;

	l.w = add_tensor(bd, prefix, "weight", 1, C, 0);
	l.b = add_tensor(bd, prefix, "bias", 1, C, 0);
	return l;
}

static mha_p
add_mha(builder *bd, const char *prefix, int C)
{
	char		p[64];
	mha_p		a;

	snprintf(p, sizeof(p), "%s.query", prefix);
	a.q = add_linear(bd, p, C, C);
	snprintf(p, sizeof(p), "%s.key", prefix);
	a.k = add_linear(bd, p, C, C);
	snprintf(p, sizeof(p), "%s.value", prefix);
	a.v = add_linear(bd, p, C, C);
	snprintf(p, sizeof(p), "%s.output", prefix);
	a.o = add_linear(bd, p, C, C);
	return a;
}

static void
build_params(builder *bd)
{
	fusion_model *m = bd->m;
	const fusion_config *c = &m->cfg;
	int			C = c->hidden,
				DI = c->image_width;

	switch (c->kind)
	{
		case FUSION_BERT:
			m->clf = add_linear(bd, "classifier", C, FUSION_CLASSES);
			break;
		case FUSION_RESNET:
			m->clf = add_linear(bd, "classifier", DI, FUSION_CLASSES);
			break;
		case FUSION_NATIVECAT:
			m->clf = add_linear(bd, "classifier", C + DI, FUSION_CLASSES);
			break;
		case FUSION_NATIVECOMBINE:
			m->clf_t = add_linear(bd, "text_classifier", C, FUSION_CLASSES);
			m->clf_i = add_linear(bd, "image_classifier", DI, FUSION_CLASSES);
			break;
		case FUSION_CMAC:
		case FUSION_HSTEC:
		case FUSION_OTE:
			m->image_proj.dense = add_linear(bd, "image_proj.dense", DI, C);
			m->image_proj.ln = add_ln(bd, "image_proj.LayerNorm", C);
			if (c->kind == FUSION_CMAC)
			{
				m->attn_i2t = add_mha(bd, "attn_i2t", C);
				m->attn_t2i = add_mha(bd, "attn_t2i", C);
			}
			else
			{
				m->encoder.attn = add_mha(bd, "encoder.attention", C);
				m->encoder.ln1 = add_ln(bd, "encoder.attention_norm", C);
				m->encoder.ff1 = add_linear(bd, "encoder.ffn.intermediate", C, c->ffn);
				m->encoder.ff2 = add_linear(bd, "encoder.ffn.output", c->ffn, C);
				m->encoder.ln2 = add_ln(bd, "encoder.output_norm", C);
			}
			if (c->kind == FUSION_OTE)
				m->clf = add_linear(bd, "classifier", C, FUSION_CLASSES);
			else
			{
				m->clf_t = add_linear(bd, "text_classifier", 2 * C, FUSION_CLASSES);
				m->clf_i = add_linear(bd, "image_classifier", DI + C, FUSION_CLASSES);
			}
			break;
	}
}

static mmsa_status
check_config(const fusion_config *c, mmsa_error *err)
{
	if ((unsigned) c->kind >= FUSION_N_KINDS)
		return mmsa_set_error(err, MMSA_ERR_INVALID, "fusion: unknown model kind %d", (int) c->kind);
	if (c->hidden <= 0 || c->hidden > 65536 || c->heads <= 0 ||
		c->hidden % c->heads != 0 || c->image_width <= 0 ||
		c->image_width > 65536 || c->image_tokens <= 0 ||
		c->image_tokens > 4096 || c->ffn <= 0 || c->ffn > 262144)
		return mmsa_set_error(err, MMSA_ERR_INVALID,
							  "fusion: bad configuration (hidden %d, heads %d, image %d x %d, ffn %d)",
							  c->hidden, c->heads, c->image_tokens, c->image_width, c->ffn);
	if (!(c->dropout >= 0.0f && c->dropout < 1.0f) ||
		!(c->attn_dropout >= 0.0f && c->attn_dropout < 1.0f))
		return mmsa_set_error(err, MMSA_ERR_INVALID, "fusion: dropout must be in [0, 1)");
	return MMSA_OK;
}

/* Standard normal from two counter-based uniforms (Box-Muller). */
static float
normal_draw(uint64_t seed, uint64_t i)
{
	double		u1 = 1.0 - (double) dropout_uniform(seed, 2 * i);
	double		u2 = (double) dropout_uniform(seed, 2 * i + 1);

	return (float) (sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

/*
 * A model of configuration cfg with its parameter table and, when
 * with_params, an owned (uninitialised) parameter buffer.  Gradients are
 * allocated on first use (ensure_grads).
 */
static mmsa_status
fusion_new(const fusion_config *cfg, int with_params, fusion_model **out,
		   mmsa_error *err)
{
	fusion_model *m;
	builder		bd;

	*out = NULL;
	if (check_config(cfg, err) != MMSA_OK)
		return err->status;
	m = calloc(1, sizeof(*m));
	if (!m)
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "fusion: out of memory");
	m->cfg = *cfg;
	memset(&bd, 0, sizeof(bd));
	bd.m = m;
	build_params(&bd);
	m->n_tensors = bd.n;
	m->n_params = bd.off;
	m->tensors = calloc(bd.n, sizeof(fusion_tensor));
	if (with_params)
	{
		m->params = malloc(m->n_params * sizeof(float));
		m->wts = m->params;
	}
	if (!m->tensors || (with_params && !m->params))
	{
		fusion_free(m);
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "fusion: out of memory for %zu parameters", m->n_params);
	}
	memset(&bd, 0, sizeof(bd));
	bd.m = m;
	bd.cap = m->n_tensors;
	build_params(&bd);
	*out = m;
	return MMSA_OK;
}

/* The gradient buffer, allocated (zeroed) on first use; NULL when out of memory. */
static float *
ensure_grads(fusion_model *m)
{
	if (m->grads == NULL)
		m->grads = calloc(m->n_params, sizeof(float));
	return m->grads;
}

mmsa_status
fusion_create(const fusion_config *cfg, uint64_t seed, fusion_model **out,
			  mmsa_error *err)
{
	fusion_model *m;

	if (fusion_new(cfg, 1, &m, err) != MMSA_OK)
		return err->status;
	if (!ensure_grads(m))
	{
		fusion_free(m);
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "fusion: out of memory for %zu parameters", m->n_params);
	}

	/* BERT's initialisation: weights N(0, 0.02), biases 0, LN (1, 0) */
	for (int i = 0; i < m->n_tensors; i++)
	{
		const fusion_tensor *t = &m->tensors[i];
		float	   *p = m->params + t->offset;
		int			is_ln = strstr(t->name, "norm") || strstr(t->name, "LayerNorm");
		int			is_bias = strstr(t->name, ".bias") != NULL;

		for (size_t j = 0; j < t->numel; j++)
			p[j] = is_bias ? 0.0f : is_ln ? 1.0f
				: 0.02f * normal_draw(seed, t->offset + j);
	}
	*out = m;
	return MMSA_OK;
}

void
fusion_free(fusion_model *m)
{
	if (!m)
		return;
	free(m->params);
	free(m->grads);
	if (m->file)
	{
		safetensors_close(m->file);
		free(m->file);
	}
	free(m->tensors);
	free(m->acts);
	free(m->dacts);
	free(m);
}

const fusion_config *
fusion_get_config(const fusion_model *m)
{
	return &m->cfg;
}

/*
 * A loaded model reads its parameters in place in the mapped file, which
 * is read-only: asking for a writable buffer makes a private copy first
 * (NULL when out of memory).
 */
float *
fusion_params(fusion_model *m)
{
	if (m->params == NULL)
	{
		m->params = malloc(m->n_params * sizeof(float));
		if (m->params == NULL)
			return NULL;
		memcpy(m->params, m->wts, m->n_params * sizeof(float));
		m->wts = m->params;
	}
	return m->params;
}

float *
fusion_grads(fusion_model *m)
{
	return ensure_grads(m);
}

size_t
fusion_num_params(const fusion_model *m)
{
	return m->n_params;
}

int
fusion_num_tensors(const fusion_model *m)
{
	return m->n_tensors;
}

const fusion_tensor *
fusion_tensor_at(const fusion_model *m, int i)
{
	return i >= 0 && i < m->n_tensors ? &m->tensors[i] : NULL;
}

const fusion_tensor *
fusion_find_tensor(const fusion_model *m, const char *name)
{
	for (int i = 0; i < m->n_tensors; i++)
		if (strcmp(m->tensors[i].name, name) == 0)
			return &m->tensors[i];
	return NULL;
}

void
fusion_zero_grad(fusion_model *m)
{
	if (ensure_grads(m))
		memset(m->grads, 0, m->n_params * sizeof(float));
}

/* ---- activation layout --------------------------------------------------- */

typedef struct bump
{
	float	   *base;
	size_t		off;
} bump;

static float *
take(bump *bp, size_t n)
{
	float	   *p = bp->base ? bp->base + bp->off : NULL;

	bp->off += (n + 15) & ~(size_t) 15;
	return p;
}

static void
layout_mha(bump *bp, mha_a *a, int B, int Tq, int Tk, int C, int NH)
{
	a->q = take(bp, (size_t) B * Tq * C);
	a->k = take(bp, (size_t) B * Tk * C);
	a->v = take(bp, (size_t) B * Tk * C);
	a->att = take(bp, (size_t) B * NH * Tq * Tk);
	a->ctx = take(bp, (size_t) B * Tq * C);
	a->out = take(bp, (size_t) B * Tq * C);
}

static void
layout_encoder(bump *bp, encoder_a *a, int B, int S, int C, int NH, int FF)
{
	size_t		N = (size_t) B * S;

	layout_mha(bp, &a->attn, B, S, S, C, NH);
	a->r1 = take(bp, N * C);
	a->h1 = take(bp, N * C);
	a->mean1 = take(bp, N);
	a->rstd1 = take(bp, N);
	a->f1 = take(bp, N * FF);
	a->g = take(bp, N * FF);
	a->f2 = take(bp, N * C);
	a->r2 = take(bp, N * C);
	a->mean2 = take(bp, N);
	a->rstd2 = take(bp, N);
	a->out = take(bp, N * C);
}

static void
layout_clf(bump *bp, clf_a *a, int B, int n)
{
	a->in = take(bp, (size_t) B * n);
	a->drop = take(bp, (size_t) B * n);
	a->logits = take(bp, (size_t) B * FUSION_CLASSES);
}

/* Assigns every activation pointer for (B,T) from base; returns floats used. */
static size_t
fusion_layout(fusion_model *m, float *base, int B, int T)
{
	const fusion_config *c = &m->cfg;
	int			C = c->hidden,
				DI = c->image_width,
				NI = c->image_tokens,
				NH = c->heads;
	int			S = c->kind == FUSION_OTE ? 2 : T + NI;
	bump		bp = {base, 0};

	m->addmask = take(&bp, (size_t) B * S);
	m->qmask = take(&bp, (size_t) B * S);
	m->scratch = take(&bp, (size_t) (T > S ? T : S) + NI);
	switch (c->kind)
	{
		case FUSION_BERT:
			layout_clf(&bp, &m->c, B, C);
			break;
		case FUSION_RESNET:
			layout_clf(&bp, &m->c, B, DI);
			break;
		case FUSION_NATIVECAT:
			layout_clf(&bp, &m->c, B, C + DI);
			break;
		case FUSION_NATIVECOMBINE:
			layout_clf(&bp, &m->ct, B, C);
			layout_clf(&bp, &m->ci, B, DI);
			break;
		case FUSION_CMAC:
		case FUSION_HSTEC:
		case FUSION_OTE:
			{
				int			NP = c->kind == FUSION_OTE ? 1 : NI;

				m->pimg.lin = take(&bp, (size_t) B * NP * C);
				m->pimg.mean = take(&bp, (size_t) B * NP);
				m->pimg.rstd = take(&bp, (size_t) B * NP);
				m->pimg.out = take(&bp, (size_t) B * NP * C);
			}
			m->pool_a = take(&bp, (size_t) B * C);
			m->pool_b = take(&bp, (size_t) B * C);
			if (c->kind == FUSION_CMAC)
			{
				layout_mha(&bp, &m->i2t, B, NI, T, C, NH);
				layout_mha(&bp, &m->t2i, B, T, NI, C, NH);
			}
			else
			{
				m->hcat = take(&bp, (size_t) B * S * C);
				layout_encoder(&bp, &m->enc, B, S, C, NH, c->ffn);
			}
			if (c->kind == FUSION_OTE)
				layout_clf(&bp, &m->c, B, C);
			else
			{
				layout_clf(&bp, &m->ct, B, 2 * C);
				layout_clf(&bp, &m->ci, B, DI + C);
			}
			break;
	}
	return bp.off;
}

/* ---- models ---------------------------------------------------------------- */

enum
{
	SITE_CLF = 1, SITE_CLF_T, SITE_CLF_I, SITE_I2T, SITE_T2I, SITE_ENCODER
};

static mmsa_status
check_inputs(fusion_model *m, const float *H_T, const int32_t *mask,
			 const float *F_T, const float *H_I, const float *F_I,
			 int B, int T, const float *logits, mmsa_error *err)
{
	int			uses = fusion_inputs(m->cfg.kind);

	if (B <= 0 || B > 1 << 20 || T <= 0 || T > 1 << 16)
		return mmsa_set_error(err, MMSA_ERR_INVALID, "fusion: bad batch shape B=%d T=%d", B, T);
	/* row counts of the products are ints; keep B*(T+NI) tokens well inside */
	if ((int64_t) B * (T + m->cfg.image_tokens) > (1 << 24))
		return mmsa_set_error(err, MMSA_ERR_LIMIT,
							  "fusion: batch of %d x (%d + %d) tokens exceeds the limit of %d",
							  B, T, m->cfg.image_tokens, 1 << 24);
	if (!logits ||
		((uses & FUSION_USES_HT) && !H_T) || ((uses & FUSION_USES_FT) && !F_T) ||
		((uses & FUSION_USES_HI) && !H_I) || ((uses & FUSION_USES_FI) && !F_I))
		return mmsa_set_error(err, MMSA_ERR_INVALID,
							  "fusion: model %s needs an input that is missing",
							  fusion_kind_name(m->cfg.kind));
	if ((uses & FUSION_USES_HT) && mask)
		for (int b = 0; b < B; b++)
		{
			int			n = 0;

			for (int t = 0; t < T; t++)
			{
				int32_t		v = mask[(size_t) b * T + t];

				if (v != 0 && v != 1)
					return mmsa_set_error(err, MMSA_ERR_INVALID,
										  "fusion: attention mask value %d at (%d,%d) is not 0 or 1",
										  (int) v, b, t);
				n += v;
			}
			if (n == 0)
				return mmsa_set_error(err, MMSA_ERR_INVALID,
									  "fusion: attention mask row %d has no token", b);
		}
	return MMSA_OK;
}

/* Key mask (additive) and query weights of the text, or [text; image]. */
static void
build_masks(fusion_model *m, const int32_t *mask, int B, int T, int S)
{
	for (int b = 0; b < B; b++)
		for (int s = 0; s < S; s++)
		{
			int			valid = s >= T || !mask || mask[(size_t) b * T + s];

			m->qmask[(size_t) b * S + s] = valid ? 1.0f : 0.0f;
			m->addmask[(size_t) b * S + s] = valid ? 0.0f : -INFINITY;
		}
}

mmsa_status
fusion_forward(fusion_model *m, const float *H_T, const int32_t *mask,
			   const float *F_T, const float *H_I, const float *F_I,
			   int B, int T, float *logits, int training, uint64_t seed,
			   mmsa_error *err)
{
	const fusion_config *c = &m->cfg;
	int			C = c->hidden,
				DI = c->image_width,
				NI = c->image_tokens,
				NH = c->heads;
	size_t		need;
	float		pa;

	m->have_forward = 0;
	if (check_inputs(m, H_T, mask, F_T, H_I, F_I, B, T, logits, err) != MMSA_OK)
		return err->status;
	if (mmsa_interrupted())
		return mmsa_set_error(err, MMSA_ERR_CANCELED, "fusion: canceled");
	need = fusion_layout(m, NULL, B, T);
	if (need > m->acts_cap)
	{
		float	   *a = malloc(need * sizeof(float));

		if (!a)
			return mmsa_set_error(err, MMSA_ERR_NOMEM,
								  "fusion: out of memory for activations (%zu floats)", need);
		free(m->acts);
		m->acts = a;
		m->acts_cap = need;
	}
	fusion_layout(m, m->acts, B, T);
	m->B = B;
	m->T = T;
	m->training = training != 0;
	m->seed = seed;
	m->H_T = H_T;
	m->F_T = F_T;
	m->H_I = H_I;
	m->F_I = F_I;
	pa = m->training ? c->attn_dropout : 0.0f;

	switch (c->kind)
	{
		case FUSION_BERT:
			/* logits = Classifier(F_T) */
			classifier_forward(m, &m->c, &m->clf, F_T, C, NULL, 0, B,
							   dropout_site_seed(seed, SITE_CLF));
			memcpy(logits, m->c.logits, (size_t) B * FUSION_CLASSES * sizeof(float));
			break;
		case FUSION_RESNET:
			/* logits = Classifier(F_I) */
			classifier_forward(m, &m->c, &m->clf, F_I, DI, NULL, 0, B,
							   dropout_site_seed(seed, SITE_CLF));
			memcpy(logits, m->c.logits, (size_t) B * FUSION_CLASSES * sizeof(float));
			break;
		case FUSION_NATIVECAT:
			/* logits = Classifier([F_T; F_I]) */
			classifier_forward(m, &m->c, &m->clf, F_T, C, F_I, DI, B,
							   dropout_site_seed(seed, SITE_CLF));
			memcpy(logits, m->c.logits, (size_t) B * FUSION_CLASSES * sizeof(float));
			break;
		case FUSION_NATIVECOMBINE:
			/* logits = TextClassifier(F_T) + ImageClassifier(F_I) */
			classifier_forward(m, &m->ct, &m->clf_t, F_T, C, NULL, 0, B,
							   dropout_site_seed(seed, SITE_CLF_T));
			classifier_forward(m, &m->ci, &m->clf_i, F_I, DI, NULL, 0, B,
							   dropout_site_seed(seed, SITE_CLF_I));
			residual_forward(logits, m->ct.logits, m->ci.logits, (long) B * FUSION_CLASSES);
			break;
		case FUSION_CMAC:
			build_masks(m, mask, B, T, T);
			/* HI = P_I(H_I): (B,NI,C) */
			proj_forward(m, &m->pimg, &m->image_proj, H_I, B * NI);
			/* A_{I->T} = Attention(HI, H_T, H_T), a_{I->T} = mean over NI */
			mha_forward(&m->i2t, &m->attn_i2t, m->wts, m->pimg.out, H_T,
						m->addmask, B, NI, T, C, NH, pa,
						dropout_site_seed(seed, SITE_I2T));
			masked_mean_forward(m->pool_a, m->i2t.out, NULL, B, NI, C);
			/* A_{T->I} = Attention(H_T, HI, HI), a_{T->I} = masked mean over T */
			mha_forward(&m->t2i, &m->attn_t2i, m->wts, H_T, m->pimg.out,
						NULL, B, T, NI, C, NH, pa,
						dropout_site_seed(seed, SITE_T2I));
			if (mmsa_interrupted())
				return mmsa_set_error(err, MMSA_ERR_CANCELED, "fusion: canceled");
			masked_mean_forward(m->pool_b, m->t2i.out, m->qmask, B, T, C);
			/* p_T = TextClassifier([F_T; a_{I->T}]), p_I = ImageClassifier([F_I; a_{T->I}]) */
			classifier_forward(m, &m->ct, &m->clf_t, F_T, C, m->pool_a, C, B,
							   dropout_site_seed(seed, SITE_CLF_T));
			classifier_forward(m, &m->ci, &m->clf_i, F_I, DI, m->pool_b, C, B,
							   dropout_site_seed(seed, SITE_CLF_I));
			residual_forward(logits, m->ct.logits, m->ci.logits, (long) B * FUSION_CLASSES);
			break;
		case FUSION_HSTEC:
			build_masks(m, mask, B, T, T + NI);
			proj_forward(m, &m->pimg, &m->image_proj, H_I, B * NI);
			/* H_concat = [H_T; P_I(H_I)]: (B,T+NI,C) */
			seqcat_forward(m->hcat, H_T, T, m->pimg.out, NI, B, C);
			/* A = EncoderLayer(H_concat), a = masked mean over the sequence */
			encoder_forward(m, &m->enc, &m->encoder, m->hcat, m->addmask, B,
							T + NI, dropout_site_seed(seed, SITE_ENCODER));
			if (mmsa_interrupted())
				return mmsa_set_error(err, MMSA_ERR_CANCELED, "fusion: canceled");
			masked_mean_forward(m->pool_a, m->enc.out, m->qmask, B, T + NI, C);
			classifier_forward(m, &m->ct, &m->clf_t, F_T, C, m->pool_a, C, B,
							   dropout_site_seed(seed, SITE_CLF_T));
			classifier_forward(m, &m->ci, &m->clf_i, F_I, DI, m->pool_a, C, B,
							   dropout_site_seed(seed, SITE_CLF_I));
			residual_forward(logits, m->ct.logits, m->ci.logits, (long) B * FUSION_CLASSES);
			break;
		case FUSION_OTE:
			/* F_concat = [P_I(F_I); F_T]: (B,2,C) */
			proj_forward(m, &m->pimg, &m->image_proj, F_I, B);
			seqcat_forward(m->hcat, m->pimg.out, 1, F_T, 1, B, C);
			/* F_attn = EncoderLayer(F_concat); pooled = mean of the two tokens */
			encoder_forward(m, &m->enc, &m->encoder, m->hcat, NULL, B, 2,
							dropout_site_seed(seed, SITE_ENCODER));
			masked_mean_forward(m->pool_a, m->enc.out, NULL, B, 2, C);
			classifier_forward(m, &m->c, &m->clf, m->pool_a, C, NULL, 0, B,
							   dropout_site_seed(seed, SITE_CLF));
			memcpy(logits, m->c.logits, (size_t) B * FUSION_CLASSES * sizeof(float));
			break;
	}
	m->have_forward = 1;
	return MMSA_OK;
}

mmsa_status
fusion_backward(fusion_model *m, const float *dlogits, float *dH_T,
				float *dF_T, mmsa_error *err)
{
	const fusion_config *c = &m->cfg;
	int			C = c->hidden,
				DI = c->image_width,
				NI = c->image_tokens,
				B = m->B,
				T = m->T;
	uint64_t	seed = m->seed;
	float		pa = m->training ? c->attn_dropout : 0.0f;
	size_t		nlog = (size_t) B * FUSION_CLASSES;

	if (!m->have_forward)
		return mmsa_set_error(err, MMSA_ERR_INVALID, "fusion: backward without a forward");
	if (!dlogits)
		return mmsa_set_error(err, MMSA_ERR_INVALID, "fusion: dlogits missing");
	/* gradient buffers exist only in models that are trained */
	if (m->dacts_cap < m->acts_cap)
	{
		free(m->dacts);
		m->dacts = malloc(m->acts_cap * sizeof(float));
		m->dacts_cap = m->dacts ? m->acts_cap : 0;
	}
	if (!m->dacts || !ensure_grads(m))
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "fusion: out of memory for gradients");
	memset(m->dacts, 0, fusion_layout(m, m->acts, B, T) * sizeof(float));
	if (dH_T)
		memset(dH_T, 0, (size_t) B * T * C * sizeof(float));
	if (dF_T)
		memset(dF_T, 0, (size_t) B * C * sizeof(float));

	switch (c->kind)
	{
		case FUSION_BERT:
		case FUSION_RESNET:
		case FUSION_NATIVECAT:
			memcpy(DACT(m, m->c.logits), dlogits, nlog * sizeof(float));
			if (c->kind == FUSION_BERT)
				classifier_backward(m, &m->c, &m->clf, dF_T, C, NULL, 0, B,
									dropout_site_seed(seed, SITE_CLF));
			else if (c->kind == FUSION_RESNET)
				classifier_backward(m, &m->c, &m->clf, NULL, DI, NULL, 0, B,
									dropout_site_seed(seed, SITE_CLF));
			else
				classifier_backward(m, &m->c, &m->clf, dF_T, C, NULL, DI, B,
									dropout_site_seed(seed, SITE_CLF));
			break;
		case FUSION_NATIVECOMBINE:
			memcpy(DACT(m, m->ct.logits), dlogits, nlog * sizeof(float));
			memcpy(DACT(m, m->ci.logits), dlogits, nlog * sizeof(float));
			classifier_backward(m, &m->ct, &m->clf_t, dF_T, C, NULL, 0, B,
								dropout_site_seed(seed, SITE_CLF_T));
			classifier_backward(m, &m->ci, &m->clf_i, NULL, DI, NULL, 0, B,
								dropout_site_seed(seed, SITE_CLF_I));
			break;
		case FUSION_CMAC:
			memcpy(DACT(m, m->ct.logits), dlogits, nlog * sizeof(float));
			memcpy(DACT(m, m->ci.logits), dlogits, nlog * sizeof(float));
			classifier_backward(m, &m->ct, &m->clf_t, dF_T, C,
								DACT(m, m->pool_a), C, B,
								dropout_site_seed(seed, SITE_CLF_T));
			classifier_backward(m, &m->ci, &m->clf_i, NULL, DI,
								DACT(m, m->pool_b), C, B,
								dropout_site_seed(seed, SITE_CLF_I));
			masked_mean_backward(DACT(m, m->t2i.out), DACT(m, m->pool_b),
								 m->qmask, B, T, C);
			mha_backward(m, &m->t2i, &m->attn_t2i, dH_T, DACT(m, m->pimg.out),
						 m->H_T, m->pimg.out, B, T, NI, pa,
						 dropout_site_seed(seed, SITE_T2I));
			if (mmsa_interrupted())
				return mmsa_set_error(err, MMSA_ERR_CANCELED, "fusion: canceled");
			masked_mean_backward(DACT(m, m->i2t.out), DACT(m, m->pool_a),
								 NULL, B, NI, C);
			mha_backward(m, &m->i2t, &m->attn_i2t, DACT(m, m->pimg.out), dH_T,
						 m->pimg.out, m->H_T, B, NI, T, pa,
						 dropout_site_seed(seed, SITE_I2T));
			proj_backward(m, &m->pimg, &m->image_proj, m->H_I, B * NI);
			break;
		case FUSION_HSTEC:
			memcpy(DACT(m, m->ct.logits), dlogits, nlog * sizeof(float));
			memcpy(DACT(m, m->ci.logits), dlogits, nlog * sizeof(float));
			classifier_backward(m, &m->ct, &m->clf_t, dF_T, C,
								DACT(m, m->pool_a), C, B,
								dropout_site_seed(seed, SITE_CLF_T));
			classifier_backward(m, &m->ci, &m->clf_i, NULL, DI,
								DACT(m, m->pool_a), C, B,
								dropout_site_seed(seed, SITE_CLF_I));
			masked_mean_backward(DACT(m, m->enc.out), DACT(m, m->pool_a),
								 m->qmask, B, T + NI, C);
			encoder_backward(m, &m->enc, &m->encoder, DACT(m, m->hcat),
							 m->hcat, B, T + NI,
							 dropout_site_seed(seed, SITE_ENCODER));
			if (mmsa_interrupted())
				return mmsa_set_error(err, MMSA_ERR_CANCELED, "fusion: canceled");
			concat_backward(dH_T, T * C, DACT(m, m->pimg.out), NI * C,
							DACT(m, m->hcat), B);
			proj_backward(m, &m->pimg, &m->image_proj, m->H_I, B * NI);
			break;
		case FUSION_OTE:
			memcpy(DACT(m, m->c.logits), dlogits, nlog * sizeof(float));
			classifier_backward(m, &m->c, &m->clf, DACT(m, m->pool_a), C,
								NULL, 0, B, dropout_site_seed(seed, SITE_CLF));
			masked_mean_backward(DACT(m, m->enc.out), DACT(m, m->pool_a),
								 NULL, B, 2, C);
			encoder_backward(m, &m->enc, &m->encoder, DACT(m, m->hcat),
							 m->hcat, B, 2, dropout_site_seed(seed, SITE_ENCODER));
			concat_backward(DACT(m, m->pimg.out), C, dF_T, C,
							DACT(m, m->hcat), B);
			proj_backward(m, &m->pimg, &m->image_proj, m->F_I, B);
			break;
	}
	return MMSA_OK;
}

/* ---- save / load ------------------------------------------------------------ */

mmsa_status
fusion_save(const fusion_model *m, const char *path, mmsa_error *err)
{
	st_write_tensor *wt = calloc(m->n_tensors, sizeof(st_write_tensor));
	char		vals[6][32];
	const char *keys[6] = {"mmsa.fusion.kind", "mmsa.fusion.hidden",
		"mmsa.fusion.heads", "mmsa.fusion.image_width",
	"mmsa.fusion.image_tokens", "mmsa.fusion.ffn"};
	const char *values[6];
	mmsa_status status;

	if (!wt)
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "fusion: out of memory");
	snprintf(vals[0], 32, "%s", fusion_kind_name(m->cfg.kind));
	snprintf(vals[1], 32, "%d", m->cfg.hidden);
	snprintf(vals[2], 32, "%d", m->cfg.heads);
	snprintf(vals[3], 32, "%d", m->cfg.image_width);
	snprintf(vals[4], 32, "%d", m->cfg.image_tokens);
	snprintf(vals[5], 32, "%d", m->cfg.ffn);
	for (int i = 0; i < 6; i++)
		values[i] = vals[i];
	for (int i = 0; i < m->n_tensors; i++)
	{
		const fusion_tensor *t = &m->tensors[i];

		wt[i].name = t->name;
		wt[i].dtype = ST_F32;
		wt[i].ndim = t->ndim;
		wt[i].shape[0] = t->shape[0];
		wt[i].shape[1] = t->shape[1];
		wt[i].data = m->wts + t->offset;
	}
	status = safetensors_write(path, wt, m->n_tensors, keys, values, 6, err);
	free(wt);
	return status;
}

/* An integer metadata value of f, in [1, max]. */
static mmsa_status
meta_int(safetensors_file *f, const char *key, int max, int *out, mmsa_error *err)
{
	const char *v = safetensors_metadata(f, key);
	char	   *end;
	long		x;

	if (!v)
		return mmsa_set_error(err, MMSA_ERR_FORMAT, "fusion: %s: metadata %s missing", f->path, key);
	x = strtol(v, &end, 10);
	if (end == v || *end != '\0' || x < 1 || x > max)
		return mmsa_set_error(err, MMSA_ERR_FORMAT, "fusion: %s: metadata %s = \"%s\" is not valid",
							  f->path, key, v);
	*out = (int) x;
	return MMSA_OK;
}

/*
 * Loads a head.  A file written by fusion_save holds the tensors one after
 * the other in the model's parameter order, 4-byte aligned: then the
 * parameters are read in place in the read-only mapping, which every
 * process that loads the same file shares (no private copy); any other
 * layout is copied.
 */
mmsa_status
fusion_load(const char *path, fusion_model **out, mmsa_error *err)
{
	safetensors_file *f;
	fusion_config cfg;
	fusion_model *m = NULL;
	const char *kind;
	const float *base = NULL;
	int			in_place = 1;
	int			k;

	*out = NULL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "fusion: out of memory");
	if (safetensors_open(path, f, err) != MMSA_OK)
	{
		free(f);
		return err->status;
	}
	kind = safetensors_metadata(f, "mmsa.fusion.kind");
	k = fusion_kind_from_name(kind);
	if (k < 0)
	{
		mmsa_set_error(err, MMSA_ERR_FORMAT, "fusion: %s: metadata mmsa.fusion.kind %s%s%s is not a known model",
					   path, kind ? "\"" : "", kind ? kind : "missing", kind ? "\"" : "");
		goto fail;
	}
	cfg = fusion_default_config((fusion_kind) k);
	if (meta_int(f, "mmsa.fusion.hidden", 65536, &cfg.hidden, err) != MMSA_OK ||
		meta_int(f, "mmsa.fusion.heads", 65536, &cfg.heads, err) != MMSA_OK ||
		meta_int(f, "mmsa.fusion.image_width", 65536, &cfg.image_width, err) != MMSA_OK ||
		meta_int(f, "mmsa.fusion.image_tokens", 4096, &cfg.image_tokens, err) != MMSA_OK ||
		meta_int(f, "mmsa.fusion.ffn", 262144, &cfg.ffn, err) != MMSA_OK)
		goto fail;
	if (fusion_new(&cfg, 0, &m, err) != MMSA_OK)
		goto fail;
	if (f->n_tensors != m->n_tensors)
	{
		mmsa_set_error(err, MMSA_ERR_FORMAT, "fusion: %s has %d tensors, model %s needs %d",
					   path, f->n_tensors, kind, m->n_tensors);
		goto fail;
	}
	for (int i = 0; i < m->n_tensors; i++)
	{
		const fusion_tensor *t = &m->tensors[i];
		const st_tensor *st = safetensors_find(f, t->name);
		const float *src = safetensors_get_f32(f, t->name, t->ndim, t->shape, err);

		if (!src)
			goto fail;
		if (i == 0)
			base = src - t->offset;
		if (st->dtype != ST_F32 || src != base + t->offset)
			in_place = 0;
	}
	if (in_place)
	{
		m->wts = base;
		m->file = f;
	}
	else
	{
		if (!(m->params = malloc(m->n_params * sizeof(float))))
		{
			mmsa_set_error(err, MMSA_ERR_NOMEM, "fusion: out of memory for %zu parameters", m->n_params);
			goto fail;
		}
		m->wts = m->params;
		for (int i = 0; i < m->n_tensors; i++)
		{
			const fusion_tensor *t = &m->tensors[i];

			memcpy(m->params + t->offset,
				   safetensors_get_f32(f, t->name, t->ndim, t->shape, err),
				   t->numel * sizeof(float));
		}
		safetensors_close(f);
		free(f);
	}
	*out = m;
	return MMSA_OK;

fail:
	fusion_free(m);
	safetensors_close(f);
	free(f);
	return err->status;
}
