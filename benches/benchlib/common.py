"""What every part of bench-compare shares: the paths, progress messages, running a child with a
deadline and reading its rusage, statistics, and the rows of the report."""

import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

BENCHES = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(BENCHES)
TARGET = os.path.join(ROOT, "target")
DRIVERS = os.path.join(BENCHES, "drivers")
WORK = os.path.join(TARGET, "bench")  # built helpers and scratch files
VENV = os.path.join(TARGET, "bench-venv")
VENV_PY = os.path.join(VENV, "bin", "python")
PREFIX = os.path.join(TARGET, "bench-prefix")
MTASTS = os.path.join(TARGET, "release", "mtasts")
TESTWORLD = os.path.join(TARGET, "release", "mtasts-testworld")
LIBMTASTS = os.path.join(PREFIX, "lib", "libmtasts.so")
FRESH_PROCESS = os.path.join(WORK, "fresh-process")
SPAWN_TIMES = os.path.join(WORK, "spawn-times")
RESOLVE_MANY = os.path.join(WORK, "resolve-many")

PMSR = "postfix-mta-sts-resolver"
PMSR_VERSION = "1.5.1"
# The daemon's flag for asyncio's own event loop, as a plain pip install runs it: the bench
# venv has its `uvloop` extra too, which the daemon takes by default when it can import it.
PMSR_ASYNCIO = ["--disable-uvloop"]


def log(msg):
    print("bench-compare: " + msg, file=sys.stderr, flush=True)


class Run:
    """A finished child: exit status, wall seconds, user and sys CPU seconds (rusage of the
    child and of its own children), peak RSS in KiB, stdout and stderr text."""

    def __init__(self, status, wall, user, sys_, maxrss, out, err, timed_out):
        self.status, self.wall, self.user, self.sys = status, wall, user, sys_
        self.maxrss, self.out, self.err, self.timed_out = maxrss, out, err, timed_out

    @property
    def cpu(self):
        return self.user + self.sys

    def why(self):
        """One line saying how the child failed."""
        if self.timed_out:
            return "timed out"
        tail = [ln for ln in self.err.splitlines() if ln.strip()][-1:] or ["(no stderr)"]
        return "exit status %s: %s" % (self.status, tail[0][:300])

    def json(self):
        """The last stdout line parsed as JSON (the drivers print one), or None."""
        lines = [ln for ln in self.out.splitlines() if ln.strip()]
        try:
            return json.loads(lines[-1]) if lines else None
        except ValueError:
            return None


def run(argv, timeout, env=None, stdin_path=None, cwd=None):
    """Runs argv in a session of its own, killed (the whole group) after `timeout` seconds.
    CPU and peak RSS come from wait4() on that child, so they cover it and its threads (and any
    children it waited for), nothing of this process."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
        try:
            started = time.perf_counter()
            proc = subprocess.Popen(argv, stdin=stdin, stdout=out, stderr=err, env=env,
                                    cwd=cwd, start_new_session=True)
        finally:
            if stdin_path:
                stdin.close()
        timed_out = threading.Event()

        def kill():
            timed_out.set()
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, ru = os.wait4(proc.pid, 0)
        except BaseException:  # the run's own limit, Ctrl-C, SIGTERM: leave nothing running
            kill()
            os.waitpid(proc.pid, 0)
            proc.returncode = -9
            raise
        finally:
            timer.cancel()
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        return Run(proc.returncode, wall, ru.ru_utime, ru.ru_stime, ru.ru_maxrss,
                   out.read().decode(errors="replace"), err.read().decode(errors="replace"),
                   timed_out.is_set())


def env_with(**extra):
    env = dict(os.environ)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def median(values):
    return statistics.median(values) if values else float("nan")


def percentile(sorted_values, p):
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, int(round(p / 100.0 * len(sorted_values) + 0.4999)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def write_lines(path, items):
    with open(path, "w") as f:
        f.write("".join(str(i) + "\n" for i in items))
    return path


class Report:
    """The figures of a run, kept as rows per section and printed at the end (so the hermetic
    and the real-daemon figures stand side by side). A row is a list of cells; a missing
    figure is a cell of text saying why."""

    def __init__(self):
        self.sections = {}  # key -> {"title", "headers", "rows", "notes"}
        self.order = []

    def section(self, key, title, headers):
        if key not in self.sections:
            self.sections[key] = {"title": title, "headers": headers, "rows": [], "notes": []}
            self.order.append(key)
        return self.sections[key]

    def row(self, key, cells):
        self.sections[key]["rows"].append([str(c) for c in cells])

    def note(self, key, text):
        if text not in self.sections[key]["notes"]:
            self.sections[key]["notes"].append(text)

    def merge(self, data):
        """Adds the rows and notes of another Report's to_json() (the real-daemon part, which
        runs in a process of its own inside the namespace)."""
        for key in data["order"]:
            s = data["sections"][key]
            mine = self.section(key, s["title"], s["headers"])
            mine["rows"].extend(s["rows"])
            for n in s["notes"]:
                if n not in mine["notes"]:
                    mine["notes"].append(n)

    def to_json(self):
        return {"order": self.order, "sections": self.sections}

    def print(self, out=sys.stdout):
        for key in self.order:
            s = self.sections[key]
            print("", file=out)
            print(s["title"], file=out)
            print_table(s["headers"], s["rows"], out)
            for n in s["notes"]:
                print("  - " + n, file=out)
        out.flush()


def print_table(headers, rows, out=sys.stdout):
    widths = [len(h) for h in headers]
    for r in rows:
        # A short row's last cell (a reason why there is no figure) runs on unpadded.
        cells = r if len(r) >= len(headers) else r[:-1]
        for i, c in enumerate(cells[:len(widths)]):
            widths[i] = max(widths[i], len(c))
    # The last column is left unpadded (it holds the longer texts).
    fmt = lambda cells: "  " + "  ".join(  # noqa: E731
        c.ljust(widths[i]) if i < len(cells) - 1 else c for i, c in enumerate(cells))
    print(fmt(headers).rstrip(), file=out)
    for r in rows:
        print(fmt(r).rstrip(), file=out)


def ms(seconds, digits=2):
    return "%.*f ms" % (digits, seconds * 1000.0)


class Load:
    """How much CPU other processes of the machine used while the figures were taken: the
    machine's busy time (/proc/stat) less this process's and its reaped children's. Another
    build or test running meanwhile makes wall times (and, less so, CPU times) worse."""

    def __init__(self):
        self.t0, self.busy0, self.own0 = time.monotonic(), self.busy(), self.own()

    @staticmethod
    def busy():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def own():
        total = 0.0
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
            ru = resource.getrusage(who)
            total += ru.ru_utime + ru.ru_stime
        return total

    def summary(self):
        wall = time.monotonic() - self.t0
        others = max(0.0, (self.busy() - self.busy0) - (self.own() - self.own0))
        with open("/proc/loadavg") as f:
            avg = " ".join(f.read().split()[:3])
        return ("other processes used %.0f CPU-s in the %.0f s of measurements (%.0f%% of one "
                "core; load average now %s)" % (others, wall, 100 * others / max(wall, 1), avg))
