"""Everything bench-compare runs, built or installed: the release `mtasts` command, test world and
socketmap load generator, libmtasts installed into target/bench-prefix, the two C helpers, and
the venv target/bench-venv with postfix-mta-sts-resolver (from PyPI) and the mtasts wheel
(release build). Then which of the batch interfaces (`lookup --jobs`, `resolve_many`) this tree
has."""

import hashlib
import os
import subprocess
import sys

from .common import (BENCHES, FRESH_PROCESS, MTASTS, PMSR, PMSR_VERSION, PREFIX,
                     RESOLVE_MANY, ROOT, SPAWN_TIMES, VENV, VENV_PY, WORK, log, run)

CARGO = os.environ.get("CARGO", "cargo")
BUILD_LIMIT = 1800  # seconds a cold release build may take on 2 cores
PIP_LIMIT = 900


class Built:
    """What is there to measure. Each optional part is None or the reason it is missing."""

    def __init__(self):
        self.pmsr_missing = None  # why postfix-mta-sts-resolver cannot be used
        self.uvloop_missing = None  # why its daemon cannot be measured on uvloop as well
        self.wheel_missing = None  # why the mtasts wheel cannot be used
        self.c_missing = None  # why the C helpers cannot be used
        self.versions = {}
        self.cli_jobs = False  # mtasts lookup --jobs N --from-file FILE
        self.cli_json_lines = False
        self.py_resolve_many = False
        self.c_resolve_many = False
        self.c_many_missing = None  # why the C batch driver is missing although the header has it


def step(what, argv, limit, env=None):
    log(what)
    r = run(argv, limit, env=env, cwd=ROOT)
    if r.status != 0:
        text = (r.err + r.out).strip().splitlines()
        for ln in text[-15:]:
            log("  " + ln)
    return r


def build_all(args):
    b = Built()
    r = step("cargo build --release -p mtasts-cli -p mtasts-testworld -p socketmap-load",
             [CARGO, "build", "--release", "--locked", "-q", "-p", "mtasts-cli", "-p",
              "mtasts-testworld", "-p", "socketmap-load"], BUILD_LIMIT)
    if r.status != 0:
        raise SystemExit("bench-compare: the release build failed: " + r.why())
    b.versions["mtasts"] = run([MTASTS, "--version"], 10).out.strip()

    if args.need_c:
        c_helpers(b)
    else:
        b.c_missing = b.c_many_missing = "not needed for these sections"

    if args.need_python:
        venv(b, args)
    else:
        b.pmsr_missing = b.wheel_missing = "not needed for these sections"

    helptext = run([MTASTS, "lookup", "--help"], 10).out
    b.cli_jobs = "--jobs" in helptext and "--from-file" in helptext
    b.cli_json_lines = "--json-lines" in helptext
    if not b.wheel_missing:
        r = run([VENV_PY, "-c", "import mtasts; print(hasattr(mtasts.Resolver, 'resolve_many'))"],
                30)
        b.py_resolve_many = r.out.strip() == "True"
    return b


def c_helpers(b):
    """libmtasts installed into target/bench-prefix and the C helpers built against it."""
    r = step("make install PREFIX=target/bench-prefix FFI_PROFILE=release",
             ["make", "-s", "install", "PREFIX=" + PREFIX, "FFI_PROFILE=release"], BUILD_LIMIT)
    if r.status != 0:
        b.c_missing = "make install failed: " + r.why()
        return
    os.makedirs(WORK, exist_ok=True)
    inc = os.path.join(PREFIX, "include")
    for src, out, extra in (("fresh-process.c", FRESH_PROCESS, ["-ldl"]),
                            ("spawn-times.c", SPAWN_TIMES, [])):
        r = step("gcc %s" % src, ["gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-I", inc,
                                  "-o", out, os.path.join(BENCHES, src)] + extra, 120)
        if r.status != 0:
            b.c_missing = "gcc %s failed: %s" % (src, r.why())
            break
    with open(os.path.join(inc, "mtasts.h")) as f:
        has_many = "mtasts_resolver_resolve_many" in f.read()
    if has_many and not b.c_missing:
        lib = os.path.join(PREFIX, "lib")
        r = step("gcc resolve-many.c", ["gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-I", inc,
                                        "-o", RESOLVE_MANY,
                                        os.path.join(BENCHES, "resolve-many.c"), "-L", lib,
                                        "-Wl,-rpath," + lib, "-lmtasts"], 120)
        b.c_resolve_many = r.status == 0
        if r.status != 0:
            b.c_many_missing = "gcc resolve-many.c failed: " + r.why()


