-- pgTAP: the upgrade path.  Installs mmsa 0.1.0, makes a table with a
-- stored generated mmsa_sentiment column and an index on it, then runs
-- ALTER EXTENSION mmsa UPDATE (0.1.0 -> 0.2.0 -> 0.3.0) and shows the
-- column, the index, the aggregates, mmsa_info() and mmsa_evaluate working
-- after it, the planner costs the update sets, and that the updated
-- extension has the objects of a fresh install (CREATE EXTENSION mmsa),
-- with the same definitions, properties and comments.
--
-- Needs the fixtures of test/reference/sql_fixtures.py (fixture_posts) and
-- a trained model, as test/pgtap/sentiment_functions.sql does.
BEGIN;
SELECT plan(27);

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


-- the updated extension against a fresh install: every member object, with
-- its definition, properties and comment
CREATE FUNCTION pg_temp.mmsa_objects() RETURNS TABLE(object text, definition text, comment text)
LANGUAGE sql STABLE AS $$
SELECT pg_describe_object(d.classid, d.objid, d.objsubid),
       CASE d.classid
           WHEN 'pg_proc'::regclass THEN
               (SELECT format('%s -> %s; %s %s strict=%s cost=%s rows=%s; %s %s', pg_get_function_arguments(p.oid),
                              pg_get_function_result(p.oid), p.provolatile, p.proparallel, p.proisstrict,
                              p.procost, p.prorows, p.prosrc,
                              (SELECT format('agg %s %s %s %s %s %s', a.aggtransfn, a.aggcombinefn, a.aggfinalfn,
                                             a.aggtranstype::regtype, a.agginitval, a.aggfinalmodify)
                                 FROM pg_aggregate a WHERE a.aggfnoid = p.oid))
                  FROM pg_proc p WHERE p.oid = d.objid)
           WHEN 'pg_type'::regclass THEN
               (SELECT format('%s %s %s', t.typtype,
                              (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_enum e
                                WHERE e.enumtypid = t.oid),
                              (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ','
                                                 ORDER BY a.attnum)
                                 FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0))
                  FROM pg_type t WHERE t.oid = d.objid)
           WHEN 'pg_class'::regclass THEN pg_get_viewdef(d.objid)
       END,
       obj_description(d.objid, (SELECT relname FROM pg_class WHERE oid = d.classid))
  FROM pg_depend d
 WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'mmsa')
$$;
CREATE TEMP TABLE updated_objects AS SELECT * FROM pg_temp.mmsa_objects();
SELECT ok((SELECT count(*) FROM updated_objects WHERE object IN
           ('function mmsa_model_identity()', 'function mmsa_model_mismatches(regclass[])', 'view mmsa_model_identity',
            'function mmsa_evaluate(mmsa_label,mmsa_label)')) = 4,
          'after the update the extension has 0.3.0''s mmsa_evaluate, mmsa_model_identity (function and view), mmsa_model_mismatches');
SELECT is((SELECT count(*)::int FROM updated_objects WHERE definition IS NULL AND object NOT LIKE 'type %[]'), 0,
          '(each function, type and view has its definition compared below)');
SET LOCAL client_min_messages = warning;
DROP EXTENSION mmsa CASCADE;
RESET client_min_messages;
CREATE EXTENSION mmsa;
SELECT is((SELECT extversion FROM pg_extension WHERE extname = 'mmsa'), '0.3.0', 'a fresh install is 0.3.0');
SELECT set_eq($$SELECT object FROM updated_objects$$, $$SELECT object FROM pg_temp.mmsa_objects()$$,
              'the updated extension has the objects of a fresh install, no more, no fewer');
SELECT set_eq($$SELECT * FROM updated_objects$$, $$SELECT * FROM pg_temp.mmsa_objects()$$,
              'with the same definitions, volatility, parallel safety, strictness, costs and comments');

SELECT * FROM finish();
ROLLBACK;
