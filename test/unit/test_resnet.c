/*
 * test_resnet.c
 *	  Unit tests of the ResNet-50 layers and loader: convolution and max
 *	  pooling against direct loops on every kernel path the host runs
 *	  (isa_paths.h), each SIMD path bit for bit against AVX2, and
 *	  resnet_model_load / resnet_forward
 *	  on checkpoints written here (complete, with a tensor missing, with a
 *	  wrong shape, without a file, with bad config.json or labels).
 *
 *	  Scratch files go to $MMSA_TMP (default /tmp).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conv.h"
#include "gemm.h"
#include "isa_paths.h"
#include "resnet.h"
#include "safetensors.h"
#include "tap.h"

/* ---- layers against direct loops ------------------------------------- */

/*
 * A digest of each layer output computed on the path in use, in order, so
 * that the paths can be compared bit for bit afterwards (digests_agree).
 */
#define MAX_DIGESTS 256
static unsigned long long digests[ISA_MAX_PATHS][2][MAX_DIGESTS];
static int	ndigests[ISA_MAX_PATHS][2];
static int	digest_path = -1,
			digest_threads;

static void
record_output(const float *v, size_t n)
{
	const unsigned char *b = (const unsigned char *) v;
	unsigned long long h = 1469598103934665603ULL;	/* FNV-1a */

	if (digest_path < 0 || ndigests[digest_path][digest_threads] >= MAX_DIGESTS)
		return;
	for (size_t i = 0; i < n * sizeof(float); i++)
		h = (h ^ b[i]) * 1099511628211ULL;
	digests[digest_path][digest_threads][ndigests[digest_path][digest_threads]++] = h;
}

