# sql_bench_lib.sh: what the SQL benchmarks share (bench_sql.sh, bench_bulk.sh,
# function_costs.sh), sourced by them after `set -euo pipefail`:
#   ROOT, DATA (MMSA_DATA or ../shared/data), CSV and IMAGES (MVSA-Single)
#   die MESSAGE                  the script's name and MESSAGE on stderr, exit 1
#   bench_host                   prints the date, the CPU and its SIMD flags
#   bench_cluster_start          a throwaway cluster (test/pg-cluster.sh) in a
#                                mktemp folder, stopped and removed on exit;
#                                exports PGHOST etc.; q runs psql quietly
#   bench_load_posts N [COLS]    CREATE EXTENSION mmsa, then posts(id bigint,
#                                body text, image bytea [, COLS]) from the first
#                                N train posts in file order, images read with
#                                pg_read_binary_file; fails unless there are N
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DATA="${MMSA_DATA:-$(cd "$ROOT/.." && pwd)/shared/data}"
CSV="$DATA/mvsa-single/posts.csv"
IMAGES="$DATA/mvsa-single/images"

die() { echo "$(basename "$0"): $*" >&2; exit 1; }

bench_host() {
	echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(nproc) cores"
	BENCH_FLAGS=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' |
		grep -x -E 'avx2|fma|avx512f|avx512bw|avx512vl|avx512_vnni|avx512_bf16|avx_vnni' | tr '\n' ' ' || true)
	echo "SIMD flags: ${BENCH_FLAGS:-(none of avx2 fma avx512f avx512bw avx512vl avx512_vnni avx512_bf16 avx_vnni)}"
}

bench_cluster_start() {
	BENCH_TMP=$(mktemp -d /tmp/mmsa-bench.XXXXXX)
	chmod 755 "$BENCH_TMP"
	trap '"$ROOT/test/pg-cluster.sh" stop "$BENCH_TMP/pg" >/dev/null 2>&1 || true; rm -rf "$BENCH_TMP"' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	eval "$("$ROOT/test/pg-cluster.sh" start "$BENCH_TMP/pg")"
	export PGHOST PGPORT PGUSER PGDATABASE
}

q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

bench_load_posts() {
	local n=$1 cols=${2:+, $2} err count
	[ -f "$CSV" ] || die "$CSV not found (set MMSA_DATA)"
	[ -d "$IMAGES" ] || die "$IMAGES not found (set MMSA_DATA)"
	if ! err=$(q -c 'CREATE EXTENSION mmsa' 2>&1); then
		echo "$err" >&2
		die "CREATE EXTENSION mmsa failed: build and install the extension first" \
			"(cd $ROOT && make && make install, as root)"
	fi
	q -c "CREATE TABLE posts_csv (ord bigserial, id bigint, split text, label text, text text)"
	q -c "COPY posts_csv (id, split, label, text) FROM STDIN WITH (FORMAT csv, HEADER true)" <"$CSV"
	q -v n="$n" -v images="$IMAGES" <<SQL
CREATE TABLE posts (id bigint PRIMARY KEY, body text, image bytea$cols);
INSERT INTO posts (id, body, image)
	SELECT id, text, pg_read_binary_file(:'images' || '/' || id || '.jpg')
	FROM posts_csv WHERE split = 'train' ORDER BY ord LIMIT :n;
SQL
	q -c "VACUUM ANALYZE posts"
	count=$(q -c "SELECT count(*) FROM posts")
	[ "$count" -eq "$n" ] || die "only $count train posts in $CSV, asked for $n"
}
