/*
 * text_functions.c
 *	  SQL functions of the text path: mmsa_tokenize and mmsa_text_embedding.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "mmsa_pg.h"

/*
 * Tokenizes a text with the installed model's tokenizer into ids,
 * [CLS] ... [SEP], truncated to the model's maximum length.  Returns the
 * number of ids; *ids is palloc'd.
 */
static int
tokenize_text(mmsa_text_encoder *enc, text *body, int32 **ids)
{
	mmsa_error	err;
	int			n = 0;

	*ids = palloc(sizeof(int32) * enc->max_length);
	if (bert_tokenize(enc->tokenizer, VARDATA_ANY(body), VARSIZE_ANY_EXHDR(body),
					  enc->max_length, *ids, &n, &err) != MMSA_OK)
		mmsa_report_error(&err, MMSA_ORIGIN_INPUT);
	return n;
}

/*
 * mmsa_tokenize(text) returns int[]: the WordPiece ids the text encoder
 * sees, [CLS] first and [SEP] last.
 */
PG_FUNCTION_INFO_V1(mmsa_tokenize);
Datum
mmsa_tokenize(PG_FUNCTION_ARGS)
{
	text	   *body = PG_GETARG_TEXT_PP(0);
	mmsa_text_encoder *enc = mmsa_text_encoder_get();
	int32	   *ids;
	int			n = tokenize_text(enc, body, &ids);
	Datum	   *elems = palloc(sizeof(Datum) * n);

	for (int i = 0; i < n; i++)
		elems[i] = Int32GetDatum(ids[i]);
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, n, INT4OID, sizeof(int32), true, TYPALIGN_INT));
}

/*
 * mmsa_text_embedding(text) returns real[]: the pooled vector F_T of the
 * installed text encoder (hidden_size values).
 */
PG_FUNCTION_INFO_V1(mmsa_text_embedding);
Datum
mmsa_text_embedding(PG_FUNCTION_ARGS)
{
	text	   *body = PG_GETARG_TEXT_PP(0);
	mmsa_text_encoder *enc = mmsa_text_encoder_get();
	bert_model *bert = mmsa_text_encoder_weights(enc);
	int			C = bert->config.hidden_size;
	int32	   *ids;
	int			n = tokenize_text(enc, body, &ids);
	float	   *pooled = palloc(sizeof(float) * C);
	mmsa_error	err;

	mmsa_prepare_threads();
	if (bert_forward(bert, ids, NULL, 1, n, NULL, pooled, &err) != MMSA_OK)
		mmsa_report_error(&err, MMSA_ORIGIN_MODEL);
	PG_RETURN_ARRAYTYPE_P(mmsa_float4_array(pooled, C));
}

/*
 * mmsa_wordpieces(text) returns text[]: the WordPiece tokens behind
 * mmsa_tokenize, as strings ("##" marks a continuation), to read what the
 * encoder sees.
 */
PG_FUNCTION_INFO_V1(mmsa_wordpieces);
Datum
mmsa_wordpieces(PG_FUNCTION_ARGS)
{
	text	   *body = PG_GETARG_TEXT_PP(0);
	mmsa_text_encoder *enc = mmsa_text_encoder_get();
	int32	   *ids;
	int			n = tokenize_text(enc, body, &ids);
	Datum	   *elems = palloc(sizeof(Datum) * n);

	for (int i = 0; i < n; i++)
	{
		const char *token = bert_tokenizer_token(enc->tokenizer, ids[i]);

		elems[i] = CStringGetTextDatum(token ? token : "");
	}
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}
