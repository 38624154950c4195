"""The enumerations of mtasts: every value is the string the RFCs (or mtasts' stable codes) use.

Each class is a ``str`` subclass, so a member compares equal to its string and serialises to it
with :mod:`json`: ``Mode.ENFORCE == "enforce"``, ``Mode("enforce") is Mode.ENFORCE``.
"""

from __future__ import annotations

import enum
import sys

__all__ = [
    "Mode",
    "Source",
    "ResultType",
    "FailureReason",
    "Requirement",
    "ProbeOutcome",
    "PolicyType",
]


if sys.version_info >= (3, 11):
    _StrEnum = enum.StrEnum
else:

    class _StrEnum(str, enum.Enum):
        """A ``str`` enumeration whose ``str()`` is its value (3.11's ``enum.StrEnum``)."""

        def __str__(self) -> str:
            return str(self.value)


class Mode(_StrEnum):
    """A policy's mode (RFC 8461 §5)."""

    ENFORCE = "enforce"
    """Deliver only to MX hosts that match the policy, over verified TLS."""
    TESTING = "testing"
    """Deliver anyway; report failures through TLS-RPT."""
    NONE = "none"
    """No active policy (also the mode in effect when a domain has no policy)."""


class Source(_StrEnum):
    """Where the answer of a :class:`mtasts.Resolution` came from."""

    FETCHED = "fetched"
    """The policy was fetched during this call."""
    CACHE = "cache"
    """The cached policy is current."""
    CACHE_AFTER_FAILURE = "cache-after-failure"
    """Refreshing failed; the unexpired cached policy is used (the failure says why)."""
    NONE = "none"
    """The domain publishes no policy (no STS record, or an invalid one)."""
    UNAVAILABLE = "unavailable"
    """A policy could not be obtained and nothing usable is cached: deliver as if there were
    no policy, and report the failure."""
    CACHE_UNREADABLE = "cache-unreadable"
    """The shared policy cache could not be read and DNS and HTTPS gave no policy: whether a
    policy applies cannot be told. Defer the message; never deliver as if there were no
    policy (``Resolution.verdict`` and ``Resolution.mx_plan`` raise ``CacheError``)."""


class ResultType(_StrEnum):
    """The RFC 8460 (TLS-RPT) result types failures are reported under."""

    STARTTLS_NOT_SUPPORTED = "starttls-not-supported"
    """The MX did not offer or refused STARTTLS."""
    CERTIFICATE_HOST_MISMATCH = "certificate-host-mismatch"
    """No SAN DNS-ID of the certificate matches the MX host."""
    CERTIFICATE_EXPIRED = "certificate-expired"
    """A certificate of the chain is expired (or not yet valid)."""
    CERTIFICATE_NOT_TRUSTED = "certificate-not-trusted"
    """The chain does not reach a trusted root."""
    VALIDATION_FAILURE = "validation-failure"
    """Any other failure, e.g. an MX host outside the policy."""
    STS_POLICY_FETCH_ERROR = "sts-policy-fetch-error"
    """The policy could not be retrieved (a temporary DNS failure included)."""
    STS_POLICY_INVALID = "sts-policy-invalid"
    """The policy was retrieved but is not valid."""
    STS_WEBPKI_INVALID = "sts-webpki-invalid"
    """The policy host's certificate failed validation."""
    TLSA_INVALID = "tlsa-invalid"
    """DANE: a validation error in the TLSA records (mtasts itself never gives it)."""
    DNSSEC_INVALID = "dnssec-invalid"
    """DANE: no valid records from the recursive resolver (mtasts itself never gives it)."""
    DANE_REQUIRED = "dane-required"
    """DANE was required and no TLSA records were found (mtasts itself never gives it)."""


class FailureReason(_StrEnum):
    """Why an MX host fails MTA-STS: a stable reason code (each has a :class:`ResultType`)."""

    MX_MISMATCH = "mx-mismatch"
    """The MX host matches none of the policy's ``mx`` patterns (``validation-failure``)."""
    STARTTLS_NOT_OFFERED = "starttls-not-offered"
    """No STARTTLS in the EHLO reply (``starttls-not-supported``)."""
    STARTTLS_REFUSED = "starttls-refused"
    """STARTTLS advertised but refused (``starttls-not-supported``)."""
    TLS_VERSION_UNSUPPORTED = "tls-version-unsupported"
    """No TLS version from 1.2 up (``validation-failure``)."""
    TLS_HANDSHAKE_FAILED = "tls-handshake-failed"
    """The TLS handshake failed for another reason (``validation-failure``)."""
    CERTIFICATE_EXPIRED = "certificate-expired"
    """A certificate of the chain is expired (``certificate-expired``)."""
    CERTIFICATE_NOT_YET_VALID = "certificate-not-yet-valid"
    """A certificate of the chain is not yet valid (``certificate-expired``)."""
    CERTIFICATE_NOT_TRUSTED = "certificate-not-trusted"
    """The chain does not reach a trusted root (``certificate-not-trusted``)."""
    CERTIFICATE_HOST_MISMATCH = "certificate-host-mismatch"
    """No SAN DNS-ID matches the MX host (``certificate-host-mismatch``)."""
    CERTIFICATE_NO_SAN = "certificate-no-san"
    """The leaf names its host only in the subject CN (``certificate-host-mismatch``)."""
    CERTIFICATE_BAD_USAGE = "certificate-bad-usage"
    """The leaf may not be used for a TLS server (``validation-failure``)."""
    CERTIFICATE_MALFORMED = "certificate-malformed"
    """A certificate cannot be parsed (``validation-failure``)."""
    CERTIFICATE_INVALID = "certificate-invalid"
    """Any other reason the chain was rejected (``validation-failure``)."""


class Requirement(_StrEnum):
    """What MTA-STS requires of one MX host before connecting (a :class:`mtasts.Verdict`)."""

    NO_REQUIREMENT = "no-requirement"
    """No policy, or mode ``none``: deliver as usual, record nothing."""
    TESTING = "testing"
    """Mode ``testing``: deliver whatever happens; record failures for TLS-RPT."""
    REQUIRE_TLS = "require-tls"
    """Mode ``enforce``: deliver only over STARTTLS with a certificate valid for the MX host."""
    SKIP = "skip"
    """Mode ``enforce``, the MX matches no pattern: do not use it; try the next MX."""


class ProbeOutcome(_StrEnum):
    """How a STARTTLS probe ended."""

    PASS = "pass"
    """STARTTLS, TLS 1.2 or newer, certificate valid for the MX host."""
    FAIL = "fail"
    """An MTA-STS failure of the MX (the report's ``failure`` says which)."""
    INCOMPLETE = "incomplete"
    """The probe ended before STARTTLS could be assessed (no connection, deadline, ...)."""


class PolicyType(_StrEnum):
    """The type of the policy a TLS-RPT session was under (RFC 8460 §4.4 ``policy-type``)."""

    STS = "sts"
    """An MTA-STS policy (``testing`` or ``enforce``)."""
    TLSA = "tlsa"
    """DANE TLSA records (RFC 7672)."""
    NO_POLICY_FOUND = "no-policy-found"
    """No policy applied (also a ``mode: none`` policy)."""
