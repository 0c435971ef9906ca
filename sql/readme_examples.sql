-- The README's examples with the installed default model, on photographs
-- that ship with Debian's python3-skimage.  The expected output belongs to
-- the shipped model: retraining it means regenerating this file's output.
CREATE EXTENSION mmsa;
SELECT set_config('mmsa.model_dir', setting || '/mmsa', false) IS NOT NULL AS default_model
FROM pg_config WHERE name = 'SHAREDIR';

CREATE TABLE posts (
    id      serial PRIMARY KEY,
    posted  date NOT NULL,
    body    text,
    image   bytea
);
INSERT INTO posts (posted, body, image)
SELECT posted::date, body,
       CASE WHEN photo IS NULL THEN NULL
            ELSE pg_read_binary_file('/usr/lib/python3/dist-packages/skimage/data/' || photo) END
FROM (VALUES
    ('2026-11-01', 'My cat judging me again 😾 #caturday', 'chelsea.png'),
    ('2026-11-01', 'Best. Coffee. EVER!!! thank you @TheCafe, you made my morning', 'coffee.png'),
    ('2026-11-01', 'How I feel today #legday #jelly #aching #gym', NULL),
    ('2026-11-02', 'Launch scrubbed AGAIN. So disappointed, waited all night for nothing', 'rocket.jpg'),
    ('2026-11-02', 'Proud to be up here. What a view of home!', 'astronaut.png'),
    ('2026-11-02', NULL, 'hubble_deep_field.jpg'),
    ('2026-11-03', 'Stuck in traffic for two hours, worst commute ever #fail', 'motorcycle_left.png'),
    ('2026-11-03', 'Meeting moved to Thursday 3pm, room 204', NULL),
    ('2026-11-03', 'Look who came to visit the farm today! So happy', 'horse.png')
) AS v(posted, body, photo);

-- the label, and the probabilities (2 decimals: the last digits may
-- differ between CPUs)
SELECT id, mmsa_sentiment(body, image) FROM posts ORDER BY id;
SELECT id, s.label, round(s.p_negative::numeric, 2) AS p_negative,
       round(s.p_neutral::numeric, 2) AS p_neutral, round(s.p_positive::numeric, 2) AS p_positive
FROM posts, mmsa_scores(body, image) s ORDER BY id;
SELECT id, mmsa_sentiment(body, image, 'bert') AS bert, mmsa_sentiment(body, image, 'resnet') AS resnet,
       mmsa_sentiment(body, image, 'ote') AS ote, mmsa_sentiment(body, image, 'ensemble') AS ensemble
FROM posts ORDER BY id;

-- labels scored against gold labels (here given by hand)
SELECT (e).n, round((e).accuracy::numeric, 4) AS accuracy, round((e).macro_f1::numeric, 4) AS macro_f1,
       (e).recall[2] AS neutral_recall, (e).confusion
FROM (SELECT mmsa_evaluate(g.gold::mmsa_label, mmsa_sentiment(p.body, p.image)) AS e
      FROM posts p JOIN (VALUES (1, 'negative'), (2, 'positive'), (3, 'negative'), (4, 'negative'),
                                (5, 'positive'), (6, 'neutral'), (7, 'negative'), (8, 'neutral'),
                                (9, 'positive')) AS g(id, gold) USING (id)) x;

-- a generated column with an index on it
ALTER TABLE posts ADD COLUMN sentiment mmsa_label
    GENERATED ALWAYS AS (mmsa_sentiment(body, image)) STORED;
CREATE INDEX posts_sentiment ON posts (sentiment);
ANALYZE posts;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM posts WHERE sentiment = 'negative';
SELECT id, sentiment FROM posts WHERE sentiment = 'negative' ORDER BY id;
RESET enable_seqscan;

-- label distributions, per day and over all posts
SELECT posted, (mmsa_distribution(sentiment)).* FROM posts GROUP BY posted ORDER BY posted;
SELECT (mmsa_distribution(body, image)).* FROM posts;
SELECT (mmsa_distribution(sentiment)).* FROM posts;

-- a wrong model name is an error that lists the eight
\set VERBOSITY sqlstate
SELECT mmsa_sentiment('hello', NULL, 'transformer');

-- leave the database as it was found
\set VERBOSITY default
DROP TABLE posts;
DROP EXTENSION mmsa;
