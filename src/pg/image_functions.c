/*
 * image_functions.c
 *	  SQL functions of the image path: mmsa_image_embedding and
 *	  mmsa_image_classes.
 *
 * An image arrives as bytea (JPEG or PNG, recognised by content), is
 * decoded under the mmsa.max_image_pixels limit, preprocessed as the image
 * model's configuration says, and run through ResNet-50.
 */
#include "postgres.h"


#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "image.h"
#include "mmsa_pg.h"
#include "resnet.h"

/*
 * Decodes and preprocesses an image argument into (3, crop, crop) floats
 * for the image encoder; the result is palloc'd.  Decoder buffers are
 * freed before any error is raised.
 */
static float *
preprocess_image_arg(mmsa_image_encoder *enc, bytea *image)
{
	static image_workspace workspace;	/* reused for the backend's life */
	image_decode_options options;
	mmsa_image	decoded;
	mmsa_error	err;
	int			crop = enc->preprocess.crop;
	float	   *pixels = palloc(sizeof(float) * 3 * crop * crop);
	mmsa_status status;

	image_decode_options_init(&options);
	options.max_pixels = mmsa_max_image_pixels;
	options.target_short_side = enc->preprocess.resize > 0 ? enc->preprocess.resize : crop;
	if (image_decode((const uint8_t *) VARDATA_ANY(image), VARSIZE_ANY_EXHDR(image),
					 &options, &decoded, &err) != MMSA_OK)
		mmsa_report_error(&err, MMSA_ORIGIN_INPUT);
	status = image_preprocess(&decoded, &enc->preprocess, &workspace, pixels, &err);
	image_free(&decoded);
	if (status != MMSA_OK)
		mmsa_report_error(&err, MMSA_ORIGIN_INPUT);
	return pixels;
}

/* Runs ResNet-50 on one preprocessed image. */
static void
run_image_encoder(mmsa_image_encoder *enc, const float *pixels,
				  float *pooled, float *logits)
{
	mmsa_error	err;

	mmsa_prepare_threads();
	if (resnet_forward(enc->resnet, pixels, 1, NULL, pooled, logits, &err) != MMSA_OK)
		mmsa_report_error(&err, MMSA_ORIGIN_MODEL);
}

/*
 * mmsa_image_embedding(bytea) returns real[]: the pooled vector F_I of the
 * installed image encoder (2048 values for ResNet-50).
 */
PG_FUNCTION_INFO_V1(mmsa_image_embedding);
Datum
mmsa_image_embedding(PG_FUNCTION_ARGS)
{
	bytea	   *image = PG_GETARG_BYTEA_PP(0);
	mmsa_image_encoder *enc = mmsa_image_encoder_get();
	float	   *pixels = preprocess_image_arg(enc, image);
	float	   *pooled = palloc(sizeof(float) * RESNET_FEATURES);

	run_image_encoder(enc, pixels, pooled, NULL);
	PG_RETURN_ARRAYTYPE_P(mmsa_float4_array(pooled, RESNET_FEATURES));
}

/*
 * mmsa_image_classes(image bytea, k int) returns TABLE(rank, label,
 * probability): the k most probable ImageNet classes of the image, so that
 * one can see at once that the image encoder is real.
 */
PG_FUNCTION_INFO_V1(mmsa_image_classes);
Datum
mmsa_image_classes(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bytea	   *image = PG_GETARG_BYTEA_PP(0);
	int32		k = PG_GETARG_INT32(1);
	mmsa_image_encoder *enc;
	float	   *pixels;
	float	   *probs;
	int			n_classes;
	bool	   *taken;

	if (k < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("mmsa: k must be at least 1, not %d", k)));

	enc = mmsa_image_encoder_get();
	n_classes = enc->resnet->num_classes;
	if (k > n_classes)
		k = n_classes;
	pixels = preprocess_image_arg(enc, image);
	probs = palloc(sizeof(float) * n_classes);
	run_image_encoder(enc, pixels, NULL, probs);
	resnet_softmax(probs, 1, n_classes);

#if PG_VERSION_NUM >= 150000
	InitMaterializedSRF(fcinfo, 0);
#else
	SetSingleFunctionCall(fcinfo, 0);
#endif

	taken = palloc0(sizeof(bool) * n_classes);
	for (int rank = 1; rank <= k; rank++)
	{
		int			best = -1;
		Datum		values[3];
		bool		nulls[3] = {false, false, false};
		char		fallback[32];
		const char *label;

		for (int c = 0; c < n_classes; c++)
			if (!taken[c] && (best < 0 || probs[c] > probs[best]))
				best = c;
		taken[best] = true;
		if (enc->resnet->labels != NULL)
			label = enc->resnet->labels[best];
		else
		{
			snprintf(fallback, sizeof(fallback), "class %d", best);
			label = fallback;
		}
		values[0] = Int32GetDatum(rank);
		values[1] = CStringGetTextDatum(label);
		values[2] = Float4GetDatum(probs[best]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
