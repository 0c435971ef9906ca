-- pgTAP: the kernels' instruction-set path from SQL (mmsa_isa(),
-- mmsa_cpu_flags() and the setting mmsa.isa): signatures, markings and
-- comments; auto picks the best path; avx2 (which every supported CPU has)
-- set before the module and the model load is the path they use; who may
-- set it, unknown names, a path the CPU lacks (avx512 where it has no
-- AVX-512: 22023, else it runs); SET LOCAL and savepoints restore the
-- path; parallel workers use the leader's; and every path gives the same
-- sentiments, probabilities included.
--
-- Needs a trained model, found as in test/pgtap/sentiment_functions.sql,
-- and the fixtures of test/reference/sql_fixtures.py (fixture_posts).
BEGIN;
SELECT plan(23);

-- Set before the module is loaded: a placeholder that the module takes
-- over when CREATE EXTENSION (or the first call) loads it.
SET LOCAL mmsa.isa = 'avx2';

CREATE EXTENSION IF NOT EXISTS mmsa;

SELECT fixture_trained_model_dir() AS model_dir \gset
SET LOCAL mmsa.model_dir = :'model_dir';

-- the path auto picks: avx512 where the CPU (and the OS) have AVX-512 F,
-- BW and VL, else avx2
CREATE FUNCTION pg_temp.has_avx512() RETURNS boolean LANGUAGE sql AS $$
SELECT string_to_array(mmsa_cpu_flags(), ' ') @> ARRAY['avx512f', 'avx512bw', 'avx512vl']
       AND mmsa_cpu_flags() NOT LIKE '%not enabled%'
$$;
CREATE FUNCTION pg_temp.best_isa() RETURNS text LANGUAGE sql AS $$
SELECT CASE WHEN pg_temp.has_avx512() THEN 'avx512' ELSE 'avx2' END
$$;
-- the scores of some posts (with images, and one without) under the path
-- in use, as text: labels and probabilities to the last bit
CREATE FUNCTION pg_temp.post_scores() RETURNS TABLE (id bigint, scores text) LANGUAGE sql AS $$
SELECT id, mmsa_scores(body, CASE WHEN image_path IS NULL THEN NULL
                                  ELSE pg_read_binary_file(image_path) END)::text
FROM (SELECT * FROM fixture_posts WHERE image_path IS NOT NULL ORDER BY id LIMIT 6) p
UNION ALL
SELECT id, mmsa_scores(body, NULL)::text FROM fixture_posts WHERE image_path IS NULL
$$;

-- ---- the model loads under avx2 ------------------------------------------------
-- Nothing in this session has loaded the model yet: the first load
-- (mmsa_isa_init) must keep the path mmsa.isa chose.
CREATE TEMP TABLE under_avx2 AS SELECT * FROM pg_temp.post_scores();
SELECT is(mmsa_isa(), 'avx2',
          'mmsa.isa = avx2, set before the module loaded, is the path used, and the first model load keeps it');
SELECT cmp_ok((SELECT count(*)::int FROM under_avx2), '>=', 2, 'posts were classified under avx2');

-- ---- signatures, markings, comments, the setting -----------------------------
SELECT has_function('mmsa_isa', ARRAY[]::text[], 'mmsa_isa() exists');
SELECT function_returns('mmsa_isa', ARRAY[]::text[], 'text', 'mmsa_isa() returns text');
SELECT has_function('mmsa_cpu_flags', ARRAY[]::text[], 'mmsa_cpu_flags() exists');
SELECT function_returns('mmsa_cpu_flags', ARRAY[]::text[], 'text', 'mmsa_cpu_flags() returns text');
SELECT is(
    (SELECT string_agg(proname || '=' || provolatile::text || proparallel::text, ',' ORDER BY proname) FROM pg_proc
     WHERE proname IN ('mmsa_isa', 'mmsa_cpu_flags')),
    'mmsa_cpu_flags=ss,mmsa_isa=ss', 'mmsa_isa() and mmsa_cpu_flags() are STABLE PARALLEL SAFE');
SELECT ok(obj_description('mmsa_isa()'::regprocedure, 'pg_proc') IS NOT NULL
          AND obj_description('mmsa_cpu_flags()'::regprocedure, 'pg_proc') IS NOT NULL,
          'both have a COMMENT');
SELECT is((SELECT ARRAY[boot_val, vartype, context] FROM pg_settings WHERE name = 'mmsa.isa'),
          ARRAY['auto', 'string', 'user'], 'mmsa.isa: a string, auto by default, that any user may set');
SELECT ok(string_to_array(mmsa_cpu_flags(), ' ') @> ARRAY['avx', 'avx2', 'fma'],
          'mmsa_cpu_flags() lists avx, avx2 and fma (' || mmsa_cpu_flags() || ')');

