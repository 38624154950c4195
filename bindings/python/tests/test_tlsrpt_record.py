"""Recording TLS-RPT sessions (issue 15; R-RPT-3, R-RPT-4, R-RPT-5, R-RPT-11) from Python:
`mtasts.Reporter` and `mtasts.SessionFailure`, into a real SQLite file shared with another
reader (a second `Reporter`, and the `mtasts` command's SQLite tables)."""

from __future__ import annotations

import datetime
import sqlite3
from pathlib import Path

import pytest

import mtasts
from conftest import World

DAY = "2026-12-01"


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    return tmp_path / "cache.db"


def test_memory_is_refused_and_settings_are_checked(db: Path) -> None:
    with pytest.raises(mtasts.ConfigError, match="needs a shared cache"):
        mtasts.Reporter(cache="memory")
    with pytest.raises(mtasts.ConfigError, match="at least 2"):
        mtasts.Reporter(cache=db, retention_days=1)
    reporter = mtasts.Reporter(cache=db, retention_days=30)
    assert reporter.cache == str(db)
    assert repr(reporter) == f"Reporter(cache={str(db)!r})"


def test_failures_are_typed_and_checked() -> None:
    f = mtasts.SessionFailure(
        mtasts.ResultType.CERTIFICATE_EXPIRED,
        sending_mta_ip="192.0.2.1",
        receiving_mx_hostname="MX1.Example.COM.",
        receiving_ip="2001:db8::25",
    )
    assert f.result_type is mtasts.ResultType.CERTIFICATE_EXPIRED
    assert f.receiving_mx_hostname == "mx1.example.com"
    assert f.receiving_mx_helo is None and f.failure_reason_code is None
    assert f == mtasts.SessionFailure(
        "certificate-expired",
        sending_mta_ip="192.0.2.1",
        receiving_mx_hostname="mx1.example.com",
        receiving_ip="2001:db8::25",
    )
    assert len({f, f}) == 1
    assert repr(f).startswith("SessionFailure('certificate-expired', sending_mta_ip='192.0.2.1'")
    mx = mtasts.MxFailure(mtasts.FailureReason.STARTTLS_NOT_OFFERED, "no STARTTLS")
    g = mtasts.SessionFailure.from_mx_failure(mx, receiving_mx_hostname="mx2.example.com")
    assert g.result_type is mtasts.ResultType.STARTTLS_NOT_SUPPORTED
    assert g.failure_reason_code == "starttls-not-offered"
    for kwargs, says in [
        ({"result_type": "certificate-expried"}, "unknown result type"),
        ({"result_type": "validation-failure", "sending_mta_ip": "192.0.2"}, "sending-mta-ip"),
        ({"result_type": "validation-failure", "receiving_ip": "mx"}, "receiving-ip"),
        (
            {"result_type": "validation-failure", "receiving_mx_hostname": "bad host"},
            "receiving-mx-hostname",
        ),
        ({"result_type": "validation-failure", "receiving_mx_helo": "x" * 513}, "receiving-mx-helo"),
    ]:
        with pytest.raises(mtasts.InvalidSession, match=says) as info:
            mtasts.SessionFailure(**kwargs)  # type: ignore[arg-type]
        assert isinstance(info.value, ValueError)
        assert info.value.kind == "invalid-session"


def test_sessions_are_counted_in_the_shared_sqlite_file(world: World, db: Path) -> None:
    resolver = world.resolver(cache=str(db))
    reporter = mtasts.Reporter(cache=db)
    enforce = resolver.resolve("s01.mtasts.test")
    none_mode = resolver.resolve("s22.mtasts.test")  # mode: none (R-RPT-11)
    fetch_failed = resolver.resolve("s10.mtasts.test")  # policy fetch failed (R-RPT-5)
    expired = mtasts.SessionFailure(
        "certificate-expired", receiving_mx_hostname="mail.example.com"
    )
    reporter.record(enforce, day=DAY)
    reporter.record(enforce, [expired], day=datetime.date(2026, 12, 1))
    reporter.record(enforce, [expired, expired], day=DAY)  # one detail counts once
    reporter.record(none_mode, day=DAY)
    reporter.record(fetch_failed, day=DAY)
    reporter.record_policy(
        mtasts.PolicyType.TLSA, "dane.example", policy_strings=["3 1 1 abcdef"], day=DAY
    )
    reporter.record_policy("no-policy-found", "plain.example", [expired], day=DAY)
    reporter.record(enforce)  # today: another day
    assert reporter.counts("s01.mtasts.test", day=DAY) == (1, 2, 2)
    assert reporter.counts("s22.mtasts.test", day=DAY, policy_type="no-policy-found") == (1, 0, 0)
    assert reporter.counts("s22.mtasts.test", day=DAY) == (0, 0, 0)
    assert reporter.counts("s10.mtasts.test", day=DAY, policy_type="no-policy-found") == (0, 1, 1)
    assert reporter.counts("dane.example", day=DAY, policy_type=mtasts.PolicyType.TLSA) == (
        1,
        0,
        0,
    )
    assert reporter.counts("plain.example", day=DAY, policy_type="no-policy-found") == (0, 1, 1)
    assert reporter.counts("s01.mtasts.test") == (1, 0, 0)

    # Another reader of the same file: a second Reporter from a settings file, and the tables
    # the `mtasts` command and the sender read.
    conf = db.with_suffix(".conf")
    conf.write_text(f"cache = {db}\ntlsrpt.retention_days = 14\n")
    again = mtasts.Reporter.from_config(conf)
    assert again.counts("s01.mtasts.test", day=DAY) == (1, 2, 2)
    with sqlite3.connect(db) as con:
        rows = con.execute(
            "SELECT policy_type, successful, failed FROM tlsrpt_policies "
            "WHERE day = ? AND domain = ? ORDER BY policy_type",
            (DAY, "s01.mtasts.test"),
        ).fetchall()
    assert rows == [("sts", 1, 2)]


def test_bad_input_raises_the_binding_exceptions(world: World, db: Path) -> None:
    reporter = mtasts.Reporter(cache=db)
    res = world.resolver().resolve("s01.mtasts.test")
    with pytest.raises(mtasts.InvalidSession, match="not a day"):
        reporter.record(res, day="2026-02-30")
    with pytest.raises(TypeError, match="datetime.date"):
        reporter.record(res, day=20261201)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        reporter.record(res, ["certificate-expired"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="unknown policy type"):
        reporter.record_policy("dane", "example.com")
    with pytest.raises(mtasts.InvalidSession, match="no-policy-found"):
        reporter.record_policy("no-policy-found", "example.com", policy_strings=["x"])
    with pytest.raises(mtasts.InvalidSession, match="mx-host"):
        reporter.record_policy("sts", "example.com", mx_hosts=["not a pattern!"])
    with pytest.raises(mtasts.InvalidSession, match="empty"):
        reporter.record_policy("tlsa", "")
    with pytest.raises(mtasts.InvalidDomain):
        reporter.counts("bad host")
    assert reporter.counts("s01.mtasts.test", day=DAY) == (0, 0, 0)


def test_an_unwritable_store_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(mtasts.ReportStoreError) as info:
        mtasts.Reporter(cache="/proc/no/such/dir/cache.db")
    assert info.value.kind == "report-store"
