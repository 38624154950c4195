"""The measurements that run against a world (the hermetic test world on loopback, or the
real daemons in a network namespace): client CPU per cold lookup, cold batch throughput and
resolve_many scaling. Each adds its rows to a Report; a client that cannot run here gets a row
saying why."""

import json
import os
import signal
import socket
import subprocess
import time

from .common import (DRIVERS, MTASTS, PMSR, PMSR_ASYNCIO, PMSR_VERSION, RESOLVE_MANY, VENV,
                     VENV_PY, env_with, log, median, ms, run, write_lines)

CPU = "cpu"
THROUGHPUT = "throughput"
SCALING = "scaling"
NA = "n/a (not built)"

CPU_HEADERS = ["world", "client", "CPU/lookup", "start-up CPU", "wall/lookup", "ok"]
THROUGHPUT_HEADERS = ["world", "client", "domains", "wall", "domains/s", "CPU/domain", "ok"]
SCALING_HEADERS = ["world", "client", "concurrency", "domains", "wall", "domains/s",
                   "peak RSS", "ok"]


class Target:
    """A world to measure against: its label, DNS server, CA file, policy port (None: 443),
    the bench domains it serves, a scratch directory, and why postfix-mta-sts-resolver cannot
    be pointed at it (None: it can)."""

    def __init__(self, label, nameserver, ca, policy_port, domains, tmp, pmsr_unusable=None):
        self.label, self.nameserver, self.ca, self.policy_port = label, nameserver, ca, policy_port
        self.domains, self.tmp, self.pmsr_unusable = domains, tmp, pmsr_unusable

    def mtasts(self, *argv):
        cmd = [MTASTS, "--nameserver", self.nameserver, "--trust-roots", self.ca,
               "--cache", "memory", "-q"]
        if self.policy_port:
            cmd += ["--policy-port", str(self.policy_port)]
        return cmd + list(argv)

    def c_config(self):
        """A settings file for the C batch driver: the same servers, a fresh memory cache."""
        path = os.path.join(self.tmp, "c-batch.conf")
        with open(path, "w") as f:
            f.write("cache = memory\nnameserver = %s\ntrust_roots = %s\nlog_level = off\n"
                    % (self.nameserver, self.ca))
            if self.policy_port:
                f.write("policy_port = %d\n" % self.policy_port)
        return path

    def wheel(self, mode, concurrency, domains_file):
        cmd = [VENV_PY, os.path.join(DRIVERS, "wheel.py"), mode, str(concurrency), domains_file,
               self.nameserver, self.ca]
        return cmd + ([str(self.policy_port)] if self.policy_port else [])

    def python_env(self):
        # The same trust roots for Python's ssl module (aiohttp) as --trust-roots for mtasts.
        return env_with(SSL_CERT_FILE=self.ca, PYTHONDONTWRITEBYTECODE=1)

    def file(self, name, domains):
        return write_lines(os.path.join(self.tmp, name), domains)


def sequential(built):
    """The arguments that make `mtasts lookup` look domains up one after the other: since the
    command has --jobs (default 8), `--jobs 1`; before, it always did."""
    return ["--jobs", "1"] if built.cli_jobs else []


def count_cli_ok(r):
    """Fetched enforce policies in `mtasts lookup --json` (an array) or `--json-lines` output."""
    text = r.out.strip()
    try:
        views = json.loads(text) if text.startswith("[") else \
            [json.loads(ln) for ln in text.splitlines() if ln.strip()]
    except ValueError:
        return 0
    return sum(1 for v in views if v.get("source") == "fetched" and v.get("mode") == "enforce")


def count_driver_ok(r):
    data = r.json()
    return data["ok"] if data else 0


# ---------------------------------------------------------------------------------------------
# 1. Client CPU per cold lookup.


