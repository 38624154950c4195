"""The cost of mtasts calls from Python, measured with timeit on the installed wheel.

    pip install ./bindings/python            # a release build
    cargo build -p mtasts-testworld
    python bindings/python/benches/resolve.py [target/debug/mtasts-testworld]

A cached `resolve` is the call an MTA makes per message: the memory layer answers it, with the
GIL released around the core call like every other lookup.
"""

from __future__ import annotations

import json
import subprocess
import sys
import timeit
from pathlib import Path

import mtasts

REPO = Path(__file__).resolve().parents[3]
POLICY = "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmax_age: 86400\n"


def main() -> None:
    binary = sys.argv[1] if len(sys.argv) > 1 else str(REPO / "target/debug/mtasts-testworld")
    world = subprocess.Popen(
        [binary, "--world", str(REPO / "tests/world/world.json")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert world.stdin is not None and world.stdout is not None
    try:
        info = json.loads(world.stdout.readline())
        resolver = mtasts.Resolver(
            nameservers=[info["dns"]], trust_roots=info["ca_pem"], policy_port=info["https_port"]
        )
        assert resolver.resolve("s01.mtasts.test").source is mtasts.Source.FETCHED
        assert resolver.resolve("s01.mtasts.test").source is mtasts.Source.CACHE
        policy = mtasts.parse_policy(POLICY)
        names = {"r": resolver, "mtasts": mtasts, "T": POLICY, "P": policy}
        cases = [
            ("cached resolve", "r.resolve('s01.mtasts.test')"),
            ("cached resolve + .source + .mode", "x = r.resolve('s01.mtasts.test'); x.source; x.mode"),
            ("cached resolve + .policy.mx", "r.resolve('s01.mtasts.test').policy.mx"),
            ("parse_policy", "mtasts.parse_policy(T)"),
            ("Policy.matches", "P.matches('mx1.example.net')"),
        ]
        number = 100_000
        for label, statement in cases:
            best = min(timeit.repeat(statement, globals=names, number=number, repeat=5))
            print(f"{label:34s} {best / number * 1e6:8.3f} µs")
    finally:
        world.stdin.close()
        world.wait(timeout=15)


if __name__ == "__main__":
    main()
