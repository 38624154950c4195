"""Issue 13's figures: the socketmap TLS-policy servers head to head, `mtasts serve` and
postfix-mta-sts-resolver's `mta-sts-daemon`, driven by the same Rust load generator
(target/release/socketmap-load, benches/socketmap-load) over a Unix socket:

- cold batches: N distinct domains, fresh caches, 16 and 32 connections, every domain once;
- warm: every domain cached, request/reply (one request at a time per connection, as Postfix
  asks) at 1, 16 and 256 connections, and one pipelined load, bounded in time and count;
- memory: resident memory with 100,000 cached policies (hermetic; see memory_rows).

The warm loads run twice, at equal cores for every server alike (placements()): the server
and the load generator pinned to one and the same CPU; then the server on a CPU of its own and
the load generator on another, where each request/reply pays two cross-CPU wake-ups but the
generator takes none of the server's CPU. The cold batches run unpinned, as deployed. The
worlds' servers (test world, unbound, nginx) are never pinned. A server that does no work
(`socketmap-load --fixed-server`, the floor rows) shows what the machine's sockets and
scheduler cost alone. Each adds its rows to a Report."""

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

from .common import DRIVERS, MTASTS, PMSR, PMSR_ASYNCIO, PMSR_VERSION, ROOT, VENV, VENV_PY, \
    Load, log, run, write_lines
from .measure import proc_cpu

LOAD = os.path.join(ROOT, "target", "release", "socketmap-load")
SOCKETMAP = "socketmap"
MEMORY = "socketmap-memory"
HEADERS = ["world", "server", "load", "queries", "queries/s", "p50", "p99", "server CPU/q",
           "client CPU/q", "others", "ok"]
MEMORY_HEADERS = ["server", "policies", "filled by", "RSS at start", "RSS filled",
                  "per policy", "OK secure"]
# Connections of the cold batches, each with a fresh server: 32 stays under the hermetic
# world's limit of 64 connections at once (tests/world/src/conns.rs; at 48 it resets a few).
COLD_LEVELS = (16, 32)
PIPELINE = (16, 16)  # connections, depth of the pipelined warm load
# Warm request/reply loads driven by one epoll thread (socketmap-load --driver loop) as well:
# an event-driven client costs less per request than a thread per connection, so more of the
# one shared CPU is left to the server measured.
LOOP_LEVELS = (16, 256)
MTASTS_LABEL = "mtasts serve"
FLOOR_LABEL = "floor: socketmap-load --fixed-server"
PMSR_LABEL = "%s %s daemon" % (PMSR, PMSR_VERSION)
PMSR_UVLOOP_LABEL = PMSR_LABEL + " on uvloop"
TARGETS = {"warm": 10.0, "p50_us": 20.0, "cold": 5.0, "kib_per_policy": 1.0}


def bench_cpu():
    """The CPU the servers and the load generator are pinned to for the warm loads: the last
    one this process may use."""
    return sorted(os.sched_getaffinity(0))[-1]


def pinned(argv, cpu=None):
    """argv run by taskset on `cpu` (default the bench CPU; unpinned when taskset is
    missing)."""
    if not shutil.which("taskset"):
        return argv
    return ["taskset", "-c", str(bench_cpu() if cpu is None else cpu)] + argv


