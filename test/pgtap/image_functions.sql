-- pgTAP: the image path's SQL functions (mmsa_image_embedding,
-- mmsa_image_classes): signatures and markings, the real ImageNet weights
-- on photographs that ship with Debian, agreement with `mmsa classify`,
-- every good and hostile test image with its SQLSTATE, the pixel limit,
-- and no memory growth from repeated decoder errors.  Expects the fixtures
-- of test/reference/sql_fixtures.py.
BEGIN;
SELECT plan(26);

CREATE EXTENSION IF NOT EXISTS mmsa;

CREATE FUNCTION pg_temp.file(path text) RETURNS bytea LANGUAGE sql AS
$$SELECT pg_read_binary_file(path)$$;
CREATE FUNCTION pg_temp.test_image(name text) RETURNS bytea LANGUAGE sql AS
$$SELECT pg_read_binary_file((SELECT images_dir FROM fixture_settings) || '/' || name)$$;
CREATE FUNCTION pg_temp.photo(name text) RETURNS bytea LANGUAGE sql AS
$$SELECT pg_read_binary_file((SELECT skimage_dir FROM fixture_settings) || '/' || name)$$;

-- signatures and markings
SELECT has_function('mmsa_image_embedding', ARRAY['bytea'], 'mmsa_image_embedding(bytea) exists');
SELECT function_returns('mmsa_image_embedding', ARRAY['bytea'], 'real[]', 'mmsa_image_embedding returns real[]');
SELECT has_function('mmsa_image_classes', ARRAY['bytea', 'integer'], 'mmsa_image_classes(bytea, int) exists');
SELECT function_returns('mmsa_image_classes', ARRAY['bytea', 'integer'], 'setof record', 'mmsa_image_classes returns a set');
SELECT volatility_is('mmsa_image_embedding', ARRAY['bytea'], 'immutable', 'mmsa_image_embedding is IMMUTABLE');
SELECT volatility_is('mmsa_image_classes', ARRAY['bytea', 'integer'], 'immutable', 'mmsa_image_classes is IMMUTABLE');
SELECT is(
    (SELECT string_agg(proname || '=' || proparallel::text, ',' ORDER BY proname) FROM pg_proc
     WHERE proname IN ('mmsa_image_embedding', 'mmsa_image_classes')),
    'mmsa_image_classes=s,mmsa_image_embedding=s', 'the image functions are PARALLEL SAFE');
SELECT ok(obj_description('mmsa_image_embedding(bytea)'::regprocedure, 'pg_proc') IS NOT NULL
          AND obj_description('mmsa_image_classes(bytea, int)'::regprocedure, 'pg_proc') IS NOT NULL,
          'every image function has a COMMENT');

-- the real network
SELECT is((SELECT label FROM mmsa_image_classes(pg_temp.photo('chelsea.png')) WHERE rank = 1),
          'Egyptian cat', 'skimage''s chelsea.png is an Egyptian cat');
SELECT cmp_ok((SELECT probability FROM mmsa_image_classes(pg_temp.photo('chelsea.png'), 1)), '>', 0.9::real,
              'with probability above 0.9');
SELECT is((SELECT label FROM mmsa_image_classes(pg_temp.photo('coffee.png')) WHERE rank = 1),
          'espresso', 'skimage''s coffee.png is an espresso');
SELECT cmp_ok((SELECT probability FROM mmsa_image_classes(pg_temp.photo('coffee.png'), 1)), '>', 0.9::real,
              'with probability above 0.9');
SELECT is((SELECT count(*)::int FROM mmsa_image_classes(pg_temp.photo('coffee.png'))), 5, 'k defaults to 5');
SELECT is((SELECT count(*)::int FROM mmsa_image_classes(pg_temp.photo('coffee.png'), 5000)), 1000,
          'k is capped at the number of classes');
SELECT is(
    (SELECT count(*)::int FROM fixture_image_classes f
     JOIN LATERAL mmsa_image_classes(pg_temp.file(f.path)) s ON s.rank = f.rank
     WHERE s.label = f.label AND abs(s.probability - f.probability) <= 1e-5),
    (SELECT count(*)::int FROM fixture_image_classes),
    'SQL gives the same top 5 labels and probabilities as `mmsa classify` for three photographs');

