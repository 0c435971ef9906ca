/*
 * bert_int8.c
 *	  int8 inference of the BERT encoder (see bert.h): the quantized
 *	  sidecar (model.int8.packed), its verification at load, and the
 *	  precision setting.  The products themselves run in bert.c's
 *	  feature-major forward pass, on qgemm.h.
 *
 * Sidecar data, in 4-byte words, for each layer in order, each part
 * rounded to 64 bytes:
 *   qkv_b (3C floats): the query, key and value biases side by side;
 *   then for each product, qkv (3C, C), attention output (C, C),
 *   intermediate (I, C) and output (C, I):
 *     scale (M floats): the weight scale of each row;
 *     row_sum (M int32): the sum of each row's int8 weights, which takes
 *       the activations' zero points out of the sums (qgemm.h);
 *     weight: qgemm_pack_a of the int8 weights (M, K).
 * Header config: [0] words, [1] hidden size C, [2] layers, [3]
 * intermediate size I, [4] QGEMM_MR, [5] QGEMM_ACT_MAX, [6] checksum of
 * the data, [7] BERT_INT8_LAYOUT.
 */
#include "bert.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qgemm.h"

#define BERT_INT8_LAYOUT 1

/* Words of one product's parts: scale, row_sum, weight. */
static void
qmatrix_words(int M, int K, size_t w[3])
{
	w[0] = MMSA_PACK_ROUND(M);
	w[1] = MMSA_PACK_ROUND(M);
	w[2] = MMSA_PACK_ROUND(qgemm_packed_bytes(M, K) / 4);
}

/* Points q at base + *off (base NULL: only counts) and advances *off. */
static void
place_qmatrix(bert_qmatrix *q, const uint32_t *base, size_t *off, int M, int K)
{
	size_t		w[3];

	qmatrix_words(M, K, w);
	if (base)
	{
		q->scale = (const float *) (base + *off);
		q->row_sum = (const int32_t *) (base + *off + w[0]);
		q->weight = (const int8_t *) (base + *off + w[0] + w[1]);
	}
	*off += w[0] + w[1] + w[2];
}

/*
 * Points each layer of ql (NULL: only counts) into base and returns the
 * words of the layout.
 */
static size_t
place_int8(const bert_config *c, bert_qlayer *ql, const uint32_t *base)
{
	int			C = c->hidden_size,
				I = c->intermediate_size;
	size_t		off = 0;

	for (int l = 0; l < c->num_hidden_layers; l++)
	{
		bert_qlayer dummy,
				   *q = ql ? &ql[l] : &dummy;

		if (base)
			q->qkv_b = (const float *) (base + off);
		off += MMSA_PACK_ROUND(3 * (size_t) C);
		place_qmatrix(&q->qkv, base, &off, 3 * C, C);
		place_qmatrix(&q->attn_out, base, &off, C, C);
		place_qmatrix(&q->inter, base, &off, I, C);
		place_qmatrix(&q->out, base, &off, C, I);
	}
	return off;
}

static void
int8_config(const bert_config *c, size_t words, uint64_t checksum,
			int64_t config[MMSA_PACK_CONFIG])
{
	memset(config, 0, sizeof(int64_t) * MMSA_PACK_CONFIG);
	config[0] = (int64_t) words;
	config[1] = c->hidden_size;
	config[2] = c->num_hidden_layers;
	config[3] = c->intermediate_size;
	config[4] = QGEMM_MR;
	config[5] = QGEMM_ACT_MAX;
	config[6] = (int64_t) checksum;
	config[7] = BERT_INT8_LAYOUT;
}

/*
 * One product's parts into q's words (in the data being written): w (M, K)
 * quantized per row, its row sums, packed.  q8: M * K bytes of scratch.
 */
static void
quantize_matrix(const bert_qmatrix *q, const float *w, int M, int K, int8_t *q8)
{
	qgemm_quantize_rows(q8, (float *) q->scale, w, M, K);
	qgemm_row_sums((int32_t *) q->row_sum, q8, M, K, K);
	qgemm_pack_a((int8_t *) q->weight, q8, M, K, K);
}