LIBC = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def die_with_parent():
    """In the child before exec: SIGKILL when this script ends, however it ends (Linux)."""
    LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Server:
    """A socketmap server of this run on a Unix socket; `with` starts it (unpinned) and waits
    until it answers connections, and stops it (SIGTERM, then SIGKILL). It is killed after
    LIMIT seconds, or when this script ends."""

    START_LIMIT = 60.0
    LIMIT = 900.0  # the longest use of one server (the memory fill) takes about a minute

    def __init__(self, label, argv, sock, log_path, env=None):
        self.label, self.argv, self.sock, self.log_path, self.env = label, argv, sock, \
            log_path, env
        self.proc = None

    def __enter__(self):
        logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=logf, stderr=subprocess.STDOUT, env=self.env,
                                     start_new_session=True, preexec_fn=die_with_parent)
        logf.close()
        self.deadline = threading.Timer(self.LIMIT, self.kill)
        self.deadline.daemon = True
        self.deadline.start()
        deadline = time.monotonic() + self.START_LIMIT
        while True:
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.settimeout(1)
                    s.connect(self.sock)
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("%s did not start (see %s)" % (self.label,
                                                                      self.log_path))
                time.sleep(0.05)
        time.sleep(0.3)  # let the readiness probe's connection be torn down
        return self

    def cpu(self):
        return proc_cpu(self.proc.pid)

    def pin(self, cpu=None):
        """Pins every thread of the server to `cpu` (default the bench CPU); the threads it
        starts later inherit it."""
        for tid in os.listdir("/proc/%d/task" % self.proc.pid):
            try:
                os.sched_setaffinity(int(tid), {bench_cpu() if cpu is None else cpu})
            except ProcessLookupError:  # a thread that just ended
                pass

    def rss(self):
        return rss_kib(self.proc.pid)

    def kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def stop(self):
        if self.proc is None:
            return
        self.deadline.cancel()
        if self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        except ProcessLookupError:
            pass

    def __exit__(self, *exc):
        self.stop()


def mtasts_server(target, tmp, name, memory_entries):
    """`mtasts serve` with a memory cache of `memory_entries`, against the target's world."""
    conf = os.path.join(tmp, "%s.conf" % name)
    with open(conf, "w") as f:
        # recheck_interval: an entry is not due for its TXT check during the run (the world's
        # records have a TTL of 300 s), so warm means cached: no DNS query.
        # serve.dane = off: the daemon compared knows no DANE, so both answer from their
        # MTA-STS caches alone (and a stopped world cannot fail a DANE lookup);
        # serve.refresh_interval = 0: no background refresh fetches during a measurement;
        # serve.event_loops = 1: the warm loads give every server one CPU (equal cores), and
        # one loop is what a server started on one CPU runs.
        f.write("# bench-compare: the socketmap section\ncache = memory\nmemory_entries = %d\n"
                "nameserver = %s\ntrust_roots = %s\nrecheck_interval = 3600\nlog_level = warn\n"
                "serve.dane = off\nserve.refresh_interval = 0\nserve.event_loops = 1\n"
                % (memory_entries, target.nameserver, target.ca))
        if target.policy_port:
            f.write("policy_port = %d\n" % target.policy_port)
    sock = os.path.join(tmp, "%s.sock" % name)
    argv = [MTASTS, "--config", conf, "-q", "serve", "--listen", "unix:" + sock,
            "--max-connections", "1024"]
    return Server(MTASTS_LABEL, argv, sock, os.path.join(tmp, "%s.log" % name))


def pmsr_server(target, tmp, name, cache_size, stub_flag=None, uvloop=False):
    """The resolver's daemon on a Unix socket, internal cache of `cache_size`; with `stub_flag`
    its fetch replaced (drivers/pmsr_stub_daemon.py); on asyncio's own event loop unless
    `uvloop` (its extra, installed by build.py)."""
    sock = os.path.join(tmp, "%s.sock" % name)
    conf = os.path.join(tmp, "%s.yml" % name)
    with open(conf, "w") as f:
        # cache_grace: its entries are not looked up again during the run (by default after
        # 60 s), as recheck_interval for mtasts.
        f.write("path: %s\nreuse_port: false\nshutdown_timeout: 2\n"
                "cache_grace: 3600\ncache:\n  type: internal\n  options:\n    cache_size: %d\n"
                "default_zone:\n  strict_testing: false\n  timeout: 4\n" % (sock, cache_size))
    if stub_flag:
        argv = [VENV_PY, os.path.join(DRIVERS, "pmsr_stub_daemon.py"), stub_flag]
    else:
        argv = [os.path.join(VENV, "bin", "mta-sts-daemon")]
    argv += ["-c", conf, "-v", "warn"] + ([] if uvloop else PMSR_ASYNCIO)
    return Server(PMSR_UVLOOP_LABEL if uvloop else PMSR_LABEL, argv, sock,
                  os.path.join(tmp, "%s.log" % name),
                  env=target.python_env())


