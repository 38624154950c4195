"""The policy cache through the Python API: S-30, S-36, S-40, S-41, S-42 and refresh.

The world binary exposes no request counters, so "no HTTPS request made" is asserted through
`source` (a fetch is always `Source.FETCHED`).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Dict, List

import mtasts
import pytest
from mtasts import Mode, Source

from conftest import World

S01 = "s01.mtasts.test"
S05 = "s05.mtasts.test"


def test_s30_second_lookup_from_cache(world: World) -> None:
    resolver = world.resolver()
    first = resolver.resolve(S01)
    second = resolver.resolve(S01)
    assert first.source is Source.FETCHED
    assert second.source is Source.CACHE, "no second fetch within the recheck interval"
    assert first.policy is not None and second.policy is not None
    assert second.policy.fetched_at == first.policy.fetched_at
    assert second.policy.expires_at == first.policy.expires_at
    assert second.policy.text == first.policy.text
    assert second.failure is None


def test_s30_normalised_names_share_the_entry(world: World) -> None:
    resolver = world.resolver()
    assert resolver.resolve("S01.MTASTS.test.").source is Source.FETCHED
    assert resolver.resolve(S01).source is Source.CACHE


def test_s36_dns_failure_falls_back_to_the_cached_policy(world: World, tmp_path: Path) -> None:
    """A cached policy due for a TXT check, and DNS fails: the cached policy is used and the
    failure reported (R-FETCH-11)."""
    cache = tmp_path / "cache.db"
    writer = world.resolver(cache=cache, recheck_interval=0.001)
    assert writer.resolve(S01).source is Source.FETCHED
    # Same cache, a name server where nothing answers (a closed loopback port).
    dead = world.resolver(cache=cache, nameservers=["127.0.0.1:9"], dns_timeout=0.5)
    resolution = dead.resolve(S01)
    assert resolution.source is Source.CACHE_AFTER_FAILURE
    assert resolution.mode is Mode.ENFORCE
    assert resolution.policy is not None and resolution.policy.id == "20240101T000000"
    assert resolution.failure is not None and resolution.failure.kind == "dns-temporary"


def test_s40_two_resolvers_share_a_sqlite_cache(world: World, tmp_path: Path) -> None:
    cache = tmp_path / "cache.db"
    first = world.resolver(cache=cache)
    assert first.cache == str(cache)
    fetched = first.resolve(S01)
    assert fetched.source is Source.FETCHED
    second = world.resolver(cache=str(cache))
    cached = second.resolve(S01)
    assert cached.source is Source.CACHE
    assert cached.policy is not None and fetched.policy is not None
    # SQLite keeps times to the millisecond.
    delta = cached.policy.fetched_at - fetched.policy.fetched_at
    assert abs(delta.total_seconds()) < 0.001


CHILD = """
import json, sys
import mtasts
kwargs = json.loads(sys.argv[1])
resolver = mtasts.Resolver(**kwargs)
print(json.dumps(resolver.resolve(sys.argv[2]).to_dict()))
"""


def test_s40_a_second_process_reads_the_shared_cache(world: World, tmp_path: Path) -> None:
    cache = tmp_path / "cache.db"
    parent = world.resolver(cache=cache).resolve(S01)
    assert parent.source is Source.FETCHED and parent.policy is not None
    kwargs: Dict[str, Any] = dict(world.resolver_kwargs(), cache=str(cache))
    out = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(kwargs), S01],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    child = json.loads(out.stdout)
    assert child["source"] == "cache"
    assert child["policy"] == parent.policy.to_dict()


def _in_child(resolver: mtasts.Resolver, queue: Any) -> None:
    try:
        cached = resolver.resolve(S01)
        fresh = resolver.resolve(S05)
        queue.put(
            {
                "cached": str(cached.source),
                "fresh": str(fresh.source),
                "mode": str(fresh.mode),
            }
        )
    except BaseException as e:  # report anything to the parent
        queue.put({"error": repr(e)})


def test_s41_fork_child_uses_the_parents_resolver(world: World, tmp_path: Path) -> None:
    """S-41: a Resolver created in the parent works in a forked child (no hang), which sees
    the shared cache; what the child fetched is then in the cache for the parent."""
    resolver = world.resolver(cache=tmp_path / "cache.db")
    assert resolver.resolve(S01).source is Source.FETCHED
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_in_child, args=(resolver, queue))
    child.start()
    try:
        result = queue.get(timeout=60)
    finally:
        child.join(timeout=30)
        if child.is_alive():
            child.kill()
    assert child.exitcode == 0
    assert result == {"cached": "cache", "fresh": "fetched", "mode": "enforce"}
    # The parent's own memory layer does not hold S05: it comes from the SQLite file.
    assert resolver.resolve(S05).source is Source.CACHE


def test_s41_fork_pool(world: World) -> None:
    """Several forked workers using one parent resolver (memory cache) at once."""
    resolver = world.resolver()
    assert resolver.resolve(S01).source is Source.FETCHED
    global _POOL_RESOLVER
    _POOL_RESOLVER = resolver
    context = multiprocessing.get_context("fork")
    with context.Pool(3) as pool:
        sources = pool.map(_pool_lookup, [S01, S05, S01, S05], chunksize=1)
    # Each child inherited the parent's memory cache (S01); S05 is fetched by the first
    # worker asking for it (a worker that gets both S05 tasks answers the second from cache).
    assert sources[0] == "cache" and sources[2] == "cache", sources
    assert "fetched" in (sources[1], sources[3]), sources
    assert {sources[1], sources[3]} <= {"fetched", "cache"}, sources


_POOL_RESOLVER: Any = None


def _pool_lookup(domain: str) -> str:
    return str(_POOL_RESOLVER.resolve(domain).source)


def test_s42_concurrent_lookups_of_one_domain_make_one_fetch(world: World) -> None:
    resolver = world.resolver()
    results: List[mtasts.Resolution] = []
    lock = threading.Lock()
    barrier = threading.Barrier(16)

    def lookup() -> None:
        barrier.wait(timeout=30)
        resolution = resolver.resolve(S05)
        with lock:
            results.append(resolution)

    threads = [threading.Thread(target=lookup) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == 16
    sources = [r.source for r in results]
    assert sources.count(Source.FETCHED) == 1, sources
    assert sources.count(Source.CACHE) == 15, sources
    texts = {r.policy.text for r in results if r.policy is not None}
    assert len(texts) == 1 and all(r.policy is not None for r in results)


def test_refresh(world: World) -> None:
    resolver = world.resolver()
    resolver.resolve(S05)
    resolver.resolve(S01)
    resolver.resolve("s02.mtasts.test")  # no policy: not a refresh candidate

    # A policy expiring within a day is due: the world's policies have max_age 86400.
    due = resolver.refresh()
    assert due.examined == 2
    assert due.refreshed == (S01, S05)
    assert due.failed == () and due.unpublished == ()
    assert resolver.resolve(S01).source is Source.CACHE, "the refreshed policy is cached"

    report = resolver.refresh(all=True, concurrency=2)
    assert isinstance(report, mtasts.RefreshReport)
    assert report.examined == 2
    assert report.refreshed == (S01, S05)
    assert report.failed == () and report.purged == 0
    assert report.to_dict() == {
        "examined": 2,
        "refreshed": [S01, S05],
        "unpublished": [],
        "failed": [],
        "purged": 0,
    }
    assert "examined=2" in repr(report)


def test_refresh_failure_keeps_the_policy(world: World, tmp_path: Path) -> None:
    """A refresh that fails is reported and does not remove the valid cached policy."""
    cache = tmp_path / "cache.db"
    assert world.resolver(cache=cache).resolve(S01).source is Source.FETCHED
    # Same cache, policies fetched from a port where nothing listens.
    broken = world.resolver(cache=cache, policy_port=9, fetch_timeout=2.0)
    report = broken.refresh(all=True)
    assert report.refreshed == ()
    assert len(report.failed) == 1
    domain, failure = report.failed[0]
    assert domain == S01
    assert isinstance(failure, mtasts.Failure)
    assert failure.result_type is mtasts.ResultType.STS_POLICY_FETCH_ERROR
    assert report.to_dict()["failed"][0]["failure"]["kind"] == failure.kind
    again = world.resolver(cache=cache).resolve(S01)
    assert again.source is Source.CACHE and again.mode is Mode.ENFORCE


def test_cache_location_errors(tmp_path: Path) -> None:
    import pytest

    with pytest.raises(mtasts.ConfigError):
        mtasts.Resolver(nameservers=["127.0.0.1:9"], cache="http://example.com/cache")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(mtasts.CacheError):
        mtasts.Resolver(nameservers=["127.0.0.1:9"], cache=blocker / "sub" / "cache.db")


def test_user_cache_location(tmp_path: Path) -> None:
    code = "import mtasts; print(mtasts.user_cache_location())"
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path))
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip() == str(tmp_path / "mtasts" / "cache.db")


def _damage_page(path: Path, page: int) -> None:
    with open(path, "r+b") as f:
        f.seek((page - 1) * 4096)
        f.write(b"\xa5" * 64)


def test_an_unreadable_cache_is_cannot_tell_never_no_policy(world: World, tmp_path: Path) -> None:
    """Issue 10: a damaged shared cache and a domain DNS says has no policy (an attacker's
    NXDOMAIN looks the same): whether a policy applies cannot be told; every way of asking
    what to do with a message raises CacheError instead of answering "no requirement"."""
    cache = tmp_path / "cache.db"
    writer = world.resolver(cache=cache)
    assert writer.resolve(S01).source is Source.FETCHED
    del writer  # closes the file, the WAL is checkpointed into it
    _damage_page(cache, 2)  # the entries table
    _damage_page(cache, 3)  # its primary-key index
    resolver = world.resolver(cache=cache)
    resolution = resolver.resolve("s02.mtasts.test")
    assert resolution.source is Source.CACHE_UNREADABLE
    assert resolution.failure is not None and resolution.failure.kind == "cache"
    assert resolution.policy is None
    with pytest.raises(mtasts.CacheError):
        resolution.mode
    with pytest.raises(mtasts.CacheError):
        resolution.verdict("mx.example.com")
    with pytest.raises(mtasts.CacheError):
        resolution.mx_plan(["mx.example.com"])
    assert resolution.to_dict()["source"] == "cache-unreadable"


def test_absurd_durations_are_configuration_errors(world: World) -> None:
    """Issue 10: values that used to panic (PanicException) are refused with ConfigError."""
    for option in ("fetch_timeout", "dns_timeout", "recheck_interval"):
        with pytest.raises(mtasts.ConfigError, match=option):
            world.resolver(**{option: 1e19})


def test_from_config_reads_the_settings_file(world: World, tmp_path: Path) -> None:
    """Issue 11: `Resolver.from_config` reads the one settings format; a typo names the line."""
    conf = tmp_path / "mtasts.conf"
    conf.write_text(
        "# the test world\n"
        f"nameserver = {world.dns}\n"
        f"trust_roots = {world.ca_pem}\n"
        f"policy_port = {world.https_port}\n"
        f"cache = {tmp_path / 'cache.db'}\n"
        "fetch_timeout = 5\n"
    )
    resolver = mtasts.Resolver.from_config(conf)
    assert resolver.resolve(S01).source is Source.FETCHED
    assert mtasts.Resolver.from_config(str(conf)).resolve(S01).source is Source.CACHE
    conf.write_text("cache = memory\nfetch_timout = 5\n")
    with pytest.raises(mtasts.ConfigError, match="mtasts.conf:2: unknown setting"):
        mtasts.Resolver.from_config(conf)
    with pytest.raises(mtasts.ConfigError, match="cannot read"):
        mtasts.Resolver.from_config(tmp_path / "missing.conf")
