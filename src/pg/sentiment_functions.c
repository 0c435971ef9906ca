/*
 * sentiment_functions.c
 *	  SQL functions that tell the sentiment of a post: mmsa_sentiment and
 *	  mmsa_scores.
 *
 * A post is a text and an image (JPEG or PNG bytea).  It is classified
 * alone (batch 1), by the installed model's default fusion or by one of
 * the seven heads named by the caller, exactly as `mmsa predict` does: the
 * image is decoded at full size, as the heads were trained, so both give
 * the same probabilities.  The functions are not strict: a post without an
 * image is classified by the text model (bert), a post without a text by
 * the image model (resnet); a post with neither has no sentiment (NULL).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_enum.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "mmsa_pg.h"

static const char *const label_names[3] = {"negative", "neutral", "positive"};

/*
 * The model kind a model name argument asks for: -1 (the default) for
 * NULL, else one of the seven heads or "ensemble", or an error listing
 * them.
 */
static int
kind_from_arg(FunctionCallInfo fcinfo, int argno)
{
	char	   *name;
	int			kind;

	if (PG_NARGS() <= argno || PG_ARGISNULL(argno))
		return -1;
	name = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	kind = sentiment_kind_from_name(name);
	if (kind < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("mmsa: unknown model \"%s\": the models are bert, resnet, nativecat, "
						"nativecombine, cmac, hstec, ote and ensemble", name),
				 errhint("A NULL model means the installed model's default fusion.")));
	return kind;
}

/*
 * H_T and F_T of a text.  Tokenizing errors (invalid UTF-8) are the
 * caller's, encoder errors the installation's.
 */
static void
encode_text(mmsa_sentiment_cache *s, text *body)
{
	sentiment_model *m = s->model;
	mmsa_error	err;
	int			n;

	if (bert_tokenize(m->tokenizer, VARDATA_ANY(body), VARSIZE_ANY_EXHDR(body),
					  m->max_len, m->ids, &n, &err) != MMSA_OK)
		mmsa_report_error(&err, MMSA_ORIGIN_INPUT);
	for (int t = 0; t < n; t++)
		m->mask[t] = 1;
	s->text.T = n;
	mmsa_prepare_threads();
	if (bert_forward(m->text, m->ids, m->mask, 1, n, s->text.H_T, s->text.F_T, &err) != MMSA_OK)
		mmsa_report_error(&err, MMSA_ORIGIN_MODEL);
}

/*
 * H_I and F_I of an image, decoded at full size (as the heads were
 * trained) under mmsa.max_image_pixels.  Decoding errors are the caller's,
 * encoder errors the installation's.  This is sentiment_encode_image with
 * the two origins told apart.
 */
static void
encode_image(mmsa_sentiment_cache *s, bytea *image)
{
	sentiment_model *m = s->model;
	image_decode_options options;
	mmsa_image	decoded;
	mmsa_error	err;
	mmsa_status status;

	image_decode_options_init(&options);
	options.max_pixels = mmsa_max_image_pixels;
	if (image_decode((const uint8_t *) VARDATA_ANY(image), VARSIZE_ANY_EXHDR(image),
					 &options, &decoded, &err) != MMSA_OK)
		mmsa_report_error(&err, MMSA_ORIGIN_INPUT);
	status = image_preprocess(&decoded, &m->preprocess, &m->workspace, m->pixels, &err);
	image_free(&decoded);
	if (status != MMSA_OK)
		mmsa_report_error(&err, MMSA_ORIGIN_INPUT);
	mmsa_prepare_threads();
	if (resnet_forward(m->image, m->pixels, 1, s->image.H_I, s->image.F_I, NULL, &err) != MMSA_OK)
		mmsa_report_error(&err, MMSA_ORIGIN_MODEL);
}

/*
 * Classifies one post (see mmsa_pg.h).  Only the inputs the chosen head
 * reads are encoded: the bert head never decodes the image.
 */