def drive(server, domains_file, connections, depth=1, once=False, seconds=3.0,
          requests=2000000, limit=300, pin=False, driver="threads"):
    """Runs the load generator against `server` (with `pin`, on the bench CPU, or on the CPU
    `pin` names; `driver`: threads or loop); returns (data or None, Run, server CPU)."""
    argv = [LOAD, "--server", "unix:" + server.sock, "--domains", domains_file,
            "--connections", str(connections), "--depth", str(depth), "--seconds", str(seconds),
            "--requests", str(requests), "--timeout", "30", "--deadline", str(limit - 5),
            "--driver", driver]
    if once:
        argv.append("--once")
    cpu0, busy0 = server.cpu(), Load.busy()
    cpu = None if pin is True else pin
    r = run(pinned(argv, cpu) if pin is not False else argv, limit)
    server_cpu = server.cpu() - cpu0
    data = r.json()
    if data:
        # The machine's CPU the server and the load generator did not use meanwhile.
        data["others"] = max(0.0, Load.busy() - busy0 - server_cpu - r.cpu) / max(r.wall, 1e-3)
    return data, r, server_cpu


def us(seconds):
    return "%.1f us" % (seconds * 1e6)


def load_row(world, label, what, data, r, server_cpu, expect):
    """The cells of one load's row; `expect`: the queries that should be answered
    `OK secure` (None: all of them)."""
    if not data or r.timed_out:
        return [world, label, what, "failed: " + r.why()]
    n = data["requests"]
    ok = data["answers"].get("OK secure", 0)
    lat = data["latency_us"]
    cells = [world, label, what, str(n), "%.0f" % data["qps"], "%.1f us" % lat["p50"],
             "%.1f us" % lat["p99"], us(server_cpu / max(n, 1)), us(r.cpu / max(n, 1)),
             "%.0f%%" % (100 * data["others"]), "%d/%d" % (ok, expect if expect is not None else n)]
    if data["errors"]:
        cells[-1] += " (%d connections failed: %s)" % (data["errors"],
                                                       data["error_samples"][0][:120])
    return cells


def section(report, n, levels, seconds):
    report.section(SOCKETMAP, "5. Socketmap servers (Postfix smtp_tls_policy_maps), one load "
                   "generator (socketmap-load) over a Unix socket: cold batches of %d distinct "
                   "domains over %s connections (each a fresh server), then warm (every domain "
                   "cached) request/reply at %s connections and pipelined, %.0f s each"
                   % (n, " and ".join(map(str, COLD_LEVELS)), ", ".join(map(str, levels)),
                      seconds), HEADERS)
    report.note(SOCKETMAP, "cold batches: servers and the load generator not pinned (as "
                "deployed: mtasts serve may use every CPU, the daemon's one asyncio thread uses "
                "one); the ratio row's last column, server CPU per domain, is the comparison at "
                "equal cores")
    apart = placements()[1:]
    report.note(SOCKETMAP, "warm loads, at equal cores, each server alike: first the server "
                "(every thread, from then on) and the load generator pinned to CPU %d, the same "
                "one CPU%s%s; the worlds' servers not pinned (see benches/README.md)" % (
                    bench_cpu(), "" if shutil.which("taskset") else
                    " (the load generator unpinned: no taskset)",
                    "; then %s (rows marked so): each request/reply pays two cross-CPU "
                    "wake-ups, and the generator takes none of the server's CPU"
                    % apart[0].where if apart else ""))
    report.note(SOCKETMAP, "others: the CPU the rest of the machine used during the load, in "
                "% of one core (/proc/stat less the server's and the load generator's): the "
                "worlds' servers during cold batches, anything else running; a figure taken "
                "beside another busy process is worse than the machine can do")
    report.note(SOCKETMAP, "request/reply: each connection sends a request and waits for its "
                "answer before the next (Postfix's way); pipelined: %d requests outstanding per "
                "connection. Latency: from before the request's write to its answer's end, over "
                "every request; p50/p99 nearest rank" % PIPELINE[1])
    report.note(SOCKETMAP, "server CPU/q: user+sys of the server process (/proc) over the load, "
                "per query; client CPU/q: the load generator's (rusage). Warm: the cold batch's "
                "domains, each connection cycling through them from its own offset; mtasts "
                "recheck_interval = 3600 and the daemon's cache_grace: 3600, so no entry is "
                "looked up again meanwhile")


