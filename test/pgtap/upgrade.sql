-- pgTAP: the upgrade path.  Installs mmsa 0.1.0, makes a table with a
-- stored generated mmsa_sentiment column and an index on it, then runs
-- ALTER EXTENSION mmsa UPDATE (0.1.0 -> 0.2.0 -> 0.3.0) and shows the
-- column, the index, the aggregates, mmsa_info() and mmsa_evaluate working
-- after it, and the planner costs the update sets.
--
-- Needs the fixtures of test/reference/sql_fixtures.py (fixture_posts) and
-- a trained model, as test/pgtap/sentiment_functions.sql does.
BEGIN;
SELECT plan(22);

DROP EXTENSION IF EXISTS mmsa CASCADE;
SELECT is((SELECT default_version FROM pg_available_extensions WHERE name = 'mmsa'), '0.3.0',
          'the default version is 0.3.0');
SELECT ok(EXISTS (SELECT 1 FROM pg_extension_update_paths('mmsa')
                  WHERE source = '0.1.0' AND target = '0.3.0' AND path = '0.1.0--0.2.0--0.3.0'),
          'there is an update path from 0.1.0 through 0.2.0 to 0.3.0');

CREATE EXTENSION mmsa VERSION '0.1.0';
SELECT is((SELECT extversion FROM pg_extension WHERE extname = 'mmsa'), '0.1.0', '0.1.0 installed');
-- as an early 0.1.0 build made it: without the functions added to 0.1.0 later
ALTER EXTENSION mmsa DROP FUNCTION mmsa_int8_kernels();
DROP FUNCTION mmsa_int8_kernels();
ALTER EXTENSION mmsa DROP FUNCTION mmsa_cpu_flags();
DROP FUNCTION mmsa_cpu_flags();
SELECT hasnt_function('mmsa_info', '0.1.0 has no mmsa_info()');
SELECT is((SELECT procost FROM pg_proc WHERE oid = 'mmsa_sentiment(text, bytea)'::regprocedure), 1::real,
          'in 0.1.0, mmsa_sentiment costs 1');

SELECT fixture_trained_model_dir() AS model_dir \gset
SET LOCAL mmsa.model_dir = :'model_dir';

CREATE TABLE upgrade_posts (
    id int PRIMARY KEY,
    body text,
    image bytea,
    sentiment mmsa_label GENERATED ALWAYS AS (mmsa_sentiment(body, image)) STORED
);
INSERT INTO upgrade_posts (id, body, image)
SELECT id, body, CASE WHEN image_path IS NULL THEN NULL ELSE pg_read_binary_file(image_path) END
FROM fixture_posts;
CREATE INDEX upgrade_posts_sentiment ON upgrade_posts (sentiment);
ANALYZE upgrade_posts;
CREATE TEMP TABLE before_update AS
SELECT (mmsa_distribution(sentiment)).* FROM upgrade_posts;

ALTER EXTENSION mmsa UPDATE;
SELECT is((SELECT extversion FROM pg_extension WHERE extname = 'mmsa'), '0.3.0',
          'ALTER EXTENSION mmsa UPDATE goes to 0.3.0');
SELECT has_function('mmsa_info', 'after it, mmsa_info() exists');
SELECT is((SELECT (mmsa_evaluate(sentiment, mmsa_sentiment(body, image))).accuracy FROM upgrade_posts), 1::float8,
          'and mmsa_evaluate: the stored labels score 1.0 against mmsa_sentiment');
SELECT is((SELECT count(*)::int FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid
           WHERE d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
             AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'mmsa')
             AND p.proname IN ('mmsa_int8_kernels', 'mmsa_cpu_flags', 'mmsa_isa')), 3,
          'a 0.1.0 database made before mmsa_cpu_flags() and mmsa_int8_kernels() has them after it');
SELECT is(mmsa_int8_kernels(), (SELECT int8_kernels FROM mmsa_info()), 'and they work');
SELECT is((SELECT version FROM mmsa_info()), '0.3.0', 'mmsa_info() reports the installed version');
SELECT is((SELECT library_version FROM mmsa_info()), '0.3.0', 'and the library''s');
SELECT is((SELECT model_dir FROM mmsa_info()), current_setting('mmsa.model_dir'),
          'mmsa_info() reports mmsa.model_dir');
SELECT ok((SELECT default_model IS NOT NULL AND default_val_accuracy > 0.3 AND text_model IS NOT NULL
                  AND image_model IS NOT NULL FROM mmsa_info()),
          'mmsa_info() reads the model: default model, its val accuracy, the encoders'' identities');

-- the stored column, its index and the aggregates, after the update
SELECT is((SELECT count(*)::int FROM upgrade_posts WHERE sentiment IS DISTINCT FROM mmsa_sentiment(body, image)), 0,
          'the stored labels equal mmsa_sentiment after the update');
INSERT INTO upgrade_posts (id, body, image) VALUES (-1, 'What a wonderful happy day, I love it!', NULL);
SELECT is((SELECT sentiment FROM upgrade_posts WHERE id = -1), mmsa_sentiment('What a wonderful happy day, I love it!', NULL),
          'a row inserted after the update gets its generated label');
SET LOCAL enable_seqscan = off;
SELECT matches(fixture_plan($$SELECT id FROM upgrade_posts WHERE sentiment = 'negative'$$),
               'upgrade_posts_sentiment', 'the index on the stored label is used after the update');
SELECT results_eq($$SELECT id FROM upgrade_posts WHERE sentiment = 'negative' ORDER BY id$$,
                  $$SELECT id FROM upgrade_posts WHERE sentiment::text = 'negative' ORDER BY id$$,
                  'and it finds the rows a scan finds');
RESET enable_seqscan;
DELETE FROM upgrade_posts WHERE id = -1;
SELECT results_eq($$SELECT (mmsa_distribution(sentiment)).* FROM upgrade_posts$$,
                  $$SELECT * FROM before_update$$,
                  'mmsa_distribution(label) gives what it gave before the update');
SELECT results_eq($$SELECT (mmsa_distribution(body, image)).* FROM upgrade_posts$$,
                  $$SELECT * FROM before_update$$,
                  'mmsa_distribution(body, image) gives the same distribution');

-- the costs the update sets
SELECT cmp_ok((SELECT procost FROM pg_proc WHERE oid = 'mmsa_sentiment(text, bytea)'::regprocedure), '>', 1000::real,
              'after it, mmsa_sentiment costs more than 1000 operators');
SELECT cmp_ok((SELECT procost FROM pg_proc WHERE oid = 'mmsa_sentiment(text, bytea)'::regprocedure), '>',
              (SELECT procost FROM pg_proc WHERE oid = 'mmsa_text_embedding(text)'::regprocedure),
              'a post costs more than its text alone');

SELECT * FROM finish();
ROLLBACK;
