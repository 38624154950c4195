"""TLS-RPT report JSON against the JSON Schema of RFC 8460 §4.4 (issue 15, "Tests").

`mtasts-core/testdata/tlsrpt/schema.json` is validated with `jsonschema` (draft 2020-12,
formats checked) against: the RFC's own example report, and `generated-report.json`, which is
exactly what `Report::to_json` writes (the Rust test `generated_report_json_is_what_to_json_writes`
fails when the two differ). Deliberately broken reports must fail, so the schema is seen to
reject, not only to accept.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Callable, Dict, List

import jsonschema
import pytest

TLSRPT = Path(__file__).resolve().parents[3] / "mtasts-core" / "testdata" / "tlsrpt"


def load(name: str) -> Dict[str, Any]:
    with open(TLSRPT / name, encoding="utf-8") as f:
        value: Dict[str, Any] = json.load(f)
    return value


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = load("schema.json")
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def errors(validator: jsonschema.Draft202012Validator, report: Dict[str, Any]) -> List[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(report)]


@pytest.mark.parametrize("name", ["rfc8460-example.json", "generated-report.json"])
def test_reports_validate(validator: jsonschema.Draft202012Validator, name: str) -> None:
    assert errors(validator, load(name)) == []


def _drop(*path: Any) -> Callable[[Dict[str, Any]], None]:
    def edit(report: Dict[str, Any]) -> None:
        node: Any = report
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return edit


def _set(value: Any, *path: Any) -> Callable[[Dict[str, Any]], None]:
    def edit(report: Dict[str, Any]) -> None:
        node: Any = report
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return edit


BROKEN = {
    "no report-id": _drop("report-id"),
    "no policy-domain": _drop("policies", 0, "policy", "policy-domain"),
    "no summary": _drop("policies", 0, "summary"),
    "count as a string": _set("5326", "policies", 0, "summary", "total-successful-session-count"),
    "negative count": _set(-1, "policies", 0, "failure-details", 0, "failed-session-count"),
    "fractional count": _set(1.5, "policies", 0, "summary", "total-failure-session-count"),
    "unknown result-type": _set("certificate-revoked", "policies", 0, "failure-details", 0, "result-type"),
    "unknown policy-type": _set("dmarc", "policies", 0, "policy", "policy-type"),
    "date without time": _set("2016-04-01", "date-range", "start-datetime"),
    "policies not an array": _set({}, "policies"),
    "mx-host of numbers": _set([1], "policies", 0, "policy", "mx-host"),
    "sending-mta-ip not an address": _set("mta.example", "policies", 0, "failure-details", 0, "sending-mta-ip"),
}


@pytest.mark.parametrize("name", ["rfc8460-example.json", "generated-report.json"])
@pytest.mark.parametrize("breakage", sorted(BROKEN))
def test_broken_reports_fail(validator: jsonschema.Draft202012Validator, name: str, breakage: str) -> None:
    report = copy.deepcopy(load(name))
    BROKEN[breakage](report)
    assert errors(validator, report) != [], f"{breakage} was accepted"
