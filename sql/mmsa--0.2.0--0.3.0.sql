-- mmsa 0.2.0 -> 0.3.0: mmsa_evaluate(), the evaluation of labels against
-- gold labels as an aggregate, and the checks that a sharded setup needs.
-- CREATE EXTENSION mmsa installs 0.1.0 and then runs the update scripts in
-- turn; ALTER EXTENSION mmsa UPDATE runs this one on a database that has
-- 0.2.0.
\echo Use "ALTER EXTENSION mmsa UPDATE TO '0.3.0'" to load this file. \quit

-- ---- evaluation of labels against gold labels ------------------------------

CREATE TYPE mmsa_evaluation AS (
	n bigint,
	accuracy float8,
	weighted_precision float8,
	weighted_recall float8,
	weighted_f1 float8,
	macro_precision float8,
	macro_recall float8,
	macro_f1 float8,
	precision float8[],
	recall float8[],
	f1 float8[],
	support bigint[],
	confusion bigint[]
);

COMMENT ON TYPE mmsa_evaluation IS
'Result of mmsa_evaluate: the pairs counted, accuracy, precision/recall/F1 weighted by gold support (the paper''s Table 4) and their macro (unweighted) means, per-class precision, recall, F1 and gold support (negative, neutral, positive), and the 3x3 confusion counts (rows gold, columns predicted); the rates are NULL when nothing was counted';

CREATE FUNCTION mmsa_evaluate_accum(state bigint[], gold mmsa_label, predicted mmsa_label) RETURNS bigint[]
	AS 'MODULE_PATHNAME', 'mmsa_evaluate_accum'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION mmsa_evaluate_accum(bigint[], mmsa_label, mmsa_label) IS
'Support function of the aggregate mmsa_evaluate: adds one (gold, predicted) pair to the nine confusion counts';

CREATE FUNCTION mmsa_evaluate_combine(state bigint[], other bigint[]) RETURNS bigint[]
	AS 'MODULE_PATHNAME', 'mmsa_evaluate_combine'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION mmsa_evaluate_combine(bigint[], bigint[]) IS
'Support function of the aggregate mmsa_evaluate: adds the confusion counts of two partial results (parallel aggregation)';

CREATE FUNCTION mmsa_evaluate_final(state bigint[]) RETURNS mmsa_evaluation
	AS 'MODULE_PATHNAME', 'mmsa_evaluate_final'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION mmsa_evaluate_final(bigint[]) IS
'Support function of the aggregate mmsa_evaluate: turns the nine confusion counts into an mmsa_evaluation';

CREATE AGGREGATE mmsa_evaluate(gold mmsa_label, predicted mmsa_label) (
	SFUNC = mmsa_evaluate_accum,
	STYPE = bigint[],
	INITCOND = '{0,0,0,0,0,0,0,0,0}',
	COMBINEFUNC = mmsa_evaluate_combine,
	FINALFUNC = mmsa_evaluate_final,
	PARALLEL = SAFE
);

COMMENT ON AGGREGATE mmsa_evaluate(mmsa_label, mmsa_label) IS
'Predicted labels against gold labels, as mmsa eval scores them: accuracy, weighted and macro precision/recall/F1, per-class figures and the confusion counts; pairs with a NULL are not counted';

-- ---- scale-out: model identity across servers ------------------------------
-- The functions are IMMUTABLE: a sharded table is right only when every
-- node computes with the same model files and precision.  Each node
-- reports what decides its results (mmsa_model_identity(), also as a view
-- that a postgres_fdw foreign table can read); the coordinator compares
-- its own rows with those read from each shard (mmsa_model_mismatches).

CREATE FUNCTION mmsa_model_identity(OUT item text, OUT identity text)
	RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'mmsa_model_identity'
	LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION mmsa_model_identity() IS
'What decides this server''s results: the SHA-256 of every file under mmsa.model_dir (model.json, heads, both encoders'' config, weights, vocabulary and calibration; not the derived *.packed), then mmsa.precision (this session''s) and the version of mmsa.so; compare across servers with mmsa_model_mismatches()';

CREATE VIEW mmsa_model_identity AS
	SELECT item, identity FROM mmsa_model_identity();

COMMENT ON VIEW mmsa_model_identity IS
'mmsa_model_identity() as a view, for a postgres_fdw foreign table on another node (read through it, mmsa.precision is that of the foreign server''s connection, the one the coordinator''s inserts and pushed-down queries run in)';

CREATE FUNCTION mmsa_model_mismatches(VARIADIC nodes regclass[])
	RETURNS TABLE(node text, item text, here text, there text)
	LANGUAGE plpgsql STABLE PARALLEL RESTRICTED
	AS $$
DECLARE
	n regclass;
	-- the extension is relocatable: its schema, whatever the search_path
	ext name := (SELECT e.extnamespace::regnamespace::name FROM pg_extension e WHERE e.extname = 'mmsa');
BEGIN
	FOREACH n IN ARRAY nodes LOOP
		RETURN QUERY EXECUTE format(
			'SELECT coalesce((SELECT s.srvname::text FROM pg_catalog.pg_foreign_table f'
			'                   JOIN pg_catalog.pg_foreign_server s ON s.oid = f.ftserver'
			'                  WHERE f.ftrelid = %s), %L),'
			'       coalesce(h.item, t.item), h.identity, t.identity'
			'  FROM %I.mmsa_model_identity() h FULL JOIN %s t ON t.item = h.item'
			' WHERE h.identity IS DISTINCT FROM t.identity'
			' ORDER BY 2', n::oid, n::text, ext, n);
	END LOOP;
END
$$;

COMMENT ON FUNCTION mmsa_model_mismatches(regclass[]) IS
'The rows of mmsa_model_identity() that differ between this server and each node given, as a foreign table (postgres_fdw) on that node''s mmsa_model_identity view: node (the foreign server''s name), item, here, there (NULL where one side lacks the item); no rows when every node computes as this one';