mmsa_status
bert_model_write_int8(const char *dir, mmsa_error *err)
{
	bert_model *m = NULL;
	bert_qlayer *ql = NULL;
	uint32_t   *data = NULL;
	float	   *stacked = NULL;
	int8_t	   *q8 = NULL;
	size_t		words,
				C,
				I;
	int64_t		config[MMSA_PACK_CONFIG];
	char		path[4096];
	mmsa_pack_writer w;
	mmsa_status status;

	/* the dense fp32 weights, from the sidecar or the safetensors file */
	if ((status = bert_model_load_flags(dir, BERT_LOAD_UNPACKED, &m, err)) != MMSA_OK)
		return status;
	C = m->config.hidden_size;
	I = m->config.intermediate_size;
	words = place_int8(&m->config, NULL, NULL);
	data = calloc(words, sizeof(uint32_t));
	ql = calloc(m->config.num_hidden_layers, sizeof(bert_qlayer));
	stacked = malloc(3 * C * C * sizeof(float));
	q8 = malloc((3 * C * C > C * I ? 3 * C * C : C * I));
	if (!data || !ql || !stacked || !q8)
	{
		status = mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory for the int8 BERT weights");
		goto done;
	}
	place_int8(&m->config, ql, data);
	for (int l = 0; l < m->config.num_hidden_layers; l++)
	{
		const bert_layer_weights *lw = &m->layers[l];
		bert_qlayer *q = &ql[l];

		memcpy((float *) q->qkv_b, lw->q_b, C * sizeof(float));
		memcpy((float *) q->qkv_b + C, lw->k_b, C * sizeof(float));
		memcpy((float *) q->qkv_b + 2 * C, lw->v_b, C * sizeof(float));
		memcpy(stacked, lw->q_w, C * C * sizeof(float));
		memcpy(stacked + C * C, lw->k_w, C * C * sizeof(float));
		memcpy(stacked + 2 * C * C, lw->v_w, C * C * sizeof(float));
		quantize_matrix(&q->qkv, stacked, 3 * C, C, q8);
		quantize_matrix(&q->attn_out, lw->attn_out_w, C, C, q8);
		quantize_matrix(&q->inter, lw->inter_w, I, C, q8);
		quantize_matrix(&q->out, lw->out_w, C, I, q8);
	}
	int8_config(&m->config, words, mmsa_pack_checksum(data, words), config);
	snprintf(path, sizeof(path), "%s/%s", dir, BERT_INT8_FILE);
	if ((status = mmsa_pack_write_begin(&w, path, MMSA_PACK_KIND_BERT_INT8, config,
										&m->source_id, words, err)) == MMSA_OK &&
		(status = mmsa_pack_write_floats(&w, (const float *) data, words, err)) == MMSA_OK)
		status = mmsa_pack_write_end(&w, err);

done:
	free(data);
	free(ql);
	free(stacked);
	free(q8);
	bert_model_free(m);
	return status;
}

/* Whether every scale of q (M rows) is a positive finite number. */
static int
scales_ok(const bert_qmatrix *q, int M)
{
	for (int i = 0; i < M; i++)
		if (!(q->scale[i] > 0.0f) || !isfinite(q->scale[i]))
			return 0;
	return 1;
}

/* Maps and verifies dir/model.int8.packed (see bert.h). */
static mmsa_status
open_int8(bert_model *m, mmsa_error *err)
{
	const bert_config *c = &m->config;
	char		path[4096];
	size_t		words = place_int8(c, NULL, NULL);
	int64_t		want[MMSA_PACK_CONFIG];
	mmsa_status status;

	/* every entry but the checksum (6) is the layout */
	int8_config(c, words, 0, want);
	snprintf(path, sizeof(path), "%s/%s", m->dir, BERT_INT8_FILE);
	status = mmsa_pack_open_int8(path, MMSA_PACK_KIND_BERT_INT8, &m->source_id, want,
								 0xFFFF & ~(1u << 6), 6, "text model", m->dir, "",
								 &m->qpack, err);
	if (status != MMSA_OK)
		return status;
	if ((m->qlayers = calloc(c->num_hidden_layers, sizeof(bert_qlayer))) == NULL)
		status = mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
	if (status == MMSA_OK)
	{
		int			C = c->hidden_size,
					I = c->intermediate_size;

		place_int8(c, m->qlayers, (const uint32_t *) m->qpack.data);
		for (int l = 0; l < c->num_hidden_layers && status == MMSA_OK; l++)
		{
			const bert_qlayer *q = &m->qlayers[l];

			if (!scales_ok(&q->qkv, 3 * C) || !scales_ok(&q->attn_out, C) ||
				!scales_ok(&q->inter, I) || !scales_ok(&q->out, C))
				status = mmsa_set_error(err, MMSA_ERR_FORMAT, "\"%s\": bad scale in layer %d",
										path, l);
		}
	}
	if (status != MMSA_OK)
	{
		free(m->qlayers);
		m->qlayers = NULL;
		mmsa_pack_close(&m->qpack);
	}
	return status;
}

mmsa_status
bert_model_set_precision(bert_model *m, mmsa_precision p, mmsa_error *err)
{
	mmsa_status status;

	if (p == MMSA_PRECISION_INT8 && m->qlayers == NULL &&
		(status = open_int8(m, err)) != MMSA_OK)
		return status;
	m->precision = p;
	return MMSA_OK;
}
