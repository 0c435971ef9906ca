#!/bin/bash
# scaleout.t: the README's "Scale-out" layout on three throwaway clusters
# (a coordinator and two shards, Unix sockets, the installed extension and
# model; test/scaleout/cluster_lib.sh), TAP output:
#   - posts hash-partitioned by id over two postgres_fdw foreign partitions;
#   - existing rows labelled by the README's recipe, each shard rewriting
#     its own rows while the other does (both busy at once), labels equal
#     to the single-server labels (computed on the coordinator);
#   - rows inserted and updated through the coordinator labelled on the
#     shard that stores them: the coordinator's mmsa.model_dir points
#     nowhere while they are written, and the plan sends DEFAULT;
#   - mmsa_distribution(sentiment) over the sharded table equal to the
#     single-server answer; EXPLAIN VERBOSE shows what runs where (the
#     aggregate on the coordinator over async scans of the stored labels, a
#     WHERE on mmsa_sentiment shipped to the shards, a SELECT-list call not);
#   - what Citus needs, checked on plain PostgreSQL: IMMUTABLE and PARALLEL
#     SAFE functions, an aggregate with a combine function and a plain
#     transition type, partial aggregation giving the same answer;
#   - the model identity check: no mismatch; a shard given a model
#     directory with a changed model.json and head file, or another
#     mmsa.precision, is reported, item by item.
# usage: prove --exec bash test/scaleout/scaleout.t  (after make install, as root
# or as the user that owns the clusters); MMSA_DATA as for the other tests
set -euo pipefail

. "$(dirname "$0")/cluster_lib.sh"
N_EXISTING=30					# posts there before the label column
N_NEW=10						# posts inserted once it exists
INSTALLED=$(pg_config --sharedir)/mmsa

