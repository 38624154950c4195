"""mtasts: MTA-STS (RFC 8461) for the mail software that sends.

The same Rust engine and the same shared policy cache as the ``mtasts`` command and the C
library: discover a recipient domain's policy, fetch and validate it over HTTPS, cache it, and
decide which MX hosts a message may go to under which TLS requirement. Failures carry the
TLS-RPT (RFC 8460) result type they are reported under.

::

    import mtasts

    resolver = mtasts.Resolver(cache="/var/cache/mtasts/cache.db")  # share between threads
    resolution = resolver.resolve("example.com")
    if resolution.failure is not None:
        print(resolution.failure.result_type, resolution.failure.reason)   # report it
    plan = resolution.mx_plan(resolver.lookup_mx("example.com"))
    for mx in plan.usable:
        if mx.verdict.requires_tls:
            ...  # STARTTLS required; check the certificate with CertVerifier.check

Every name is documented (``help(mtasts.Resolver)``); the classes are immutable, the enums'
values are the RFC strings, and the exceptions are in :mod:`mtasts.exceptions`.
"""

import logging as _logging

from mtasts._mtasts import (
    CertCheck,
    CertVerifier,
    Delivery,
    Failure,
    MxFailure,
    MxPlan,
    MxRecord,
    Policy,
    ProbeReport,
    ProbeTimings,
    Record,
    RefreshReport,
    Diagnosis,
    Problem,
    Reporter,
    Resolution,
    ResolveMany,
    Resolver,
    SessionFailure,
    SkippedMx,
    UsableMx,
    Verdict,
    __version__,
    parse_policy,
    parse_record,
    user_cache_location,
)
from mtasts.enums import (
    FailureReason,
    Mode,
    PolicyType,
    ProbeOutcome,
    Requirement,
    ResultType,
    Source,
)
from mtasts.exceptions import (
    CacheError,
    CertificateError,
    ConfigError,
    DnsTemporaryError,
    Error,
    FetchError,
    InvalidChain,
    InvalidDomain,
    InvalidInput,
    InvalidSession,
    ParseError,
    ReportStoreError,
)

__all__ = [
    "__version__",
    # resolving
    "Resolver",
    "ResolveMany",
    "Resolution",
    "Failure",
    "Policy",
    "Record",
    "parse_policy",
    "parse_record",
    "user_cache_location",
    "RefreshReport",
    "Diagnosis",
    "Problem",
    # MX decisions
    "MxRecord",
    "MxPlan",
    "UsableMx",
    "SkippedMx",
    "Verdict",
    "Delivery",
    "MxFailure",
    # TLS reporting (RFC 8460)
    "Reporter",
    "SessionFailure",
    "PolicyType",
    # certificates and probes
    "CertVerifier",
    "CertCheck",
    "ProbeReport",
    "ProbeTimings",
    # enums
    "Mode",
    "Source",
    "ResultType",
    "FailureReason",
    "Requirement",
    "ProbeOutcome",
    # exceptions
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

# The core logs through Python's `logging`, under loggers named `mtasts.*`; like every library,
# mtasts prints nothing unless the application configures logging.
_logging.getLogger("mtasts").addHandler(_logging.NullHandler())