def marginal_cpu(argv_for, count_ok, n, reps, env, limit):
    """Runs the client for 1 and for n distinct domains, `reps` times each, interleaved.
    Returns (CPU per lookup, start-up CPU, wall per lookup, "ok/n") from the medians, with the
    start-up (a process resolving one domain, less one lookup) taken out; or a text saying what
    went wrong. Each 1-domain run comes right after an unmeasured one: on this VM the first
    process after a pause or after a busy spell costs up to twice the CPU (cold caches, the
    servers still tearing down), which would inflate the start-up figure."""
    cpu1, cpun, wall1, walln, oks = [], [], [], [], []
    for _ in range(reps):
        for k, cpus, walls in ((1, None, None), (1, cpu1, wall1), (n, cpun, walln)):
            r = run(argv_for(k), limit, env=env)
            ok = count_ok(r)
            if r.timed_out or ok == 0:
                return "failed: " + r.why()
            if cpus is None:
                continue
            cpus.append(r.cpu)
            walls.append(r.wall)
            if k == n:
                oks.append(ok)
    pers = sorted((b - a) / (n - 1) for a, b in zip(cpu1, cpun))
    per = median(pers)
    wall_per = median([(b - a) / (n - 1) for a, b in zip(wall1, walln)])
    return per, median(cpu1) - per, wall_per, "%d/%d" % (min(oks), n), (pers[0], pers[-1])


def cpu_rows(report, target, built, n, reps):
    report.section(CPU, "1. Client CPU per cold lookup: TXT, A/AAAA, TLS handshake, GET, parse; "
                   "every domain distinct, fresh cache. user+sys of the client process from "
                   "rusage, N = %d domains in one process against 1, %d runs"
                   % (n, reps), CPU_HEADERS)
    report.note(CPU, "CPU/lookup: the median over the runs of (CPU(N) - CPU(1)) / (N - 1), "
                "the lowest and highest in brackets")
    report.note(CPU, "start-up CPU: CPU(1) less one lookup: exec, loading, imports and one-time "
                "set-up (trust roots, TLS and DNS state), paid once per process; wall/lookup: "
                "(wall(N) - wall(1)) / (N - 1), servers' time included")
    if target.policy_port:
        report.note(CPU, "the hermetic world's HTTPS accept loop polls every 5 ms "
                    "(tests/world/src/conns.rs), so its wall/lookup is the test world's; the "
                    "CPU figures are the client's alone")
    doms = target.domains[:n]
    results = {}

    log("%s: CPU per lookup, mtasts lookup (%d domains, %d runs)" % (target.label, n, reps))
    seq = sequential(built)
    res = marginal_cpu(lambda k: target.mtasts("lookup", "--json", *(seq + doms[:k])),
                       count_cli_ok, n, reps, None, 60 + n)
    results["mtasts"] = res
    add_cpu_row(report, target, "mtasts lookup%s (command)" % "".join(" " + a for a in seq),
                res)

    if built.wheel_missing:
        report.row(CPU, [target.label, "mtasts wheel, resolve() in a loop",
                         "n/a: " + built.wheel_missing])
    else:
        log("%s: CPU per lookup, mtasts wheel" % target.label)
        files = {k: target.file("cpu-wheel-%d.txt" % k, doms[:k]) for k in (1, n)}
        res = marginal_cpu(lambda k: target.wheel("sequential", 1, files[k]), count_driver_ok,
                           n, reps, target.python_env(), 60 + n)
        add_cpu_row(report, target, "mtasts wheel, resolve() in a loop", res)

    label = "%s %s, STSResolver.resolve() in a loop" % (PMSR, PMSR_VERSION)
    if not pmsr_na(report, CPU, target, built, label):
        log("%s: CPU per lookup, %s" % (target.label, PMSR))
        files = {k: target.file("cpu-pmsr-%d.txt" % k, doms[:k]) for k in (1, n)}
        res = marginal_cpu(
            lambda k: [VENV_PY, os.path.join(DRIVERS, "pmsr_resolve.py"), files[k]],
            count_driver_ok, n, reps, target.python_env(), 60 + 5 * n)
        results["pmsr"] = res
        add_cpu_row(report, target, label, res)
        if isinstance(results["mtasts"], tuple) and isinstance(res, tuple):
            report.row(CPU, [target.label, "ratio %s / mtasts lookup" % PMSR,
                             "%.1fx" % (res[0] / results["mtasts"][0]),
                             "%.1fx" % (res[1] / results["mtasts"][1]),
                             "%.1fx" % (res[2] / results["mtasts"][2]), ""])


def pmsr_na(report, section, target, built, label):
    """Adds the row saying why postfix-mta-sts-resolver is not measured here (the reason in a
    note below the table); False when it can be."""
    why = built.pmsr_missing or target.pmsr_unusable
    if not why:
        report.note(section, "%s's daemon runs on asyncio's own event loop here "
                    "(--disable-uvloop), as a plain pip install runs it" % PMSR)
        return False
    report.row(section, [target.label, label, "n/a (see below)"])
    report.note(section, "%s, %s world: %s" % (PMSR, target.label, why))
    return True


