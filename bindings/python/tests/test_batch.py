"""Resolver.resolve_many: input order, lazily read input, early stop, input errors, invalid
arguments, and the GIL released while the batch runs."""

from __future__ import annotations

import itertools
import threading
from typing import Iterator, List

import pytest

import mtasts
from mtasts import Mode, Source

from conftest import World


def test_results_come_in_input_order(world: World) -> None:
    resolver = world.resolver(cache="memory")
    names = ["s01.mtasts.test", "s02.mtasts.test", "not a domain", "s10.mtasts.test", "s01.mtasts.test"]
    got = list(resolver.resolve_many(names, concurrency=3))
    assert [domain for domain, _ in got] == names
    first, none, bad, failed, again = (result for _, result in got)
    assert isinstance(first, mtasts.Resolution) and first.mode is Mode.ENFORCE
    assert isinstance(none, mtasts.Resolution) and none.source is Source.NONE
    # One bad name is its own result (an exception instance), not the end of the batch.
    assert isinstance(bad, mtasts.InvalidDomain)
    assert isinstance(failed, mtasts.Resolution) and failed.source is Source.UNAVAILABLE
    assert isinstance(again, mtasts.Resolution) and again.mode is Mode.ENFORCE
    # The same cache as resolve().
    assert resolver.resolve("s01.mtasts.test").source is Source.CACHE


def test_an_endless_generator_is_read_as_needed_and_a_break_stops_it(world: World) -> None:
    resolver = world.resolver(cache="memory")
    pulled = itertools.count()

    def endless() -> Iterator[str]:
        while True:
            next(pulled)
            yield "s01.mtasts.test"

    batch = resolver.resolve_many(endless(), concurrency=2)
    for n, (_, result) in enumerate(batch, start=1):
        assert isinstance(result, mtasts.Resolution)
        if n == 50:
            break
    del batch
    read = next(pulled)
    # Read ahead is bounded (a window per worker, the channel and one chunk of 32), never the
    # whole input.
    assert 50 <= read <= 50 + 2 * 64 + 2 * 4 + 32 + 4, read


def test_an_error_of_the_input_is_raised_after_the_results_before_it(world: World) -> None:
    resolver = world.resolver(cache="memory")

    def broken() -> Iterator[str]:
        yield "s01.mtasts.test"
        yield "s02.mtasts.test"
        raise OSError("the list could not be read")

    batch = resolver.resolve_many(broken(), concurrency=1)
    assert next(batch)[0] == "s01.mtasts.test"
    assert next(batch)[0] == "s02.mtasts.test"
    with pytest.raises(OSError, match="could not be read"):
        next(batch)
    with pytest.raises(TypeError):
        list(resolver.resolve_many(["s01.mtasts.test", 42], concurrency=1))  # type: ignore[list-item]


def test_invalid_arguments_raise(world: World) -> None:
    resolver = world.resolver(cache="memory")
    with pytest.raises(TypeError):
        resolver.resolve_many("s01.mtasts.test")
    with pytest.raises(TypeError):
        resolver.resolve_many(42)  # type: ignore[arg-type]
    for bad in (0, -1, 257):
        with pytest.raises(ValueError):
            resolver.resolve_many(["s01.mtasts.test"], concurrency=bad)
    assert list(resolver.resolve_many([])) == []


def test_the_gil_is_released_while_a_batch_waits(world: World) -> None:
    # S-18's policy host drips its body until the fetch deadline: the batch waits 1.5 s.
    resolver = world.resolver(cache="memory", fetch_timeout=1.5)
    ticks: List[int] = [0]
    done = threading.Event()

    def count() -> None:
        while not done.is_set():
            ticks[0] += 1

    counter = threading.Thread(target=count)
    counter.start()
    try:
        before = ticks[0]
        results = list(resolver.resolve_many(["s18.mtasts.test"], concurrency=1))
        during = ticks[0] - before
    finally:
        done.set()
        counter.join()
    assert results[0][1].source is Source.UNAVAILABLE
    assert during > 1000, f"the other thread ran {during} times"
