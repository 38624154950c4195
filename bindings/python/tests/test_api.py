"""The Python surface without the network: parsers (with the shared vectors of
mtasts-core/testdata), enums, exceptions for bad input, immutability, reprs, typing files."""

from __future__ import annotations

import datetime
import enum
import pickle
from pathlib import Path
from typing import Any, Dict

import pytest

import mtasts
from mtasts import FailureReason, Mode, Requirement, ResultType

from conftest import load_vectors

POLICY = "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmax_age: 86400\n"
OFFLINE: Dict[str, Any] = {"nameservers": ["127.0.0.1:9"], "dns_timeout": 0.5}


def test_version() -> None:
    assert isinstance(mtasts.__version__, str)
    assert mtasts.__version__.count(".") == 2


def test_public_names() -> None:
    for name in mtasts.__all__:
        assert hasattr(mtasts, name), name
        assert getattr(mtasts, name).__doc__, f"{name} has a docstring"
    assert mtasts.Resolver.__module__ == "mtasts"


def test_docstrings_on_every_method() -> None:
    for name in mtasts.__all__:
        obj = getattr(mtasts, name)
        if not isinstance(obj, type) or issubclass(obj, (BaseException, enum.Enum)):
            continue
        for attr, member in vars(obj).items():
            if attr.startswith("_"):
                continue
            assert getattr(member, "__doc__", None), f"{name}.{attr} has a docstring"


def test_typing_files_are_shipped() -> None:
    package = Path(mtasts.__file__).parent
    assert (package / "py.typed").exists()
    assert (package / "_mtasts.pyi").exists()


# Enums -------------------------------------------------------------------------------------


def test_enum_values_are_the_rfc_strings() -> None:
    assert Mode.ENFORCE == "enforce" and Mode("testing") is Mode.TESTING
    assert str(Mode.NONE) == "none" and f"{Mode.ENFORCE}" == "enforce"
    assert ResultType("sts-policy-fetch-error") is ResultType.STS_POLICY_FETCH_ERROR
    assert {t.value for t in ResultType} == {
        "starttls-not-supported",
        "certificate-host-mismatch",
        "certificate-expired",
        "certificate-not-trusted",
        "validation-failure",
        "sts-policy-fetch-error",
        "sts-policy-invalid",
        "sts-webpki-invalid",
        "tlsa-invalid",
        "dnssec-invalid",
        "dane-required",
    }
    assert {s.value for s in mtasts.Source} == {
        "fetched",
        "cache",
        "cache-after-failure",
        "none",
        "unavailable",
        "cache-unreadable",
    }
    for cls in (Mode, ResultType, FailureReason, Requirement, mtasts.Source, mtasts.ProbeOutcome):
        assert issubclass(cls, enum.Enum) and issubclass(cls, str)


def test_every_failure_reason_round_trips() -> None:
    for reason in FailureReason:
        failure = mtasts.MxFailure(reason, "detail")
        assert failure.reason is reason
        assert isinstance(failure.result_type, ResultType)
    assert mtasts.MxFailure("mx-mismatch", "x").result_type is ResultType.VALIDATION_FAILURE
    with pytest.raises(ValueError):
        mtasts.MxFailure("no-such-reason", "x")


# Policies ----------------------------------------------------------------------------------


def test_parse_policy() -> None:
    policy = mtasts.parse_policy(POLICY)
    assert policy.mode is Mode.ENFORCE
    assert policy.mx == ("mail.example.com", "*.example.net")
    assert policy.max_age == 86400
    assert policy.text == POLICY
    assert policy.id is None and policy.fetched_at is None and policy.expires_at is None
    assert policy.warnings == () and policy.extensions == ()
    assert policy.matches("MAIL.Example.COM.")
    assert policy.matches("mx1.example.net")
    assert not policy.matches("a.mx1.example.net")
    assert not policy.matches("not a host")
    assert policy.to_dict() == {
        "id": None,
        "mode": "enforce",
        "max_age": 86400,
        "mx": ["mail.example.com", "*.example.net"],
        "fetched_at": None,
        "expires_at": None,
        "text": POLICY,
    }
    assert repr(policy).startswith("Policy(id=None, mode='enforce', mx=('mail.example.com'")
    assert mtasts.parse_policy(POLICY.encode()).mx == policy.mx


