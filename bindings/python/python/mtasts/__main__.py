"""``python -m mtasts lookup DOMAIN... [--json]``: the ``mtasts lookup`` command in Python.

Same options, output (table or ``--json``) and exit status as the Rust command: 0 every
domain has a policy or publishes none, 1 a failure occurred, 2 usage error. Arguments and
printing only: every answer comes from :meth:`mtasts.Resolver.resolve`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any, Dict, List, Optional, Sequence

import mtasts

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def _options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """The global options; on the sub-command they only override when given."""

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument(
        "--nameserver",
        dest="nameservers",
        action="append",
        metavar="IP:PORT",
        default=default(None),
        help="DNS server to query (repeatable; default: the system's resolv.conf)",
    )
    parser.add_argument(
        "--trust-roots",
        metavar="system|bundled|FILE",
        default=default("system"),
        help="trust roots for policy hosts: system, bundled (Mozilla's) or a PEM file",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        default=default(30.0),
        help="deadline of one policy fetch (default 30)",
    )
    parser.add_argument(
        "--dns-timeout",
        type=float,
        metavar="SECONDS",
        default=default(10.0),
        help="deadline of one DNS lookup (default 10)",
    )
    parser.add_argument(
        "--cache",
        metavar="LOCATION",
        default=default(os.environ.get("MTASTS_CACHE")),
        help="policy cache: memory, a SQLite file, redis://HOST:PORT/DB, or FILE,redis://... "
        "(default: $MTASTS_CACHE, else ~/.cache/mtasts/cache.db)",
    )
    parser.add_argument(
        "--policy-port",
        type=int,
        metavar="PORT",
        default=default(None),
        help="for test setups only: fetch policies from this port instead of 443",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=default(0),
        help="more log output on stderr (-v: info, -vv: debug)",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", default=default(False), help="no log output"
    )


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m mtasts``."""
    top = argparse.ArgumentParser(
        prog="python -m mtasts",
        description="Look up MTA-STS (RFC 8461) policies",
        epilog="Exit status: 0 success (a policy found or none published), 1 a failure "
        "occurred, 2 usage error.",
    )
    top.add_argument("--version", action="version", version=f"mtasts {mtasts.__version__}")
    _options(top, suppress=False)
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    lookup = commands.add_parser(
        "lookup",
        help="resolve the MTA-STS policy of each DOMAIN",
        description="Resolve the MTA-STS policy of each DOMAIN: mode, MX patterns, max_age, "
        "id, source and any failure.",
    )
    _options(lookup, suppress=True)
    lookup.add_argument("domains", nargs="+", metavar="DOMAIN", help="recipient domains")
    lookup.add_argument(
        "--json", action="store_true", help="print JSON (one array, one object per domain)"
    )
    return top


class _StderrFormatter(logging.Formatter):
    """``mtasts: <level>: <message>``, as the Rust command logs."""

    def format(self, record: logging.LogRecord) -> str:
        level = {"WARNING": "warning"}.get(record.levelname, record.levelname.lower())
        return f"mtasts: {level}: {record.getMessage()}"


def _logging(verbose: int, quiet: bool) -> None:
    logger = logging.getLogger("mtasts")
    if quiet:
        logger.setLevel(logging.CRITICAL + 1)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_StderrFormatter())
    logger.addHandler(handler)
    # As the Rust command: errors only by default (each domain's failure is in the output),
    # -v adds warnings and info, -vv debug.
    logger.setLevel(
        logging.ERROR if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    )


def _table(reports: List[Dict[str, Any]]) -> str:
    """The table of ``mtasts lookup``: left-aligned columns, two spaces apart."""
    header = ["DOMAIN", "MODE", "SOURCE", "ID", "MAX_AGE", "MX"]
    rows = []
    for r in reports:
        p = r["policy"]
        rows.append(
            [
                r["domain"],
                r["mode"],
                r["source"] or "-",
                p["id"] if p else "-",
                str(p["max_age"]) if p else "-",
                ",".join(p["mx"]) if p and p["mx"] else "-",
            ]
        )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]

    def line(cells: List[str]) -> str:
        padded = [cell.ljust(widths[i]) for i, cell in enumerate(cells[:-1])]
        return "  ".join([*padded, cells[-1]]) + "\n"

    out = [line(header)]
    for report, row in zip(reports, rows):
        out.append(line(row))
        failure = report["failure"]
        if failure:
            if failure["result_type"]:
                out.append(f"  failure: {failure['result_type']}: {failure['reason']}\n")
            else:
                out.append(f"  failure: {failure['reason']}\n")
        if report["notice"]:
            out.append(f"  notice: {report['notice']}\n")
    return "".join(out)


def lookup(args: argparse.Namespace) -> int:
    """``lookup``: resolve each domain, print the table or JSON; returns the exit status."""
    cache = args.cache or mtasts.user_cache_location() or "memory"
    try:
        resolver = mtasts.Resolver(
            nameservers=args.nameservers,
            trust_roots=args.trust_roots,
            cache=cache,
            fetch_timeout=args.timeout,
            dns_timeout=args.dns_timeout,
            policy_port=args.policy_port,
        )
    except mtasts.Error as e:
        print(f"mtasts: {e}", file=sys.stderr)
        return EXIT_USAGE
    code = EXIT_OK
    reports: List[Dict[str, Any]] = []
    for domain in args.domains:
        # The core's view, as `mtasts lookup --json` prints it (docs/json.md).
        report = resolver.lookup_view(domain)
        if report["source"] is None:
            code = EXIT_USAGE  # not a domain name
        elif report["failure"] is not None:
            code = max(code, EXIT_FAILURE)
        reports.append(report)
    try:
        if args.json:
            sys.stdout.write(json.dumps(reports, indent=2, ensure_ascii=False) + "\n")
        else:
            sys.stdout.write(_table(reports))
        sys.stdout.flush()
    except BrokenPipeError:
        pass
    return code


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs ``python -m mtasts`` with ``argv`` (default: the command line)."""
    args = parser().parse_args(argv)
    _logging(args.verbose, args.quiet)
    if args.command == "lookup":
        return lookup(args)
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
