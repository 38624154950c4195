"""4. The fresh-process path as Exim pays it: whole processes, fork() + execv() from a C driver
(target/bench/spawn-times), interleaved with /bin/true started the same way, on a cache warmed
beforehand. The C program (benches/fresh-process.c) dlopen()s libmtasts, makes a resolver from
a settings file naming the shared SQLite cache, answers one cached lookup and exits; the
`mtasts` command is timed the same way (`--version`, and a cached `lookup` from SQLite, from
Redis when redis-server is installed, and without a cache, fetching each time). This replaces
what benches/fresh-process.sh measured (which now runs this section only)."""

import os
import shutil
import subprocess
import time

from .common import (FRESH_PROCESS, LIBMTASTS, MTASTS, SPAWN_TIMES, log, median, ms,
                     percentile, run)

FRESH = "fresh"
HEADERS = ["process", "mean", "p50", "p95", "CPU mean", "mean - true", "p50 - true", "ok"]
TARGET_MS = 2.0  # the target: the C process on a warm SQLite cache vs /bin/true


def write_config(path, cache, world, roots):
    with open(path, "w") as f:
        f.write("# bench-compare: the fresh-process section\n"
                "cache = %s\nnameserver = %s\ntrust_roots = %s\npolicy_port = %d\n"
                "recheck_interval = 3600\nlog_level = warn\n"
                % (cache, world.dns, roots, world.https_port))
    return path


class Redis:
    """A redis-server of this run on a loopback port, or nothing when it is not installed."""

    def __init__(self, tmp, port):
        self.url = None
        self.proc = None
        if not shutil.which("redis-server"):
            return
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
             "--appendonly", "no", "--dir", tmp], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if run(["redis-cli", "-p", str(port), "ping"], 5).out.strip() == "PONG":
                self.url = "redis://127.0.0.1:%d/0" % port
                return
            time.sleep(0.05)

    def stop(self):
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def fresh_rows(report, world, built, tmp, runs, redis_port):
    report.section(FRESH, "4. The fresh-process path as Exim pays it: fork() + execv() to "
                       "exit, %d runs each, interleaved, warm cache (except where it says)"
                       % runs, HEADERS)
    true = shutil.which("true") or "/bin/true"
    domain = "b00000.bench.test"
    db = os.path.join(tmp, "fresh-cache.db")
    conf_file = write_config(os.path.join(tmp, "fresh-ca.conf"), db, world, world.ca)
    conf_system = write_config(os.path.join(tmp, "fresh-system.conf"), db, world, "system")
    cmds = [("/bin/true", [true])]
    if built.c_missing:
        report.row(FRESH, ["C: dlopen libmtasts, resolver from the settings file, one cached "
                           "lookup", "n/a: " + built.c_missing])
    else:
        cmds += [
            ("C (fresh-process.c), SQLite, trust_roots = CA file",
             [FRESH_PROCESS, LIBMTASTS, conf_file, domain]),
            ("C (fresh-process.c), SQLite, trust_roots = system",
             [FRESH_PROCESS, LIBMTASTS, conf_system, domain]),
        ]
    cmds += [
        ("mtasts --version", [MTASTS, "--version"]),
        ("mtasts lookup, SQLite (cached)", [MTASTS, "--config", conf_file, "-q", "lookup",
                                            domain]),
    ]
    redis = Redis(tmp, redis_port)
    try:
        if redis.url:
            cmds.append(("mtasts lookup, Redis (cached)",
                         [MTASTS, "--config", conf_file, "--cache", redis.url, "-q", "lookup",
                          domain]))
        else:
            report.note(FRESH, "no redis-server installed: no Redis row")
        cmds.append(("mtasts lookup, memory (no cache: fetches)",
                     [MTASTS, "--config", conf_file, "--cache", "memory", "-q", "lookup",
                      domain]))
        # Warm the shared caches with the command; the processes timed then only read them.
        for cache in [db] + ([redis.url] if redis.url else []):
            r = run([MTASTS, "--config", conf_file, "--cache", cache, "-q", "lookup", domain], 60)
            if r.status != 0:
                report.row(FRESH, ["warming the cache %s" % cache, "failed: " + r.why()])
                return
        if built.c_missing:
            log("fresh process: the C helpers are missing, timing the command only")
            if not os.path.exists(SPAWN_TIMES):
                report.row(FRESH, ["(all)", "n/a: spawn-times was not built"])
                return
        cmdfile = os.path.join(tmp, "fresh-commands.txt")
        with open(cmdfile, "w") as f:
            for _, argv in cmds:
                f.write("\t".join(argv) + "\n")
        log("fresh process: %d commands x %d runs, interleaved" % (len(cmds), runs))
        r = run([SPAWN_TIMES, str(runs), cmdfile], 30 + runs * len(cmds) * 0.5)
        if r.status != 0:
            report.row(FRESH, ["(all)", "failed: " + r.why()])
            return
        walls = {i: [] for i in range(len(cmds))}
        cpus = {i: [] for i in range(len(cmds))}
        bad = {i: 0 for i in range(len(cmds))}
        for line in r.out.splitlines():
            i, wall, cpu, code = (int(x) for x in line.split())
            walls[i].append(wall / 1e6)
            cpus[i].append(cpu / 1e6)
            bad[i] += code != 0
        base = walls[0]
        base_mean, base_p50 = sum(base) / len(base), median(base)
        for i, (label, _) in enumerate(cmds):
            w = sorted(walls[i])
            mean = sum(w) / len(w)
            cells = [label, ms(mean), ms(median(w)), ms(percentile(w, 95)),
                     ms(sum(cpus[i]) / len(cpus[i])),
                     "-" if i == 0 else "%+.2f ms" % ((mean - base_mean) * 1000),
                     "-" if i == 0 else "%+.2f ms" % ((median(w) - base_p50) * 1000),
                     "%d/%d" % (len(w) - bad[i], len(w))]
            report.row(FRESH, cells)
            if label.startswith("C (") and "CA file" in label:
                diff = (mean - base_mean) * 1000
                report.note(FRESH, "the issue's target, the C process on a warm SQLite cache at "
                            "most %.0f ms more than /bin/true: %s (%+.2f ms mean, %+.2f ms p50)"
                            % (TARGET_MS, "met" if diff <= TARGET_MS else "NOT met", diff,
                               (median(w) - base_p50) * 1000))
        if any(bad.values()):
            errs = [ln for ln in r.err.splitlines() if ln.strip()][:3]
            for e in errs:
                report.note(FRESH, "a failed run said: " + e[:300])
        report.note(FRESH, "CPU: user+sys of the process (rusage from wait4); wall: before "
                    "fork() to after waitpid(); the no-cache row fetches from the hermetic "
                    "world, whose HTTPS accept loop polls every 5 ms")
    finally:
        redis.stop()
