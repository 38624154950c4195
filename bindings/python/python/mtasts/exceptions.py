"""The exceptions of mtasts, rooted at :class:`Error`.

Every error of the Rust core is raised as one of these (the mapping is in one place, the
extension's ``errors.rs``); mtasts never raises a bare ``RuntimeError``. Input problems are
also ``ValueError``, and arguments of the wrong type raise ``TypeError``.

Note that :meth:`mtasts.Resolver.resolve` raises only for an invalid domain: a DNS, fetch or
policy failure is part of the :class:`mtasts.Resolution` it returns (``failure``), because
the caller must still deliver or defer according to it. :meth:`mtasts.Failure.exception`
turns such a failure into the matching exception.

::

    Error
    ├── InvalidInput (also ValueError)
    │   ├── InvalidDomain        not a host name
    │   ├── ParseError           invalid policy, TXT record or mx pattern (.line)
    │   ├── InvalidChain         a certificate chain that cannot be read
    │   └── InvalidSession       a TLS-RPT session that cannot be recorded as given
    ├── DnsTemporaryError        SERVFAIL, REFUSED, timeout
    ├── FetchError               the policy could not be fetched
    │   └── CertificateError     the policy host's certificate was rejected
    ├── CacheError               the policy cache failed
    ├── ReportStoreError         the TLS-RPT report store failed (the session is not counted)
    └── ConfigError (also ValueError)  an unusable configuration
"""

from __future__ import annotations

from typing import Optional

from mtasts.enums import ResultType

__all__ = [
    "Error",
    "InvalidInput",
    "InvalidDomain",
    "ParseError",
    "InvalidChain",
    "DnsTemporaryError",
    "FetchError",
    "CertificateError",
    "CacheError",
    "ConfigError",
    "InvalidSession",
    "ReportStoreError",
]


class Error(Exception):
    """The root of every mtasts exception.

    ``kind`` is the core's stable name for the error (``invalid-domain``, ``dns-temporary``,
    ``policy-fetch``, ``policy-certificate``, ``invalid-policy``, ``fetch-backoff``,
    ``config``, ``cache``, ...); ``result_type`` the RFC 8460 result type it is reported
    under, or ``None`` when it says nothing about a domain's policy. ``str(error)`` is the
    message.
    """

    kind: str
    result_type: Optional[ResultType]

    def __init__(
        self, message: str, *, kind: str = "", result_type: Optional[ResultType] = None
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.result_type = result_type


class InvalidInput(Error, ValueError):
    """A value given to mtasts cannot be used (also a ``ValueError``)."""


class InvalidDomain(InvalidInput):
    """A domain or host name is not a host name: empty, an address literal, not valid IDNA,
    too long."""


class ParseError(InvalidInput):
    """A policy file, a TXT record or an ``mx`` pattern is not valid.

    ``line`` is the 1-based line of the policy file the problem is on, or ``None``.
    """

    line: Optional[int]

    def __init__(
        self,
        message: str,
        *,
        kind: str = "invalid-policy",
        result_type: Optional[ResultType] = None,
        line: Optional[int] = None,
    ) -> None:
        super().__init__(message, kind=kind, result_type=result_type)
        self.line = line


class InvalidChain(InvalidInput):
    """A certificate chain cannot be read: empty, bad PEM, not DER. (A chain that is read but
    rejected is not an error: it is a failed :class:`mtasts.CertCheck`.)"""


class InvalidSession(InvalidInput):
    """A TLS-RPT session cannot be recorded as given (RFC 8460): an unknown result type, an
    address that is not an IP address, a host name that is not one, a field over its limit, a
    day that is not ``YYYY-MM-DD``, or a resolution whose policy cannot be told. Nothing was
    recorded."""


class DnsTemporaryError(Error):
    """A DNS query failed temporarily (SERVFAIL, REFUSED, timeout); never "no record"."""


class FetchError(Error):
    """The policy could not be fetched (status, redirect, size, deadline, connection), or a
    recent failure is not retried yet (``kind == "fetch-backoff"``)."""


class CertificateError(FetchError):
    """The policy host's certificate was rejected (``sts-webpki-invalid``)."""


class CacheError(Error):
    """The policy cache failed (I/O, corruption, connection)."""


class ReportStoreError(Error):
    """The TLS-RPT report store (beside the policy cache) cannot be opened, read or written;
    the session was not counted. Log it; never hold up a delivery for it."""


class ConfigError(Error, ValueError):
    """The configuration cannot be used: unreadable trust roots, a bad name server or cache
    location, a timeout that is not positive (also a ``ValueError``)."""
