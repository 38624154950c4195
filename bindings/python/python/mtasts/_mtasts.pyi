"""Type stubs of the extension module ``mtasts._mtasts`` (import ``mtasts`` instead)."""

import datetime
import os
from collections.abc import Iterable, Sequence
from typing import Any, Optional, Union, final

from mtasts.enums import (
    FailureReason,
    Mode,
    PolicyType,
    ProbeOutcome,
    Requirement,
    ResultType,
    Source,
)
from mtasts.exceptions import Error

__version__: str
__all__ = [
    "__version__",
    "Resolver",
    "ResolveMany",
    "Resolution",
    "Failure",
    "Policy",
    "Record",
    "MxRecord",
    "MxFailure",
    "Verdict",
    "Delivery",
    "MxPlan",
    "UsableMx",
    "SkippedMx",
    "CertVerifier",
    "CertCheck",
    "ProbeReport",
    "ProbeTimings",
    "RefreshReport",
    "Diagnosis",
    "Problem",
    "Reporter",
    "SessionFailure",
    "parse_policy",
    "parse_record",
    "user_cache_location",
]

_Path = Union[str, "os.PathLike[str]"]
_Chain = Union[str, bytes, bytearray, Sequence[Union[bytes, bytearray]]]

@final
class Resolver:
    """Resolves MTA-STS policies (RFC 8461); thread-safe, fork-safe."""

    def __new__(
        cls,
        *,
        nameservers: Optional[Sequence[str]] = ...,
        trust_roots: _Path = ...,
        cache: _Path = ...,
        fetch_timeout: float = ...,
        dns_timeout: float = ...,
        policy_port: Optional[int] = ...,
        recheck_interval: Optional[float] = ...,
    ) -> "Resolver": ...
    @staticmethod
    def from_config(path: Union[str, os.PathLike[str]]) -> "Resolver": ...
    def resolve(self, domain: str) -> "Resolution": ...
    def resolve_many(
        self, domains: Iterable[str], concurrency: int = 8
    ) -> "ResolveMany": ...
    def lookup_view(self, domain: str) -> dict[str, Any]: ...
    def lookup_mx(self, domain: str) -> list["MxRecord"]: ...
    def refresh(
        self,
        *,
        all: bool = ...,
        concurrency: int = ...,
        jitter: float = ...,
        purge_unused: bool = ...,
    ) -> "RefreshReport": ...
    def probe(
        self,
        mx_host: str,
        *,
        port: int = ...,
        timeout: float = ...,
        ehlo_name: str = ...,
        at: Optional[datetime.datetime] = ...,
        addresses: Optional[Sequence[str]] = ...,
        verifier: Optional["CertVerifier"] = ...,
    ) -> "ProbeReport": ...
    def cert_verifier(self) -> "CertVerifier": ...
    def check(
        self,
        domain: str,
        *,
        probe: bool = ...,
        port: int = ...,
        timeout: float = ...,
        ehlo_name: str = ...,
    ) -> "Diagnosis": ...
    @property
    def nameservers(self) -> list[str]: ...
    @property
    def trust_roots(self) -> str: ...
    @property
    def cache(self) -> str: ...
    @property
    def fetch_timeout(self) -> float: ...
    @property
    def dns_timeout(self) -> float: ...
    @property
    def policy_port(self) -> Optional[int]: ...
    @property
    def recheck_interval(self) -> Optional[float]: ...

@final
class ResolveMany:
    def __iter__(self) -> "ResolveMany": ...
    def __next__(self) -> tuple[str, Union["Resolution", Exception]]: ...

@final
class Resolution:
    """The outcome of ``Resolver.resolve``."""

    @property
    def domain(self) -> str: ...
    @property
    def source(self) -> Source: ...
    @property
    def policy(self) -> Optional["Policy"]: ...
    @property
    def mode(self) -> Mode: ...
    @property
    def failure(self) -> Optional["Failure"]: ...
    @property
    def domain_not_found(self) -> bool: ...
    @property
    def notice(self) -> Optional[str]: ...
    def verdict(self, mx_host: str) -> "Verdict": ...
    def mx_plan(self, mx: Union[Iterable[str], Iterable["MxRecord"]]) -> "MxPlan": ...
    def to_dict(self) -> dict[str, Any]: ...

