-- pgTAP: mmsa_model_identity(), what decides a server's results, and
-- mmsa_model_mismatches(), the comparison between servers that the
-- README's "Scale-out" section documents: signatures, volatility, each row
-- against the file or setting it reports (the digests against PostgreSQL's
-- own sha256() of the file), and the mismatches found against a node whose
-- rows differ.  The comparison through postgres_fdw, with real shards, is
-- test/scaleout/scaleout.t.
--
-- Needs the fixtures of test/reference/sql_fixtures.py (fixture_settings)
-- and a trained model, as test/pgtap/sentiment_functions.sql does.
BEGIN;
SELECT plan(24);

CREATE EXTENSION IF NOT EXISTS mmsa;

SELECT has_function('mmsa_model_identity', ARRAY[]::text[], 'mmsa_model_identity() exists');
SELECT volatility_is('mmsa_model_identity', ARRAY[]::text[], 'stable', 'mmsa_model_identity() is STABLE');
SELECT is((SELECT proparallel FROM pg_proc WHERE oid = 'mmsa_model_identity()'::regprocedure), 's',
          'mmsa_model_identity() is PARALLEL SAFE');
SELECT is((SELECT (proretset, proargnames, proallargtypes::regtype[])::text FROM pg_proc
           WHERE oid = 'mmsa_model_identity()'::regprocedure), '(t,"{item,identity}","{text,text}")',
          'it returns rows (item text, identity text)');
SELECT has_view('mmsa_model_identity', 'the view mmsa_model_identity exists (what a foreign table reads)');
SELECT has_function('mmsa_model_mismatches', ARRAY['regclass[]'], 'mmsa_model_mismatches(VARIADIC regclass[]) exists');
SELECT is((SELECT provolatile::text || proparallel::text FROM pg_proc
           WHERE oid = 'mmsa_model_mismatches(regclass[])'::regprocedure), 'sr',
          'mmsa_model_mismatches is STABLE and PARALLEL RESTRICTED (it reads foreign tables)');
SELECT ok(obj_description('mmsa_model_identity()'::regprocedure, 'pg_proc') IS NOT NULL
          AND obj_description('mmsa_model_mismatches(regclass[])'::regprocedure, 'pg_proc') IS NOT NULL
          AND obj_description('mmsa_model_identity'::regclass, 'pg_class') IS NOT NULL,
          'both functions and the view are documented');

SELECT fixture_trained_model_dir() AS model_dir \gset
SET LOCAL mmsa.model_dir = :'model_dir';
CREATE TEMP TABLE ident AS SELECT row_number() OVER () AS n, item, identity FROM mmsa_model_identity();

-- the files: every regular file under the model directory and its
-- subdirectories, less the derived *.packed sidecars
CREATE TEMP TABLE model_files AS
SELECT f AS item FROM pg_ls_dir(:'model_dir') f
 WHERE (pg_stat_file(:'model_dir' || '/' || f)).isdir = false AND f NOT LIKE '%.packed' AND f NOT LIKE '.%'
UNION ALL
SELECT d || '/' || f FROM pg_ls_dir(:'model_dir') d, pg_ls_dir(:'model_dir' || '/' || d) f
 WHERE (pg_stat_file(:'model_dir' || '/' || d)).isdir AND f NOT LIKE '%.packed' AND f NOT LIKE '.%'
   AND (pg_stat_file(:'model_dir' || '/' || d || '/' || f)).isdir = false;
SELECT set_eq($$SELECT item FROM ident WHERE item NOT IN ('mmsa.precision', 'mmsa.so')$$,
              $$SELECT item FROM model_files$$,
              'a row per model file: every file under mmsa.model_dir but the *.packed sidecars');
SELECT ok((SELECT count(*) FROM ident WHERE item IN ('model.json', 'text/model.safetensors', 'text/vocab.txt',
                                                     'text/config.json', 'image/model.safetensors'))= 5
          AND EXISTS (SELECT 1 FROM ident WHERE item LIKE 'heads/%.safetensors'),
          'among them model.json, the heads and both encoders'' weights and configuration');
SELECT is((SELECT count(*)::int FROM ident WHERE item LIKE '%.packed'), 0, 'no *.packed row');
SELECT is((SELECT array_agg(item ORDER BY n) FROM ident WHERE item NOT IN ('mmsa.precision', 'mmsa.so')),
          (SELECT array_agg(item ORDER BY item COLLATE "C") FROM ident WHERE item NOT IN ('mmsa.precision', 'mmsa.so')),
          'the files in path order');
