/*
 * info_functions.c
 *	  mmsa_info(): what this server runs, in one row: the extension's
 *	  versions, the model directory and the identity of its encoders, the
 *	  default model and its val figures (model.json), and the precision,
 *	  instruction-set path and thread count in use.
 *
 * Nothing is loaded: the identities are read from the files (packfile.h:
 * size and FNV-1a hash of the safetensors header and sampled blocks, the
 * identity the sidecars record), model.json is parsed, and what a file
 * does not give is NULL, so that the function also describes a server
 * whose model is missing or incomplete.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/jsonb.h"
#include "utils/rel.h"

#include "cpu.h"
#include "mmsa_pg.h"
#include "packfile.h"
#include "precision.h"
#include "sentiment.h"

#define MMSA_INFO_COLUMNS 12

/* extversion of the installed extension (pg_extension), or NULL */
static text *
installed_version(void)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	text	   *version = NULL;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("mmsa"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_pg_extension_extversion,
									 RelationGetDescr(rel), &isnull);

		if (!isnull)
			version = DatumGetTextPCopy(d);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return version;
}

/* "<size>:<hash as 16 hex digits>" of dir/sub/model.safetensors, or NULL */
static text *
encoder_identity(const char *dir, const char *sub)
{
	char		path[MAXPGPATH];
	mmsa_pack_identity id;
	mmsa_error	err;

	snprintf(path, sizeof(path), "%s/%s/model.safetensors", dir, sub);
	if (mmsa_pack_identity_of(path, &id, &err) != MMSA_OK)
		return NULL;
	return cstring_to_text(psprintf("%llu:%016llx", (unsigned long long) id.size,
									(unsigned long long) id.hash));
}

/*
 * mmsa_info() returns one row: version (installed, pg_extension),
 * library_version (of mmsa.so), model_dir, text_model and image_model
 * (identities of the encoders' weights), default_model and
 * default_val_accuracy (model.json), val_accuracy (jsonb: every head's),
 * precision, isa, int8_kernels and threads.
 */
PG_FUNCTION_INFO_V1(mmsa_info);
Datum
mmsa_info(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[MMSA_INFO_COLUMNS];
	bool		nulls[MMSA_INFO_COLUMNS];
	const char *dir = mmsa_model_dir ? mmsa_model_dir : "";
	text	   *t;
	mmsa_error	err;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("mmsa_info() must return a record")));
	tupdesc = BlessTupleDesc(tupdesc);
	memset(nulls, true, sizeof(nulls));

	if ((t = installed_version()) != NULL)
		values[0] = PointerGetDatum(t), nulls[0] = false;
	values[1] = PointerGetDatum(cstring_to_text(MMSA_LIBRARY_VERSION));
	nulls[1] = false;
	values[2] = PointerGetDatum(cstring_to_text(dir));
	nulls[2] = false;
	if ((t = encoder_identity(dir, "text")) != NULL)
		values[3] = PointerGetDatum(t), nulls[3] = false;
	if ((t = encoder_identity(dir, "image")) != NULL)
		values[4] = PointerGetDatum(t), nulls[4] = false;

	{
		char		fusion[64];
		double		acc;
		char	   *val_json = NULL;

		if (sentiment_model_describe(dir, fusion, sizeof(fusion), &acc, &val_json, &err) == MMSA_OK)
		{
			if (fusion[0])
				values[5] = PointerGetDatum(cstring_to_text(fusion)), nulls[5] = false;
			if (acc >= 0)
				values[6] = Float4GetDatum((float4) acc), nulls[6] = false;
			if (val_json != NULL)
			{
				values[7] = DirectFunctionCall1(jsonb_in, CStringGetDatum(pstrdup(val_json)));
				nulls[7] = false;
				free(val_json);
			}
		}
	}

	values[8] = PointerGetDatum(cstring_to_text(
												mmsa_precision_name((mmsa_precision) mmsa_precision_setting)));
	nulls[8] = false;
	if (mmsa_isa_current() == MMSA_ISA_NONE && mmsa_isa_init(&err) != MMSA_OK)
		mmsa_report_error(&err, MMSA_ORIGIN_MODEL);
	values[9] = PointerGetDatum(cstring_to_text(mmsa_isa_current_label()));
	values[10] = PointerGetDatum(cstring_to_text(mmsa_int8_kernels_label()));
	values[11] = Int32GetDatum(mmsa_threads);
	nulls[9] = nulls[10] = nulls[11] = false;

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
