# cluster_lib.sh: three throwaway clusters for the scale-out test and
# benchmark (test/scaleout/scaleout.t, test/bench/bench_scaleout.sh),
# sourced after `set -euo pipefail`:
#   so_start DIR [-c name=value ...]   a coordinator (DIR/coord) and two shards
#                          (DIR/shard1, DIR/shard2), each a test/pg-cluster.sh
#                          cluster on its own Unix socket, each with the
#                          installed extension; the settings go to all three
#   so_stop DIR            stops them and removes DIR
#   qc, q1, q2 ARGS        psql (quiet, unaligned, stop on error) on the
#                          coordinator, shard 1, shard 2
#   so_layout              the README's layout: on each shard a table posts
#                          with the generated label column; on the
#                          coordinator postgres_fdw, a foreign server per shard
#                          and posts, hash-partitioned by id, one foreign
#                          partition per shard, and a foreign table per shard
#                          on its mmsa_model_identity view
#   so_load_csv N SPLIT    on the coordinator, posts_csv (id, split, label,
#                          body, image) with the first N posts of SPLIT in
#                          MVSA-Single's posts.csv order, images read with
#                          pg_read_binary_file
SO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SO_DATA="${MMSA_DATA:-$(cd "$SO_ROOT/.." && pwd)/shared/data}"

so_start() {
	local dir=$1 node
	shift
	mkdir -p "$dir"
	chmod 755 "$dir"
	SO_DIR=$dir
	for node in coord shard1 shard2; do
		"$SO_ROOT/test/pg-cluster.sh" start "$dir/$node" "$@" >/dev/null
	done
	for node in coord shard1 shard2; do
		psql -X -q -h "$dir/$node" -U postgres -d postgres -v ON_ERROR_STOP=1 \
			-c "CREATE EXTENSION mmsa"
	done
}

so_stop() {
	local node
	for node in coord shard1 shard2; do
		"$SO_ROOT/test/pg-cluster.sh" stop "$1/$node" >/dev/null 2>&1 || true
	done
	rm -rf "$1"
}

qc() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$SO_DIR/coord" -U postgres -d postgres "$@"; }
q1() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$SO_DIR/shard1" -U postgres -d postgres "$@"; }
q2() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$SO_DIR/shard2" -U postgres -d postgres "$@"; }

so_layout() {
	local s
	for s in 1 2; do
		"q$s" -c "CREATE TABLE posts (id bigint PRIMARY KEY, body text, image bytea)"
	done
	qc <<SQL
CREATE EXTENSION postgres_fdw;
CREATE EXTENSION dblink;
CREATE SERVER shard1 FOREIGN DATA WRAPPER postgres_fdw
	OPTIONS (host '$SO_DIR/shard1', dbname 'postgres', extensions 'mmsa', async_capable 'true');
CREATE SERVER shard2 FOREIGN DATA WRAPPER postgres_fdw
	OPTIONS (host '$SO_DIR/shard2', dbname 'postgres', extensions 'mmsa', async_capable 'true');
CREATE USER MAPPING FOR CURRENT_USER SERVER shard1 OPTIONS (user 'postgres');
CREATE USER MAPPING FOR CURRENT_USER SERVER shard2 OPTIONS (user 'postgres');
CREATE TABLE posts (id bigint NOT NULL, body text, image bytea) PARTITION BY HASH (id);
CREATE FOREIGN TABLE posts_1 PARTITION OF posts FOR VALUES WITH (MODULUS 2, REMAINDER 0)
	SERVER shard1 OPTIONS (table_name 'posts');
CREATE FOREIGN TABLE posts_2 PARTITION OF posts FOR VALUES WITH (MODULUS 2, REMAINDER 1)
	SERVER shard2 OPTIONS (table_name 'posts');
CREATE FOREIGN TABLE shard1_model_identity (item text, identity text)
	SERVER shard1 OPTIONS (table_name 'mmsa_model_identity');
CREATE FOREIGN TABLE shard2_model_identity (item text, identity text)
	SERVER shard2 OPTIONS (table_name 'mmsa_model_identity');
SQL
}

# The README's way to label existing rows: from the coordinator, each shard
# rewrites its own table with the generated label column, both at the same
# time (dblink_send_query, then dblink_get_result waits for each); then
# the coordinator's partitioned table gets the column (computed by no one
# there: postgres_fdw sends DEFAULT for it, and each shard computes it).
SO_RELABEL_SQL="
SELECT dblink_connect(s, s) FROM unnest('{shard1,shard2}'::text[]) s;
SELECT dblink_send_query(s, 'ALTER TABLE posts DROP COLUMN IF EXISTS sentiment,
	ADD COLUMN sentiment mmsa_label GENERATED ALWAYS AS (mmsa_sentiment(body, image)) STORED')
	FROM unnest('{shard1,shard2}'::text[]) s;
SELECT s, status FROM unnest('{shard1,shard2}'::text[]) s, dblink_get_result(s) AS r(status text);
SELECT dblink_disconnect(s) FROM unnest('{shard1,shard2}'::text[]) s;
ALTER TABLE posts ADD COLUMN IF NOT EXISTS sentiment mmsa_label GENERATED ALWAYS AS (NULL) STORED;
"

so_load_csv() {
	local n=$1 split=$2 csv="$SO_DATA/mvsa-single/posts.csv" images="$SO_DATA/mvsa-single/images"
	[ -f "$csv" ] && [ -d "$images" ] || { echo "MVSA-Single not found in $SO_DATA (set MMSA_DATA)" >&2; return 1; }
	qc -c "CREATE TABLE posts_all (ord bigserial, id bigint, split text, label text, text text)"
	qc -c "COPY posts_all (id, split, label, text) FROM STDIN WITH (FORMAT csv, HEADER true)" <"$csv"
	qc -v n="$n" -v split="$split" -v images="$images" <<'SQL'
CREATE TABLE posts_csv AS
	SELECT id, split, label, text AS body, pg_read_binary_file(:'images' || '/' || id || '.jpg') AS image
	  FROM posts_all WHERE split = :'split' ORDER BY ord LIMIT :n;
DROP TABLE posts_all;
SQL
}
