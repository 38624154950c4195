"""Scenarios S-01..S-25 (docs/scenarios.md) through the Python API, driven by the
`expect` block of each domain of tests/world/world.json, from an empty cache."""

from __future__ import annotations

import datetime
import time
from typing import Any, Dict

import pytest

import mtasts
from mtasts import Mode, ResultType, Source

from conftest import World, world_domains

CASES = [d for d in world_domains() if "expect" in d]


def case_id(domain: Dict[str, Any]) -> str:
    return f"{domain.get('scenario', '-')}:{domain['name']}"


def test_every_scenario_row_is_covered() -> None:
    rows = {d["scenario"] for d in CASES}
    assert rows == {f"S-{n:02d}" for n in range(1, 26)}


@pytest.mark.parametrize("domain", CASES, ids=case_id)
def test_scenario(world: World, domain: Dict[str, Any]) -> None:
    expect = domain["expect"]
    # Outcomes reached only at a deadline get short deadlines (README of tests/world).
    deadlines = {"dns_timeout": 1.0, "fetch_timeout": 1.5} if expect.get("deadline") else {}
    resolver = world.resolver(**deadlines)

    started = time.monotonic()
    resolution = resolver.resolve(domain.get("lookup", domain["name"]))
    elapsed = time.monotonic() - started

    assert isinstance(resolution, mtasts.Resolution)
    assert resolution.domain == domain["name"], "normalised A-label (S-25)"
    assert resolution.source is Source(expect["source"]), resolution
    if expect.get("deadline"):
        assert elapsed < 10, f"ended within its deadlines ({elapsed:.1f} s)"

    # The policy in effect.
    want_mode = expect["policy"]
    if want_mode is None:
        assert resolution.policy is None, resolution
        assert resolution.mode is Mode.NONE
    else:
        policy = resolution.policy
        assert policy is not None, resolution
        assert policy.mode is Mode(want_mode)
        assert resolution.mode is Mode(want_mode)
        if "policy_id" in expect:
            assert policy.id == expect["policy_id"]
        assert policy.fetched_at is not None and policy.expires_at is not None
        assert policy.fetched_at.tzinfo is not None, "aware datetime"
        assert policy.fetched_at.utcoffset() == datetime.timedelta(0), "UTC"
        assert policy.expires_at - policy.fetched_at == datetime.timedelta(seconds=policy.max_age)
        now = datetime.datetime.now(datetime.timezone.utc)
        assert abs((now - policy.fetched_at).total_seconds()) < 60
        if "raw_contains" in expect:
            assert expect["raw_contains"] in policy.text, "unknown field kept (S-23)"

    # The failure and its RFC 8460 result type.
    failure = resolution.failure
    if expect["result_type"] is None:
        assert failure is None, resolution
    else:
        assert failure is not None, resolution
        assert failure.result_type is ResultType(expect["result_type"])
        assert failure.result_type == expect["result_type"], "str-valued enum"
        assert failure.reason and str(failure) == failure.reason
        assert isinstance(failure.exception(), mtasts.Error)
    if expect.get("dns_temporary"):
        assert failure is not None and failure.kind == "dns-temporary"
        assert failure.temporary
        assert isinstance(failure.exception(), mtasts.DnsTemporaryError)
        assert resolution.source is not Source.NONE, "never reported as 'no policy' (S-08)"

    # The JSON-ready form is what `mtasts lookup --json` prints.
    as_dict = resolution.to_dict()
    assert as_dict["domain"] == domain["name"]
    assert as_dict["source"] == expect["source"]
    assert as_dict["mode"] == (want_mode or "none")
    assert (as_dict["failure"] or {}).get("result_type") == expect["result_type"]


def test_invalid_record_has_a_notice(world: World) -> None:
    """S-07: an invalid STS record means no policy, and the postmaster gets a notice."""
    resolution = world.resolver().resolve("s07.mtasts.test")
    assert resolution.source is Source.NONE
    assert resolution.notice is not None and "id" in resolution.notice


def test_failure_kinds_map_to_exception_classes(world: World) -> None:
    """Each failure kind maps to one class of mtasts.exceptions (errors.rs)."""
    resolver = world.resolver()
    expected = {
        "s10.mtasts.test": (mtasts.FetchError, "policy-fetch"),
        "s12.mtasts.test": (mtasts.ParseError, "invalid-policy"),
        "s15.mtasts.test": (mtasts.CertificateError, "policy-certificate"),
        "s08.mtasts.test": (mtasts.DnsTemporaryError, "dns-temporary"),
    }
    for name, (cls, kind) in expected.items():
        failure = resolver.resolve(name).failure
        assert failure is not None
        assert failure.kind == kind
        exception = failure.exception()
        assert type(exception) is cls, (name, exception)
        assert exception.kind == kind
        assert exception.result_type is failure.result_type
        assert str(exception) == failure.reason
    assert issubclass(mtasts.CertificateError, mtasts.FetchError)


def test_fetch_backoff_after_failure(world: World) -> None:
    """R-FETCH-10: a failed fetch is not retried for the same id within 5 minutes."""
    resolver = world.resolver()
    first = resolver.resolve("s10.mtasts.test")
    second = resolver.resolve("s10.mtasts.test")
    assert first.failure is not None and first.failure.kind == "policy-fetch"
    assert second.failure is not None and second.failure.kind == "fetch-backoff"
    assert second.failure.result_type is ResultType.STS_POLICY_FETCH_ERROR
    assert type(second.failure.exception()) is mtasts.FetchError
    assert second.source is Source.UNAVAILABLE