def server_rows(report, world, label, make, domains_file, n, levels, seconds, results,
                cold=True):
    """One server kind: a fresh server (`make(name)`) for the first cold batch, the check that
    every domain is then cached, and the warm loads in each placement; a fresh one for each
    further cold batch. results[label] gets the figures for the ratios. Without `cold`, the
    warm loads only (the floor server)."""
    mine = results.setdefault(label, {})
    try:
        with make("a") as server:
            if not cold or cold_rows(report, world, label, server, domains_file, n,
                                     COLD_LEVELS[0], mine, check=True):
                for placement in placements():
                    warm_rows(report, world, label, server, domains_file, levels, seconds,
                              mine, placement)
        for i, c in enumerate(COLD_LEVELS[1:] if cold else ()):
            with make("b%d" % i) as server:
                cold_rows(report, world, label, server, domains_file, n, c, mine, check=False)
    except RuntimeError as e:  # a server that did not start
        report.row(SOCKETMAP, [world, label, "failed: %s" % e])


def cold_rows(report, world, label, server, domains_file, n, c, mine, check):
    """A cold batch over c connections and, with `check`, the pass that proves every domain is
    cached after it; False if either failed."""
    log("%s: socketmap, %s, cold batch of %d, %d connections" % (world, label, n, c))
    data, r, cpu = drive(server, domains_file, c, once=True, seconds=240)
    report.row(SOCKETMAP, load_row(world, label, "cold, %d connections, each domain once" % c,
                                   data, r, cpu, n))
    if not data or data["answers"].get("OK secure", 0) != n:
        report.note(SOCKETMAP, "%s, %s: the cold batch over %d connections did not fetch every "
                    "policy%s" % (world, label, c, "; no warm figures" if check else ""))
        return False
    mine[("cold", c)] = dict(data, cpu=cpu)
    if not check:
        return True
    # Every domain asked once more: all must come from the cache now.
    data, r, cpu = drive(server, domains_file, COLD_LEVELS[0], once=True, seconds=60)
    if not data or data["answers"].get("OK secure", 0) != n:
        report.row(SOCKETMAP, [world, label, "warm check", "failed: %s" % (
            data and data["answers"] or r.why())])
        return False
    return True


class Placement:
    """Where the warm loads run: `server` and `client` are the CPUs the server (every thread,
    from then on) and the load generator are pinned to; `key` tells its figures apart in the
    results (None for the shared CPU), `what` is what a row adds to the load's name, `where`
    how a note says it."""

    def __init__(self, key, server, client, what, where):
        self.key, self.server, self.client, self.what, self.where = \
            key, server, client, what, where

    def of(self, load):
        """The results' key of a load in this placement."""
        return load if self.key is None else (self.key, load)


def placements():
    """The warm loads' placements, at equal cores for every server alike: the server and the
    load generator on one and the same CPU; and, with two CPUs or more, the server on a CPU of
    its own with the load generator on another (the usual way to measure a server's capacity:
    the generator takes none of the server's CPU)."""
    cpus = sorted(os.sched_getaffinity(0))
    one = bench_cpu()
    shared = Placement(None, one, one, "", "server and client on CPU %d" % one)
    if len(cpus) < 2 or not shutil.which("taskset"):
        return [shared]
    apart = "server on CPU %d, client on CPU %d" % (cpus[-1], cpus[0])
    return [shared, Placement("split", cpus[-1], cpus[0], ", " + apart, apart)]


class WarmLoad:
    """One warm load: its results' key, connections, requests in flight per connection, the
    load generator's driver, its rows' name (`what`) and its short name in the notes."""

    def __init__(self, key, connections, depth, driver, what, short):
        self.key, self.connections, self.depth, self.driver, self.what, self.short = \
            key, connections, depth, driver, what, short


