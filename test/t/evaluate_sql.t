#!/usr/bin/python3
"""mmsa_evaluate in SQL gives exactly `mmsa eval`'s figures on MVSA-Single val.

`mmsa eval --predictions` scores the shipped model (weights/) on the 801
labelled val posts and writes every post's gold label and each model's
label.  Those labels are loaded into a throwaway cluster
(test/pg-cluster.sh, the installed extension), and for each model
mmsa_evaluate(gold, label) must print the same figures as eval's table
and report (accuracy, weighted and macro precision/recall/F1, per-class
precision/recall/F1 and support, the confusion counts), with and without
parallel workers (the combine function).  Then the installed model in SQL:
mmsa_sentiment(body, image) over the val posts, read from their image
files, must give eval's labels of the default model, and
mmsa_sentiment(..., 'ensemble') eval's ensemble labels on a sample; the
aggregate over the SQL labels gives eval's default row.
"""
import csv
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from tap import ok, diag, done, skip, ROOT, CLI, DATA, TMP  # noqa: E402

MODEL = os.path.join(ROOT, "weights")
POSTS = os.path.join(DATA, "mvsa-single", "posts.csv")
IMAGES = os.path.join(DATA, "mvsa-single", "images")
LABELS = ["negative", "neutral", "positive"]
ENSEMBLE_SAMPLE = 40
if os.stat(TMP).st_uid == os.getuid():
    os.chmod(TMP, 0o755)    # the server (user postgres) reads the images under it
work = os.path.join(TMP, "evaluate_sql")
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
os.chmod(work, 0o755)

if not (os.path.isfile(os.path.join(MODEL, "model.json")) and os.path.isfile(POSTS)):
    skip("mmsa_evaluate against mmsa eval", "the shipped model or MVSA-Single missing")
    done()

# ---- mmsa eval --------------------------------------------------------------
preds = os.path.join(work, "predictions.csv")
r = subprocess.run([CLI, "eval", "--model", MODEL, "--posts", POSTS, "--images", IMAGES,
                    "--threads", "2", "--predictions", preds], capture_output=True, text=True)
if not ok(r.returncode == 0 and os.path.isfile(preds), "mmsa eval --predictions exits 0"):
    diag(r.stderr[-2000:])
    done()
table = {}
for ln in r.stdout.splitlines():
    cells = [c.strip() for c in ln.split("|")]
    if len(cells) == 10 and re.match(r"^[a-z]+( \(default\))?$", cells[1]) and cells[1] != "model":
        table[cells[1].replace(" (default)", "")] = (cells[1].endswith("(default)"), cells[2:9])
reports = {}
for block in r.stdout.split("\n\n"):
    m = re.match(r"^(\w+)(?: \(default\))?: (\d+) examples", block)
    if m:
        reports[m.group(1)] = block
with open(preds, newline="") as f:
    rows = list(csv.reader(f))
header, rows = rows[0], rows[1:]
models = header[2:]
default = [m for m, (d, _) in table.items() if d]
ok(header[:2] == ["id", "gold"] and models == list(table) and sorted(models) == sorted(reports)
   and len(default) == 1,
   "predictions id,gold,<%s>: one column per model of eval's table, one default" % ",".join(models))
ok(len(rows) == 801 and all(x in LABELS for row in rows for x in row[1:]),
   "801 labelled val posts, every label one of the three (%d)" % len(rows))
default = default[0] if default else models[0]

# ---- a cluster with the installed extension -----------------------------------
pgdir = os.path.join(work, "pg")
start = subprocess.run([os.path.join(ROOT, "test", "pg-cluster.sh"), "start", pgdir],
                       capture_output=True, text=True)
if not ok(start.returncode == 0, "a throwaway cluster starts"):
    diag(start.stderr)
    done()
env = dict(os.environ)
for k, v in re.findall(r"(PG\w+)=(\S+)", start.stdout):
    env[k] = v


