/*
 * qgemm_avx512vnni.c
 *	  The AVX512_VNNI path of qgemm.c (qgemm_isa.h): vpdpbusd on 512-bit
 *	  registers, one panel of B (16 columns x 4 bytes of k) per register,
 *	  tiles of 4 rows x 4 panels (64 columns) in sixteen accumulators: per
 *	  group of four k, four loads of B, four broadcasts of weights and
 *	  sixteen vpdpbusd.  Compiled with -mavx512f -mavx512bw -mavx512vl
 *	  -mavx512vnni.
 *
 * Built a second time with -DMMSA_SIMDE against SIMDe (libsimde-dev),
 * whose simde_mm512_dpbusd_epi32 emulates it on AVX2, as the table
 * qgemm_kernels_avx512vnni_simde: the unit tests compare it with the
 * direct integer loops on every host.
 */
#include <string.h>

#ifdef MMSA_SIMDE
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#define QGEMM_ZMM_TABLE qgemm_kernels_avx512vnni_simde
#define QGEMM_ZMM_NAME "avx512-vnni (SIMDe)"
#include "qgemm_isa.h"
extern const qgemm_kernels qgemm_kernels_avx512vnni_simde;
#else
#include <immintrin.h>
#define QGEMM_ZMM_TABLE qgemm_kernels_avx512vnni
#define QGEMM_ZMM_NAME "avx512-vnni"
#include "qgemm_isa.h"
#endif

#include "zmm_first.h"

/*
 * int32 to float and back (rounding half to even), which SIMDe 0.7.4 does
 * not emulate: its build converts each 256-bit half with AVX2.
 */
static inline __m512
qcvt_ps(__m512i v)
{
#ifdef MMSA_SIMDE
	int32_t		q[16];
	float		t[16];

	_mm512_storeu_si512((void *) q, v);
	_mm256_storeu_ps(t, _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *) q)));
	_mm256_storeu_ps(t + 8, _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *) (q + 8))));
	return _mm512_loadu_ps(t);
#else
	return _mm512_cvtepi32_ps(v);
#endif
}

static inline __m512i
qcvt_epi32(__m512 f)
{
#ifdef MMSA_SIMDE
	float		t[16];
	int32_t		q[16];

	_mm512_storeu_ps(t, f);
	_mm256_storeu_si256((__m256i *) q, _mm256_cvtps_epi32(_mm256_loadu_ps(t)));
	_mm256_storeu_si256((__m256i *) (q + 8), _mm256_cvtps_epi32(_mm256_loadu_ps(t + 8)));
	return _mm512_loadu_si512((const void *) q);
#else
	return _mm512_cvtps_epi32(f);
#endif
}

/* the first n (0 .. 16) int32 at p, the rest zero */
static inline __m512i
qload_first_epi32(const int32_t *p, int n)
{
	int32_t		t[16] = {0};

	if (n >= 16)
		return _mm512_loadu_si512((const void *) p);
	if (n > 0)
		memcpy(t, p, sizeof(int32_t) * n);
	return _mm512_loadu_si512((const void *) t);
}

/* finishes 16 sums of row i from column j of a tile, storing the first n */
static inline void
qstore16(__m512i sum, const qtile_store *s, int i, int j, int n)
{
	__m512		bias,
				v;

	if (n <= 0)
		return;
	bias = _mm512_set1_ps(s->bias ? s->bias[i] : 0.0f);
	if (s->col_scale)
	{
		/* per-column activations: the zero points out, then both scales */
		__m512i		zr = _mm512_mullo_epi32(qload_first_epi32(s->col_zero + j, n),
										   _mm512_set1_epi32(s->row_sum[i]));

		v = _mm512_fmadd_ps(qcvt_ps(_mm512_sub_epi32(sum, zr)),
							_mm512_mul_ps(_mm512_set1_ps(s->scale[i]),
										  load_first(s->col_scale + j, n)),
							bias);
	}
	else
		v = _mm512_fmadd_ps(qcvt_ps(sum), _mm512_set1_ps(s->scale[i]), bias);
	if (s->residual)
		v = _mm512_add_ps(v, load_first(s->residual + (size_t) i * s->ldr + j, n));
	if (s->relu)
		v = _mm512_max_ps(v, _mm512_setzero_ps());
	store_first(s->c + (size_t) i * s->ldc + j, v, n);
}

