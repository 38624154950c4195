"""The GIL is released during network work: threads overlap their lookups.

S-18's policy host sends its headers, then one body byte per second, so a lookup ends at the
fetch deadline: a slow lookup whose duration we control. N threads, each with its own
resolver (one resolver would make one fetch for all: S-42), must take about the time of one.
"""

from __future__ import annotations

import threading
import time
from typing import List

import mtasts
from mtasts import ResultType, Source

from conftest import World

SLOW = "s18.mtasts.test"
DEADLINE = 1.5
THREADS = 4


def _slow_lookup(world: World, results: List[mtasts.Resolution]) -> None:
    resolver = world.resolver(fetch_timeout=DEADLINE)
    results.append(resolver.resolve(SLOW))


def test_threads_overlap_slow_lookups(world: World) -> None:
    single: List[mtasts.Resolution] = []
    started = time.monotonic()
    _slow_lookup(world, single)
    one = time.monotonic() - started
    assert one >= DEADLINE * 0.9, f"the lookup ends at the fetch deadline ({one:.2f} s)"
    assert single[0].source is Source.UNAVAILABLE
    assert single[0].failure is not None
    assert single[0].failure.result_type is ResultType.STS_POLICY_FETCH_ERROR

    results: List[mtasts.Resolution] = []
    threads = [
        threading.Thread(target=_slow_lookup, args=(world, results)) for _ in range(THREADS)
    ]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    total = time.monotonic() - started
    assert len(results) == THREADS
    assert all(r.source is Source.UNAVAILABLE for r in results)
    # Serialised by the GIL they would take THREADS x one; overlapping, about one.
    assert total < THREADS * one / 2, f"{THREADS} threads took {total:.2f} s, one {one:.2f} s"


def test_python_runs_while_a_lookup_blocks(world: World) -> None:
    """While one thread waits on the network, the main thread keeps running Python code."""
    results: List[mtasts.Resolution] = []
    worker = threading.Thread(target=_slow_lookup, args=(world, results))
    worker.start()
    ticks = 0
    deadline = time.monotonic() + 30
    while worker.is_alive() and time.monotonic() < deadline:
        ticks += 1
        time.sleep(0.01)
    worker.join(timeout=30)
    assert len(results) == 1
    # About DEADLINE / 10 ms ticks; without the GIL released there would be none or one.
    assert ticks >= 20, ticks


def test_one_resolver_shared_by_threads(world: World) -> None:
    """One Resolver used by many threads for different domains: every answer is right."""
    resolver = world.resolver()
    names = ["s01.mtasts.test", "s02.mtasts.test", "s05.mtasts.test", "s10.mtasts.test"] * 4
    results: dict[int, mtasts.Resolution] = {}
    lock = threading.Lock()

    def lookup(i: int, name: str) -> None:
        resolution = resolver.resolve(name)
        with lock:
            results[i] = resolution

    threads = [threading.Thread(target=lookup, args=(i, n)) for i, n in enumerate(names)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == len(names)
    for i, name in enumerate(names):
        assert results[i].domain == name
        if name in ("s01.mtasts.test", "s05.mtasts.test"):
            assert results[i].policy is not None
        else:
            assert results[i].policy is None
