-- mmsa 0.1.0 -> 0.2.0: mmsa_info(), and planner costs for the inference
-- functions.  CREATE EXTENSION mmsa installs 0.1.0 and then runs this file;
-- ALTER EXTENSION mmsa UPDATE runs it on a database that has 0.1.0.
\echo Use "ALTER EXTENSION mmsa UPDATE TO '0.2.0'" to load this file. \quit

-- ---- what this server runs ------------------------------------------------

CREATE FUNCTION mmsa_info(
	OUT version text,
	OUT library_version text,
	OUT model_dir text,
	OUT text_model text,
	OUT image_model text,
	OUT default_model text,
	OUT default_val_accuracy real,
	OUT val_accuracy jsonb,
	OUT inference_precision text,
	OUT isa text,
	OUT int8_kernels text,
	OUT threads int)
	AS 'MODULE_PATHNAME', 'mmsa_info'
	LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION mmsa_info() IS
'What this server runs: the installed and the library version, mmsa.model_dir, the identity of the text and image encoders'' weights (size:hash of model.safetensors, as the sidecars record it), the default model and the val accuracy of every head (model.json), mmsa.precision, the instruction-set path and int8 kernels in use, and mmsa.threads; NULL where a model file is missing';

-- ---- planner costs --------------------------------------------------------
-- COST is the time of one call in units of one cpu_operator_cost (the
-- time of int4 + int4), measured by test/bench/function_costs.sh on real
-- MVSA-Single posts, one backend, mmsa.threads = 1, and rounded (README:
-- "Parallel plans").  Without them every call cost 1, as cheap as an
-- addition: the planner neither planned these calls in parallel workers
-- nor ran a cheap filter before them.
ALTER FUNCTION mmsa_tokenize(text) COST 100;
ALTER FUNCTION mmsa_wordpieces(text) COST 100;
ALTER FUNCTION mmsa_text_embedding(text) COST 10000;
ALTER FUNCTION mmsa_image_embedding(bytea) COST 1000000;
ALTER FUNCTION mmsa_image_classes(bytea, int) COST 1000000;
ALTER FUNCTION mmsa_sentiment(text, bytea) COST 1000000;
ALTER FUNCTION mmsa_sentiment(text, bytea, text) COST 1000000;
ALTER FUNCTION mmsa_scores(text, bytea, text) COST 1000000;
ALTER FUNCTION mmsa_distribution_post_accum(bigint[], text, bytea) COST 1000000;
