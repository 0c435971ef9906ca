"""The Test Anything Protocol and the test environment, shared by the
Python tests in test/t (run by `prove`).

The harness (test/run-tests.sh) sets MMSA_ROOT, MMSA_CLI, MMSA_DATA and
MMSA_TMP; each has a default here, so that a test also runs on its own
(without MMSA_TMP, in a folder of its own that is removed at exit).

    sys.path.insert(0, os.path.join(<repo>, "test", "reference"))
    from tap import ok, diag, skip, done, ROOT, CLI, DATA, TMP
    ok(cond, "name"); ...; done()      # prints the plan and exits 0 iff all passed
"""
import os
import sys
import tempfile

ROOT = os.environ.get("MMSA_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CLI = os.environ.get("MMSA_CLI") or os.path.join(ROOT, "build", "mmsa")
DATA = os.environ.get("MMSA_DATA") or os.path.join(os.path.dirname(ROOT), "shared", "data")
TMP = os.environ.get("MMSA_TMP")
if not TMP:
    # a test run on its own makes its own folder, and removes it at exit
    import atexit
    import shutil
    TMP = tempfile.mkdtemp(prefix="mmsa-test.")
    atexit.register(shutil.rmtree, TMP, True)

_count = 0
_failed = 0


def ok(cond, name):
    """One test: prints "ok N - name" or "not ok N - name"; returns cond."""
    global _count, _failed
    _count += 1
    if not cond:
        _failed += 1
    print("%sok %d - %s" % ("" if cond else "not ", _count, name), flush=True)
    return cond


def skip(name, why):
    """One test skipped for a stated reason."""
    global _count
    _count += 1
    print("ok %d - %s # SKIP %s" % (_count, name, why), flush=True)


def diag(msg):
    """A diagnostic: each line of msg as a TAP comment."""
    for line in str(msg).splitlines():
        print("# " + line, flush=True)


def run_ok(*args, timeout=300):
    """Runs a command; on failure prints its stderr as diagnostics.
    Returns whether it exited 0."""
    import subprocess
    r = subprocess.run(list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=timeout)
    if r.returncode != 0:
        diag(r.stderr)
    return r.returncode == 0


def status():
    """0 when at least one test ran and none failed, else 1."""
    return 0 if _failed == 0 and _count > 0 else 1


def done():
    """Prints the plan and exits with status()."""
    print("1..%d" % _count, flush=True)
    sys.exit(status())
