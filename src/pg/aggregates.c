/*
 * aggregates.c
 *	  The support functions of the aggregates over labels: mmsa_distribution
 *	  (how many posts of a group are negative, neutral and positive) and
 *	  mmsa_evaluate (predicted labels against gold labels).
 *
 * The transition states are int8[] of counts, a plain SQL type, so that the
 * aggregates are PARALLEL SAFE with a combine function and need no
 * serialization functions: three counts (negative, neutral, positive) for
 * mmsa_distribution, the nine of the confusion matrix (gold-major) for
 * mmsa_evaluate.  Inside an aggregate the state is updated in place (as
 * float8_accum does).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/lsyscache.h"

#include "metrics.h"
#include "mmsa_pg.h"

/*
 * The n counts of a state array, after checking that it is one: a user may
 * call the support functions directly with any int8[].  what names the
 * state and n_words its length in the error.
 */
static int64 *
state_array_counts(ArrayType *state, int n, const char *what, const char *n_words)
{
	if (ARR_NDIM(state) != 1 || ARR_DIMS(state)[0] != n || ARR_HASNULL(state) ||
		ARR_ELEMTYPE(state) != INT8OID)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("mmsa: %s state is an int8[] of %s counts", what, n_words)));
	return (int64 *) ARR_DATA_PTR(state);
}

static int64 *
state_counts(ArrayType *state)
{
	return state_array_counts(state, 3, "a label distribution", "three");
}

static int64 *
confusion_counts(ArrayType *state)
{
	return state_array_counts(state, 9, "an evaluation", "nine");
}

/*
 * The state to update: the argument itself inside an aggregate, where it
 * belongs to the aggregate, else a copy.
 */
static ArrayType *
state_for_update(FunctionCallInfo fcinfo, int argno)
{
	if (AggCheckCallContext(fcinfo, NULL))
		return PG_GETARG_ARRAYTYPE_P(argno);
	return PG_GETARG_ARRAYTYPE_P_COPY(argno);
}

/* Adds one post of label index label (0..2) to a state. */
static void
count_label(ArrayType *state, int label)
{
	int64	   *counts = state_counts(state);

	counts[label]++;
}

/*
 * The index (0 negative, 1 neutral, 2 positive) of the label in argument
 * argno.  The enum's OIDs are looked up once per call site, from the
 * function's declared argument type.
 */
static int
label_index(FunctionCallInfo fcinfo, int argno)
{
	Oid			label = PG_GETARG_OID(argno);
	Oid		   *oids = fcinfo->flinfo->fn_extra;
	int			i;

	if (oids == NULL)
	{
		Oid		   *argtypes;
		int			nargs;

		get_func_signature(fcinfo->flinfo->fn_oid, &argtypes, &nargs);
		oids = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(Oid) * 3);
		mmsa_label_oids(argtypes[argno], oids);
		pfree(argtypes);
		fcinfo->flinfo->fn_extra = oids;
	}
	for (i = 0; i < 3 && oids[i] != label; i++)
		;
	if (i == 3)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("mmsa: enum value %u is not a sentiment label", label)));
	return i;
}

/*
 * mmsa_distribution_accum(int8[], mmsa_label) returns int8[]: the transition
 * function of mmsa_distribution(mmsa_label).  STRICT, so NULL labels are
 * skipped.
 */
PG_FUNCTION_INFO_V1(mmsa_distribution_accum);
Datum
mmsa_distribution_accum(PG_FUNCTION_ARGS)
{
	ArrayType  *state = state_for_update(fcinfo, 0);

	count_label(state, label_index(fcinfo, 1));
	PG_RETURN_ARRAYTYPE_P(state);
}

/*
 * mmsa_distribution_post_accum(int8[], text, bytea) returns int8[]: the
 * transition function of mmsa_distribution(body, image), which classifies
 * each post with the installed model's default fusion (the NULL rules of
 * mmsa_sentiment).  Posts with neither text nor image are skipped.
 */
PG_FUNCTION_INFO_V1(mmsa_distribution_post_accum);
Datum
mmsa_distribution_post_accum(PG_FUNCTION_ARGS)
{
	ArrayType  *state;
	text	   *body = PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1);
	bytea	   *image = PG_ARGISNULL(2) ? NULL : PG_GETARG_BYTEA_PP(2);
	float		probs[3];
	int			label;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("mmsa: a label distribution state cannot be NULL")));
	state = state_for_update(fcinfo, 0);
	label = mmsa_classify_post(body, image, -1, probs);
	if (label >= 0)
		count_label(state, label);
	PG_RETURN_ARRAYTYPE_P(state);
}

/*
 * mmsa_distribution_combine(int8[], int8[]) returns int8[]: adds the
 * counts of two partial states (parallel aggregation).
 */
PG_FUNCTION_INFO_V1(mmsa_distribution_combine);
Datum
mmsa_distribution_combine(PG_FUNCTION_ARGS)
{
	ArrayType  *state = state_for_update(fcinfo, 0);
	int64	   *counts = state_counts(state);
	int64	   *other = state_counts(PG_GETARG_ARRAYTYPE_P(1));

	for (int i = 0; i < 3; i++)
		counts[i] += other[i];
	PG_RETURN_ARRAYTYPE_P(state);
}

/*
 * mmsa_distribution_final(int8[]) returns mmsa_label_distribution: the
 * total, the three counts, and each count's share of the total (NULL
 * shares when the total is 0, as avg() of no rows is NULL).
 */
