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

"$ROOT/src/tools/install-deps.sh"
make -j2 all >/dev/null
$SUDO make install >/dev/null

PGDIR=$(mktemp -d /tmp/mmsa-demo.XXXXXX)
trap '"$ROOT/test/pg-cluster.sh" stop "$PGDIR"' EXIT
eval "$("$ROOT/test/pg-cluster.sh" start "$PGDIR")"
export PGHOST PGPORT PGUSER PGDATABASE

MODEL_DIR=$(psql -X -Atq -c "LOAD 'mmsa'" -c "SHOW mmsa.model_dir")
echo "mmsa demo: throwaway cluster at $PGDIR, model directory $MODEL_DIR"

# The pictures are photographs that ship with Debian's python3-skimage.
psql -X -v ON_ERROR_STOP=1 -v photos=/usr/lib/python3/dist-packages/skimage/data --echo-queries <<'SQL'
CREATE EXTENSION mmsa;

CREATE TABLE posts (
    id      serial PRIMARY KEY,
    posted  date NOT NULL,
    body    text NOT NULL,
    image   bytea
);

INSERT INTO posts (posted, body, image) VALUES
    ('2026-11-01', 'How I feel today #legday #jelly #aching #gym', NULL),
    ('2026-11-01', 'My cat judging me again 😾 #caturday', pg_read_binary_file(:'photos' || '/chelsea.png')),
    ('2026-11-02', 'Best. Coffee. EVER!!! ☕ thank you @TheCafe', pg_read_binary_file(:'photos' || '/coffee.png')),
    ('2026-11-02', 'Crème brûlée at the café, naïve résumé of a long day', NULL),
    ('2026-11-03', '東京の夜景 is beautiful tonight http://t.co/xyz', pg_read_binary_file(:'photos' || '/astronaut.png'));

-- What the text encoder reads: WordPiece tokens and their ids.
SELECT id, mmsa_wordpieces(body) AS wordpieces FROM posts ORDER BY id;
SELECT id, array_length(mmsa_tokenize(body), 1) AS n_tokens, mmsa_tokenize(body) AS ids
FROM posts ORDER BY id;

-- What the image encoder sees: ImageNet classes, and the 2048-value F_I.
SELECT p.id, c.rank, c.label, round(c.probability::numeric, 3) AS probability
FROM posts p, mmsa_image_classes(p.image, 3) c ORDER BY p.id, c.rank;
SELECT id, array_length(mmsa_image_embedding(image), 1) AS dims,
       (mmsa_image_embedding(image))[1:4] AS first_values
FROM posts WHERE image IS NOT NULL ORDER BY id;
SQL

if [ -f "$MODEL_DIR/text/model.safetensors" ]; then
	psql -X -v ON_ERROR_STOP=1 --echo-queries <<'SQL'
SELECT id, array_length(mmsa_text_embedding(body), 1) AS dims,
       (mmsa_text_embedding(body))[1:4] AS first_values
FROM posts ORDER BY id;
SQL
else
	echo "mmsa demo: no text encoder installed in $MODEL_DIR/text yet, so mmsa_text_embedding is not shown."
	echo "           Put a Hugging Face BERT checkpoint (config.json, model.safetensors) there, or see the README."
fi
