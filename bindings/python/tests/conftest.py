"""Shared fixtures: the project's hermetic test world (DNS + HTTPS on loopback).

The `mtasts-testworld` binary (built by scripts/test-python: target/debug/mtasts-testworld, or
$MTASTS_TESTWORLD) serves the scenario domains of tests/world/world.json; it prints one JSON
line with its addresses, then serves until its stdin is closed.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

import mtasts

REPO = Path(__file__).resolve().parents[3]
WORLD_JSON = REPO / "tests" / "world" / "world.json"
TESTDATA = REPO / "mtasts-core" / "testdata"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))


def world_domains() -> List[Dict[str, Any]]:
    """The domain objects of world.json (scenarios S-01..S-25)."""
    with open(WORLD_JSON, encoding="utf-8") as f:
        domains: List[Dict[str, Any]] = json.load(f)["domains"]
    return domains


def load_vectors(name: str) -> Dict[str, Any]:
    """A vector file of mtasts-core/testdata (shared by the Rust, C and Python tests)."""
    with open(TESTDATA / name, encoding="utf-8") as f:
        vectors: Dict[str, Any] = json.load(f)
    return vectors


@dataclass(frozen=True)
class World:
    """The running test world: where its servers listen and the CA its certificates chain to."""

    dns: str
    https_port: int
    ca_pem: str

    def resolver(self, **overrides: Any) -> mtasts.Resolver:
        """A resolver pointed at the world (memory cache unless `cache=` is given)."""
        options = self.resolver_kwargs()
        options.update(overrides)
        return mtasts.Resolver(**options)

    def resolver_kwargs(self) -> Dict[str, Any]:
        """The keyword arguments of `resolver()`, for code run in another process."""
        return {
            "nameservers": [self.dns],
            "trust_roots": self.ca_pem,
            "policy_port": self.https_port,
            "dns_timeout": 2.0,
            "fetch_timeout": 5.0,
        }


def testworld_binary() -> Path:
    """The mtasts-testworld binary."""
    return Path(os.environ.get("MTASTS_TESTWORLD", TARGET / "debug" / "mtasts-testworld"))


@pytest.fixture(scope="session")
def world() -> Iterator[World]:
    """Starts mtasts-testworld for the whole session and stops it afterwards."""
    binary = testworld_binary()
    if not binary.exists():
        pytest.fail(f"{binary} is missing: run `cargo build -p mtasts-testworld` first")
    proc = subprocess.Popen(
        [str(binary), "--world", str(WORLD_JSON)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            if not selector.select(timeout=60):
                pytest.fail("mtasts-testworld printed nothing within 60 s")
        line = proc.stdout.readline()
        info = json.loads(line)
        yield World(dns=info["dns"], https_port=int(info["https_port"]), ca_pem=info["ca_pem"])
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