-- ---- auto ---------------------------------------------------------------------
RESET mmsa.isa;
SELECT is(mmsa_isa(), pg_temp.best_isa(), 'auto runs the best path the CPU has (' || mmsa_isa() || ')');
CREATE TEMP TABLE under_auto AS SELECT * FROM pg_temp.post_scores();
SELECT is((SELECT array_agg(scores ORDER BY id) FROM under_auto),
          (SELECT array_agg(scores ORDER BY id) FROM under_avx2),
          'auto gives every post the label and the probabilities avx2 gives, bit for bit');

-- ---- avx512: runs where the CPU has it, refused where it has not ---------------
CREATE FUNCTION pg_temp.avx512_tests() RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
    IF pg_temp.has_avx512() THEN
        RETURN NEXT lives_ok($q$SET LOCAL mmsa.isa = 'avx512'$q$, 'this CPU has AVX-512: mmsa.isa = avx512 is accepted');
        RETURN NEXT is(mmsa_isa(), 'avx512', 'mmsa_isa() is then avx512');
        CREATE TEMP TABLE under_avx512 AS SELECT * FROM pg_temp.post_scores();
        RETURN NEXT is((SELECT array_agg(scores ORDER BY id) FROM under_avx512),
                       (SELECT array_agg(scores ORDER BY id) FROM under_avx2),
                       'avx512 gives every post the label and the probabilities avx2 gives, bit for bit');
        RESET mmsa.isa;
    ELSE
        RETURN NEXT throws_ok($q$SET LOCAL mmsa.isa = 'avx512'$q$, '22023', 'invalid value for parameter "mmsa.isa": "avx512"',
                              'this CPU lacks AVX-512: mmsa.isa = avx512 is refused with 22023');
        RETURN NEXT is(mmsa_isa(), pg_temp.best_isa(), 'the path stays ' || mmsa_isa());
        RETURN NEXT skip('no AVX-512 here (' || mmsa_cpu_flags() || '): avx512 and avx2 not compared in SQL', 1);
    END IF;
END $$;
SELECT * FROM pg_temp.avx512_tests();

-- ---- unknown names, who may set it ---------------------------------------------
SELECT throws_ok($$SET mmsa.isa = 'bogus'$$, '22023', 'invalid value for parameter "mmsa.isa": "bogus"',
                 'an unknown path is refused with 22023');
SELECT throws_ok($$SET mmsa.isa = 'AVX2'$$, '22023', NULL, 'names are lower case, as mmsa_isa() gives them');
CREATE ROLE mmsa_isa_user;
SET LOCAL ROLE mmsa_isa_user;
SELECT lives_ok($$SET LOCAL mmsa.isa = 'avx2'$$, 'a user who is not a superuser may set mmsa.isa');
SELECT is(mmsa_isa(), 'avx2', '... and that user''s queries then run on avx2');
RESET mmsa.isa;
RESET ROLE;

-- ---- savepoints restore the path ---------------------------------------------
SAVEPOINT before_avx2;
SET LOCAL mmsa.isa = 'avx2';
ROLLBACK TO SAVEPOINT before_avx2;
SELECT is(mmsa_isa(), pg_temp.best_isa(), 'rolling back to a savepoint restores the path with the setting');

-- ---- parallel workers ------------------------------------------------------------
-- A worker loads the module and takes the leader's settings.  Under a
-- forced parallel plan with the leader not participating, a query of
-- mmsa_isa() alone runs in a worker (pgTAP's functions are not parallel
-- safe, hence \gset).
CREATE FUNCTION pg_temp.workers_launched(query text) RETURNS int LANGUAGE plpgsql AS $$
DECLARE plan json;
BEGIN
    EXECUTE 'EXPLAIN (ANALYZE, FORMAT JSON) ' || query INTO plan;
    RETURN coalesce((plan->0->'Plan'->>'Workers Launched')::int, 0);
END $$;
SET LOCAL mmsa.isa = 'avx2';
SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL parallel_leader_participation = off;
SELECT set_config(CASE WHEN current_setting('server_version_num')::int >= 160000
                       THEN 'debug_parallel_query' ELSE 'force_parallel_mode' END, 'on', true) IS NULL AS unused \gset
SELECT mmsa_isa() AS worker_isa \gset
SELECT cmp_ok(pg_temp.workers_launched('SELECT mmsa_isa()'), '>', 0, 'a query of mmsa_isa() runs in a parallel worker');
SELECT is(:'worker_isa'::text, 'avx2'::text, 'the worker uses the leader''s path (avx2)');
RESET mmsa.isa;
SELECT mmsa_isa() AS worker_isa \gset
SELECT is(:'worker_isa'::text, pg_temp.best_isa(), 'and the best path once the leader resets mmsa.isa');

SELECT * FROM finish();
ROLLBACK;