def add_cpu_row(report, target, label, res):
    if isinstance(res, str):
        report.row(CPU, [target.label, label, res])
    else:
        per, startup, wall, ok, (low, high) = res
        report.row(CPU, [target.label, label, "%s (%.3f-%.3f)" % (ms(per, 3), low * 1e3,
                                                                   high * 1e3),
                         ms(startup, 1), ms(wall, 3), ok])


# ---------------------------------------------------------------------------------------------
# 2. Cold batch throughput.


def throughput_rows(report, target, built, n, concurrency):
    report.section(THROUGHPUT, "2. Cold batch throughput: %d distinct domains, fresh cache, "
                   "%d-way where the client is concurrent" % (n, concurrency),
                   THROUGHPUT_HEADERS)
    doms = target.domains[:n]
    path = target.file("batch.txt", doms)
    c = concurrency

    label = "%s %s daemon, %d socketmap clients" % (PMSR, PMSR_VERSION, c)
    if not pmsr_na(report, THROUGHPUT, target, built, label):
        log("%s: throughput, %s daemon" % (target.label, PMSR))
        report.row(THROUGHPUT, [target.label, label] + pmsr_daemon(target, path, n, c))

    for mode, label, present in (
            ("threads", "mtasts wheel, resolve() from %d threads" % c, True),
            ("resolve_many", "mtasts wheel, resolve_many(concurrency=%d)" % c,
             built.py_resolve_many)):
        if built.wheel_missing:
            report.row(THROUGHPUT, [target.label, label, "n/a: " + built.wheel_missing])
        elif not present:
            report.row(THROUGHPUT, [target.label, label, NA])
        else:
            log("%s: throughput, %s" % (target.label, label))
            r = run(target.wheel(mode, c, path), 300, env=target.python_env())
            report.row(THROUGHPUT, [target.label, label] + batch_cells(r, n, r.json()))

    log("%s: throughput, mtasts lookup (sequential)" % target.label)
    seq = sequential(built)
    r = run(target.mtasts("lookup", "--json", *(seq + doms)), 300)
    report.row(THROUGHPUT, [target.label, "mtasts lookup%s, %d domains as arguments "
                            "(sequential)" % ("".join(" " + a for a in seq), n)] +
               batch_cells(r, n, {"ok": count_cli_ok(r), "wall": r.wall}))

    label = "mtasts lookup --jobs %d --from-file" % c
    if not built.cli_jobs:
        report.row(THROUGHPUT, [target.label, label, NA])
    else:
        log("%s: throughput, %s" % (target.label, label))
        r = run(cli_jobs(target, built, c, path), 300)
        report.row(THROUGHPUT, [target.label, label] +
                   batch_cells(r, n, {"ok": count_cli_ok(r), "wall": r.wall}))

    label = "C mtasts_resolver_resolve_many, concurrency %d" % c
    if not built.c_resolve_many:
        report.row(THROUGHPUT, [target.label, label, ("n/a: " + built.c_many_missing)
                                if built.c_many_missing else NA])
    else:
        log("%s: throughput, %s" % (target.label, label))
        r = run([RESOLVE_MANY, target.c_config(), str(c), path], 300)
        report.row(THROUGHPUT, [target.label, label] + batch_cells(r, n, r.json()))
    report.note(THROUGHPUT, "wall: the wheel, C and daemon rows from the first request to the "
                "last answer (a running daemon, an imported module, a made resolver); the mtasts "
                "lookup rows the whole process, start-up included")
    report.note(THROUGHPUT, "CPU/domain: user+sys of the process that resolves, divided by "
                "the domains: over the batch for the wheel and C (getrusage) and the daemon (/proc; "
                "its socketmap clients not counted), the whole process for mtasts lookup")


def cli_jobs(target, built, c, path):
    return target.mtasts("lookup", "--json-lines" if built.cli_json_lines else "--json",
                         "--jobs", str(c), "--from-file", path)


