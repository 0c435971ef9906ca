#!/bin/bash
# The main job, end to end, on a fresh Debian 12 machine: install what is
# missing, build, install the extension, start a throwaway PostgreSQL
# cluster, load some posts and analyse them from SQL, then stop the cluster.
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

MODEL_DIR=$(psql -X -Atc "LOAD 'mmsa'; SHOW mmsa.model_dir")
echo "mmsa demo: throwaway cluster at $PGDIR, model directory $MODEL_DIR"

psql -X -v ON_ERROR_STOP=1 --echo-queries <<'SQL'
CREATE EXTENSION mmsa;

CREATE TABLE posts (
    id      serial PRIMARY KEY,
    posted  date NOT NULL,
    body    text NOT NULL
);

INSERT INTO posts (posted, body) VALUES
    ('2026-11-01', 'How I feel today #legday #jelly #aching #gym'),
    ('2026-11-01', 'Best. Concert. EVER!!! 😍🎶 thank you @TheBand'),
    ('2026-11-02', 'Poor @HarrisburgHeat getting crushed 12 to 4 at half time.'),
    ('2026-11-02', 'Crème brûlée at the café, naïve résumé of a long day'),
    ('2026-11-03', '東京の夜景 is beautiful tonight http://t.co/xyz');

-- What the text encoder reads: WordPiece tokens and their ids.
SELECT id, mmsa_wordpieces(body) AS wordpieces FROM posts ORDER BY id;
SELECT id, array_length(mmsa_tokenize(body), 1) AS n_tokens, mmsa_tokenize(body) AS ids
FROM posts ORDER BY id;
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