def psql(sql, *extra):
    return subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", *extra, "-c", sql],
                          capture_output=True, text=True, env=env)


try:
    r = psql("CREATE EXTENSION mmsa; CREATE TABLE preds (id bigint, gold mmsa_label, %s)"
             % ", ".join("%s mmsa_label" % m for m in models))
    ok(r.returncode == 0, "CREATE EXTENSION mmsa and a table of the labels")
    r = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c",
                        "\\copy preds FROM '%s' WITH (FORMAT csv, HEADER true)" % preds],
                       capture_output=True, text=True, env=env)
    ok(r.returncode == 0, "the labels loaded with \\copy" + (": " + r.stderr if r.returncode else ""))

    FIG = ("(e).n, (e).accuracy, (e).weighted_precision, (e).weighted_recall, (e).weighted_f1, "
           "(e).macro_precision, (e).macro_recall, (e).macro_f1, (e).precision, (e).recall, (e).f1, "
           "(e).support, (e).confusion")

    def evaluate(col, table_name="preds", settings=""):
        q = "%s SELECT %s FROM (SELECT mmsa_evaluate(gold, %s) AS e FROM %s) s" % (
            settings, FIG, col, table_name)
        res = psql(q)
        if res.returncode != 0:
            diag(res.stderr)
            return None
        return res.stdout.strip().splitlines()[-1].split("|")

    def arr(s):
        return [float(x) for x in s.strip("{}").replace("{", "").replace("}", "").split(",")]

    def as_printed(fig):
        """eval's table row and report lines, printed from the SQL figures with eval's formats."""
        n = int(fig[0])
        acc, wp, wr, wf, mp, mr, mf = (float(x) for x in fig[1:8])
        row = ["%.2f" % (100 * acc), "%.2f" % (100 * wp), "%.2f" % (100 * wr), "%.2f" % (100 * wf),
               "%.2f" % (100 * mf), "%.2f" % (100 * mr), "%d" % n]
        pre, rec, f1, sup = arr(fig[8]), arr(fig[9]), arr(fig[10]), arr(fig[11])
        conf = arr(fig[12])
        lines = ["  %-10s %6.2f  %6.2f %6.2f %8d" % (LABELS[k], 100 * pre[k], 100 * rec[k], 100 * f1[k],
                                                     int(sup[k])) for k in range(3)]
        lines.append("  %-10s %6.2f  %6.2f %6.2f %8d" % ("macro", 100 * mp, 100 * mr, 100 * mf, n))
        lines += ["  %-10s %6d   %6d   %6d" % (LABELS[k], *(int(c) for c in conf[3 * k:3 * k + 3]))
                  for k in range(3)]
        return row, lines

    def report_lines(model):
        """eval's per-class, macro and confusion lines, spaces normalised."""
        out = []
        for ln in reports.get(model, "").splitlines():
            if re.match(r"^  (negative|neutral|positive|macro) ", ln):
                out.append(" ".join(ln.split()))
        return out

    serial = {}
    for m in models:
        fig = evaluate(m)
        serial[m] = fig
        if fig is None:
            ok(False, "mmsa_evaluate(gold, %s)" % m)
            continue
        row, lines = as_printed(fig)
        ok(row == table[m][1], "mmsa_evaluate(gold, %s) prints eval's table row: %s"
           % (m, " | ".join(row)) + ("" if row == table[m][1] else " (eval: %s)" % " | ".join(table[m][1])))
        want = report_lines(m)
        got = [" ".join(x.split()) for x in lines]
        ok(got == want, "mmsa_evaluate(gold, %s): per-class figures, support and confusion counts as "
           "eval's report" % m)
        if got != want:
            diag("sql:  %s" % got)
            diag("eval: %s" % want)

    # the combine function: the same figures from parallel workers
    par = ("SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; "
           "SET min_parallel_table_scan_size = 0; SET max_parallel_workers_per_gather = 2; "
           "")
    plan = psql("%s EXPLAIN (COSTS off) SELECT mmsa_evaluate(gold, %s) FROM preds" % (par, default))
    ok("Partial Aggregate" in plan.stdout and "Gather" in plan.stdout,
       "with parallel workers the plan has a Partial Aggregate under a Gather")
    same = all(evaluate(m, settings=par) == serial[m] for m in models)
    ok(same, "mmsa_evaluate gives the same figures through its combine function (parallel workers)")

    # ---- the installed model in SQL gives eval's labels --------------------------
    img_dir = os.path.join(work, "images")
    os.makedirs(img_dir)
    for row in rows:
        shutil.copy(os.path.join(IMAGES, row[0] + ".jpg"), img_dir)
    subprocess.run(["chmod", "-R", "a+rX", work])
    with open(POSTS, newline="", encoding="utf-8") as f:
        text = {p["id"]: p["text"] for p in csv.DictReader(f)}
    posts_csv = os.path.join(work, "posts.csv")
    with open(posts_csv, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        for row in rows:
            w.writerow([row[0], text[row[0]]])
    r = psql("CREATE TABLE posts (id bigint PRIMARY KEY, body text, image bytea)")
    r2 = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c",
                         "\\copy posts (id, body) FROM '%s' WITH (FORMAT csv)" % posts_csv],
                        capture_output=True, text=True, env=env)
    r3 = psql("UPDATE posts SET image = pg_read_binary_file('%s/' || id || '.jpg')" % img_dir)
    ok(r.returncode == 0 and r2.returncode == 0 and r3.returncode == 0,
       "801 posts with their images in a table" + (r2.stderr + r3.stderr if r3.returncode or r2.returncode else ""))
    r = psql("SELECT (mmsa_info()).default_model")
    diag("the installed model's default: %s (mmsa_info); eval's: %s" % (r.stdout.strip(), default))
    r = psql("CREATE TABLE sql_labels AS SELECT p.id, q.gold, mmsa_sentiment(p.body, p.image) AS label "
             "FROM posts p JOIN preds q USING (id); "
             "SELECT count(*) FILTER (WHERE l.label IS DISTINCT FROM q.%s), count(*) "
             "FROM sql_labels l JOIN preds q USING (id)" % default)
    got = r.stdout.strip().split("|") if r.returncode == 0 else ["?", "?"]
    ok(r.returncode == 0 and got[0] == "0" and got[1] == "801",
       "mmsa_sentiment(body, image) in SQL gives eval's %s labels for all 801 val posts "
       "(%s differ)" % (default, got[0]) + ("" if r.returncode == 0 else ": " + r.stderr))
    fig = evaluate("label", "sql_labels")
    ok(fig is not None and as_printed(fig)[0] == table[default][1],
       "mmsa_evaluate over the SQL labels prints eval's %s row" % default)
    if "ensemble" in models:
        r = psql("SELECT count(*) FILTER (WHERE mmsa_sentiment(p.body, p.image, 'ensemble') "
                 "IS DISTINCT FROM q.ensemble), count(*) FROM (SELECT * FROM posts ORDER BY id LIMIT %d) p "
                 "JOIN preds q USING (id)" % ENSEMBLE_SAMPLE)
        got = r.stdout.strip().split("|") if r.returncode == 0 else ["?", "?"]
        ok(r.returncode == 0 and got == ["0", str(ENSEMBLE_SAMPLE)],
           "mmsa_sentiment(body, image, 'ensemble') gives eval's ensemble labels on %d posts (%s differ)"
           % (ENSEMBLE_SAMPLE, got[0]))
finally:
    subprocess.run([os.path.join(ROOT, "test", "pg-cluster.sh"), "stop", pgdir],
                   capture_output=True, text=True)
    shutil.rmtree(work, ignore_errors=True)
done()
