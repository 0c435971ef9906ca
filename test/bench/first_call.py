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
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
DATA = os.environ.get('MMSA_DATA') or os.path.join(os.path.dirname(ROOT), 'shared', 'data')
ap = argparse.ArgumentParser()
sharedir = subprocess.run(['pg_config', '--sharedir'], capture_output=True, text=True).stdout.strip()
ap.add_argument('--model', default=os.path.join(sharedir, 'mmsa'))
ap.add_argument('--backends', type=int, default=7)
args = ap.parse_args()
images = sorted(glob.glob(os.path.join(DATA, 'mvsa-single', 'images', '*.jpg')))[:args.backends]
if len(images) < args.backends:
    sys.exit('first_call: MVSA-Single images missing under %s' % DATA)
work = tempfile.mkdtemp(prefix='mmsa-first-call.')
os.chmod(work, 0o755)
pgdir = os.path.join(work, 'pg')
imgs = []
for i, src in enumerate(images):
    dst = os.path.join(work, 'img%d.jpg' % i)
    shutil.copyfile(src, dst)
    os.chmod(dst, 0o644)
    imgs.append(dst)
out = subprocess.run([os.path.join(ROOT, 'test', 'pg-cluster.sh'), 'start', pgdir,
                      '-c', 'mmsa.model_dir=%s' % args.model], capture_output=True, text=True)
if out.returncode != 0:
    sys.exit(out.stderr)
env = dict(os.environ)
for k, v in re.findall(r'(\w+)=(\S+)', out.stdout):
    env[k] = v


class Session:
    """One psql process kept open: one backend."""

    def __init__(self):
        self.p = subprocess.Popen(['stdbuf', '-oL', 'psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=0'],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, env=env, bufsize=1)
        self.pid = int(self.query('SELECT pg_backend_pid();')[0])

    def query(self, sql):
        self.p.stdin.write(sql + '\n\\echo __done__\n')
        self.p.stdin.flush()
        lines = []
        while True:
            line = self.p.stdout.readline()
            if line == '' or line.rstrip('\n') == '__done__':
                return lines
            lines.append(line.rstrip('\n'))

    def timed(self, sql):
        lines = self.query('\\timing on\n' + sql + '\n\\timing off')
        ms = [float(m.group(1)) for l in lines for m in [re.match(r'Time: ([\d.]+) ms', l)] if m]
        return [l for l in lines if not l.startswith('Time:')], (ms[0] if ms else None)

    def close(self):
        self.p.stdin.close()
        self.p.wait()


def private_kb(pid):
    total = 0
    with open('/proc/%d/smaps_rollup' % pid) as f:
        for line in f:
            if line.startswith('Private_Clean:') or line.startswith('Private_Dirty:'):
                total += int(line.split()[1])
    return total


def call(i):
    return ("SELECT mmsa_sentiment('what a day at the beach with friends #%d', "
            "pg_read_binary_file('%s'));" % (i, imgs[i]))


def call(i):
    return ("SELECT mmsa_sentiment('what a day at the beach with friends #%d', "
            "pg_read_binary_file('%s'));" % (i, imgs[i]))


try:
    s = Session()
    s.query('CREATE EXTENSION IF NOT EXISTS mmsa;')
    s.close()
    first, warm = [], []
    for i in range(args.backends):
        s = Session()
        first.append(s.timed(call(i))[1])
        warm.append(min(s.timed(call(i))[1] for _ in range(3)))
        s.close()
    print('model: %s' % args.model)
    print('first call in a fresh backend: median %.1f ms (%s)' % (statistics.median(first), ' '.join('%.0f' % x for x in first)))
    print('warm call (best of 3 per backend): median %.1f ms (%s)' % (statistics.median(warm), ' '.join('%.0f' % x for x in warm)))
    print('first - warm: %.1f ms' % (statistics.median(first) - statistics.median(warm)))
finally:
    subprocess.run([os.path.join(ROOT, 'test', 'pg-cluster.sh'), 'stop', pgdir])
    shutil.rmtree(work, ignore_errors=True)