def batch_cells(r, n, data):
    if r.timed_out or r.status not in (0, 1) or not data:
        return ["failed: " + r.why()]
    wall = data["wall"]
    return [str(n), "%.2f s" % wall, "%.0f" % (n / wall), ms(data.get("cpu", r.cpu) / n, 3),
            "%d/%d" % (data["ok"], n)]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu(pid):
    """user+sys seconds of a running process (all its threads), from /proc."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pmsr_daemon(target, path, n, c):
    """A fresh mta-sts-daemon (internal cache, empty) on a loopback port, driven by c socketmap
    clients over the domains of `path`. Returns the cells of its row."""
    port = free_port()
    conf = os.path.join(target.tmp, "mta-sts-daemon.yml")
    with open(conf, "w") as f:
        f.write("host: 127.0.0.1\nport: %d\nreuse_port: true\nshutdown_timeout: 2\n"
                "cache:\n  type: internal\n  options:\n    cache_size: 10000\n"
                "default_zone:\n  strict_testing: false\n  timeout: 4\n" % port)
    logf = open(os.path.join(target.tmp, "mta-sts-daemon.log"), "wb")
    daemon = subprocess.Popen([os.path.join(VENV, "bin", "mta-sts-daemon"), "-c", conf,
                               "-v", "warn"] + PMSR_ASYNCIO, stdin=subprocess.DEVNULL,
                              stdout=logf, stderr=subprocess.STDOUT, env=target.python_env())
    logf.close()
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if daemon.poll() is not None or time.monotonic() > deadline:
                    return ["failed: mta-sts-daemon did not start (see %s)" % logf.name]
                time.sleep(0.05)
        cpu0 = proc_cpu(daemon.pid)
        r = run([VENV_PY, os.path.join(DRIVERS, "pmsr_socketmap.py"), str(port), str(c), path],
                300)
        daemon_cpu = proc_cpu(daemon.pid) - cpu0
        data = r.json()
        cells = batch_cells(r, n, data)
        if data and len(cells) > 1:
            cells[3] = ms(daemon_cpu / n, 3)
            if data.get("errors"):
                cells[-1] += " (%s)" % data["errors"][0]
        return cells
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(10)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()


# ---------------------------------------------------------------------------------------------
# 3. resolve_many scaling.


def scaling_rows(report, target, built, n, levels):
    report.section(SCALING, "3. resolve_many scaling: %d distinct domains, fresh cache, at "
                   "concurrency %s; peak RSS of the whole process (ru_maxrss)"
                   % (n, ", ".join(map(str, levels))), SCALING_HEADERS)
    report.note(SCALING, "the hermetic world serves at most 64 connections at once and polls "
                "its accept loop every 5 ms (tests/world/src/conns.rs): concurrency 1 there is "
                "bound by that poll, and at 64 a connection that finds it full fails")
    doms = target.domains[:n]
    if len(doms) < n:
        report.row(SCALING, [target.label, "-", "-", "n/a: the world has only %d domains"
                             % len(doms)])
        return
    path = target.file("scaling.txt", doms)
    label = "mtasts wheel, resolve_many"
    if built.wheel_missing or not built.py_resolve_many:
        report.row(SCALING, [target.label, label, "-",
                             "n/a: " + built.wheel_missing if built.wheel_missing else NA])
    else:
        for c in levels:
            log("%s: scaling, resolve_many(concurrency=%d), %d domains" % (target.label, c, n))
            r = run(target.wheel("resolve_many", c, path), 240, env=target.python_env())
            report.row(SCALING, [target.label, label, c] + scaling_cells(r, n, r.json()))
    label = "C mtasts_resolver_resolve_many"
    if not built.c_resolve_many:
        report.row(SCALING, [target.label, label, "-", ("n/a: " + built.c_many_missing)
                             if built.c_many_missing else NA])
    else:
        for c in levels:
            log("%s: scaling, %s %d, %d domains" % (target.label, label, c, n))
            r = run([RESOLVE_MANY, target.c_config(), str(c), path], 240)
            report.row(SCALING, [target.label, label, c] + scaling_cells(r, n, r.json()))
    label = "mtasts lookup --jobs N --from-file"
    if not built.cli_jobs:
        report.row(SCALING, [target.label, label, "-", NA])
    else:
        for c in levels:
            log("%s: scaling, %s %d, %d domains" % (target.label, label, c, n))
            r = run(cli_jobs(target, built, c, path), 240)
            report.row(SCALING, [target.label, label, c] +
                       scaling_cells(r, n, {"ok": count_cli_ok(r), "wall": r.wall}))


def scaling_cells(r, n, data):
    if r.timed_out or r.status not in (0, 1) or not data:
        return ["failed: " + r.why()]
    return [str(n), "%.2f s" % data["wall"], "%.0f" % (n / data["wall"]),
            "%.1f MiB" % (r.maxrss / 1024.0), "%d/%d" % (data["ok"], n)]
