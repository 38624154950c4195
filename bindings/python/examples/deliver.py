"""How a Python MTA or delivery script uses mtasts (type-checked with `mypy --strict`).

    python examples/deliver.py example.com [--cache FILE] [--nameserver IP:PORT]

For the recipient domain: resolve its MTA-STS policy, look up its MX hosts, and for each usable
MX say what MTA-STS requires; where TLS is required, connect with STARTTLS, check the
certificate the MX presented, and decide whether to deliver.
"""

from __future__ import annotations

import argparse
import smtplib
import ssl
import sys
from typing import List, Optional, Union

import mtasts


def tls_failure(
    host: str, port: int, verifier: mtasts.CertVerifier
) -> Optional[Union[mtasts.MxFailure, mtasts.CertCheck]]:
    """STARTTLS to `host` with Python's own TLS; returns what went wrong, or the check of the
    certificate the MX presented (a valid `CertCheck` means nothing went wrong)."""
    context = ssl.create_default_context()
    context.check_hostname = False  # mtasts checks the chain and the name below
    context.verify_mode = ssl.CERT_NONE
    try:
        with smtplib.SMTP(host, port, timeout=30) as smtp:
            smtp.ehlo()
            if not smtp.has_extn("starttls"):
                return mtasts.MxFailure(
                    mtasts.FailureReason.STARTTLS_NOT_OFFERED, "no STARTTLS in the EHLO reply"
                )
            smtp.starttls(context=context)
            sock = smtp.sock
            assert isinstance(sock, ssl.SSLSocket)
            der = sock.getpeercert(binary_form=True)
    except (OSError, smtplib.SMTPException) as e:
        return mtasts.MxFailure(mtasts.FailureReason.TLS_HANDSHAKE_FAILED, str(e))
    if der is None:
        return mtasts.MxFailure(mtasts.FailureReason.CERTIFICATE_INVALID, "no certificate")
    return verifier.check(der, host)


def plan_delivery(
    resolver: mtasts.Resolver, domain: str, connect: bool, port: int = 25
) -> List[str]:
    """What to do with mail for `domain`, one line per decision."""
    lines: List[str] = []
    resolution = resolver.resolve(domain)
    if resolution.source is mtasts.Source.CACHE_UNREADABLE:
        # Never fail open: a policy may be cached that this process cannot read.
        lines.append(f"{resolution.domain}: defer: cannot tell whether a policy applies")
        if resolution.failure is not None:
            lines.append(f"  {resolution.failure.reason}")
        return lines
    lines.append(f"{resolution.domain}: mode {resolution.mode}, source {resolution.source}")
    if resolution.failure is not None:
        result_type = resolution.failure.result_type
        lines.append(f"  report ({result_type}): {resolution.failure.reason}")
    policy: Optional[mtasts.Policy] = resolution.policy
    if policy is not None and policy.expires_at is not None:
        expires = f"{policy.expires_at:%Y-%m-%d}"
        lines.append(f"  policy {policy.id}, mx {', '.join(policy.mx)}, expires {expires}")

    try:
        records = resolver.lookup_mx(resolution.domain)
    except mtasts.DnsTemporaryError as e:
        lines.append(f"  defer: {e}")
        return lines
    plan = resolution.mx_plan(records)
    if plan.defer:
        lines.append("  defer: enforce, and no MX host matches the policy")
    for skipped in plan.skipped:
        lines.append(f"  skip {skipped.host}: {skipped.failure}")
    verifier = resolver.cert_verifier() if connect else None
    for usable in plan.usable:
        verdict: mtasts.Verdict = usable.verdict
        lines.append(f"  {usable.preference:>5} {usable.host}: {verdict.requirement.value}")
        if verifier is None or not verdict.reports_failures:
            continue
        delivery = verdict.decide(tls_failure(usable.host, port, verifier))
        action = "deliver" if delivery.deliver else "try the next MX"
        report = f" (report {delivery.failure})" if delivery.failure is not None else ""
        lines.append(f"        {action}{report}")
    return lines


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("domain")
    parser.add_argument("--cache", default="memory")
    parser.add_argument("--nameserver", action="append", dest="nameservers")
    parser.add_argument("--connect", action="store_true", help="STARTTLS to each MX (port 25)")
    args = parser.parse_args(argv)
    try:
        resolver = mtasts.Resolver(nameservers=args.nameservers, cache=args.cache)
        for line in plan_delivery(resolver, args.domain, args.connect):
            print(line)
    except mtasts.InvalidDomain as e:
        print(f"invalid domain: {e}", file=sys.stderr)
        return 2
    except mtasts.Error as e:
        print(f"{type(e).__name__} ({e.kind}): {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