TMP=$(mktemp -d /tmp/mmsa-scaleout.XXXXXX)
chmod 755 "$TMP"
cleanup() { so_stop "$TMP/pg"; rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

t=0
failed=0
ok() {							# ok CONDITION-STATUS NAME
	t=$((t + 1))
	if [ "$1" -eq 0 ]; then echo "ok $t - $2"; else echo "not ok $t - $2"; failed=$((failed + 1)); fi
}
is() {							# is GOT WANT NAME
	local s=0
	[ "$1" = "$2" ] || s=1
	ok $s "$3"
	[ $s -eq 0 ] || printf '#   got:  %s\n#   want: %s\n' "$1" "$2" | sed '3,$s/^/#         /'
}
like() {						# like GOT EXTENDED-REGEX NAME
	local s=0
	grep -Eq -- "$2" <<<"$1" || s=1
	ok $s "$3"
	[ $s -eq 0 ] || { echo "#   no match for: $2"; sed 's/^/#   /' <<<"$1"; }
}

start=$(date +%s)
so_start "$TMP/pg"
so_layout
so_load_csv $((N_EXISTING + N_NEW)) val
# two posts for the NULL rules: text only (the bert head), neither (no label)
qc -c "INSERT INTO posts_csv (id, split, body, image) VALUES
	(900000001, 'extra', 'What a wonderful day at the beach', NULL), (900000002, 'extra', NULL, NULL)"
n_all=$((N_EXISTING + N_NEW + 2))
is "$(qc -c "SELECT count(*) FROM posts_csv")" "$n_all" "$n_all posts to shard (MVSA-Single val and two without an image)"

# the single-server answer, computed on the coordinator
qc -c "CREATE TABLE single AS SELECT id, mmsa_sentiment(body, image) AS sentiment FROM posts_csv"

# ---- existing rows --------------------------------------------------------
qc -c "INSERT INTO posts SELECT id, body, image FROM posts_csv ORDER BY id LIMIT $N_EXISTING"
c1=$(q1 -c "SELECT count(*) FROM posts")
c2=$(q2 -c "SELECT count(*) FROM posts")
ok $([ "$c1" -gt 0 ] && [ "$c2" -gt 0 ] && [ $((c1 + c2)) -eq $N_EXISTING ] && echo 0 || echo 1) \
	"the $N_EXISTING rows inserted through the coordinator are stored on both shards ($c1 + $c2)"
is "$(qc -c "SELECT count(*) FROM posts_1")|$(qc -c "SELECT count(*) FROM posts_2")" "$c1|$c2" \
	"partition posts_1 is shard 1's table, posts_2 shard 2's"

# The README's recipe (SO_RELABEL_SQL), with a look, right after both
# shards got their ALTER TABLE, at whether both are still at work.
relabel=$(qc <<SQL
SELECT dblink_connect(s, s) FROM unnest('{shard1,shard2}'::text[]) s;
SELECT dblink_send_query(s, 'ALTER TABLE posts DROP COLUMN IF EXISTS sentiment,
	ADD COLUMN sentiment mmsa_label GENERATED ALWAYS AS (mmsa_sentiment(body, image)) STORED')
	FROM unnest('{shard1,shard2}'::text[]) s;
SELECT 'busy ' || dblink_is_busy('shard1') || ' ' || dblink_is_busy('shard2');
SELECT s, status FROM unnest('{shard1,shard2}'::text[]) s, dblink_get_result(s) AS r(status text);
SELECT dblink_disconnect(s) FROM unnest('{shard1,shard2}'::text[]) s;
ALTER TABLE posts ADD COLUMN IF NOT EXISTS sentiment mmsa_label GENERATED ALWAYS AS (NULL) STORED;
SQL
)
like "$relabel" '^busy 1 1$' "both shards label their own rows at the same time (dblink_is_busy on both)"
like "$relabel" '^shard2\|ALTER TABLE$' "both shards' ALTER TABLE completed"
is "$(q1 -c "SELECT count(sentiment) FROM posts")|$(q2 -c "SELECT count(sentiment) FROM posts")" "$c1|$c2" \
	"every existing row has its label stored on its shard"
is "$(qc -c "SELECT count(*) FILTER (WHERE p.sentiment = s.sentiment) FROM posts p JOIN single s USING (id)")" \
	"$N_EXISTING" "the shards' labels of the existing rows equal the single-server labels"

# ---- write time -------------------------------------------------------------
plan=$(qc -c "EXPLAIN (VERBOSE, COSTS OFF) INSERT INTO posts_1 (id, body, image) VALUES (1, 'x', NULL)")
like "$plan" 'Output: .*NULL::mmsa_label' "INSERT: the coordinator's generated column is NULL, no mmsa_sentiment there"
like "$plan" 'Remote SQL: INSERT INTO public\.posts\(id, body, image, sentiment\) VALUES \(\$1, \$2, \$3, DEFAULT\)' \
	"INSERT: postgres_fdw sends DEFAULT, the shard computes the label"
# why the coordinator's column is generated: a plain one sends its NULL
out=$(qc 2>&1 <<SQL || true
CREATE FOREIGN TABLE posts_plain (id bigint, body text, image bytea, sentiment mmsa_label)
	SERVER shard1 OPTIONS (table_name 'posts');
INSERT INTO posts_plain (id, body, image) VALUES (1, 'x', NULL);
SQL
)
qc -c "DROP FOREIGN TABLE posts_plain"
like "$out" 'cannot insert a non-DEFAULT value into column "sentiment"' \
	"a plain label column on the coordinator instead: its NULL is sent, the shard refuses it"
# the coordinator cannot compute a label in this session: the rows' labels
# come from the shards
out=$(qc 2>&1 <<SQL || true
SET mmsa.model_dir = '$TMP/no-model';
INSERT INTO posts SELECT id, body, image FROM posts_csv WHERE id NOT IN (SELECT id FROM posts);
SELECT 'inserted ' || count(*) FROM posts;
SELECT mmsa_sentiment('here', NULL);
SQL
)
like "$out" "^inserted $n_all\$" "$((N_NEW + 2)) rows inserted through a coordinator whose mmsa.model_dir has no model"
like "$out" 'no trained sentiment model' "(in that coordinator session mmsa_sentiment itself fails)"
is "$(qc -c "SELECT count(*) FILTER (WHERE p.sentiment IS NOT DISTINCT FROM s.sentiment) FROM posts p JOIN single s USING (id)")" \
	"$n_all" "labels computed on the shards at write time equal the single-server labels (NULL for the post without text and image)"
is "$(qc -c "SELECT sentiment FROM posts WHERE id = 900000001")" "$(qc -c "SELECT mmsa_sentiment('What a wonderful day at the beach', NULL)")" \
	"the text-only post: the bert head's label"

# ---- aggregates and plans -------------------------------------------------
want=$(qc -c "SELECT mmsa_distribution(sentiment) FROM single")
is "$(qc -c "SELECT mmsa_distribution(sentiment) FROM posts")" "$want" \
	"mmsa_distribution(sentiment) over the sharded table = the single server's ($want)"
plan=$(qc -c "EXPLAIN (VERBOSE, COSTS OFF) SELECT mmsa_distribution(sentiment) FROM posts")
like "$(head -1 <<<"$plan")" '^Aggregate$' "distribution: the aggregate runs on the coordinator"
is "$(grep -c 'Async Foreign Scan on public.posts_[12]$' <<<"$plan")|$(grep -c 'Remote SQL: SELECT sentiment FROM public.posts$' <<<"$plan")" \
	"2|2" "distribution: both shards scanned at once (async), sending their stored labels only"
is "$(qc -c "SELECT count(*) FROM (SELECT id FROM posts WHERE mmsa_sentiment(body, image) = 'negative'
	EXCEPT SELECT id FROM single WHERE sentiment = 'negative') d")|$(qc -c "SELECT count(*) FROM posts WHERE mmsa_sentiment(body, image) = 'negative'")" \
	"0|$(qc -c "SELECT count(*) FROM single WHERE sentiment = 'negative'")" \
	"a WHERE on mmsa_sentiment(body, image) finds the single server's rows"
plan=$(qc -c "EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM posts WHERE mmsa_sentiment(body, image) = 'negative'")
is "$(grep -c "Remote SQL: SELECT id FROM public.posts WHERE ((public.mmsa_sentiment(body, image) = 'negative'::public.mmsa_label))" <<<"$plan")" \
	"2" "the WHERE is shipped to both shards (the extension in postgres_fdw's extensions option, the function IMMUTABLE)"
plan=$(qc -c "EXPLAIN (VERBOSE, COSTS OFF) SELECT id, mmsa_sentiment(body, image) FROM posts")
like "$plan" 'Output: posts_1\.id, mmsa_sentiment\(posts_1\.body, posts_1\.image\)' \
	"a mmsa_sentiment call in the SELECT list runs on the coordinator (the README says: read the stored column)"
like "$plan" 'Remote SQL: SELECT id, body, image FROM public\.posts' "... fetching body and image from the shards"

# an update through the coordinator relabels on the shard
id=$(qc -c "SELECT id FROM single WHERE sentiment = 'positive' AND id < 900000000 ORDER BY id LIMIT 1")
new=$(qc -c "SELECT mmsa_sentiment('This is the worst, awful, I hate it', image) FROM posts_csv WHERE id = $id")
got=$(qc -c "SET mmsa.model_dir = '$TMP/no-model'" \
	-c "UPDATE posts SET body = 'This is the worst, awful, I hate it' WHERE id = $id RETURNING sentiment")
is "$got" "$new" "UPDATE of a body through the coordinator: the shard recomputes the label ($got)"
qc -c "UPDATE posts SET body = c.body FROM posts_csv c WHERE posts.id = c.id AND c.id = $id"

# ---- Citus readiness, as far as plain PostgreSQL shows it -------------------
is "$(qc -c "SELECT string_agg(p.oid::regprocedure || ' ' || provolatile::text || proparallel::text, ', '
		ORDER BY p.oid::regprocedure::text)
	FROM pg_proc p WHERE proname IN ('mmsa_sentiment', 'mmsa_scores')")" \
	"mmsa_scores(text,bytea,text) is, mmsa_sentiment(text,bytea) is, mmsa_sentiment(text,bytea,text) is" \
	"mmsa_sentiment and mmsa_scores are IMMUTABLE (i) and PARALLEL SAFE (s)"
# every aggregate of the extension, found through pg_depend
is "$(qc -c "SELECT string_agg(aggfnoid::regprocedure || ' ' || aggcombinefn || ' ' || aggtranstype::regtype
		|| ' ' || p.proparallel::text, ', ' ORDER BY aggfnoid::regprocedure::text)
	FROM pg_aggregate a JOIN pg_proc p ON p.oid = a.aggfnoid
	JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
	WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'mmsa')")" \
	"mmsa_distribution(mmsa_label) mmsa_distribution_combine bigint[] s, mmsa_distribution(text,bytea) mmsa_distribution_combine bigint[] s, mmsa_evaluate(mmsa_label,mmsa_label) mmsa_evaluate_combine bigint[] s" \
	"the extension's aggregates (mmsa_distribution twice, mmsa_evaluate) have a combine function, a bigint[] state (no serial functions needed), PARALLEL SAFE"
out=$(qc <<'SQL'
CREATE TABLE labels_big AS SELECT s.sentiment FROM single s, generate_series(1, 500);
ALTER TABLE labels_big SET (parallel_workers = 2);
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
EXPLAIN (COSTS OFF) SELECT mmsa_distribution(sentiment) FROM labels_big;
SELECT mmsa_distribution(sentiment) FROM labels_big;
SET max_parallel_workers_per_gather = 0;
SELECT 'serial ' || mmsa_distribution(sentiment) FROM labels_big;
SQL
)
like "$out" 'Partial Aggregate' "partial aggregation (what Citus runs on its workers) is planned"
like "$out" 'Finalize Aggregate' "... and combined by mmsa_distribution_combine"
is "$(sed -n 's/^(\(.*\))$/\1/p' <<<"$out" | head -1)" "$(sed -n 's/^serial (\(.*\))$/\1/p' <<<"$out")" \
	"partial and combined: the serial answer"
# the labels (what a shard stores) do not depend on mmsa.threads; the
# probabilities may differ in their last bit (measured up to 1.2e-7 with the
# cmac head), so the identity leaves threads out and the labels decide
is "$(qc -c "CREATE TEMP TABLE a AS SELECT id, (mmsa_scores(body, image)).* FROM posts_csv" \
	-c "SET mmsa.threads = 2" \
	-c "SELECT count(*) FILTER (WHERE s.sentiment IS NOT DISTINCT FROM b.label AND a.label IS NOT DISTINCT FROM b.label)
		|| ' ' || count(*) FILTER (WHERE greatest(abs(a.p_negative - b.p_negative), abs(a.p_neutral - b.p_neutral),
			abs(a.p_positive - b.p_positive)) <= 1e-6 OR (a.label IS NULL AND b.label IS NULL))
		FROM posts_csv c JOIN single s USING (id) JOIN a USING (id), LATERAL mmsa_scores(c.body, c.image) b")" \
	"$n_all $n_all" "mmsa.threads = 2 gives the labels of mmsa.threads = 1, probabilities within 1e-6 (why the identity leaves threads out)"

# ---- model identity across servers ------------------------------------------
MISMATCH="SELECT node, item, here, there FROM mmsa_model_mismatches('shard1_model_identity', 'shard2_model_identity')"
is "$(qc -c "$MISMATCH")" "" "mmsa_model_mismatches: none while all three use the installed model"
items=$(qc -c "SELECT string_agg(item, ' ' ORDER BY n) FROM mmsa_model_identity() WITH ORDINALITY AS i(item, identity, n)")
want_items="$(cd "$INSTALLED" && find . -type f ! -name '*.packed' ! -name '.*' | sed 's|^\./||' | LC_ALL=C sort | tr '\n' ' ')mmsa.precision mmsa.so"
is "$items" "$want_items" "the identity: every installed model file but the *.packed sidecars, in path order, then precision and library ($(wc -w <<<"$items") items)"
like "$items" '(^| )heads/[a-z]+\.safetensors .*image/model\.safetensors .*model\.json .*text/model\.safetensors' \
	"... heads, both encoders, model.json among them"
is "$(qc -c "SELECT identity FROM mmsa_model_identity() WHERE item = 'model.json'")" \
	"sha256:$(sha256sum "$INSTALLED/model.json" | cut -d' ' -f1)" "an item's identity is sha256sum's digest of the file"

# shard 2 given another model: the installed files, but model.json with
# another default head and one head file with one byte changed
other="$TMP/model-b"
mkdir -p "$other/heads"
for f in "$INSTALLED"/text "$INSTALLED"/image; do ln -s "$f" "$other/"; done
for f in "$INSTALLED"/heads/*; do ln -s "$f" "$other/heads/"; done
cur=$(sed -n 's/.*"default_fusion": *"\([a-z]*\)".*/\1/p' "$INSTALLED/model.json")
alt=cmac
[ "$cur" != cmac ] || alt=ote
sed "s/\"default_fusion\": *\"[a-z]*\"/\"default_fusion\": \"$alt\"/" "$INSTALLED/model.json" >"$other/model.json"
head_file=heads/$(cd "$INSTALLED/heads" && ls | LC_ALL=C sort | head -1)
rm "$other/$head_file"
cp "$INSTALLED/$head_file" "$other/heads/"
last=$(($(stat -c %s "$other/$head_file") - 1))
printf "\\x$(printf %02x $((0x$(od -An -tx1 -j "$last" -N1 "$other/$head_file" | tr -d ' ') ^ 1)))" |
	dd of="$other/$head_file" bs=1 seek="$last" conv=notrunc status=none
chmod -R a+rX "$other"
ok $(cmp -s "$INSTALLED/model.json" "$other/model.json" || cmp -s "$INSTALLED/$head_file" "$other/$head_file" && echo 1 || echo 0) \
	"(the other model.json and $head_file differ from the installed ones)"
# (shard 2's new connections see it once its postmaster has reloaded)
reload2() {
	q2 -c "SELECT pg_reload_conf()" >/dev/null
	for _ in $(seq 50); do [ "$(q2 -c "SELECT model_dir FROM mmsa_info()")" = "$1" ] && return; sleep 0.1; done
}
q2 -c "LOAD 'mmsa'" -c "ALTER SYSTEM SET mmsa.model_dir = '$other'"
reload2 "$other"
is "$(qc -c "$MISMATCH")" \
	"shard2|$head_file|sha256:$(sha256sum "$INSTALLED/$head_file" | cut -d' ' -f1)|sha256:$(sha256sum "$other/$head_file" | cut -d' ' -f1)
shard2|model.json|sha256:$(sha256sum "$INSTALLED/model.json" | cut -d' ' -f1)|sha256:$(sha256sum "$other/model.json" | cut -d' ' -f1)" \
	"a shard with a changed head file and model.json is reported, file by file"
q2 -c "LOAD 'mmsa'" -c "ALTER SYSTEM RESET mmsa.model_dir"
reload2 "$INSTALLED"
q1 -c "ALTER DATABASE postgres SET mmsa.precision = int8"
is "$(qc -c "$MISMATCH")" "shard1|mmsa.precision|fp32|int8" \
	"a shard whose connections compute at int8 is reported (and shard 2, back on the installed model, is not)"
q1 -c "ALTER DATABASE postgres RESET mmsa.precision"
is "$(qc -c "SET mmsa.precision = int8" -c "$MISMATCH")" "shard1|mmsa.precision|int8|fp32
shard2|mmsa.precision|int8|fp32" \
	"a coordinator session at int8 is reported against both shards (its SET does not travel to them)"
is "$(qc -c "$MISMATCH")" "" "none again once the settings are back"

echo "# $t tests, $((N_EXISTING + N_NEW + 2)) posts, $(($(date +%s) - start)) s"
echo "1..$t"
[ "$failed" -eq 0 ]