@final
class Failure:
    """A failure while resolving: part of a ``Resolution``, not raised."""

    @property
    def kind(self) -> str: ...
    @property
    def result_type(self) -> Optional[ResultType]: ...
    @property
    def reason(self) -> str: ...
    @property
    def temporary(self) -> bool: ...
    def exception(self) -> Error: ...
    def to_dict(self) -> dict[str, Any]: ...

@final
class Policy:
    """A valid MTA-STS policy (RFC 8461 §3.2)."""

    @property
    def mode(self) -> Mode: ...
    @property
    def mx(self) -> tuple[str, ...]: ...
    @property
    def max_age(self) -> int: ...
    @property
    def id(self) -> Optional[str]: ...
    @property
    def text(self) -> str: ...
    @property
    def fetched_at(self) -> Optional[datetime.datetime]: ...
    @property
    def expires_at(self) -> Optional[datetime.datetime]: ...
    @property
    def warnings(self) -> tuple[str, ...]: ...
    @property
    def extensions(self) -> tuple[tuple[str, str], ...]: ...
    def matches(self, mx_host: str) -> bool: ...
    def verdict(self, mx_host: str) -> "Verdict": ...
    def to_dict(self) -> dict[str, Any]: ...

@final
class Record:
    """A valid ``_mta-sts`` TXT record (RFC 8461 §3.1)."""

    @property
    def id(self) -> str: ...
    @property
    def raw(self) -> str: ...
    @property
    def extensions(self) -> tuple[tuple[str, str], ...]: ...

def parse_policy(text: Union[str, bytes, bytearray]) -> Policy: ...
def parse_record(txt: str) -> Record: ...
def user_cache_location() -> Optional[str]: ...

@final
class MxRecord:
    """One MX record."""

    def __new__(cls, preference: int, host: str) -> "MxRecord": ...
    @property
    def preference(self) -> int: ...
    @property
    def host(self) -> str: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class MxFailure:
    """An MX host failing MTA-STS: reason code, result type, detail."""

    def __new__(cls, reason: Union[FailureReason, str], detail: str) -> "MxFailure": ...
    @property
    def reason(self) -> FailureReason: ...
    @property
    def result_type(self) -> ResultType: ...
    @property
    def detail(self) -> str: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Verdict:
    """What MTA-STS requires of one MX host before connecting."""

    @property
    def requirement(self) -> Requirement: ...
    @property
    def mx_host(self) -> Optional[str]: ...
    @property
    def failure(self) -> Optional[MxFailure]: ...
    @property
    def requires_tls(self) -> bool: ...
    @property
    def may_use(self) -> bool: ...
    @property
    def reports_failures(self) -> bool: ...
    def decide(self, tls_failure: Union[MxFailure, "CertCheck", None] = ...) -> "Delivery": ...

@final
class Delivery:
    """The final answer for one MX after STARTTLS."""

    @property
    def deliver(self) -> bool: ...
    @property
    def failure(self) -> Optional[MxFailure]: ...

@final
class UsableMx:
    """An MX host that may be used, with its verdict."""

    @property
    def preference(self) -> int: ...
    @property
    def host(self) -> str: ...
    @property
    def verdict(self) -> Verdict: ...

@final
class SkippedMx:
    """An MX host that must not be used, and why."""

    @property
    def preference(self) -> int: ...
    @property
    def host(self) -> str: ...
    @property
    def failure(self) -> MxFailure: ...

@final
class MxPlan:
    """A domain's MX hosts sorted out under its policy."""

    @property
    def usable(self) -> tuple[UsableMx, ...]: ...
    @property
    def skipped(self) -> tuple[SkippedMx, ...]: ...
    @property
    def defer(self) -> bool: ...
    @property
    def implicit_mx(self) -> bool: ...

@final
class CertVerifier:
    """Checks MX certificate chains against a set of trust roots."""

    def __new__(cls, trust_roots: _Path = ...) -> "CertVerifier": ...
    def check(
        self, chain: _Chain, mx_host: str, *, at: Optional[datetime.datetime] = ...
    ) -> "CertCheck": ...
    @property
    def trust_roots(self) -> str: ...

@final
class CertCheck:
    """The outcome of a certificate check."""

    @property
    def valid(self) -> bool: ...
    @property
    def failure(self) -> Optional[MxFailure]: ...

