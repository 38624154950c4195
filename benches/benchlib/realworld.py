"""The real-daemon world for benchmarks, built with the real-daemon test world's own library
(tests/realworld/rw): a network namespace of this run (rw.namespace, with its own
/etc/resolv.conf pointing at unbound and a trust store holding only the test CA), openssl's test
CA and one certificate per policy host (rw.pki), unbound on 192.0.2.53:53 and nginx on
192.0.2.80:443 with one server block per mta-sts.<domain> (rw.daemons). The bench domains use
every default of that world: one STS record, an enforce policy, a valid certificate.

outer() runs outside: it makes the namespace (or says why it cannot), runs this file's inner()
in it (`benches/compare --inside-realworld DIR`) and tears everything down. inner() starts the
daemons and runs the same measurements as the hermetic part, with postfix-mta-sts-resolver too
(it reads the namespace's /etc/resolv.conf and fetches from port 443, which here is nginx)."""

import json
import os
import shutil
import sys
import tempfile
import time

from .common import ROOT, Report, log, run

sys.path.insert(0, os.path.join(ROOT, "tests", "realworld"))
sys.dont_write_bytecode = True  # as root, inside the source tree: no __pycache__ left behind

from rw.common import (BLACKHOLE_NET, DNS_ADDR, DNS_OUT_ADDR, HTTPS_ADDR,  # noqa: E402
                       UNREACHABLE_ADDR)
from rw.daemons import (Daemons, dns_query, https_generation, nginx_conf,  # noqa: E402
                        unbound_conf, wait_until)
from rw.namespace import (NAME_PREFIX, add_addresses, create_namespace,  # noqa: E402
                          delete_namespace, sweep_stale_namespaces)
from rw.pki import Certs  # noqa: E402
from rw.world import World  # noqa: E402

from . import measure, socketmap  # noqa: E402

INNER_LIMIT = 420  # seconds the part inside the namespace may take (sections 1 and 2)
SOCKETMAP_LIMIT = 240  # seconds more for section 5


def outer(report, params, entry):
    """Adds the real-daemon rows to `report`; returns None, or the reason they are skipped."""
    if os.geteuid() != 0:
        return "not running as root (network namespaces need it)"
    missing = [c for c in ("ip", "unbound", "nginx", "openssl") if not shutil.which(c)]
    if missing:
        return "missing %s (scripts/install-deps installs them)" % ", ".join(missing)
    sweep_stale_namespaces()
    ns = NAME_PREFIX + "%d" % os.getpid()  # the realworld sweep also cleans up after us
    etc, reason = create_namespace(ns)
    if etc is None:
        return "cannot create network namespaces: %s" % reason
    tmp = tempfile.mkdtemp(prefix="mtasts-bench-rw-")
    os.chmod(tmp, 0o755)  # nginx's and unbound's workers read their files from here
    try:
        with open(os.path.join(tmp, "params.json"), "w") as f:
            json.dump(params, f)
        log("real-daemon world: namespace %s" % ns)
        r = run(["ip", "netns", "exec", ns, sys.executable, entry, "--inside-realworld", tmp],
                INNER_LIMIT + (SOCKETMAP_LIMIT if "socketmap" in params["sections"] else 0) + 30)
        for ln in r.err.splitlines():
            print(ln, file=sys.stderr)
        try:
            with open(os.path.join(tmp, "report.json")) as f:
                report.merge(json.load(f))
        except (OSError, ValueError):
            return "the part inside the namespace failed: " + r.why()
        if r.status != 0:
            return "the part inside the namespace failed: " + r.why()
        return None
    finally:
        delete_namespace(ns, etc)
        shutil.rmtree(tmp, ignore_errors=True)


