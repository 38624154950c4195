"""The inner part of a run, inside the namespace (the entry point run again with `--inside
DIR`): the world's addresses, certificates, signed zone and configurations; unbound, nginx and
the Exim receivers started and waited for; the reload into the attacker's world (S-39); the
Exim senders; Postfix and the `mtasts serve` it asks; the OpenSMTPD senders; the cases in their
order; then the report (the failed cases with their logs) and the last line, `realworld: N
passed, M failed`."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

from .cases import Runner
from .common import (BLACKHOLE_NET, DNS_ADDR, DNS_OUT_ADDR, HTTPS_ADDR, OPENSMTPD_ROOT,
                     POSTFIX_ROOT, TLSRPT_HTTPS_ADDR, UNREACHABLE_ADDR, log, read_lines, sh)
from .daemons import (Daemons, dns_query, https_generation, nginx_conf, receiver_conf, tcp_open,
                      unbound_conf, wait_until)
from .exim import MISSING_HOST_CONF, MISSING_MODULE, EximSender, damage_cache
from .namespace import add_addresses, children, process_state
from .opensmtpd import TABLE_USER, OpenSmtpd
from .postfix import PolicyServer, PostfixSender
from .pki import Certs, SignedZone, in_signed_zone, tlsa_311
from .tlsrpt import HttpsReceiver
from .world import World


def inner(args):
    tmp = args.inside
    started = time.monotonic()
    world = World(args.world)
    daemons = Daemons(tmp)
    results = None
    startup_error = None
    runner = None
    try:
        # Addresses on the namespace's own loopback interface.
        addrs = [DNS_ADDR, DNS_OUT_ADDR, HTTPS_ADDR, TLSRPT_HTTPS_ADDR, UNREACHABLE_ADDR]
        addrs += [h["address"] for h in world.mx_hosts.values()]
        add_addresses(addrs, BLACKHOLE_NET)

        certs = Certs(tmp)
        for d in world.domains:
            for dd in (d, world.attacked(d)):
                if dd["address"] == "https" or isinstance(dd["address"], dict):
                    certs.cert("mta-sts." + dd["name"], dd["cert"])
        need_echo = any(d["http"].get("transfer") == "drip" or "delay" in d["http"]
                        for d in world.domains)

        signed = SignedZone(tmp) if any(in_signed_zone(d["name"]) for d in world.domains) \
            else None
        tlsa = tlsa_311(certs.key)

        def write_configs(attacked, generation):
            with open(os.path.join(tmp, "unbound.conf"), "w") as f:
                f.write(unbound_conf(tmp, world, attacked, generation, signed, tlsa))
            with open(os.path.join(tmp, "nginx.conf"), "w") as f:
                f.write(nginx_conf(tmp, world, certs, attacked, generation, need_echo))

        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.makedirs(os.path.join(tmp, "nginx-tmp", sub))
        write_configs(False, 1)
        daemons.start("unbound", ["unbound", "-d", "-c", os.path.join(tmp, "unbound.conf")])
        daemons.start("nginx", ["nginx", "-p", tmp, "-e", os.path.join(tmp, "nginx-early.log"),
                                "-c", os.path.join(tmp, "nginx.conf")])
        exim = shutil.which("exim4") or shutil.which("exim")
        for host, h in world.mx_hosts.items():
            base, conf = receiver_conf(tmp, host, h, certs)
            for sub in ("spool", "log"):
                os.makedirs(os.path.join(base, sub))
            with open(os.path.join(base, "exim.conf"), "w") as f:
                f.write(conf)
            # Exim wants its configuration owned by root; spool, logs and maildir are its own.
            sh(["chown", "Debian-exim:Debian-exim", base, base + "/spool", base + "/log"])
            daemons.start("exim/" + host, [exim, "-C", os.path.join(base, "exim.conf"), "-bdf"])

        wait_until("unbound", lambda: dns_query("generation.test") == (0, ["1"]),
                   proc=daemons.procs["unbound"])
        wait_until("nginx", lambda: https_generation() == "1", proc=daemons.procs["nginx"])
        for host, h in world.mx_hosts.items():
            wait_until("exim receiver %s" % host, lambda h=h: tcp_open(h["address"], 25),
                       proc=daemons.procs["exim/" + host])
        log("realworld: unbound, nginx and %d Exim receivers up in %.1f s" % (
            len(world.mx_hosts), time.monotonic() - started))

        runner = Runner(args, tmp, world, certs, daemons)
        results = runner.results

        def reconfigure():
            write_configs(True, 2)
            # nginx reloads by starting new workers and retiring the old ones, which may still
            # accept a connection or two meanwhile: wait until they are gone.
            old_workers = children(daemons.procs["nginx"].pid)
            daemons.signal("unbound", signal.SIGHUP)
            daemons.signal("nginx", signal.SIGHUP)
            wait_until("unbound reload", lambda: dns_query("generation.test") == (0, ["2"]))
            wait_until("nginx reload", lambda: https_generation() == "2" and not any(
                process_state(p) not in (None, "Z") for p in old_workers))

        if args.shell:
            log("realworld: a shell inside the namespace; DNS %s, CA %s, mtasts %s" % (
                DNS_ADDR, certs.ca_pem, args.mtasts))
            env = dict(os.environ, RW_DNS=DNS_ADDR + ":53", RW_CA=certs.ca_pem, RW_TMP=tmp,
                       RW_MTASTS=args.mtasts, PS1="realworld# ")
            subprocess.run(["bash", "--norc", "-i"] if sys.stdin.isatty() else ["bash"],
                           env=env, cwd=tmp)
            return 0
        if args.exim_module:
            runner.exim_sender = EximSender(tmp, "sender", exim, args.exim_module,
                                            args.exim_snippet, certs.ca_pem, "sqlite")
            runner.exim_control = EximSender(tmp, "sender-nocache", exim, args.exim_module,
                                             args.exim_snippet, certs.ca_pem, "memory")
            # The snippet with MTASTS_SO pointing at a module that does not exist: it must
            # fail closed (defer), never deliver in clear.
            runner.exim_no_module = EximSender(tmp, "sender-nomodule", exim, MISSING_MODULE,
                                               args.exim_snippet, certs.ca_pem, "memory")
            # The snippet whose per-host module calls cannot be answered (the domain-level
            # one can): each host must be refused (defer), never used in clear.
            runner.exim_host_fail = EximSender(tmp, "sender-hostfail", exim, args.exim_module,
                                               args.exim_snippet, certs.ca_pem, "memory",
                                               host_conf=MISSING_HOST_CONF)
            # A module whose shared SQLite cache cannot be read (R-CACHE-7): cannot tell
            # whether a cached policy applies, must defer.
            runner.exim_bad_cache = EximSender(tmp, "sender-badcache", exim, args.exim_module,
                                               args.exim_snippet, certs.ca_pem, "sqlite")
            damage_cache(args.mtasts, runner.exim_bad_cache.cache_file, certs.ca_pem)
            if any("tlsrpt" in d and runner.selected(d) for d in world.domains):
                # TLS-RPT (issue 15): a sender whose SQLite file is the report store of the
                # dedicated deliveries only, and the reports' HTTPS receiver.
                runner.exim_tlsrpt = EximSender(tmp, "sender-tlsrpt", exim, args.exim_module,
                                                args.exim_snippet, certs.ca_pem, "sqlite")
                host = "reports.tlsrpt-inbox.rw.test"
                runner.tlsrpt_https = HttpsReceiver(tmp, TLSRPT_HTTPS_ADDR,
                                                    certs.cert(host, "valid"), certs.key)
                log("realworld: the TLS-RPT HTTPS receiver up (https://%s, %s:443)" % (
                    host, TLSRPT_HTTPS_ADDR))
        else:
            log("realworld: no --exim-module: the Exim sender cases are not run")
        if any("postfix" in d and runner.selected(d) for d in world.domains):
            # Postfix's TLS policy map: mtasts serve with a SQLite cache of its own, restarted
            # on the same file after the attack (S-39).
            runner.policy_server = PolicyServer(daemons, args.mtasts, tmp, "mtasts-serve",
                                                os.path.join(tmp, "serve-cache.db"),
                                                certs.ca_pem)
            runner.policy_server.start()
            runner.postfix = PostfixSender(tmp, POSTFIX_ROOT, runner.policy_server.socket,
                                           certs.ca_pem)
            runner.postfix.start()
            log("realworld: Postfix %s up, its TLS policy map mtasts serve (%s)" % (
                runner.postfix.version(), runner.policy_server.socket))
        wanted = {key for d in world.domains if runner.selected(d)
                  for key in list(d) + list(d.get("expect_attack", {}))}
        if wanted & {"opensmtpd", "opensmtpd_bad_cache", "opensmtpd_cached",
                     "opensmtpd_uncached"}:
            # OpenSMTPD with the shipped smtpd.conf, each instance in a mount namespace of its
            # own: tables sharing a SQLite cache with `mtasts lookup` (S-39), tables whose
            # cache cannot be read, tables with a memory cache (the S-39 control).
            instances = []
            for attr, name, port, cache in (("opensmtpd", "main", 25, "cache.db"),
                                            ("opensmtpd_bad_cache", "badcache", 2525, "cache.db"),
                                            ("opensmtpd_control", "nocache", 2526, "memory")):
                smtpd = OpenSmtpd(daemons, tmp, OPENSMTPD_ROOT, name, port, args.table_mtasts,
                                  args.opensmtpd_snippet, certs.ca_pem, cache)
                if name == "badcache":
                    damage_cache(args.mtasts, smtpd.cache, certs.ca_pem, user=TABLE_USER)
                smtpd.start()
                setattr(runner, attr, smtpd)
                instances.append("%s 127.0.0.1:%d" % (name, port))
            log("realworld: OpenSMTPD %s up (%s), its tables table-mtasts" % (
                runner.opensmtpd.version(), ", ".join(instances)))
        runner.shared_cache_first()
        runner.opensmtpd_prime()
        runner.exim_cases(attacked=True)
        runner.postfix_cases(attacked=True)
        runner.lookup_cases()
        runner.python_cases()
        runner.check_cases()
        runner.exim_cases(attacked=False)
        runner.exim_sequences()
        runner.tlsrpt_cases()
        runner.postfix_cases(attacked=False)
        runner.opensmtpd_cases()
        runner.serve_dane_cases()
        runner.reference_cases()
        runner.shared_cache_after_attack(reconfigure)
        runner.exim_after_attack()
        runner.postfix_after_attack()
        runner.opensmtpd_after_attack()
    except Exception as e:  # a broken world or a daemon that did not start
        startup_error = "%s: %s" % (type(e).__name__, e)
    finally:
        if runner is not None and runner.postfix is not None:
            runner.postfix.stop()
        if runner is not None and runner.tlsrpt_https is not None:
            runner.tlsrpt_https.stop()
        dead = [n for n in daemons.procs if not daemons.alive(n)]
        daemons.stop()
    passed = results.passed if results else 0
    failed = len(results.failed) if results else 0
    if startup_error:
        failed += 1
        log("FAIL %s" % startup_error)
        for name in dead:
            log("--- %s exited early; its output:" % name)
            for ln in read_lines(os.path.join(tmp, name.replace("/", "_") + ".out"))[-30:]:
                log("    " + ln)
        for fname in ("unbound.log", "nginx-early.log", "nginx-error.log"):
            lines = read_lines(os.path.join(tmp, fname))
            if lines:
                log("--- %s (last 30 lines)" % fname)
                for ln in lines[-30:]:
                    log("    " + ln)
    if results and results.failed:
        log("")
        log("=== logs of the failed cases")
        for label, problems, run, logs in results.failed:
            log("### %s" % label)
            log("$ %s" % run["cmd"])
            log("exit %s; stderr:" % run["code"])
            for ln in run["stderr"].splitlines()[-15:]:
                log("    " + ln)
            for ln in summarise(run["stdout"]):
                log("    " + ln)
            for ln in logs:
                log("    " + ln)
    skipped = results.skipped if results else 0
    log("realworld: ran in %.1f s" % (time.monotonic() - started))
    log("realworld: %d passed, %d failed%s" % (passed, failed,
                                               ", %d skipped" % skipped if skipped else ""))
    return 1 if failed else 0


def summarise(stdout):
    """The telling part of mtasts' JSON output (the whole of it is long)."""
    if not stdout.strip():
        return []
    try:
        got = json.loads(stdout)
    except ValueError:
        return ["stdout:"] + stdout.splitlines()[:40]
    if isinstance(got, list):  # lookup
        return ["lookup: " + json.dumps({k: v for k, v in o.items() if k != "policy"})
                + " policy=" + json.dumps({k: v for k, v in (o.get("policy") or {}).items()
                                           if k != "text"}) for o in got]
    out = ["check: ok=%s defer=%s policy_failure=%s" % (
        got.get("ok"), got.get("defer"), json.dumps(got.get("policy_failure")))]
    for p in got.get("problems", []):
        out.append("problem: %s %s@%s: %s" % (p.get("severity"), p.get("code"), p.get("mx"),
                                              p.get("message")))
    for m in got.get("mx", []):
        probe = m.get("probe") or {}
        out.append("mx %s: matches=%s verdict=%s delivery=%s probe=%s %s %s" % (
            m.get("host"), m.get("matches_policy"), m.get("verdict"), m.get("delivery"),
            probe.get("outcome"), probe.get("reason_code"), probe.get("detail")))
    return out