def warm_loads(levels):
    """The warm loads of a placement: request/reply with a thread per connection at each of
    `levels`, with the event-loop client at LOOP_LEVELS, and one pipelined load."""
    loads = [WarmLoad(c, c, 1, "threads", "warm, %d connection%s, request/reply"
                      % (c, "s" if c > 1 else ""), "%d" % c) for c in levels]
    loads += [WarmLoad(("loop", c), c, 1, "loop", "warm, %d connections, request/reply, "
                       "event-loop client" % c, "%d loop" % c) for c in LOOP_LEVELS]
    c, depth = PIPELINE
    loads.append(WarmLoad("pipelined", c, depth, "threads",
                          "warm, %d connections, pipelined %d deep" % (c, depth), "pipelined"))
    return loads


def warm_rows(report, world, label, server, domains_file, levels, seconds, mine, placement):
    """The warm loads, the server and the load generator where `placement` says."""
    server.pin(placement.server)
    for load in warm_loads(levels):
        log("%s: socketmap, %s, %s%s" % (world, label, load.what, placement.what))
        data, r, cpu = drive(server, domains_file, load.connections, depth=load.depth,
                             seconds=seconds, pin=placement.client, driver=load.driver)
        report.row(SOCKETMAP, load_row(world, label, load.what + placement.what, data, r, cpu,
                                       None))
        if data and not data["errors"]:
            mine[placement.of(load.key)] = dict(data, cpu=cpu)


def cpu_q(data):
    """Server CPU seconds per query of a load's figures (never 0: a divisor)."""
    return max(data["cpu"], 1e-6) / max(data["requests"], 1)


def ratio_rows(report, world, results, levels, daemon=PMSR_LABEL):
    """mtasts / `daemon` for every load both have, and the issue's targets."""
    m, p = results.get(MTASTS_LABEL, {}), results.get(daemon, {})
    on = " on uvloop" if daemon == PMSR_UVLOOP_LABEL else ""
    names = {"mtasts": "ratio mtasts / daemon" + on, "floor": "ratio floor / daemon" + on,
             "daemon": "the uvloop daemon" if on else "the daemon"}
    cold = []
    for c in COLD_LEVELS:
        if ("cold", c) in m and ("cold", c) in p:
            x = m[("cold", c)]["qps"] / p[("cold", c)]["qps"]
            report.row(SOCKETMAP, [world, names["mtasts"], "cold, %d connections" % c,
                                   "", "%.1fx" % x, "", "",
                                   "%.3fx" % (cpu_q(m[("cold", c)]) / cpu_q(p[("cold", c)]))])
            cold.append((c, x))
    if cold:
        report.note(SOCKETMAP, "issue 13's target, cold batch at least %.0fx %s's "
                    "throughput (%s world): %s" % (TARGETS["cold"], names["daemon"], world,
                                                   ", ".join(
                        "%s at %d connections (%.1fx)" % (
                            "met" if x >= TARGETS["cold"] else "NOT met", c, x)
                        for c, x in cold)))
    for placement in placements():
        warm_ratio_rows(report, world, m, p, results.get(FLOOR_LABEL, {}), levels, placement,
                        names)
    if 1 in m and daemon == PMSR_LABEL:
        p50 = m[1]["latency_us"]["p50"]
        report.note(SOCKETMAP, "issue 13's target, mtasts serve p50 at most %.0f us at one "
                    "connection (%s world): %s (%.1f us)" % (
                        TARGETS["p50_us"], world, "met" if p50 <= TARGETS["p50_us"]
                        else "NOT met", p50))


