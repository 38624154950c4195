"""postfix-mta-sts-resolver's own resolver, driven directly: STSResolver.resolve() for each
domain of DOMAINS_FILE, one after the other, in one asyncio event loop (the library as its
daemon uses it, without the daemon's cache). Run with the bench venv's Python:

    python pmsr_resolve.py DOMAINS_FILE

DNS comes from /etc/resolv.conf (the library has no setting for it) and the trust roots from
SSL_CERT_FILE. Prints one JSON line: {"n", "ok", "wall", "cpu" (of the loop), "statuses"};
"ok" counts VALID answers with an enforce policy. The parent measures the whole process's CPU
(rusage)."""

import asyncio
import collections
import json
import resource
import sys
import time
import warnings

warnings.simplefilter("ignore")  # aiohttp's deprecation of ClientSession(loop=...)

from postfix_mta_sts_resolver.resolver import STSFetchResult, STSResolver  # noqa: E402


def cpu_seconds():
    """user+sys of this whole process (every thread) so far."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def main(domains):
    resolver = STSResolver(loop=asyncio.get_running_loop(), timeout=4)
    statuses = collections.Counter()
    ok = 0
    cpu0 = cpu_seconds()
    started = time.perf_counter()
    for domain in domains:
        status, policy = await resolver.resolve(domain)
        statuses[status.name] += 1
        if status is STSFetchResult.VALID and policy[1].get("mode") == "enforce":
            ok += 1
    return {"n": len(domains), "ok": ok, "wall": time.perf_counter() - started,
            "cpu": cpu_seconds() - cpu0,
            "statuses": dict(statuses)}


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        names = f.read().split()
    print(json.dumps(asyncio.run(main(names))))
