#!/usr/bin/python3
# first_call.py - the first mmsa_sentiment call in a fresh backend against a
# warm call, median over several fresh backends (issue 5: at most 100 ms
# more).  Starts a throwaway cluster.
#
#   test/bench/first_call.py [--model DIR] [--backends N]
#
# DIR defaults to the installed model (<sharedir>/mmsa).  Needs the
# extension installed and MVSA-Single images (../shared/data).
import argparse
import glob
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
sys.path.insert(0, os.path.join(ROOT, 'test', 'reference'))
from pg_sessions import Cluster, mmsa_sentiment_call  # noqa: E402

DATA = os.environ.get('MMSA_DATA') or os.path.join(os.path.dirname(ROOT), 'shared', 'data')
ap = argparse.ArgumentParser()
sharedir = subprocess.run(['pg_config', '--sharedir'], capture_output=True, text=True).stdout.strip()
ap.add_argument('--model', default=os.path.join(sharedir, 'mmsa'))
ap.add_argument('--backends', type=int, default=7)
args = ap.parse_args()
images = sorted(glob.glob(os.path.join(DATA, 'mvsa-single', 'images', '*.jpg')))[:args.backends]
if len(images) < args.backends:
    sys.exit('first_call: MVSA-Single images missing under %s' % DATA)
cluster = Cluster(tempfile.mkdtemp(prefix='mmsa-first-call.'), args.model)
if not cluster.started:
    sys.exit(cluster.error)
imgs = cluster.copy_images(images)


try:
    s = cluster.session()
    s.query('CREATE EXTENSION IF NOT EXISTS mmsa;')
    s.close()
    first, warm = [], []
    for i in range(args.backends):
        s = cluster.session()
        first.append(s.timed(mmsa_sentiment_call(i, imgs[i]))[1])
        warm.append(min(s.timed(mmsa_sentiment_call(i, imgs[i]))[1] for _ in range(3)))
        s.close()
    print('model: %s' % args.model)
    print('first call in a fresh backend: median %.1f ms (%s)' % (statistics.median(first), ' '.join('%.0f' % x for x in first)))
    print('warm call (best of 3 per backend): median %.1f ms (%s)' % (statistics.median(warm), ' '.join('%.0f' % x for x in warm)))
    print('first - warm: %.1f ms' % (statistics.median(first) - statistics.median(warm)))
finally:
    cluster.stop()
    shutil.rmtree(cluster.work, ignore_errors=True)