int
mmsa_classify_post(text *body, bytea *image, int kind, float probs[3])
{
	mmsa_sentiment_cache *s;
	int			k;
	int			uses;
	mmsa_error	err;

	if (body == NULL && image == NULL)
		return -1;
	s = mmsa_sentiment_get();
	k = kind >= 0 ? kind : s->model->default_kind;
	if (k == SENTIMENT_ENSEMBLE && s->model->ensemble_members == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("mmsa: the installed model has no ensemble"),
				 errhint("Its model.json describes none; name one of the seven heads.")));
	if (image == NULL)
		k = FUSION_BERT;
	else if (body == NULL)
		k = FUSION_RESNET;
	uses = sentiment_inputs(s->model, k);
	if (uses & (FUSION_USES_HT | FUSION_USES_FT))
		encode_text(s, body);
	if (uses & (FUSION_USES_HI | FUSION_USES_FI))
		encode_image(s, image);
	if (sentiment_classify(s->model, k,
						   (uses & (FUSION_USES_HT | FUSION_USES_FT)) ? &s->text : NULL,
						   (uses & (FUSION_USES_HI | FUSION_USES_FI)) ? &s->image : NULL,
						   probs, &err) != MMSA_OK)
		mmsa_report_error(&err, MMSA_ORIGIN_MODEL);
	return sentiment_decide(s->model, k, probs);
}

/*
 * The OIDs of the values negative, neutral, positive of the enum typid
 * (the extension's mmsa_label), looked up by name.
 */
void
mmsa_label_oids(Oid typid, Oid oids[3])
{
	for (int i = 0; i < 3; i++)
	{
		oids[i] = GetSysCacheOid2(ENUMTYPOIDNAME, Anum_pg_enum_oid,
								  ObjectIdGetDatum(typid),
								  CStringGetDatum(label_names[i]));
		if (!OidIsValid(oids[i]))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("mmsa: type %s has no label \"%s\"",
							format_type_be(typid), label_names[i])));
	}
}

/*
 * The label OIDs of the mmsa_label enum, found from the calling function's
 * result type (or, for mmsa_scores, its first column) and cached for the
 * call site.
 */
static Oid *
label_oids_for_call(FunctionCallInfo fcinfo, Oid typid)
{
	Oid		   *oids = fcinfo->flinfo->fn_extra;

	if (oids == NULL)
	{
		oids = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(Oid) * 3);
		mmsa_label_oids(typid, oids);
		fcinfo->flinfo->fn_extra = oids;
	}
	return oids;
}

/*
 * mmsa_sentiment(body text, image bytea [, model text]) returns
 * mmsa_label: the sentiment of a post by the installed model's default
 * fusion, or by the named model; NULL when both body and image are NULL.
 */
PG_FUNCTION_INFO_V1(mmsa_sentiment);
Datum
mmsa_sentiment(PG_FUNCTION_ARGS)
{
	int			kind = kind_from_arg(fcinfo, 2);
	text	   *body = PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0);
	bytea	   *image = PG_ARGISNULL(1) ? NULL : PG_GETARG_BYTEA_PP(1);
	float		probs[3];
	int			label;
	Oid		   *oids;

	label = mmsa_classify_post(body, image, kind, probs);
	if (label < 0)
		PG_RETURN_NULL();
	oids = label_oids_for_call(fcinfo, get_func_rettype(fcinfo->flinfo->fn_oid));
	PG_RETURN_OID(oids[label]);
}

/*
 * mmsa_scores(body text, image bytea, model text DEFAULT NULL) returns
 * (label mmsa_label, p_negative real, p_neutral real, p_positive real):
 * the label with the three probabilities it was chosen from; NULL when
 * both body and image are NULL.
 */
PG_FUNCTION_INFO_V1(mmsa_scores);
Datum
mmsa_scores(PG_FUNCTION_ARGS)
{
	int			kind = kind_from_arg(fcinfo, 2);
	text	   *body = PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0);
	bytea	   *image = PG_ARGISNULL(1) ? NULL : PG_GETARG_BYTEA_PP(1);
	TupleDesc	tupdesc;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};
	float		probs[3];
	int			label;
	Oid		   *oids;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("mmsa: mmsa_scores called in a context that cannot accept a row")));
	label = mmsa_classify_post(body, image, kind, probs);
	if (label < 0)
		PG_RETURN_NULL();
	oids = label_oids_for_call(fcinfo, TupleDescAttr(tupdesc, 0)->atttypid);
	values[0] = ObjectIdGetDatum(oids[label]);
	for (int i = 0; i < 3; i++)
		values[1 + i] = Float4GetDatum(probs[i]);
	tupdesc = BlessTupleDesc(tupdesc);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
