/*
 * aggregates.c
 *	  The support functions of the mmsa_distribution aggregates: how many
 *	  posts of a group are negative, neutral and positive.
 *
 * The transition state is an int8[] of three counts (negative, neutral,
 * positive), a plain SQL type, so that the aggregates are PARALLEL SAFE
 * with a combine function and need no serialization functions.  Inside an
 * aggregate the state is updated in place (as float8_accum does).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/lsyscache.h"

#include "mmsa_pg.h"

/*
 * The three counts of a state array, after checking that it is one: a
 * user may call the support functions directly with any int8[].
 */
static int64 *
state_counts(ArrayType *state)
{
	if (ARR_NDIM(state) != 1 || ARR_DIMS(state)[0] != 3 || ARR_HASNULL(state) ||
		ARR_ELEMTYPE(state) != INT8OID)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("mmsa: a label distribution state is an int8[] of three counts")));
	return (int64 *) ARR_DATA_PTR(state);
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
 * mmsa_distribution_accum(int8[], mmsa_label) returns int8[]: the transition
 * function of mmsa_distribution(mmsa_label).  STRICT, so NULL labels are
 * skipped.
 */
PG_FUNCTION_INFO_V1(mmsa_distribution_accum);
Datum
mmsa_distribution_accum(PG_FUNCTION_ARGS)
{
	ArrayType  *state = state_for_update(fcinfo, 0);
	Oid			label = PG_GETARG_OID(1);
	Oid		   *oids = fcinfo->flinfo->fn_extra;
	int			i;

	if (oids == NULL)
	{
		Oid		   *argtypes;
		int			nargs;

		get_func_signature(fcinfo->flinfo->fn_oid, &argtypes, &nargs);
		oids = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(Oid) * 3);
		mmsa_label_oids(argtypes[1], oids);
		pfree(argtypes);
		fcinfo->flinfo->fn_extra = oids;
	}
	for (i = 0; i < 3 && oids[i] != label; i++)
		;
	if (i == 3)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("mmsa: enum value %u is not a sentiment label", label)));
	count_label(state, i);
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
