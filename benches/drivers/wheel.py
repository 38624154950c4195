"""The mtasts Python wheel against a world: one Resolver with a fresh memory cache, and the
domains of DOMAINS_FILE resolved

- `sequential`: one resolve() after the other;
- `threads`: resolve() from CONCURRENCY threads (concurrent.futures; the GIL is released);
- `resolve_many`: Resolver.resolve_many(domains, concurrency=CONCURRENCY), when the wheel has it.

    python wheel.py MODE CONCURRENCY DOMAINS_FILE NAMESERVER CA_PEM [POLICY_PORT]

Prints one JSON line: {"n", "ok", "wall", "cpu" (of the batch), "sources"}; "ok" counts fetched
enforce policies."""

import collections
import concurrent.futures
import json
import resource
import sys
import time

import mtasts


def cpu_seconds():
    """user+sys of this whole process (every thread) so far."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def tally(resolutions):
    sources = collections.Counter()
    ok = 0
    for r in resolutions:
        if isinstance(r, tuple):  # (domain, resolution), should resolve_many pair them
            r = r[-1]
        if isinstance(r, BaseException):
            sources["error: %s" % type(r).__name__] += 1
            continue
        sources[str(r.source)] += 1
        if str(r.source) == "fetched" and str(r.mode) == "enforce":
            ok += 1
    return ok, sources


def main(mode, concurrency, domains, nameserver, ca, port):
    kwargs = {"nameservers": [nameserver], "trust_roots": ca, "cache": "memory"}
    if port:
        kwargs["policy_port"] = port
    resolver = mtasts.Resolver(**kwargs)
    cpu0 = cpu_seconds()
    started = time.perf_counter()
    if mode == "sequential":
        results = [resolver.resolve(d) for d in domains]
    elif mode == "threads":
        with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
            results = list(pool.map(resolver.resolve, domains))
    elif mode == "resolve_many":
        results = list(resolver.resolve_many(domains, concurrency=concurrency))
    else:
        raise SystemExit("unknown mode %r" % mode)
    wall = time.perf_counter() - started
    cpu = cpu_seconds() - cpu0
    ok, sources = tally(results)
    return {"n": len(domains), "ok": ok, "wall": wall, "cpu": cpu, "sources": dict(sources)}


if __name__ == "__main__":
    with open(sys.argv[3]) as f:
        names = f.read().split()
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]), names, sys.argv[4], sys.argv[5],
                          int(sys.argv[6]) if len(sys.argv) > 6 else None)))