static inline __m512i
qbroadcast4(const int8_t *a)
{
	int32_t		w;

	memcpy(&w, a, 4);
	return _mm512_set1_epi32(w);
}

/* np (1 .. 4) panels from b, as one tile of 4 x 16 np */
static inline __attribute__((always_inline)) void
zmm_tile(int k4, const int8_t *a, const uint8_t *b, size_t panel_bytes, int np,
		 const qtile_store *s)
{
	__m512i		c[4][4];

	for (int i = 0; i < 4; i++)
		for (int p = 0; p < np; p++)
			c[i][p] = _mm512_setzero_si512();
	for (int k = 0; k < k4; k++)
	{
		__m512i		bv[4];
		const int8_t *ak = a + (size_t) k * QGEMM_MR * 4;

		for (int p = 0; p < np; p++)
			bv[p] = _mm512_loadu_si512((const void *) (b + p * panel_bytes + (size_t) k * 64));
		for (int i = 0; i < 4; i++)
		{
			__m512i		w = qbroadcast4(ak + 4 * i);

			for (int p = 0; p < np; p++)
				c[i][p] = _mm512_dpbusd_epi32(c[i][p], bv[p], w);
		}
	}
	for (int i = 0; i < s->mr; i++)
		for (int p = 0; p < np; p++)
			qstore16(c[i][p], s, i, 16 * p, s->nr - 16 * p);
}

static void
zmm_row_panel(int k4, const int8_t *a, const uint8_t *bp, int npanels,
			  const qtile_store *s0)
{
	size_t		panel_bytes = (size_t) k4 * QGEMM_NR * 4;
	int			jp = 0;

	for (; jp + 4 <= npanels; jp += 4)
	{
		qtile_store s;

		qgemm_tile_at(&s, s0, jp * QGEMM_NR, 4 * QGEMM_NR);
		zmm_tile(k4, a, bp + jp * panel_bytes, panel_bytes, 4, &s);
	}
	if (jp < npanels)
	{
		qtile_store s;
		int			np = npanels - jp;

		qgemm_tile_at(&s, s0, jp * QGEMM_NR, np * QGEMM_NR);
		if (np == 3)
			zmm_tile(k4, a, bp + jp * panel_bytes, panel_bytes, 3, &s);
		else if (np == 2)
			zmm_tile(k4, a, bp + jp * panel_bytes, panel_bytes, 2, &s);
		else
			zmm_tile(k4, a, bp + jp * panel_bytes, panel_bytes, 1, &s);
	}
}

static void
zmm_pack_quad(uint8_t *dst, size_t panel_stride, const float *const r[4],
			  int nc, const float inv[4], const float *col_inv,
			  const int32_t *col_zero)
{
	int			ncp = (nc + QGEMM_NR - 1) / QGEMM_NR * QGEMM_NR;
	const __m512i top = _mm512_set1_epi32(QGEMM_ACT_MAX);

	for (int x = 0; x < ncp; x += QGEMM_NR)
	{
		__m512i		v = _mm512_setzero_si512(),
					z = _mm512_setzero_si512();
		__m512		lo,
					hi,
					cinv = _mm512_setzero_ps();

		/* clamp to [-z, ACT_MAX - z], round, add z (qgemm_quantize1z) */
		if (col_inv)
		{
			z = _mm512_loadu_si512((const void *) (col_zero + x));
			cinv = _mm512_loadu_ps(col_inv + x);
		}
		lo = qcvt_ps(_mm512_sub_epi32(_mm512_setzero_si512(), z));
		hi = qcvt_ps(_mm512_sub_epi32(top, z));
		for (int j = 0; j < 4; j++)
		{
			__m512		f;

			if (r[j] == NULL)
				continue;
			f = _mm512_mul_ps(load_first(r[j] + x, nc - x),
							  col_inv ? cinv : _mm512_set1_ps(inv[j]));
			f = _mm512_min_ps(_mm512_max_ps(f, lo), hi);
			v = _mm512_or_si512(v, _mm512_slli_epi32(_mm512_add_epi32(qcvt_epi32(f), z), 8 * j));
		}
		_mm512_storeu_si512((void *) (dst + (size_t) (x / QGEMM_NR) * panel_stride), v);
	}
}

const qgemm_kernels QGEMM_ZMM_TABLE = {
	.name = QGEMM_ZMM_NAME,
	.row_panel = zmm_row_panel,
	.pack_quad = zmm_pack_quad,
};