def warm_ratio_rows(report, world, m, p, f, levels, placement, names):
    """The warm loads' ratios in one placement, and the warm target's verdict for each kind
    of client (request/reply only: Postfix asks one question at a time per connection); with
    the floor's figures `f`, what a server that does nothing reaches against the daemon in
    the same load: a guide to what this machine allows (not a strict bound: a server that
    times its reads and writes differently can do better in some loads). `names`: the ratio
    rows' labels and the daemon's name (ratio_rows)."""
    goal = TARGETS["warm"]
    verdicts = {"threads": [], "loop": []}
    reachable, capacity = [], []
    for load in warm_loads(levels):
        k = placement.of(load.key)
        if k not in m or k not in p:
            continue
        x = m[k]["qps"] / p[k]["qps"]
        report.row(SOCKETMAP, [world, names["mtasts"], load.what + placement.what, "",
                               "%.1fx" % x,
                               "%.2fx" % (m[k]["latency_us"]["p50"] / p[k]["latency_us"]["p50"]),
                               "%.2fx" % (m[k]["latency_us"]["p99"] / p[k]["latency_us"]["p99"]),
                               "%.3fx" % (cpu_q(m[k]) / cpu_q(p[k]))])
        capacity.append("%s: %.1fx" % (load.short, cpu_q(p[k]) / cpu_q(m[k])))
        if load.depth == 1:
            verdicts[load.driver].append((load.connections, x))
        if k in f:
            y = f[k]["qps"] / p[k]["qps"]
            report.row(SOCKETMAP, [world, names["floor"], load.what + placement.what, "",
                                   "%.1fx" % y, "", "", "%.3fx" % (cpu_q(f[k]) / cpu_q(p[k]))])
            if y < goal:
                verdict = "not even the floor reaches %.0fx" % goal
            else:
                verdict = "the floor reaches %.0fx, mtasts serve %s" % (
                    goal, "too" if x >= goal else "not")
            reachable.append("%s: %s (floor %.1fx, mtasts %.1fx)" % (load.short, verdict, y, x))
    for driver, found in verdicts.items():
        if not found:
            continue
        short = [c for c, x in found if x < goal]
        report.note(SOCKETMAP, "issue 13's target, warm request/reply at least %.0fx %s's "
                    "queries/s at equal cores (%s world, %s, %s client): %s (connections %s)" % (
                        goal, names["daemon"], world, placement.where,
                        "event-loop" if driver == "loop" else "thread",
                        "NOT met at %s connections" % ", ".join(map(str, short)) if short
                        else "met", ", ".join("%d: %.1fx" % v for v in found)))
    if reachable:
        report.note(SOCKETMAP, "what this machine allows (%s world, %s): a server that does no "
                    "work (the floor) against %s, load by load: %s" % (
                        world, placement.where, names["daemon"], "; ".join(reachable)))
    if capacity:
        report.note(SOCKETMAP, "mtasts serve's capacity per core over %s's (a server's "
                    "capacity: 1 / its server CPU per query; %s world, %s): connections %s" % (
                        names["daemon"], world, placement.where, ", ".join(capacity)))