static float
frand(unsigned *state)
{
	*state = *state * 1103515245u + 12345u;
	return ((*state >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* Direct convolution over (Cin, B, H, W) with zero padding. */
static void
conv_direct(float *out, const float *inp, const float *w, const float *bias,
			int B, int Cin, int H, int W, int Cout, int k, int s, int p)
{
	int			Ho = conv_out_size(H, k, s, p),
				Wo = conv_out_size(W, k, s, p);

	for (int o = 0; o < Cout; o++)
		for (int b = 0; b < B; b++)
			for (int y = 0; y < Ho; y++)
				for (int x = 0; x < Wo; x++)
				{
					double		acc = bias[o];

					for (int c = 0; c < Cin; c++)
						for (int i = 0; i < k; i++)
							for (int j = 0; j < k; j++)
							{
								int			iy = y * s - p + i,
											ix = x * s - p + j;

								if (iy >= 0 && iy < H && ix >= 0 && ix < W)
									acc += (double) w[((o * Cin + c) * k + i) * k + j] *
										inp[(((size_t) c * B + b) * H + iy) * W + ix];
							}
					out[(((size_t) o * B + b) * Ho + y) * Wo + x] = (float) acc;
				}
}

static void
test_conv_layers(const conv_exec *ex)
{
	struct
	{
		int			k,
					s,
					p,
					H;
	}			cases[] = {
		/* output rows under 32 wide: gathered through tables */
		{3, 1, 1, 9}, {3, 2, 1, 10}, {7, 2, 3, 15}, {1, 2, 0, 8}, {1, 1, 0, 6},
		{9, 1, 4, 12},			/* 81 taps: more than the 64 table slots */
		/* rows of 32 or more: gathered as runs (the 8-wide stride-2 copy) */
		{3, 1, 1, 40}, {3, 2, 1, 70}, {7, 2, 3, 66}};
	unsigned	seed = 7;

	for (size_t t = 0; t < sizeof(cases) / sizeof(cases[0]); t++)
	{
		int			B = 3,
					Cin = 5,
					Cout = 4,
					k = cases[t].k,
					s = cases[t].s,
					p = cases[t].p,
					H = cases[t].H,
					W = H + 1;
		int			Ho = conv_out_size(H, k, s, p),
					Wo = conv_out_size(W, k, s, p);
		size_t		nin = (size_t) Cin * B * H * W,
					nout = (size_t) Cout * B * Ho * Wo;
		float	   *inp = malloc(sizeof(float) * nin),
				   *w = malloc(sizeof(float) * Cout * Cin * k * k),
				   *bias = malloc(sizeof(float) * Cout),
				   *want = malloc(sizeof(float) * nout),
				   *got = malloc(sizeof(float) * nout);
		float	   *wp = malloc(sizeof(float) * conv2d_packed_floats(Cout, Cin, k));
		char		name[96];

		/* sums of Cin*k*k products in another order: rounding grows with it */
		double		tol = Cin * k * k > 100 ? 1e-7 * Cin * k * k : 1e-5;

		for (size_t i = 0; i < nin; i++)
			inp[i] = frand(&seed);
		for (int i = 0; i < Cout * Cin * k * k; i++)
			w[i] = frand(&seed);
		for (int i = 0; i < Cout; i++)
			bias[i] = frand(&seed);
		conv_direct(want, inp, w, bias, B, Cin, H, W, Cout, k, s, p);
		conv2d_weight_pack(wp, w, Cout, Cin, k);
		conv2d_forward(ex, got, inp, wp, bias, NULL, 0, B, Cin, H, W, Cout, k, s, p, NULL, 0);
		record_output(got, nout);
		snprintf(name, sizeof(name), "conv2d_forward k=%d s=%d p=%d vs direct loops (%d threads)",
				 k, s, p, ex->nthreads);
		tap_close_within(want, got, (long) nout, tol, name);

		/* with residual and ReLU */
		for (size_t i = 0; i < nout; i++)
			want[i] = want[i] + 0.5f > 0.0f ? want[i] + 0.5f : 0.0f;
		{
			float	   *res = malloc(sizeof(float) * nout);

			for (size_t i = 0; i < nout; i++)
				res[i] = 0.5f;
			conv2d_forward(ex, got, inp, wp, bias, res, 1, B, Cin, H, W, Cout, k, s, p, NULL, 0);
			record_output(got, nout);
			tap_close_within(want, got, (long) nout, tol, "conv2d_forward + residual + ReLU");

			/*
			 * stride 2 with a work buffer: through the phase planes, the
			 * very floats of the gathered unfolding; one float short of
			 * the buffer it needs, the gathering again
			 */
			if (s == 2)
			{
				size_t		wf = conv2d_work_floats(Cin, B, H, W, k, s, p);
				float	   *work = malloc(sizeof(float) * (wf + 1)),
						   *got3 = malloc(sizeof(float) * nout);

				for (size_t i = 0; i <= wf; i++)
					work[i] = NAN;	/* any float the planes leave unset shows */
				conv2d_forward(ex, got3, inp, wp, bias, res, 1, B, Cin, H, W, Cout, k, s, p, work, wf);
				record_output(got3, nout);
				snprintf(name, sizeof(name), "conv2d_forward k=%d s=%d p=%d through phase planes: bit-identical",
						 k, s, p);
				ok(memcmp(got, got3, sizeof(float) * nout) == 0, "%s", name);
				ok(!isnan(work[0]) && !isnan(work[wf - 1]) && isnan(work[wf]),
				   "the phase planes fill conv2d_work_floats, no more");
				memset(got3, 0, sizeof(float) * nout);
				for (size_t i = 0; i <= wf; i++)
					work[i] = NAN;
				conv2d_forward(ex, got3, inp, wp, bias, res, 1, B, Cin, H, W, Cout, k, s, p, work, wf - 1);
				ok(memcmp(got, got3, sizeof(float) * nout) == 0 && isnan(work[0]) && isnan(work[wf - 1]),
				   "conv2d_forward k=%d s=%d p=%d: a work buffer too small is not used", k, s, p);
				free(work);
				free(got3);
			}

			/*
			 * the unfolding gathered as it is packed gives the very floats
			 * of a product over the whole im2col matrix
			 */
			if (!(k == 1 && s == 1 && p == 0))
			{
				int			K = Cin * k * k;
				size_t		N = (size_t) B * Ho * Wo;
				float	   *col = calloc((size_t) K * N, sizeof(float)),
						   *got2 = malloc(sizeof(float) * nout),
						   *bp = malloc(sizeof(float) * gemm_bpack_floats(K));
				gemm_epilogue ep = {bias, res, N, 1};

				for (int c = 0; c < Cin; c++)
					for (int ki = 0; ki < k; ki++)
						for (int kj = 0; kj < k; kj++)
							for (int b = 0; b < B; b++)
								for (int oy = 0; oy < Ho; oy++)
									for (int ox = 0; ox < Wo; ox++)
									{
										int			iy = oy * s - p + ki,
													ix = ox * s - p + kj;

										if (iy >= 0 && iy < H && ix >= 0 && ix < W)
											col[((size_t) (c * k + ki) * k + kj) * N +
												((size_t) b * Ho + oy) * Wo + ox] =
												inp[(((size_t) c * B + b) * H + iy) * W + ix];
									}
				gemm_packed_range(got2, N, wp, col, N, Cout, K, 0, Cout, 0, (int) N, &ep, bp);
				snprintf(name, sizeof(name), "conv2d_forward k=%d s=%d p=%d: bit-identical to a product over im2col",
						 k, s, p);
				ok(memcmp(got, got2, sizeof(float) * nout) == 0, "%s", name);
				free(col);
				free(got2);
				free(bp);
			}
			free(res);
		}
		free(inp);
		free(w);
		free(bias);
		free(want);
		free(got);
		free(wp);
	}

	/*
	 * Winograd F(4x4,3x3) and F(2x2,3x3) against direct loops, odd and
	 * even sizes; the fourth: 2 x 4 x 5 tiles of F(4x4), split between
	 * threads by panels; the last: rows of 23 tiles (a map wider than
	 * ResNet's).  The last two of F(2x2) have 144 and 270 tiles, more
	 * than a pass takes (WINOGRAD_PASS_MAX_TILES) even with room for all:
	 * passes of nearly equal size, against passes of 1 and 17 tiles.
	 */
	for (int t = 0; t < 10; t++)
	{
		int			m = t < 5 ? WINOGRAD_F4 : WINOGRAD_F2;
		int			B = 2,
					Cin = 6,
					Cout = (t % 5 == 3) ? 13 : 5,
					H = (t % 5 == 0) ? 7 : (t % 5 == 1 ? 8 : (t % 5 == 2 ? 5 : (t % 5 == 3 ? 16 : 6))),
					W = (t % 5 == 2) ? 9 : (t % 5 == 3 ? 17 : (t % 5 == 4 ? 90 : H));
		size_t		nin = (size_t) Cin * B * H * W,
					nout = (size_t) Cout * B * H * W;
		float	   *inp = malloc(sizeof(float) * nin),
				   *w = malloc(sizeof(float) * Cout * Cin * 9),
				   *U = malloc(sizeof(float) * Cout * Cin * winograd_positions(m)),
				   *Up = malloc(sizeof(float) * winograd_packed_floats(Cout, Cin, m)),
				   *bias = malloc(sizeof(float) * Cout),
				   *res = malloc(sizeof(float) * nout),
				   *want = malloc(sizeof(float) * nout),
				   *got = malloc(sizeof(float) * nout),
				   *V = malloc(sizeof(float) * winograd_floats(Cin > Cout ? Cin : Cout, B, H, W, m)),
				   *M = malloc(sizeof(float) * winograd_floats(Cin > Cout ? Cin : Cout, B, H, W, m)),
				   *got2 = malloc(sizeof(float) * nout);
		char		name[96];

		for (size_t i = 0; i < nin; i++)
			inp[i] = frand(&seed);
		for (int i = 0; i < Cout * Cin * 9; i++)
			w[i] = frand(&seed);
		for (int i = 0; i < Cout; i++)
			bias[i] = frand(&seed);
		for (size_t i = 0; i < nout; i++)
			res[i] = frand(&seed);
		conv_direct(want, inp, w, bias, B, Cin, H, W, Cout, 3, 1, 1);
		for (size_t i = 0; i < nout; i++)
			want[i] = want[i] + res[i] > 0.0f ? want[i] + res[i] : 0.0f;
		winograd_weight_transform(U, w, Cout, Cin, m);
		winograd_weight_pack(Up, U, Cout, Cin, m);
		conv2d_winograd_forward(ex, got, inp, Up, bias, res, 1, B, Cin, H, W, Cout,
								V, winograd_floats(Cin, B, H, W, m), M, winograd_floats(Cout, B, H, W, m), m);
		record_output(got, nout);
		snprintf(name, sizeof(name), "conv2d_winograd_forward F(%dx%d) %dx%d + residual + ReLU vs direct loops",
				 m, m, H, W);
		/* F(4x4, 3x3) rounds more than direct loops: outputs here are ~10 */
		tap_close_within(want, got, (long) nout, 5e-5, name);
		/* in passes of 1 and of 17 tiles: the very same floats */
		for (int pass = 1; pass <= 17; pass += 16)
		{
			conv2d_winograd_forward(ex, got2, inp, Up, bias, res, 1, B, Cin, H, W, Cout,
									V, winograd_pass_floats(Cin, pass, m),
									M, winograd_pass_floats(Cout, pass, m) + 7, m);
			snprintf(name, sizeof(name), "conv2d_winograd_forward F(%dx%d) %dx%d in passes of %d tiles: bit-identical",
					 m, m, H, W, pass);
			ok(memcmp(got, got2, sizeof(float) * nout) == 0, "%s", name);
		}
		free(got2);
		free(inp);
		free(w);
		free(U);
		free(Up);
		free(bias);
		free(res);
		free(want);
		free(got);
		free(V);
		free(M);
	}

	ok(winograd_pass_tiles(64, 64, (size_t) 1 << 26, (size_t) 1 << 26, WINOGRAD_F4) ==
	   WINOGRAD_PASS_MAX_TILES &&
	   winograd_pass_tiles(64, 64, winograd_pass_floats(64, 40, WINOGRAD_F4),
						   (size_t) 1 << 26, WINOGRAD_F4) == 32,
	   "winograd_pass_tiles: at most WINOGRAD_PASS_MAX_TILES, else what V holds in micro-tiles");

	/* max pool 3x3/2 pad 1 against direct loops (padding never wins) */
	{
		int			C = 2,
					B = 2,
					H = 9,
					W = 8,
					Ho = conv_out_size(H, 3, 2, 1),
					Wo = conv_out_size(W, 3, 2, 1);
		float		inp[2 * 2 * 9 * 8],
					got[2 * 2 * 5 * 4],
					want[2 * 2 * 5 * 4];

		for (int i = 0; i < C * B * H * W; i++)
			inp[i] = frand(&seed) - 2.0f;	/* all negative: -inf padding matters */
		for (int q = 0; q < C * B; q++)
			for (int y = 0; y < Ho; y++)
				for (int x = 0; x < Wo; x++)
				{
					float		m = -1e30f;

					for (int i = 0; i < 3; i++)
						for (int j = 0; j < 3; j++)
						{
							int			iy = 2 * y - 1 + i,
										ix = 2 * x - 1 + j;

							if (iy >= 0 && iy < H && ix >= 0 && ix < W && inp[(q * H + iy) * W + ix] > m)
								m = inp[(q * H + iy) * W + ix];
						}
					want[(q * Ho + y) * Wo + x] = m;
				}
		maxpool2d_forward(ex, got, inp, C, B, H, W, 3, 2, 1);
		tap_close_within(want, got, C * B * Ho * Wo, 0.0, "maxpool2d_forward 3x3/2 pad 1");
	}
}

/* ---- checkpoints ------------------------------------------------------- */

#define MAX_TENSORS 400

typedef struct ckpt
{
	int			n;
	st_write_tensor t[MAX_TENSORS];
	char		names[MAX_TENSORS][64];
} ckpt;

static float *zeros;			/* big enough for any tensor */
static float *ones;
static float fc_bias[1000];

static void
add(ckpt *c, const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3,
	const float *data)
{
	st_write_tensor *t = &c->t[c->n];

	snprintf(c->names[c->n], 64, "%s", name);
	t->name = c->names[c->n];
	t->dtype = ST_F32;
	t->ndim = ndim;
	t->shape[0] = d0;
	t->shape[1] = d1;
	t->shape[2] = d2;
	t->shape[3] = d3;
	t->data = data;
	c->n++;
}

static void
add_conv_bn(ckpt *c, const char *conv, const char *bn, int cin, int cout, int k)
{
	char		name[64];

	snprintf(name, sizeof(name), "%s.weight", conv);
	add(c, name, 4, cout, cin, k, k, zeros);
	snprintf(name, sizeof(name), "%s.weight", bn);
	add(c, name, 1, cout, 0, 0, 0, ones);
	snprintf(name, sizeof(name), "%s.bias", bn);
	add(c, name, 1, cout, 0, 0, 0, zeros);
	snprintf(name, sizeof(name), "%s.running_mean", bn);
	add(c, name, 1, cout, 0, 0, 0, zeros);
	snprintf(name, sizeof(name), "%s.running_var", bn);
	add(c, name, 1, cout, 0, 0, 0, ones);
}

/* A torchvision resnet50 state dict: zero convolutions, identity BatchNorm. */
static void
build_ckpt(ckpt *c)
{
	static const int blocks[4] = {3, 4, 6, 3};
	int			in_ch = 64;

	c->n = 0;
	add_conv_bn(c, "conv1", "bn1", 3, 64, 7);
	for (int s = 0; s < 4; s++)
		for (int i = 0; i < blocks[s]; i++)
		{
			int			w = 64 << s;
			char		conv[48],
						bn[48];

			for (int j = 1; j <= 3; j++)
			{
				snprintf(conv, sizeof(conv), "layer%d.%d.conv%d", s + 1, i, j);
				snprintf(bn, sizeof(bn), "layer%d.%d.bn%d", s + 1, i, j);
				add_conv_bn(c, conv, bn, j == 1 ? in_ch : w, j == 3 ? 4 * w : w, j == 2 ? 3 : 1);
			}
			if (i == 0)
			{
				snprintf(conv, sizeof(conv), "layer%d.0.downsample.0", s + 1);
				snprintf(bn, sizeof(bn), "layer%d.0.downsample.1", s + 1);
				add_conv_bn(c, conv, bn, in_ch, 4 * w, 1);
			}
			in_ch = 4 * w;
		}
	add(c, "fc.weight", 2, 1000, 2048, 0, 0, zeros);
	add(c, "fc.bias", 1, 1000, 0, 0, 0, fc_bias);
}

static int
find(const ckpt *c, const char *name)
{
	for (int i = 0; i < c->n; i++)
		if (strcmp(c->names[i], name) == 0)
			return i;
	return -1;
}

static void
write_text(const char *dir, const char *file, const char *text)
{
	char		path[1024];
	FILE	   *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fp = fopen(path, "w");
	if (fp)
	{
		fputs(text, fp);
		fclose(fp);
	}
}

static const char *good_config =
"{\"architecture\": \"resnet50\", \"stride_on\": \"3x3\", \"batchnorm_eps\": 1e-5,"
" \"num_classes\": 1000, \"labels\": \"labels.txt\","
" \"preprocess\": {\"resize\": 256, \"crop\": 224}}";

static int	cancel_now = 0;

static int
cancel_hook(void)
{
	return cancel_now;
}

/* Loads dir and expects status; the message must contain needle. */
static void
expect_load_error(const char *dir, mmsa_status want, const char *needle, const char *what)
{
	resnet_model *m = NULL;
	mmsa_error	err;
	mmsa_status st;

	mmsa_clear_error(&err);
	st = resnet_model_load(dir, &m, &err);
	ok(st == want && m == NULL && strstr(err.message, needle) != NULL,
	   "%s: %s (%s)", what, mmsa_status_name(st), err.message);
	resnet_model_free(m);
}

static void
test_loader(const char *tmp)
{
	char		dir[900],
				path[1024];
	ckpt	   *c = calloc(1, sizeof(ckpt));
	mmsa_error	err;
	resnet_model *m = NULL;
	mmsa_status st;
	int			i;
	char	   *labels = malloc(1000 * 16 + 1);

	zeros = calloc((size_t) 512 * 512 * 9 + 16, sizeof(float));
	ones = malloc(sizeof(float) * 2048);
	for (i = 0; i < 2048; i++)
		ones[i] = 1.0f;
	for (i = 0; i < 1000; i++)
		fc_bias[i] = 0.001f * i - 0.3f;
	labels[0] = '\0';
	for (i = 0; i < 1000; i++)
		sprintf(labels + strlen(labels), "class %d\n", i);

	snprintf(dir, sizeof(dir), "%s/test_resnet.%d", tmp, (int) getpid());
	mkdir(dir, 0755);
	snprintf(path, sizeof(path), "%s/model.safetensors", dir);

	expect_load_error("/nonexistent/resnet", MMSA_ERR_IO, "config.json", "missing directory");

	/* config and labels, but no model.safetensors */
	write_text(dir, "config.json", good_config);
	write_text(dir, "labels.txt", labels);
	unlink(path);
	expect_load_error(dir, MMSA_ERR_IO, "model.safetensors", "missing model.safetensors");

	/* a complete checkpoint loads and runs */
	build_ckpt(c);
	ok(c->n == 53 * 5 + 2, "checkpoint has %d tensors", c->n);
	if (!ok(safetensors_write(path, c->t, c->n, NULL, NULL, 0, &err) == MMSA_OK,
			"write complete checkpoint"))
		diag("%s", err.message);
	mmsa_clear_error(&err);
	st = resnet_model_load(dir, &m, &err);
	if (ok(st == MMSA_OK, "complete checkpoint loads%s%s", st == MMSA_OK ? "" : ": ",
		   st == MMSA_OK ? "" : err.message))
	{
		float	   *img = calloc((size_t) 2 * 3 * 224 * 224, sizeof(float));
		float		logits[2 * 1000],
					pooled[2 * 2048];
		float	   *tokens = malloc(sizeof(float) * 2 * 49 * 2048);
		int			good;

		ok(m->labels != NULL && strcmp(m->labels[285], "class 285") == 0, "labels read");
		ok(m->preprocess_json != NULL && strstr(m->preprocess_json, "\"crop\"") != NULL,
		   "preprocess object kept: %s", m->preprocess_json ? m->preprocess_json : "(null)");
		for (i = 0; i < 2 * 3 * 224 * 224; i++)
			img[i] = (float) ((i % 97) - 48);
		/* zero convolutions and zero BatchNorm shifts: features 0, logits = fc.bias */
		ok(resnet_forward(m, img, 2, tokens, pooled, logits, &err) == MMSA_OK, "forward B=2");
		good = 1;
		for (i = 0; i < 2 * 1000; i++)
			good &= logits[i] == fc_bias[i % 1000];
		for (i = 0; i < 2 * 2048; i++)
			good &= pooled[i] == 0.0f;
		for (i = 0; i < 2 * 49 * 2048; i++)
			good &= tokens[i] == 0.0f;
		ok(good, "zero network: features 0, logits equal fc.bias");
		ok(resnet_forward(m, img, 0, NULL, NULL, logits, &err) == MMSA_ERR_LIMIT,
		   "batch 0 refused: %s", err.message);
		mmsa_set_interrupt_hook(cancel_hook);
		cancel_now = 1;
		ok(resnet_forward(m, img, 1, NULL, NULL, logits, &err) == MMSA_ERR_CANCELED,
		   "interrupt hook cancels the forward pass");
		cancel_now = 0;
		ok(resnet_forward(m, img, 1, NULL, NULL, logits, &err) == MMSA_OK,
		   "forward runs again after a cancel");
		mmsa_set_interrupt_hook(NULL);
		free(img);
		free(tokens);
		resnet_model_free(m);
		m = NULL;
	}

	/* one tensor missing */
	i = find(c, "layer3.2.bn2.running_var");
	c->t[i] = c->t[c->n - 1];
	memcpy(c->names[i], c->names[c->n - 1], 64);
	c->t[i].name = c->names[i];
	c->n--;
	safetensors_write(path, c->t, c->n, NULL, NULL, 0, &err);
	expect_load_error(dir, MMSA_ERR_FORMAT, "layer3.2.bn2.running_var", "missing tensor");

	/* one tensor with a wrong shape */
	build_ckpt(c);
	i = find(c, "layer2.0.conv2.weight");
	c->t[i].shape[3] = 1;
	safetensors_write(path, c->t, c->n, NULL, NULL, 0, &err);
	expect_load_error(dir, MMSA_ERR_FORMAT, "layer2.0.conv2.weight", "wrong shape");

	/* a wrong-shaped optional conv bias is an error too */
	build_ckpt(c);
	add(c, "layer1.0.conv1.bias", 1, 63, 0, 0, 0, zeros);
	safetensors_write(path, c->t, c->n, NULL, NULL, 0, &err);
	expect_load_error(dir, MMSA_ERR_FORMAT, "layer1.0.conv1.bias", "wrong-shaped conv bias");

	/* fc with another class count than the config */
	build_ckpt(c);
	i = find(c, "fc.weight");
	c->t[i].shape[0] = 10;
	safetensors_write(path, c->t, c->n, NULL, NULL, 0, &err);
	expect_load_error(dir, MMSA_ERR_FORMAT, "fc.weight", "fc shape disagrees with num_classes");

	/* a truncated file */
	build_ckpt(c);
	safetensors_write(path, c->t, c->n, NULL, NULL, 0, &err);
	if (truncate(path, 1000000) == 0)
		expect_load_error(dir, MMSA_ERR_FORMAT, "", "truncated model.safetensors");
	build_ckpt(c);
	safetensors_write(path, c->t, c->n, NULL, NULL, 0, &err);

	/* bad configs */
	write_text(dir, "config.json", "{\"architecture\": \"resnet101\", \"stride_on\": \"3x3\","
			   " \"batchnorm_eps\": 1e-5, \"num_classes\": 1000}");
	expect_load_error(dir, MMSA_ERR_FORMAT, "architecture", "other architecture");
	write_text(dir, "config.json", "{\"architecture\": \"resnet50\", \"stride_on\": \"2x2\","
			   " \"batchnorm_eps\": 1e-5, \"num_classes\": 1000}");
	expect_load_error(dir, MMSA_ERR_FORMAT, "stride_on", "bad stride placement");
	write_text(dir, "config.json", "{\"architecture\": \"resnet50\", \"stride_on\": \"1x1\","
			   " \"num_classes\": 1000}");
	expect_load_error(dir, MMSA_ERR_FORMAT, "batchnorm_eps", "missing eps");
	write_text(dir, "config.json", "{\"architecture\": \"resnet50\",");
	expect_load_error(dir, MMSA_ERR_FORMAT, "JSON", "malformed config.json");
	write_text(dir, "config.json", "{\"architecture\": \"resnet50\", \"stride_on\": \"1x1\","
			   " \"batchnorm_eps\": 1e-3, \"num_classes\": 1000, \"labels\": \"../etc/passwd\"}");
	expect_load_error(dir, MMSA_ERR_FORMAT, "labels", "labels outside the model directory");
	write_text(dir, "config.json", good_config);
	write_text(dir, "labels.txt", "only\ntwo\n");
	expect_load_error(dir, MMSA_ERR_FORMAT, "labels", "labels file too short");

	/* clean up */
	snprintf(path, sizeof(path), "%s/model.safetensors", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/config.json", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/labels.txt", dir);
	unlink(path);
	rmdir(dir);
	free(c);
	free(zeros);
	free(ones);
	free(labels);
}

/*
 * Each SIMD path's layer outputs against AVX2's, bit for bit: the same
 * products (gemm_isa.h) over the same gathers, planes and transforms.
 */
static void
digests_agree(const isa_path *paths, int npaths)
{
	int			ref = -1;

	for (int i = 0; i < npaths; i++)
		if (strcmp(paths[i].label, "avx2") == 0)
			ref = i;
	for (int p = 0; p < npaths; p++)
		for (int t = 0; t < 2 && ref >= 0; t++)
		{
			int			n = ndigests[ref][t],
						same = n > 0 && ndigests[p][t] == n;

			if (p == ref || !paths[p].simd)
				continue;
			for (int i = 0; same && i < n; i++)
				same = digests[p][t][i] == digests[ref][t][i];
			ok(same, "%s: the %d outputs of the convolution tests (im2col, phase planes, Winograd; %d thread%s) bit-identical to avx2",
			   paths[p].label, n, t + 1, t ? "s" : "");
		}
	if (ref < 0)
		ok(1, "# SKIP no AVX2 on this CPU: no path to compare the others with");
}

int
main(void)
{
	const char *tmp = getenv("MMSA_TMP");
	isa_path	paths[ISA_MAX_PATHS];
	int			npaths = isa_paths(paths);

	/* the layers on each path, on the caller alone, then split between two threads */
	for (int p = 0; p < npaths; p++)
	{
		isa_use(&paths[p]);
		digest_path = p;
		for (int threads = 1; threads <= 2; threads++)
		{
			conv_exec	ex;
			mmsa_error	err;

			digest_threads = threads - 1;
			if (conv_exec_init(&ex, threads, &err) != MMSA_OK)
			{
				ok(0, "conv_exec_init(%d): %s", threads, err.message);
				continue;
			}
			test_conv_layers(&ex);
			conv_exec_free(&ex);
		}
	}
	isa_reset();
	digest_path = -1;
	digests_agree(paths, npaths);
	test_loader(tmp && *tmp ? tmp : "/tmp");
	return tap_done();
}