@final
class ProbeReport:
    """What a STARTTLS probe saw, and its outcome."""

    @property
    def outcome(self) -> ProbeOutcome: ...
    @property
    def failure(self) -> Optional[MxFailure]: ...
    @property
    def reason(self) -> Optional[str]: ...
    @property
    def mx_host(self) -> str: ...
    @property
    def address(self) -> Optional[str]: ...
    @property
    def connect_errors(self) -> tuple[str, ...]: ...
    @property
    def banner(self) -> tuple[str, ...]: ...
    @property
    def ehlo(self) -> tuple[str, ...]: ...
    @property
    def starttls_offered(self) -> bool: ...
    @property
    def tls_version(self) -> Optional[str]: ...
    @property
    def cipher_suite(self) -> Optional[str]: ...
    @property
    def chain(self) -> tuple[bytes, ...]: ...
    @property
    def timings(self) -> "ProbeTimings": ...

@final
class ProbeTimings:
    """When each step of a probe finished, in seconds from its start."""

    @property
    def resolved(self) -> Optional[float]: ...
    @property
    def connected(self) -> Optional[float]: ...
    @property
    def banner(self) -> Optional[float]: ...
    @property
    def starttls(self) -> Optional[float]: ...
    @property
    def handshake(self) -> Optional[float]: ...
    @property
    def total(self) -> float: ...

@final
class RefreshReport:
    """What one ``Resolver.refresh`` run did."""

    @property
    def examined(self) -> int: ...
    @property
    def refreshed(self) -> tuple[str, ...]: ...
    @property
    def unpublished(self) -> tuple[str, ...]: ...
    @property
    def failed(self) -> tuple[tuple[str, Failure], ...]: ...
    @property
    def purged(self) -> int: ...
    def to_dict(self) -> dict[str, Any]: ...

@final
class Diagnosis:
    """What ``Resolver.check`` found about a domain."""

    @property
    def domain(self) -> str: ...
    @property
    def ok(self) -> bool: ...
    @property
    def defer(self) -> bool: ...
    @property
    def problems(self) -> list["Problem"]: ...
    @property
    def resolution(self) -> Resolution: ...
    def to_dict(self) -> dict[str, Any]: ...

@final
class Problem:
    """One problem of a ``Diagnosis``."""

    @property
    def severity(self) -> str: ...
    @property
    def code(self) -> str: ...
    @property
    def mx(self) -> Optional[str]: ...
    @property
    def result_type(self) -> Optional[ResultType]: ...
    @property
    def message(self) -> str: ...
    @property
    def fix(self) -> str: ...

_Day = Union[datetime.date, str, None]

@final
class SessionFailure:
    """One failure detail of a TLS session (RFC 8460 failure-details)."""

    def __new__(
        cls,
        result_type: Union[ResultType, str],
        *,
        sending_mta_ip: str = ...,
        receiving_mx_hostname: str = ...,
        receiving_ip: str = ...,
        receiving_mx_helo: str = ...,
        failure_reason_code: str = ...,
        additional_information: str = ...,
    ) -> "SessionFailure": ...
    @staticmethod
    def from_mx_failure(
        failure: MxFailure,
        *,
        sending_mta_ip: str = ...,
        receiving_mx_hostname: str = ...,
        receiving_ip: str = ...,
        receiving_mx_helo: str = ...,
    ) -> "SessionFailure": ...
    @property
    def result_type(self) -> ResultType: ...
    @property
    def sending_mta_ip(self) -> Optional[str]: ...
    @property
    def receiving_mx_hostname(self) -> Optional[str]: ...
    @property
    def receiving_ip(self) -> Optional[str]: ...
    @property
    def receiving_mx_helo(self) -> Optional[str]: ...
    @property
    def failure_reason_code(self) -> Optional[str]: ...
    @property
    def additional_information(self) -> Optional[str]: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Reporter:
    """Records TLS-RPT sessions where the policy cache lives; thread-safe."""

    def __new__(cls, *, cache: _Path, retention_days: int = ...) -> "Reporter": ...
    @staticmethod
    def from_config(path: _Path) -> "Reporter": ...
    def record(
        self,
        resolution: Resolution,
        failures: Sequence[SessionFailure] = ...,
        *,
        day: _Day = ...,
    ) -> None: ...
    def record_policy(
        self,
        policy_type: Union[PolicyType, str],
        domain: str,
        failures: Sequence[SessionFailure] = ...,
        *,
        policy_strings: Sequence[str] = ...,
        mx_hosts: Sequence[str] = ...,
        day: _Day = ...,
    ) -> None: ...
    def counts(
        self,
        domain: str,
        *,
        day: _Day = ...,
        policy_type: Union[PolicyType, str] = ...,
    ) -> tuple[int, int, int]: ...
    @property
    def cache(self) -> str: ...