def wheel_sources_hash():
    """A hash of what the wheel is built from (tracked files and uncommitted changes), so an
    unchanged tree does not rebuild it."""
    paths = ["bindings/python", "mtasts-core", "Cargo.toml", "Cargo.lock"]
    h = hashlib.sha256()
    for argv in (["git", "ls-files", "-s", "--"] + paths, ["git", "diff", "HEAD", "--"] + paths):
        h.update(subprocess.run(argv, cwd=ROOT, capture_output=True).stdout)
    return h.hexdigest()


def venv(b, args):
    b.versions["python"] = sys.version.split()[0]
    if not os.path.exists(VENV_PY):
        r = step("python3 -m venv target/bench-venv", [sys.executable, "-m", "venv", VENV], 120)
        if r.status != 0:
            why = "cannot create the venv: " + r.why()
            b.pmsr_missing = b.wheel_missing = why
            return
    pip = [VENV_PY, "-m", "pip", "--disable-pip-version-check", "-q"]
    have = run([VENV_PY, "-c", "import importlib.metadata as m; print(m.version(%r))" % PMSR], 30)
    if have.out.strip() != PMSR_VERSION:
        r = step("pip install %s==%s" % (PMSR, PMSR_VERSION),
                 pip + ["install", "%s==%s" % (PMSR, PMSR_VERSION)], PIP_LIMIT)
        if r.status != 0:
            b.pmsr_missing = "pip install %s==%s failed: %s" % (PMSR, PMSR_VERSION, r.why())
    if not b.pmsr_missing:
        r = run([VENV_PY, "-c", "import importlib.metadata as m; print(' '.join("
                 "'%%s %%s' %% (p, m.version(p)) for p in (%r, 'aiohttp', 'aiodns', 'pycares')))"
                 % PMSR], 30)
        if r.status != 0:
            b.pmsr_missing = "installed, but its versions cannot be read: " + r.why()
        else:
            b.versions["pmsr"] = r.out.strip()
            check = run([VENV_PY, "-c",
                         "from postfix_mta_sts_resolver.resolver import STSResolver"], 30)
            if check.status != 0:
                b.pmsr_missing = "installed, but it cannot be imported: " + check.why()
    if not b.pmsr_missing:
        # Its `uvloop` extra: the daemon runs on uvloop when it can import it (and on
        # asyncio's own loop with --disable-uvloop), so both are measured.
        uvloop = [VENV_PY, "-c", "import uvloop; print(uvloop.__version__)"]
        have = run(uvloop, 30)
        if have.status != 0:
            extra = "%s[uvloop]==%s" % (PMSR, PMSR_VERSION)
            r = step("pip install " + extra, pip + ["install", extra], PIP_LIMIT)
            if r.status != 0:
                b.uvloop_missing = "pip install %s failed: %s" % (extra, r.why())
            else:
                have = run(uvloop, 30)
                if have.status != 0:
                    b.uvloop_missing = "installed, but uvloop cannot be imported: " + have.why()
        if not b.uvloop_missing:
            b.versions["uvloop"] = "uvloop " + have.out.strip()

    if args.no_wheel:
        b.wheel_missing = "skipped (--no-wheel)"
        return
    stamp = os.path.join(VENV, "mtasts-wheel.sources")
    want = wheel_sources_hash()
    try:
        with open(stamp) as f:
            current = f.read().strip() == want
    except OSError:
        current = False
    if not current:
        # A release build (maturin's default for pip), as users get it; dev-profile wheels
        # (scripts/test-python) would measure debug code.
        r = step("pip install ./bindings/python (maturin, release; minutes the first time)",
                 pip + ["install", "--force-reinstall", "--no-deps", "./bindings/python"],
                 BUILD_LIMIT)
        if r.status != 0:
            b.wheel_missing = "pip install ./bindings/python failed: " + r.why()
            return
        with open(stamp, "w") as f:
            f.write(want + "\n")
    r = run([VENV_PY, "-c", "import mtasts; print(mtasts.__version__)"], 30)
    if r.status != 0:
        b.wheel_missing = "the wheel cannot be imported: " + r.why()
    else:
        b.versions["wheel"] = r.out.strip()