SELECT is(array_length(mmsa_image_embedding(pg_temp.photo('chelsea.png')), 1), 2048,
          'F_I has 2048 values');
SELECT ok((SELECT bool_and(v >= 0) AND sum(v) > 0 FROM unnest(mmsa_image_embedding(pg_temp.photo('chelsea.png'))) v),
          'F_I is an average of ReLU outputs: non-negative, not all zero');
SELECT is(mmsa_image_embedding(NULL), NULL, 'NULL image gives NULL');

-- every test image: good ones decode, hostile ones give their SQLSTATE
CREATE FUNCTION pg_temp.sqlstate_of(name text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM mmsa_image_embedding(pg_temp.test_image(name));
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END $$;
SELECT is(
    (SELECT string_agg(name || ': ' || pg_temp.sqlstate_of(name), ', ' ORDER BY name)
     FROM fixture_images),
    (SELECT string_agg(name || ': ' || CASE expect
                WHEN 'ok' THEN 'ok' WHEN 'FORMAT' THEN '22P03' WHEN 'INVALID' THEN '22023'
                WHEN 'LIMIT' THEN '54000' WHEN 'UNSUPPORTED' THEN '0A000' END, ', ' ORDER BY name)
     FROM fixture_images),
    'every good test image decodes and every hostile one gives its SQLSTATE');

SELECT throws_ok($$SELECT mmsa_image_embedding(''::bytea)$$, '22023', NULL, 'empty bytea is 22023');
SELECT throws_like($$SELECT mmsa_image_embedding(pg_temp.test_image('truncated.jpg'))$$, '%JPEG%',
                   'a truncated JPEG says so');
SELECT throws_like($$SELECT mmsa_image_embedding(pg_temp.test_image('image.gif'))$$, '%GIF%',
                   'a GIF is refused, naming the format');
SELECT throws_ok($$SELECT mmsa_image_embedding(pg_temp.test_image('huge_100000.png'))$$, '54000', NULL,
                 'a PNG header claiming 100000x100000 pixels is refused (54000)');
SET LOCAL mmsa.max_image_pixels = 10000;
SELECT throws_ok($$SELECT mmsa_image_embedding(pg_temp.photo('chelsea.png'))$$, '54000', NULL,
                 'mmsa.max_image_pixels is honoured');
RESET mmsa.max_image_pixels;
SELECT throws_ok($$SELECT * FROM mmsa_image_classes(pg_temp.photo('chelsea.png'), 0)$$, '22023', NULL,
                 'k below 1 is 22023');

-- decoder errors leave nothing behind: 300 failing decodes do not grow the backend
CREATE FUNCTION pg_temp.rss_kb() RETURNS bigint LANGUAGE sql AS $$
    SELECT (regexp_match(pg_read_file('/proc/' || pg_backend_pid() || '/status'), 'VmRSS:\s+(\d+)'))[1]::bigint
$$;
CREATE FUNCTION pg_temp.fail_many(n int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE names text[] := ARRAY['truncated.jpg', 'bitflip_scan.jpg', 'truncated.png', 'bitflip.png',
                              'truncated_progressive.jpg', 'huge_100000.png', 'image.gif'];
BEGIN
    FOR i IN 1..n LOOP
        BEGIN
            PERFORM mmsa_image_embedding(pg_temp.test_image(names[1 + i % array_length(names, 1)]));
        EXCEPTION WHEN OTHERS THEN NULL;
        END;
    END LOOP;
END $$;
SELECT pg_temp.fail_many(50);
CREATE TEMP TABLE rss_before AS SELECT pg_temp.rss_kb() AS kb;
SELECT pg_temp.fail_many(300);
SELECT cmp_ok(pg_temp.rss_kb() - (SELECT kb FROM rss_before), '<', 4096::bigint,
              '300 failing decodes grow the backend by less than 4 MB');

SELECT * FROM finish();
ROLLBACK;
