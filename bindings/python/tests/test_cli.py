"""`python -m mtasts lookup` prints what the Rust `mtasts lookup` prints (table, JSON, exit
status), and `Resolver.lookup_mx`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, List, Tuple

import pytest

import mtasts

from conftest import TARGET, World

DOMAINS = ["s01.mtasts.test", "s02.mtasts.test", "s07.mtasts.test", "s10.mtasts.test"]


def rust_cli() -> Path:
    binary = Path(os.environ.get("MTASTS_CLI", TARGET / "debug" / "mtasts"))
    if not binary.exists():
        pytest.fail(f"{binary} is missing: run `cargo build -p mtasts-cli` first")
    return binary


def net_options(world: World, tmp_path: Path) -> List[str]:
    return [
        "--nameserver",
        world.dns,
        "--trust-roots",
        world.ca_pem,
        "--policy-port",
        str(world.https_port),
        "--dns-timeout",
        "2",
        "--timeout",
        "5",
        "--cache",
        str(tmp_path / "cache.db"),
    ]


def run(command: List[str], *args: str) -> Tuple[int, str, str]:
    env = dict(os.environ)
    env.pop("MTASTS_CACHE", None)
    out = subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=120, env=env
    )
    return out.returncode, out.stdout, out.stderr


def python_cli() -> List[str]:
    return [sys.executable, "-m", "mtasts"]


def without_times(reports: Any) -> Any:
    for report in reports:
        if report["policy"]:
            report["policy"]["fetched_at"] = report["policy"]["expires_at"] = "-"
    return reports


def test_table_matches_the_rust_command(world: World, tmp_path: Path) -> None:
    py = run(python_cli(), *net_options(world, tmp_path / "py"), "lookup", *DOMAINS)
    rs = run([str(rust_cli())], *net_options(world, tmp_path / "rs"), "lookup", *DOMAINS)
    assert py[0] == rs[0] == 1, (py, rs)  # S-10 is a failure
    assert py[1] == rs[1]
    assert py[1].startswith("DOMAIN ")
    assert "  failure: sts-policy-fetch-error: " in py[1]
    assert "  notice: " in py[1]


def test_json_matches_the_rust_command(world: World, tmp_path: Path) -> None:
    py = run(python_cli(), *net_options(world, tmp_path / "py"), "lookup", "--json", *DOMAINS)
    rs = run([str(rust_cli())], *net_options(world, tmp_path / "rs"), "lookup", "--json", *DOMAINS)
    assert py[0] == rs[0] == 1
    py_json, rs_json = json.loads(py[1]), json.loads(rs[1])
    assert py_json[0]["policy"]["fetched_at"].endswith("Z")
    assert without_times(py_json) == without_times(rs_json)


def test_options_after_the_command_and_exit_codes(world: World, tmp_path: Path) -> None:
    options = net_options(world, tmp_path)
    code, out, _ = run(python_cli(), "lookup", "s01.mtasts.test", "--json", *options)
    assert code == 0
    assert json.loads(out)[0]["source"] == "fetched"
    # Second run, same SQLite cache: from the cache.
    code, out, _ = run(python_cli(), *options, "lookup", "--json", "s01.mtasts.test")
    assert code == 0 and json.loads(out)[0]["source"] == "cache"
    # An invalid domain is a usage error, reported like the Rust command does.
    py = run(python_cli(), *options, "lookup", "--json", "1.2.3.4", "s02.mtasts.test")
    rs = run([str(rust_cli())], *options, "lookup", "--json", "1.2.3.4", "s02.mtasts.test")
    assert py[0] == rs[0] == 2
    assert json.loads(py[1]) == json.loads(rs[1])
    # Bad arguments and unusable configuration.
    assert run(python_cli(), "lookup")[0] == 2
    assert run(python_cli(), "--timeout", "0", "lookup", "x.example")[0] == 2
    code, _, err = run(python_cli(), "--nameserver", "nope", "lookup", "x.example")
    assert code == 2 and err.startswith("mtasts: ")


def test_warnings_are_logged_with_v_only(world: World, tmp_path: Path) -> None:
    """Issue 16: a DNS or fetch failure is printed once, in the output; -v adds the log."""
    for name, command in (("py", python_cli()), ("rs", [str(rust_cli())])):
        # Each its own cache: a DNS failure is remembered there for 30 s (then not logged).
        options = net_options(world, tmp_path / name)
        code, out, err = run(command, *options, "lookup", "s10.mtasts.test")
        assert code == 1 and "sts-policy-fetch-error" in out
        assert err == "", err
        _, _, verbose = run(command, *options, "-v", "lookup", "s08.mtasts.test")
        assert "mtasts: warning: " in verbose
        _, _, quiet = run(command, *options, "-q", "-v", "lookup", "s10.mtasts.test")
        assert quiet == ""


def test_lookup_mx(world: World) -> None:
    resolver = world.resolver()
    # The world publishes no MX records for its domains: the implicit MX applies.
    records = resolver.lookup_mx("S01.mtasts.test.")
    assert records == []
    plan = resolver.resolve("s01.mtasts.test").mx_plan(records)
    assert plan.implicit_mx
    assert [s.host for s in plan.skipped] == ["s01.mtasts.test"]
    assert plan.defer, "enforce and the implicit MX matches no pattern: defer, never bounce"
    with pytest.raises(mtasts.InvalidDomain):
        resolver.lookup_mx("1.2.3.4")
    dead = world.resolver(nameservers=["127.0.0.1:9"], dns_timeout=0.5)
    with pytest.raises(mtasts.DnsTemporaryError) as info:
        dead.lookup_mx("example.com")
    assert info.value.kind == "dns-temporary"


def test_example_script(world: World) -> None:
    """examples/deliver.py (also type-checked with mypy --strict) runs against the world."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "examples" / "deliver.py"
    spec = importlib.util.spec_from_file_location("deliver_example", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    lines = module.plan_delivery(world.resolver(), "s01.mtasts.test", connect=False)
    assert lines[0] == "s01.mtasts.test: mode enforce, source fetched"
    assert any("defer" in line for line in lines)


def test_check_is_the_diagnosis_mtasts_check_prints(world: World, tmp_path: Path) -> None:
    """`Resolver.check` is the core's diagnosis: its `to_dict()` is what `mtasts check --json`
    prints, and its problems are typed (issue 11)."""
    resolver = world.resolver(cache="memory")
    diagnosis = resolver.check("s01.mtasts.test", probe=False)
    assert diagnosis.domain == "s01.mtasts.test"
    assert diagnosis.resolution.source is mtasts.Source.FETCHED
    # The implicit MX (no MX records) matches none of the enforce policy's patterns.
    assert not diagnosis.ok and diagnosis.defer
    mismatch = next(p for p in diagnosis.problems if p.code == "mx-mismatch")
    assert mismatch.severity == "error" and mismatch.mx == "s01.mtasts.test"
    assert mismatch.result_type is mtasts.ResultType.VALIDATION_FAILURE
    assert mismatch.fix and "mx:" in mismatch.fix
    assert [p.code for p in diagnosis.problems][-1] == "no-usable-mx"
    code, out, err = run(
        [str(rust_cli())],
        *net_options(world, tmp_path),
        "check",
        "--json",
        "--no-probe",
        "s01.mtasts.test",
    )
    assert code == 1, err
    assert diagnosis.to_dict() == json.loads(out)
    with pytest.raises(mtasts.InvalidDomain):
        resolver.check("not a domain", probe=False)
    with pytest.raises(mtasts.ConfigError):
        resolver.check("s01.mtasts.test", timeout=1e19)
