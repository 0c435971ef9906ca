#!/usr/bin/python3
# shared_weights.t - the weights are shared between backends (issue 5).
#
# Starts a throwaway cluster with mmsa.model_dir = the model under test, opens
# 8 backends that each run mmsa_sentiment(body, image) on an MVSA-Single
# image, and one idle backend, and reads /proc/PID/smaps_rollup of each:
# the private memory (Private_Clean + Private_Dirty) a working backend holds
# beyond the idle one must be at most 10% of the weights' size (text/ and
# image/ model.safetensors + heads/*.safetensors).  The same again with
# mmsa.precision = int8 (the image encoder's int8 weights, model.int8.packed,
# mapped as well).  Also reports, not asserted, the first call in a fresh
# backend against a warm call.
#
# Model: $MMSA_SHARED_MODEL, else the installed default (<sharedir>/mmsa)
# when it has model.json; skipped otherwise.  The extension must be
# installed (make install).  The model's sidecars (mmsa pack) should exist:
# without them each backend builds private copies and the test fails.
import glob
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from tap import ok, diag, skip, done, DATA, TMP  # noqa: E402
from pg_sessions import Cluster, private_kb, mmsa_sentiment_call  # noqa: E402

BACKENDS = 8
LIMIT = 0.10

sharedir = subprocess.run(['pg_config', '--sharedir'], capture_output=True, text=True).stdout.strip()
model = os.environ.get('MMSA_SHARED_MODEL') or os.path.join(sharedir, 'mmsa')
images = sorted(glob.glob(os.path.join(DATA, 'mvsa-single', 'images', '*.jpg')))[:BACKENDS]

why = None
if not os.path.isfile(os.path.join(model, 'model.json')):
    why = 'no trained model in %s (set MMSA_SHARED_MODEL or install one)' % model
elif not os.path.isfile(os.path.join(sharedir, 'extension', 'mmsa.control')):
    why = 'the extension is not installed'
elif len(images) < BACKENDS:
    why = 'MVSA-Single images missing under %s' % DATA
elif not os.path.exists('/proc/self/smaps_rollup'):
    why = 'no /proc/PID/smaps_rollup'
if why:
    skip('shared weights', why)
    done()

weights = [os.path.join(model, 'text', 'model.safetensors'), os.path.join(model, 'image', 'model.safetensors')]
weights += sorted(glob.glob(os.path.join(model, 'heads', '*.safetensors')))
weights_bytes = sum(os.path.getsize(p) for p in weights if os.path.exists(p))
for enc in ('text', 'image'):
    if not os.path.isfile(os.path.join(model, enc, 'model.packed')):
        diag('%s/%s/model.packed is missing (mmsa pack --model %s)' % (model, enc, model))

if not os.environ.get('MMSA_TMP'):
    os.chmod(TMP, 0o755)  # the server user must reach the cluster
cluster = Cluster(os.path.join(TMP, 'shared_weights'), model)
if not ok(cluster.started, 'cluster started'):
    diag(cluster.error)
    done()
imgs = cluster.copy_images(images)


def call(i):
    return mmsa_sentiment_call(i, imgs[i])


def measure(precision):
    """BACKENDS sessions at precision, each calling twice; the private MB
    each holds beyond an idle backend, and the first and warm call times."""
    idle = cluster.session()
    idle.query('SELECT 1;')
    sessions, first, warm = [], [], []
    for i in range(BACKENDS):
        s = cluster.session()
        sessions.append(s)
        s.query("SET mmsa.precision = %s;" % precision)
        rows, ms1 = s.timed(call(i))
        if i == 0 and not ok(len(rows) == 1 and rows[0] in ('negative', 'neutral', 'positive'),
                             'mmsa_sentiment answers a label at %s (%s)' % (precision, rows)):
            raise SystemExit
        _, ms2 = s.timed(call(i))
        first.append(ms1)
        warm.append(ms2)
    base = private_kb(idle.pid)
    extra = [(private_kb(s.pid) - base) / 1024.0 for s in sessions]
    for s in sessions + [idle]:
        s.close()
    return base, extra, first, warm


try:
    setup = cluster.session()
    setup.query('CREATE EXTENSION IF NOT EXISTS mmsa;')
    setup.close()
    wmb = weights_bytes / 1e6 / 1.048576
    diag('model: %s' % model)
    diag('weights: %.1f MB (%s)' % (wmb, ', '.join('%s %.1f' % (os.path.relpath(p, model), os.path.getsize(p) / 1048576.0)
                                                  for p in weights)))
    for precision in ('fp32', 'int8'):
        if precision == 'int8' and not os.path.isfile(os.path.join(model, 'image', 'model.int8.packed')):
            skip('shared weights at int8', 'no %s/image/model.int8.packed (mmsa pack)' % model)
            continue
        base, extra, first, warm = measure(precision)
        diag('%s: idle backend private: %.1f MB' % (precision, base / 1024.0))
        diag('%s: private MB beyond idle, per backend: %s' % (precision, ' '.join('%.1f' % e for e in extra)))
        diag('%s: largest: %.1f MB = %.1f%% of the weights (limit %.0f%%)'
             % (precision, max(extra), 100 * max(extra) / wmb, 100 * LIMIT))
        ok(max(extra) <= LIMIT * wmb, 'at %s, each of %d backends holds at most %.0f%% of the weights privately '
           '(largest %.1f MB of %.1f MB)' % (precision, BACKENDS, 100 * LIMIT, max(extra), wmb))
        diag('%s: first call in a fresh backend: median %.1f ms (%s)'
             % (precision, statistics.median(first), ' '.join('%.0f' % x for x in first)))
        diag('%s: warm call: median %.1f ms (%s)' % (precision, statistics.median(warm), ' '.join('%.0f' % x for x in warm)))
        diag('%s: first - warm: %.1f ms (median)' % (precision, statistics.median(first) - statistics.median(warm)))
finally:
    cluster.stop()
done()