PG_FUNCTION_INFO_V1(mmsa_distribution_final);
Datum
mmsa_distribution_final(PG_FUNCTION_ARGS)
{
	int64	   *counts = state_counts(PG_GETARG_ARRAYTYPE_P(0));
	int64		total = counts[0] + counts[1] + counts[2];
	TupleDesc	tupdesc;
	Datum		values[7];
	bool		nulls[7];

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("mmsa: mmsa_distribution_final called in a context that cannot accept a row")));
	values[0] = Int64GetDatum(total);
	nulls[0] = false;
	for (int i = 0; i < 3; i++)
	{
		values[1 + i] = Int64GetDatum(counts[i]);
		nulls[1 + i] = false;
		values[4 + i] = Float8GetDatum(total > 0 ? (double) counts[i] / (double) total : 0.0);
		nulls[4 + i] = total == 0;
	}
	tupdesc = BlessTupleDesc(tupdesc);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * mmsa_evaluate_accum(int8[], mmsa_label, mmsa_label) returns int8[]: the
 * transition function of mmsa_evaluate(gold, predicted); adds one pair to
 * the confusion counts.  STRICT, so pairs with a NULL are skipped.
 */
PG_FUNCTION_INFO_V1(mmsa_evaluate_accum);
Datum
mmsa_evaluate_accum(PG_FUNCTION_ARGS)
{
	ArrayType  *state = state_for_update(fcinfo, 0);
	int64	   *counts = confusion_counts(state);
	int			gold = label_index(fcinfo, 1);
	int			predicted = label_index(fcinfo, 2);

	counts[gold * 3 + predicted]++;
	PG_RETURN_ARRAYTYPE_P(state);
}

/*
 * mmsa_evaluate_combine(int8[], int8[]) returns int8[]: adds the confusion
 * counts of two partial states (parallel aggregation).
 */
PG_FUNCTION_INFO_V1(mmsa_evaluate_combine);
Datum
mmsa_evaluate_combine(PG_FUNCTION_ARGS)
{
	ArrayType  *state = state_for_update(fcinfo, 0);
	int64	   *counts = confusion_counts(state);
	int64	   *other = confusion_counts(PG_GETARG_ARRAYTYPE_P(1));

	for (int i = 0; i < 9; i++)
		counts[i] += other[i];
	PG_RETURN_ARRAYTYPE_P(state);
}

/* A float8[] of the three per-class rates v. */
static Datum
class_array(const double v[3])
{
	Datum		d[3];

	for (int i = 0; i < 3; i++)
		d[i] = Float8GetDatum(v[i]);
	return PointerGetDatum(construct_array(d, 3, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL,
										   TYPALIGN_DOUBLE));
}

/* An int8[] of three counts (ndim 1) or a 3x3 int8[][] of nine (ndim 2). */
static Datum
count_array(const int64 *v, int ndim)
{
	Datum		d[9];
	int			dims[2] = {3, 3};
	int			lbs[2] = {1, 1};
	int			n = ndim == 1 ? 3 : 9;

	for (int i = 0; i < n; i++)
		d[i] = Int64GetDatum(v[i]);
	return PointerGetDatum(construct_md_array(d, NULL, ndim, dims, lbs, INT8OID, sizeof(int64),
											  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/*
 * mmsa_evaluate_final(int8[]) returns mmsa_evaluation: the figures of
 * `mmsa eval` (metrics.c computes both) from the confusion counts: n,
 * accuracy, precision, recall and F1 weighted by support (the paper's
 * Table 4), the macro averages, the per-class rates and supports, and the
 * confusion matrix (rows gold, columns predicted).  With no pairs counted,
 * n is 0 and every rate NULL.
 */
PG_FUNCTION_INFO_V1(mmsa_evaluate_final);
Datum
mmsa_evaluate_final(PG_FUNCTION_ARGS)
{
	int64	   *counts = confusion_counts(PG_GETARG_ARRAYTYPE_P(0));
	class_metrics m;
	TupleDesc	tupdesc;
	Datum		values[13];
	bool		nulls[13];
	double		rates[7];

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("mmsa: mmsa_evaluate_final called in a context that cannot accept a row")));
	memset(&m, 0, sizeof(m));
	for (int t = 0; t < 3; t++)
		for (int p = 0; p < 3; p++)
		{
			if (counts[t * 3 + p] < 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("mmsa: an evaluation state cannot hold negative counts")));
			m.confusion[t][p] = counts[t * 3 + p];
		}
	metrics_from_confusion(&m);
	rates[0] = m.accuracy;
	rates[1] = m.weighted_precision;
	rates[2] = m.weighted_recall;
	rates[3] = m.weighted_f1;
	rates[4] = m.macro_precision;
	rates[5] = m.macro_recall;
	rates[6] = m.macro_f1;
	memset(nulls, 0, sizeof(nulls));
	values[0] = Int64GetDatum(m.n);
	for (int i = 0; i < 7; i++)
	{
		values[1 + i] = Float8GetDatum(rates[i]);
		nulls[1 + i] = m.n == 0;
	}
	values[8] = class_array(m.precision);
	values[9] = class_array(m.recall);
	values[10] = class_array(m.f1);
	nulls[8] = nulls[9] = nulls[10] = m.n == 0;
	values[11] = count_array(m.support, 1);
	values[12] = count_array(counts, 2);
	tupdesc = BlessTupleDesc(tupdesc);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