def world_rows(report, target, built, n, levels, seconds, floor=False):
    """Both servers (the daemon where it can be pointed at this world), fresh, one after the
    other, over the first n domains of `target`; with `floor`, the do-nothing server first."""
    section(report, n, levels, seconds)
    doms = target.domains[:n]
    path = write_lines(os.path.join(target.tmp, "socketmap-domains.txt"), doms)
    results = {}
    tmp = target.tmp
    if floor:
        def make_floor(name):
            sock = os.path.join(tmp, "floor-%s.sock" % name)
            return Server(FLOOR_LABEL, [LOAD, "--fixed-server", "unix:" + sock], sock,
                          os.path.join(tmp, "floor-%s.log" % name))
        server_rows(report, target.label, FLOOR_LABEL, make_floor, path, n, levels, seconds,
                    results, cold=False)
        report.note(SOCKETMAP, "floor: a socketmap server that does no work, with the shape of "
                    "mtasts serve (one epoll event loop, one read per readiness, the answers to "
                    "what it read in one write, a round's writes after all its reads), answering every request with mtasts serve's "
                    "answer for these domains: what the sockets, the event loop and the "
                    "scheduler of this machine cost")
    why = built.pmsr_missing or target.pmsr_unusable
    if why:
        report.row(SOCKETMAP, [target.label, PMSR_LABEL, "n/a (see below)"])
        report.note(SOCKETMAP, "%s, %s world: %s" % (PMSR, target.label, why))
    else:
        report.note(SOCKETMAP, "%s: its daemon as a plain pip install runs it, on asyncio's "
                    "own event loop (--disable-uvloop: uvloop is in the venv), then, with a "
                    "fresh server, on uvloop (its `uvloop` extra), which it takes when it can "
                    "import it; the issue's targets are checked against both" % PMSR)
        server_rows(report, target.label, PMSR_LABEL,
                    lambda name: pmsr_server(target, tmp, "pmsr-socketmap-" + name, 10 * n),
                    path, n, levels, seconds, results)
        if built.uvloop_missing:
            report.row(SOCKETMAP, [target.label, PMSR_UVLOOP_LABEL, "n/a: " +
                                   built.uvloop_missing])
        else:
            server_rows(report, target.label, PMSR_UVLOOP_LABEL,
                        lambda name: pmsr_server(target, tmp, "pmsr-uvloop-" + name, 10 * n,
                                                 uvloop=True),
                        path, n, levels, seconds, results)
    server_rows(report, target.label, MTASTS_LABEL,
                lambda name: mtasts_server(target, tmp, "mtasts-socketmap-" + name, 10 * n),
                path, n, levels, seconds, results)
    ratio_rows(report, target.label, results, levels)
    if PMSR_UVLOOP_LABEL in results:
        ratio_rows(report, target.label, results, levels, PMSR_UVLOOP_LABEL)
    floor_notes(report, target.label, results, levels)


def floor_notes(report, world, results, levels):
    """mtasts serve's server CPU per query above the floor's: its own work per request."""
    m, f = results.get(MTASTS_LABEL, {}), results.get(FLOOR_LABEL, {})
    for placement in placements():
        parts = []
        for load in warm_loads(levels):
            k = placement.of(load.key)
            if load.driver == "threads" and k in m and k in f:
                parts.append("%s %s - %s = %s" % (
                    load.short if load.depth > 1 else "%s conn." % load.short, us(cpu_q(m[k])),
                    us(cpu_q(f[k])), us(cpu_q(m[k]) - cpu_q(f[k]))))
        if parts:
            report.note(SOCKETMAP, "mtasts serve's server CPU per warm query above the "
                        "floor's (%s world, %s): %s" % (world, placement.where,
                                                         "; ".join(parts)))
    first = []
    for label in (FLOOR_LABEL, PMSR_LABEL, PMSR_UVLOOP_LABEL, MTASTS_LABEL):
        d = results.get(label, {}).get(16)
        if d:
            first.append("%s p50 %.2f ms, max %.2f ms" % (
                label.split(":")[0], d["first_reply_us"]["p50"] / 1e3,
                d["first_reply_us"]["max"] / 1e3))
    if first:
        report.note(SOCKETMAP, "connect to first answer, 16 new connections at once (%s world): "
                    "%s (before the load; see benches/README.md)" % (world, "; ".join(first)))


# ---------------------------------------------------------------------------------------------
# Resident memory with M cached policies.


