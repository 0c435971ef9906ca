"""A throwaway cluster with backends kept open, for the tests and benchmarks
that look at backends one by one (test/t/shared_weights.t,
test/bench/first_call.py).

    cluster = Cluster(work_dir, model_dir)   # test/pg-cluster.sh start
    images = cluster.copy_images(paths)      # readable by the server user
    s = cluster.session()                    # one psql process = one backend
    rows, ms = s.timed(mmsa_sentiment_call(0, images[0]))
    private_kb(s.pid)                        # Private_Clean + Private_Dirty
    cluster.stop()
"""
import os
import re
import shutil
import subprocess

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
PG_CLUSTER = os.path.join(ROOT, 'test', 'pg-cluster.sh')


class Session:
    """One psql process kept open: one backend."""

    def __init__(self, env):
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
        """The result lines and psql's \\timing of the statement, in ms."""
        lines = self.query('\\timing on\n' + sql + '\n\\timing off')
        ms = [float(m.group(1)) for l in lines for m in [re.match(r'Time: ([\d.]+) ms', l)] if m]
        return [l for l in lines if not l.startswith('Time:')], (ms[0] if ms else None)

    def close(self):
        self.p.stdin.close()
        self.p.wait()


class Cluster:
    """A cluster started by test/pg-cluster.sh in work/pg, mmsa.model_dir = model."""

    def __init__(self, work, model):
        self.work = work
        self.pgdir = os.path.join(work, 'pg')
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        os.chmod(work, 0o755)  # the server user must reach the cluster and the images
        out = subprocess.run([PG_CLUSTER, 'start', self.pgdir, '-c', 'mmsa.model_dir=%s' % model],
                             capture_output=True, text=True)
        self.started = out.returncode == 0
        self.error = out.stderr
        self.env = dict(os.environ)
        for k, v in re.findall(r'(\w+)=(\S+)', out.stdout):
            self.env[k] = v

    def copy_images(self, paths):
        """Copies of the images, readable by the server user."""
        copies = []
        for i, src in enumerate(paths):
            dst = os.path.join(self.work, 'img%d.jpg' % i)
            shutil.copyfile(src, dst)
            os.chmod(dst, 0o644)
            copies.append(dst)
        return copies

    def session(self):
        return Session(self.env)

    def stop(self):
        subprocess.run([PG_CLUSTER, 'stop', self.pgdir], capture_output=True)


def private_kb(pid):
    """Private_Clean + Private_Dirty of a process, in kB (smaps_rollup)."""
    total = 0
    with open('/proc/%d/smaps_rollup' % pid) as f:
        for line in f:
            if line.startswith('Private_Clean:') or line.startswith('Private_Dirty:'):
                total += int(line.split()[1])
    return total


def mmsa_sentiment_call(i, image_path):
    """A mmsa_sentiment query on a short text (numbered i) and an image file."""
    return ("SELECT mmsa_sentiment('what a day at the beach with friends #%d', "
            "pg_read_binary_file('%s'));" % (i, image_path))
