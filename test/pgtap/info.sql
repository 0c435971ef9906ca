-- pgTAP: mmsa_info(), what the server runs: its signature and volatility,
-- each column against the setting or file it reports, and NULLs (not an
-- error) where the model directory lacks a file.
--
-- Needs the fixtures of test/reference/sql_fixtures.py (fixture_settings)
-- and a trained model, as test/pgtap/sentiment_functions.sql does.
BEGIN;
SELECT plan(17);

CREATE EXTENSION IF NOT EXISTS mmsa;

SELECT has_function('mmsa_info', ARRAY[]::text[], 'mmsa_info() exists');
SELECT volatility_is('mmsa_info', ARRAY[]::text[], 'stable', 'mmsa_info() is STABLE');
SELECT is((SELECT proparallel FROM pg_proc WHERE oid = 'mmsa_info()'::regprocedure), 's',
          'mmsa_info() is PARALLEL SAFE');
SELECT ok(obj_description('mmsa_info()'::regprocedure, 'pg_proc') IS NOT NULL, 'mmsa_info() is documented');

SELECT fixture_trained_model_dir() AS model_dir \gset
SET LOCAL mmsa.model_dir = :'model_dir';

SELECT is((SELECT version FROM mmsa_info()), (SELECT extversion FROM pg_extension WHERE extname = 'mmsa'),
          'version: the installed extension''s');
SELECT is((SELECT model_dir FROM mmsa_info()), :'model_dir', 'model_dir: mmsa.model_dir');
SELECT matches((SELECT text_model FROM mmsa_info()), '^[0-9]+:[0-9a-f]{16}$',
               'text_model: size:hash of text/model.safetensors');
SELECT is((SELECT split_part(text_model, ':', 1)::bigint FROM mmsa_info()),
          (pg_stat_file(:'model_dir' || '/text/model.safetensors')).size,
          'and its size is the file''s');
SELECT isnt((SELECT text_model FROM mmsa_info()), (SELECT image_model FROM mmsa_info()),
            'image_model: another identity');
SELECT is((SELECT default_model FROM mmsa_info()),
          (pg_read_file(:'model_dir' || '/model.json')::jsonb ->> 'default_fusion'),
          'default_model: model.json''s default_fusion');
SELECT is((SELECT val_accuracy FROM mmsa_info()),
          (pg_read_file(:'model_dir' || '/model.json')::jsonb -> 'val_accuracy'),
          'val_accuracy: model.json''s, every head');
SELECT is((SELECT default_val_accuracy FROM mmsa_info()),
          (SELECT (val_accuracy ->> default_model)::real FROM mmsa_info()),
          'default_val_accuracy: the default model''s');

SET LOCAL mmsa.precision = int8;
SET LOCAL mmsa.threads = 2;
SELECT is((SELECT (inference_precision, threads)::text FROM mmsa_info()), '(int8,2)',
          'inference_precision and threads follow mmsa.precision and mmsa.threads');
SELECT is((SELECT (isa, int8_kernels)::text FROM mmsa_info()), (mmsa_isa(), mmsa_int8_kernels())::text,
          'isa and int8_kernels: mmsa_isa() and mmsa_int8_kernels()');
RESET mmsa.precision;
RESET mmsa.threads;

-- a directory without a model: NULLs, no error
SELECT missing_weights_dir FROM fixture_settings \gset
SET LOCAL mmsa.model_dir = :'missing_weights_dir';
SELECT lives_ok($$SELECT * FROM mmsa_info()$$, 'mmsa_info() answers for a directory without a model');
SELECT is((SELECT (text_model, image_model, default_model, val_accuracy)::text FROM mmsa_info()), '(,,,)',
          'with NULL where the files are missing');
SELECT is((SELECT model_dir FROM mmsa_info()), :'missing_weights_dir', 'and the directory it looked in');

SELECT * FROM finish();
ROLLBACK;