SELECT is((SELECT array_agg(item ORDER BY n) FROM ident WHERE n > (SELECT max(n) - 2 FROM ident)),
          ARRAY['mmsa.precision', 'mmsa.so'], 'then mmsa.precision and mmsa.so');
SELECT is((SELECT count(*)::int FROM ident WHERE item NOT IN ('mmsa.precision', 'mmsa.so')
                                             AND identity !~ '^sha256:[0-9a-f]{64}$'), 0,
          'each file''s identity is sha256: and 64 hex digits');
SELECT is((SELECT count(*)::int FROM ident
           WHERE item IN ('model.json', 'text/config.json', 'text/vocab.txt', 'image/model.safetensors')
             AND identity = 'sha256:' || encode(sha256(pg_read_binary_file(:'model_dir' || '/' || item)), 'hex')), 4,
          'and the SHA-256 of the whole file (model.json, text/config.json, text/vocab.txt, image/model.safetensors)');
SELECT is((SELECT identity FROM ident WHERE item = 'mmsa.precision'), 'fp32', 'mmsa.precision: fp32 by default');
SELECT is((SELECT identity FROM ident WHERE item = 'mmsa.so'), (SELECT library_version FROM mmsa_info()),
          'mmsa.so: the library''s version, as mmsa_info() reports it');
SET LOCAL mmsa.precision = int8;
SELECT is((SELECT identity FROM mmsa_model_identity() WHERE item = 'mmsa.precision'), 'int8',
          'the mmsa.precision row follows the setting (int8)');
RESET mmsa.precision;
SELECT set_eq($$SELECT item, identity FROM mmsa_model_identity$$, $$SELECT item, identity FROM ident$$,
              'the view gives the function''s rows');

-- a directory without a model: the two setting rows only, no error
SET LOCAL mmsa.model_dir = '/nonexistent/mmsa-model';
SELECT is((SELECT array_agg(item ORDER BY item) FROM mmsa_model_identity()), ARRAY['mmsa.precision', 'mmsa.so'],
          'a model directory that does not exist: only mmsa.precision and mmsa.so');
SET LOCAL mmsa.model_dir = :'model_dir';

-- mmsa_model_mismatches against "nodes" given as local tables (on a
-- coordinator they are foreign tables on each shard's view)
CREATE TEMP TABLE node_same AS SELECT item, identity FROM mmsa_model_identity();
CREATE TEMP TABLE node_other AS SELECT item, identity FROM mmsa_model_identity();
UPDATE node_other SET identity = 'sha256:' || repeat('0', 64) WHERE item = 'model.json';
UPDATE node_other SET identity = 'int8' WHERE item = 'mmsa.precision';
DELETE FROM node_other WHERE item = 'text/vocab.txt';
INSERT INTO node_other VALUES ('heads/extra.safetensors', 'sha256:' || repeat('1', 64));
SELECT is_empty($$SELECT * FROM mmsa_model_mismatches('node_same')$$,
                'mmsa_model_mismatches: no row for a node with the same identity');
SELECT results_eq(
    $$SELECT node, item, here IS NOT NULL, there FROM mmsa_model_mismatches('node_same', 'node_other')$$,
    $$VALUES ('node_other', 'heads/extra.safetensors', false, 'sha256:' || repeat('1', 64)),
             ('node_other', 'mmsa.precision', true, 'int8'),
             ('node_other', 'model.json', true, 'sha256:' || repeat('0', 64)),
             ('node_other', 'text/vocab.txt', true, NULL)$$,
    'a node with another file, precision, a missing and an extra file: a row each, named by the table when not foreign');
SELECT is((SELECT here FROM mmsa_model_mismatches('node_other') WHERE item = 'model.json'),
          (SELECT identity FROM ident WHERE item = 'model.json'), '"here" is this server''s identity');
-- the extension's schema need not be on the search_path
SET LOCAL search_path = pg_catalog, pg_temp;
SELECT count(*) AS off_path FROM public.mmsa_model_mismatches('node_other') \gset
RESET search_path;
SELECT is(:off_path::int, 4, 'mmsa_model_mismatches works with the extension''s schema off the search_path');

SELECT * FROM finish();
ROLLBACK;
