"""The outer part of a run, outside the namespace: creates the namespace (or prints SKIPPED
where that cannot be done), runs the entry point again inside it (`--inside DIR`, the inner
part), and tears everything down afterwards, also on failure, Ctrl-C or SIGTERM."""

import os
import pwd
import shutil
import subprocess
import sys
import tempfile

from .common import OPENSMTPD_ROOT, PMSR_DAEMON, POSTFIX_ROOT, ROOT, log
from .namespace import NAME_PREFIX, create_namespace, delete_namespace, sweep_stale_namespaces

INNER_LIMIT = 270  # seconds the whole run inside the namespace may take


def outer(args, entry):
    """The whole run; `entry` is the script to run again inside the namespace. Returns the exit
    status."""
    if os.geteuid() != 0:
        log("SKIPPED: cannot create network namespaces: not running as root")
        return 0
    sweep_stale_namespaces()
    ns = NAME_PREFIX + "%d" % os.getpid()
    etc, reason = create_namespace(ns)
    if etc is None:
        log("SKIPPED: cannot create network namespaces: %s" % reason)
        return 0
    tmp = tempfile.mkdtemp(prefix="mtasts-rw-")
    os.chmod(tmp, 0o755)  # the daemons' unprivileged workers read their files from here
    code = 1
    proc = None
    try:
        missing = [c for c in ("unbound", "nginx", "openssl") if not shutil.which(c)]
        if not (shutil.which("exim4") or shutil.which("exim")):
            missing.append("exim4")
        for what, path in (("postfix", os.path.join(POSTFIX_ROOT, "usr", "sbin", "postfix")),
                           ("opensmtpd", os.path.join(OPENSMTPD_ROOT, "usr", "sbin", "smtpd")),
                           ("postfix-mta-sts-resolver", PMSR_DAEMON)):
            if not os.access(path, os.X_OK):
                missing.append("%s (%s)" % (what, os.path.relpath(path, ROOT)))
        for user in ("opensmtpd", "opensmtpq"):
            try:
                pwd.getpwnam(user)
            except KeyError:
                missing.append("the system user %s (OpenSMTPD's)" % user)
        if missing:
            log("realworld: missing %s (scripts/install-deps installs them)" % ", ".join(missing))
            log("realworld: 0 passed, 1 failed")
            return 1
        cmd = ["ip", "netns", "exec", ns, sys.executable, entry,
               "--inside", tmp, "--mtasts", args.mtasts, "--world", args.world,
               "--table-mtasts", args.table_mtasts, "--opensmtpd-snippet", args.opensmtpd_snippet]
        if args.k:
            cmd += ["-k", args.k]
        if args.shell:
            cmd.append("--shell")
        if args.exim_module:
            cmd += ["--exim-module", args.exim_module, "--exim-snippet", args.exim_snippet]
        if args.python:
            cmd += ["--python", args.python]
        # Its own process group (so a stop reaches every child), except for an interactive
        # --shell, which needs the terminal.
        proc = subprocess.Popen(cmd, start_new_session=not args.shell)
        try:
            code = proc.wait(timeout=None if args.shell else INNER_LIMIT + 20)
        except subprocess.TimeoutExpired:
            log("realworld: the run took more than %d s; stopped" % (INNER_LIMIT + 20))
            log("realworld: 0 passed, 1 failed")
            code = 1
    except KeyboardInterrupt:
        code = 130
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        delete_namespace(ns, etc)
        if args.keep:
            log("realworld: kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return code