def memory_rows(report, world, target, built, m):
    """mtasts serve filled with m policies fetched from the hermetic world through its own
    socketmap path; the daemon filled through its socketmap path with its fetch stubbed (it
    cannot be pointed at that world). `world` is the running TestWorld: it is stopped after the
    fill, so the check that every answer comes from the cache cannot be answered by a fetch."""
    report.section(MEMORY, "6. Resident memory of a socketmap server holding %d cached policies "
                   "(VmRSS from /proc)" % m, MEMORY_HEADERS)
    report.note(MEMORY, "per policy: (RSS filled - RSS at start) / policies; RSS at start: the "
                "server listening, before any query; RSS filled: after the fill and a second "
                "pass over every domain (which must all be answered `OK secure` with no world "
                "to fetch from), the connections closed")
    doms = target.domains[:m]
    path = write_lines(os.path.join(target.tmp, "memory-domains.txt"), doms)
    # Well under the test world's limit of 64 connections at once (tests/world/src/conns.rs).
    mtasts_fill = 24
    with mtasts_server(target, target.tmp, "mtasts-memory", 2 * m) as server:
        rss0 = server.rss()
        log("memory: mtasts serve, filling %d policies from the hermetic world" % m)
        data, r, _ = drive(server, path, mtasts_fill, once=True, seconds=1200, limit=1300)
        world.__exit__(None, None, None)  # no more fetches possible
        check, rc, _ = drive(server, path, 16, once=True, seconds=300, limit=330)
        rss1 = server.rss()
        how = ("%d cold socketmap queries, %d connections, each fetched from the hermetic "
               "world (%.0f s)" % (m, mtasts_fill, data["wall"]) if data else
               "failed: " + r.why())
        report.row(MEMORY, memory_cells(MTASTS_LABEL, m, how, rss0, rss1, data, check, rc))
    report.note(MEMORY, "mtasts serve: cache = memory, memory_entries = %d (the memory store's "
                "bound is split evenly over its shards: twice the policies, so none is evicted), "
                "serve.dane = off and serve.refresh_interval = 0 (as for every load of this "
                "section: the daemon compared has neither), serve.event_loops = 1" % (2 * m))
    label = PMSR_LABEL
    if built.pmsr_missing:
        report.row(MEMORY, [label, str(m), "n/a: " + built.pmsr_missing])
        memory_target_note(report)
        return
    flag = os.path.join(target.tmp, "pmsr-offline")
    with pmsr_server(target, target.tmp, "pmsr-memory", 2 * m, stub_flag=flag) as server:
        rss0 = server.rss()
        log("memory: %s, filling %d policies (fetch stubbed)" % (PMSR, m))
        data, r, _ = drive(server, path, 16, once=True, seconds=1200, limit=1300)
        with open(flag, "w"):
            pass
        check, rc, _ = drive(server, path, 16, once=True, seconds=300, limit=330)
        rss1 = server.rss()
        how = ("%d socketmap queries, 16 connections, its fetch stubbed (%.0f s)" % (
            m, data["wall"]) if data else "failed: " + r.why())
        report.row(MEMORY, memory_cells(label, m, how, rss0, rss1, data, check, rc))
    report.note(MEMORY, "%s: internal cache of %d; it cannot be pointed at the hermetic world "
                "and %d fetches in the real-daemon world would take minutes, so its fetch is "
                "replaced by the policy and id it would store, parsed by its own code on every "
                "call (drivers/pmsr_stub_daemon.py); its socketmap path and cache are its own, "
                "while the mtasts figure includes whatever the real fetches left behind"
                % (PMSR, 2 * m, m))
    memory_target_note(report)


def memory_cells(label, m, how, rss0, rss1, fill, check, rc):
    """A memory row; its last cell: how many of the fill's answers were `OK secure`, and how
    many of the second pass's (from the cache)."""
    ok = lambda d: d["answers"].get("OK secure", 0) if d else 0  # noqa: E731
    cells = [label, str(m), how, "%.1f MiB" % (rss0 / 1024.0), "%.1f MiB" % (rss1 / 1024.0),
             "%.0f B" % ((rss1 - rss0) * 1024.0 / m),
             "fill %d/%d, cached %d/%d" % (ok(fill), m, ok(check), m)]
    if not check:
        cells[-1] += " (the second pass failed: %s)" % rc.why()
    elif ok(fill) != m:
        cells[-1] += " (fill answers: %s)" % fill["answers"] if fill else ""
    return cells


def memory_target_note(report):
    """The issue's target for mtasts serve's figure, from its row."""
    rows = [r for r in report.sections.get(MEMORY, {}).get("rows", []) if r[0] == MTASTS_LABEL]
    if rows and rows[0][5].endswith(" B"):
        per = float(rows[0][5][:-2])
        report.note(MEMORY, "issue 13's target, mtasts serve at most %.0f KiB per cached policy: "
                    "%s (%.0f B)" % (TARGETS["kib_per_policy"],
                                     "met" if per <= 1024 * TARGETS["kib_per_policy"]
                                     else "NOT met", per))