@pytest.mark.parametrize(
    "text, line",
    [
        ("version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n", 1),
        ("version: STSv1\nmode: Enforce\nmx: a.example\nmax_age: 1\n", 2),
        ("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1\n", 4),
        ("version: STSv1\nmode: enforce\nmx: a.example\n", None),
        (b"version: STSv1\nmode: enforce\nmx: m\xfcller.example\nmax_age: 1\n", 3),
    ],
)
def test_parse_policy_errors_have_line_numbers(text: Any, line: Any) -> None:
    with pytest.raises(mtasts.ParseError) as info:
        mtasts.parse_policy(text)
    error = info.value
    assert error.line == line
    assert error.kind == "invalid-policy"
    assert error.result_type is ResultType.STS_POLICY_INVALID
    assert isinstance(error, mtasts.InvalidInput) and isinstance(error, ValueError)
    if line is not None:
        assert f"line {line}" in str(error)


def test_parse_policy_type_errors() -> None:
    with pytest.raises(TypeError):
        mtasts.parse_policy(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        mtasts.parse_policy(None)  # type: ignore[arg-type]


def test_policy_vectors() -> None:
    """Every vector of testdata/policies.json (shared with the Rust and C tests)."""
    vectors = load_vectors("policies.json")["policies"]
    assert vectors
    for v in vectors:
        text: Any = bytes.fromhex(v["input_hex"]) if "input_hex" in v else v["input"]
        if v["valid"]:
            policy = mtasts.parse_policy(text)
            assert policy.mode is Mode(v["mode"]), v["name"]
            assert policy.max_age == v["max_age"], v["name"]
            assert list(policy.mx) == v["mx"], v["name"]
            assert [list(e) for e in policy.extensions] == v["extensions"], v["name"]
            assert len(policy.warnings) == v["warnings"], v["name"]
        else:
            with pytest.raises(mtasts.ParseError) as info:
                mtasts.parse_policy(text)
            assert v["error"] in str(info.value), v["name"]
            assert info.value.line == v["line"], v["name"]


def test_record_vectors() -> None:
    """Every record of testdata/records.json."""
    vectors = load_vectors("records.json")["records"]
    assert vectors
    for v in vectors:
        if v["valid"]:
            record = mtasts.parse_record(v["input"])
            assert record.id == v["id"]
            assert record.raw == v["input"]
            assert [list(e) for e in record.extensions] == v.get("extensions", [])
        else:
            with pytest.raises(mtasts.ParseError) as info:
                mtasts.parse_record(v["input"])
            assert v["error"] in str(info.value)
            assert info.value.line is None
            assert info.value.kind == "invalid-record"
            assert info.value.result_type is None


def test_mx_match_vectors() -> None:
    """testdata/mx.json: pattern matching (R-MX-1, R-MX-2) through Policy.matches."""
    vectors = load_vectors("mx.json")
    for v in vectors["matches"]:
        policy = mtasts.parse_policy(
            f"version: STSv1\nmode: testing\nmx: {v['pattern']}\nmax_age: 60\n"
        )
        assert policy.matches(v["host"]) is v["matches"], v
    for v in vectors["patterns"]:
        if "\r" in v["input"] or "\n" in v["input"]:
            continue  # a line end inside a pattern cannot be written as a policy line
        policy = mtasts.parse_policy(
            f"version: STSv1\nmode: testing\nmx: {v['input']}\nmx: keep.example\nmax_age: 60\n"
        )
        if v["valid"]:
            assert policy.mx == (v["normalized"], "keep.example"), v
        else:
            assert policy.mx == ("keep.example",), v
            assert policy.warnings, "a dropped pattern is a warning"


def test_invalid_domains_raise(tmp_path: Path) -> None:
    """testdata/mx.json domains that are not host names: InvalidDomain, before any network."""
    resolver = mtasts.Resolver(**OFFLINE)
    for v in load_vectors("mx.json")["domains"]:
        if v["valid"]:
            continue
        with pytest.raises(mtasts.InvalidDomain) as info:
            resolver.resolve(v["input"])
        assert v["error"] in str(info.value), v
        assert info.value.kind == "invalid-domain"
        assert info.value.result_type is None
        assert isinstance(info.value, ValueError)


# MX verdicts -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def no_policy() -> mtasts.Resolution:
    """A resolution without a policy, made offline (DNS unreachable: `Source.UNAVAILABLE`)."""
    resolution = mtasts.Resolver(**OFFLINE).resolve("Example.COM.")
    assert resolution.policy is None
    return resolution


def test_verdict_vectors(no_policy: mtasts.Resolution) -> None:
    """Every case of testdata/verdicts.json (S-50..S-64)."""
    vectors = load_vectors("verdicts.json")
    mx_lines = "".join(f"mx: {p}\n" for p in vectors["policy_mx"])
    for case in vectors["cases"]:
        if case["mode"] is None:
            verdict_obj = no_policy.verdict(case["mx_host"])
        else:
            policy = mtasts.parse_policy(
                f"version: STSv1\nmode: {case['mode']}\n{mx_lines}max_age: 86400\n"
            )
            verdict_obj = policy.verdict(case["mx_host"])
        assert verdict_obj.requirement is Requirement(case["verdict"]), case
        if case["verdict"] == "require-tls":
            assert verdict_obj.mx_host == case["mx_host_normalized"], case
            assert verdict_obj.requires_tls
        else:
            assert verdict_obj.mx_host is None
        if case["verdict_failure"] is None:
            assert verdict_obj.failure is None, case
        else:
            assert verdict_obj.failure is not None
            assert verdict_obj.failure.reason is FailureReason(case["verdict_failure"]), case
        assert verdict_obj.may_use is (case["verdict"] != "skip")

        tls_failure = (
            mtasts.MxFailure(case["tls_failure"], "seen by the test")
            if case["tls_failure"]
            else None
        )
        delivery = verdict_obj.decide(tls_failure)
        assert delivery.deliver is (case["delivery"] == "deliver"), case
        if case["report"] is None:
            assert delivery.failure is None, case
        else:
            assert delivery.failure is not None
            assert delivery.failure.reason is FailureReason(case["report"]), case
            assert delivery.failure.result_type is ResultType(case["report_result_type"])


def test_mx_plan_from_hosts_and_records(no_policy: mtasts.Resolution) -> None:
    resolution = no_policy
    plan = resolution.mx_plan(["evil.com", "mail.example.com"])
    assert [u.host for u in plan.usable] == ["evil.com", "mail.example.com"]
    assert [u.preference for u in plan.usable] == [0, 1]
    assert all(u.verdict.requirement is Requirement.NO_REQUIREMENT for u in plan.usable)
    assert not plan.defer and not plan.implicit_mx
    implicit = resolution.mx_plan([])
    assert implicit.implicit_mx and implicit.usable[0].host == "example.com"
    records = resolution.mx_plan([mtasts.MxRecord(20, "b.example"), mtasts.MxRecord(10, "a.example")])
    assert [(u.preference, u.host) for u in records.usable] == [(20, "b.example"), (10, "a.example")]
    with pytest.raises(TypeError):
        resolution.mx_plan("mail.example.com")
    with pytest.raises(TypeError):
        resolution.mx_plan(["a.example", mtasts.MxRecord(1, "b.example")])
    with pytest.raises(TypeError):
        resolution.mx_plan([1, 2])  # type: ignore[list-item]


def test_mx_record() -> None:
    record = mtasts.MxRecord(10, "mx.example.com")
    assert record.preference == 10 and record.host == "mx.example.com"
    assert record == mtasts.MxRecord(10, "mx.example.com")
    assert len({record, mtasts.MxRecord(10, "mx.example.com")}) == 1
    assert repr(record) == "MxRecord(preference=10, host='mx.example.com')"
    with pytest.raises(OverflowError):
        mtasts.MxRecord(70000, "x")


# Bad input ---------------------------------------------------------------------------------


def test_resolver_argument_errors() -> None:
    with pytest.raises(TypeError):
        mtasts.Resolver("127.0.0.1:53")  # type: ignore[misc]
    with pytest.raises(TypeError):
        mtasts.Resolver(nameservers="127.0.0.1:53")
    with pytest.raises(TypeError):
        mtasts.Resolver(fetch_timeout="soon")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        mtasts.Resolver(bogus=1)  # type: ignore[call-arg]
    for bad in ({"nameservers": ["not-an-address"]}, {"fetch_timeout": 0}, {"dns_timeout": -1.0}):
        with pytest.raises(mtasts.ConfigError) as info:
            mtasts.Resolver(**bad)
        assert isinstance(info.value, ValueError) and info.value.kind == "config"
    with pytest.raises(mtasts.ConfigError):
        mtasts.Resolver(trust_roots="/nonexistent/roots.pem")
    resolver = mtasts.Resolver(**OFFLINE)
    with pytest.raises(TypeError):
        resolver.resolve(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        resolver.resolve(None)  # type: ignore[arg-type]
    for bad in ("", ".", "1.2.3.4", "[::1]", "a..b", "x" * 300):
        with pytest.raises(mtasts.InvalidDomain):
            resolver.resolve(bad)


def test_resolver_properties_and_repr() -> None:
    resolver = mtasts.Resolver(
        nameservers=["127.0.0.1:9"],
        trust_roots="bundled",
        fetch_timeout=2.5,
        dns_timeout=0.5,
        policy_port=8443,
        recheck_interval=60,
    )
    assert resolver.nameservers == ["127.0.0.1:9"]
    assert resolver.trust_roots == "bundled"
    assert resolver.cache == "memory"
    assert resolver.fetch_timeout == 2.5 and resolver.dns_timeout == 0.5
    assert resolver.policy_port == 8443 and resolver.recheck_interval == 60.0
    assert repr(resolver) == (
        "Resolver(nameservers=['127.0.0.1:9'], trust_roots='bundled', cache='memory', "
        "fetch_timeout=2.5, dns_timeout=0.5, policy_port=8443)"
    )


def test_objects_are_immutable(no_policy: mtasts.Resolution) -> None:
    policy = mtasts.parse_policy(POLICY)
    with pytest.raises(AttributeError):
        policy.max_age = 1  # type: ignore[misc]
    resolver = mtasts.Resolver(**OFFLINE)
    with pytest.raises(AttributeError):
        resolver.cache = "x"  # type: ignore[misc]
    resolution = mtasts.parse_policy(POLICY).verdict("mail.example.com")
    with pytest.raises(AttributeError):
        resolution.requirement = Requirement.SKIP  # type: ignore[misc]
    with pytest.raises(AttributeError):
        no_policy.source = mtasts.Source.CACHE  # type: ignore[misc]
    with pytest.raises(TypeError):
        pickle.dumps(resolver)


def test_exceptions_pickle_with_their_attributes() -> None:
    with pytest.raises(mtasts.ParseError) as info:
        mtasts.parse_policy("version: STSv1\nmode: bogus\nmx: a.example\nmax_age: 1\n")
    copy = pickle.loads(pickle.dumps(info.value))
    assert type(copy) is mtasts.ParseError
    assert copy.line == 2 and copy.kind == "invalid-policy"
    assert copy.result_type is ResultType.STS_POLICY_INVALID
    assert str(copy) == str(info.value)


def test_exception_hierarchy() -> None:
    for cls in (
        mtasts.InvalidInput,
        mtasts.InvalidDomain,
        mtasts.ParseError,
        mtasts.InvalidChain,
        mtasts.DnsTemporaryError,
        mtasts.FetchError,
        mtasts.CertificateError,
        mtasts.CacheError,
        mtasts.ConfigError,
    ):
        assert issubclass(cls, mtasts.Error)
        assert not issubclass(cls, RuntimeError)
    for cls in (mtasts.InvalidDomain, mtasts.ParseError, mtasts.InvalidChain, mtasts.ConfigError):
        assert issubclass(cls, ValueError)


def test_offline_resolution_reports_a_temporary_dns_failure(
    no_policy: mtasts.Resolution,
) -> None:
    resolution = no_policy
    assert resolution.domain == "example.com"
    assert resolution.source is mtasts.Source.UNAVAILABLE
    assert resolution.failure is not None
    assert resolution.failure.kind == "dns-temporary"
    assert resolution.failure.result_type is ResultType.STS_POLICY_FETCH_ERROR
    assert resolution.failure.to_dict()["kind"] == "dns-temporary"
    assert repr(resolution).startswith("Resolution(domain='example.com', source='unavailable'")
    assert isinstance(resolution.failure.exception(), mtasts.DnsTemporaryError)


def test_aware_datetimes_for_probe_and_checks() -> None:
    verifier = mtasts.CertVerifier("bundled")
    naive = datetime.datetime(2030, 1, 1)
    with pytest.raises(TypeError):
        verifier.check(b"\x30\x03\x02\x01\x00", "mail.example.com", at=naive)


def test_a_domain_that_does_not_exist_is_told_apart(world: Any) -> None:
    """Issue 16: still no policy, but a name that does not exist in DNS says so."""
    resolver = world.resolver()
    ghost = resolver.resolve("ghost.mtasts.test")
    assert ghost.source is mtasts.Source.NONE and ghost.failure is None
    assert ghost.domain_not_found
    assert ghost.notice is not None and "does not exist in DNS" in ghost.notice
    assert ghost.to_dict()["notice"] == ghost.notice
    assert not resolver.resolve("s01.mtasts.test").domain_not_found