def inner(tmp):
    """Inside the namespace: daemons up, the measurements, the rows written to report.json.
    Returns the exit status."""
    with open(os.path.join(tmp, "params.json")) as f:
        p = json.load(f)
    built = measure_built(p["built"])
    domains = ["b%05d.bench.test" % i for i in range(p["domains"])]
    world_file = os.path.join(tmp, "world.json")
    with open(world_file, "w") as f:
        json.dump({"domains": [{"name": d} for d in domains]}, f)
    world = World(world_file)
    daemons = Daemons(tmp)
    report = Report()
    status = 0
    started = time.monotonic()
    try:
        add_addresses([DNS_ADDR, DNS_OUT_ADDR, HTTPS_ADDR, UNREACHABLE_ADDR], BLACKHOLE_NET)
        certs = Certs(tmp)
        for d in world.domains:
            certs.cert("mta-sts." + d["name"], d["cert"])  # one openssl call per host
        log("real-daemon world: %d certificates in %.1f s" % (
            len(world.domains), time.monotonic() - started))
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.makedirs(os.path.join(tmp, "nginx-tmp", sub))
        conf = unbound_conf(tmp, world, False, 1)
        # The benchmark's unbound logs no queries: its log would be the busiest part of it.
        conf = conf.replace("log-queries: yes", "log-queries: no").replace(
            "log-replies: yes", "log-replies: no")
        with open(os.path.join(tmp, "unbound.conf"), "w") as f:
            f.write(conf)
        with open(os.path.join(tmp, "nginx.conf"), "w") as f:
            f.write(nginx_conf(tmp, world, certs, False, 1, False))
        daemons.start("unbound", ["unbound", "-d", "-c", os.path.join(tmp, "unbound.conf")])
        daemons.start("nginx", ["nginx", "-p", tmp, "-e", os.path.join(tmp, "nginx-early.log"),
                                "-c", os.path.join(tmp, "nginx.conf")])
        wait_until("unbound", lambda: dns_query("generation.test") == (0, ["1"]),
                   proc=daemons.procs["unbound"])
        wait_until("nginx", lambda: https_generation() == "1", proc=daemons.procs["nginx"])
        log("real-daemon world: unbound and nginx up in %.1f s" % (time.monotonic() - started))

        target = measure.Target("real daemons", DNS_ADDR + ":53", certs.ca_pem, None, domains,
                                tmp)
        if "cpu" in p["sections"]:
            measure.cpu_rows(report, target, built, p["cpu_n"], p["reps"])
        if "throughput" in p["sections"]:
            measure.throughput_rows(report, target, built, p["batch_n"], p["concurrency"])
        if "socketmap" in p["sections"]:
            # The floor here too: the warm targets' verdicts compare with what a server that
            # does nothing reaches against the daemon on this machine, in the same run.
            socketmap.world_rows(report, target, built, p["sm_n"], p["sm_levels"],
                                 p["sm_seconds"], floor=True)
        for key in report.order:
            report.note(key, "real daemons: unbound (one thread) and nginx (one worker) in a "
                        "namespace; nginx has a server and its own certificate (P-256, one "
                        "shared key, from openssl's test CA) per mta-sts.<domain>, the same for "
                        "every client")
    except Exception as e:  # a daemon that did not start, a broken configuration
        log("real-daemon world: %s: %s" % (type(e).__name__, e))
        for name in ("unbound.log", "nginx-early.log", "nginx-error.log"):
            path = os.path.join(tmp, name)
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    for ln in f.read().splitlines()[-10:]:
                        log("  %s: %s" % (name, ln))
        status = 1
    finally:
        daemons.stop()
    with open(os.path.join(tmp, "report.json"), "w") as f:
        json.dump(report.to_json(), f)
    return status


def measure_built(d):
    from .build import Built
    b = Built()
    b.__dict__.update(d)
    return b


def params(built, args, sections):
    """What inner() needs, as JSON: what is built, the counts, the sections to run."""
    n = max(args.cpu_n, args.batch_n, args.sm_n if "socketmap" in sections else 0)
    return {"built": built.__dict__, "domains": n, "sm_n": args.sm_n,
            "cpu_n": args.cpu_n, "reps": args.reps, "batch_n": args.batch_n,
            "concurrency": args.concurrency, "sm_levels": list(args.sm_levels),
            "sm_seconds": args.sm_seconds, "sections": sorted(sections)}
