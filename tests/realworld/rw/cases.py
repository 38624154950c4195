"""The cases, run inside the namespace against the daemons: Results (passed, failed with their
logs, known deviations) and the Runner of every kind of case (`mtasts lookup`, the Python
wheel's resolve, `mtasts check`, the shared SQLite cache before and after the attack, Exim
deliveries and ordered Exim sequences, Postfix and OpenSMTPD deliveries, the reference replies),
with the comparisons of lookup and check outcomes against world.json (compare_lookup,
compare_check) and a domain's lines of every daemon's log for failure reports."""

import concurrent.futures
import datetime
import gzip
import json
import os
import socket
import subprocess
import threading
import time

from .common import DNS_ADDR, PMSR_DAEMON, log, read_lines
from .daemons import maildir_hosts, receiver_connections
from .exim import compare_exim
from .opensmtpd import TABLE_USER, compare_opensmtpd
from .postfix import POLICY_MAP, PolicyServer, compare_postfix
from .tlsrpt import REFUSING_PATH, compare_report, mail_report
from .reference import (DEAD_REDIS, DEPARTURES, PMSR, PMSR_VERSION, STRICT_MAP, TLSRPT_MAP,
                        ReferenceServer, ask_both, reference_questions, reply_matches)

RECHECK_MIN = 60  # the resolver's shortest recheck interval (R-CACHE-5)
STOP_PROMPT = 2.0  # seconds mtasts serve may take to stop when it is answering nothing
LOOKUP_ARGS = ["--dns-timeout", "2", "--timeout", "3"]
# The library's warning when a domain's TXT lookup fails (one per resolution).
LOOKUP_FAILURE_LOG = "%s: "


class Results:
    def __init__(self):
        self.passed = 0
        self.skipped = 0
        self.failed = []
        self.lock = threading.Lock()

    def xfail(self, label, why, problems):
        """A known deviation, written down in world.json: reported, counted as skipped."""
        with self.lock:
            self.skipped += 1
            log("XFAIL %s (known: %s)" % (label, why))
            for p in problems:
                log("     %s" % p)

    def record(self, label, problems, detail, logs):
        with self.lock:
            if problems:
                self.failed.append((label, problems, detail, logs))
                log("FAIL %s" % label)
                for p in problems:
                    log("     %s" % p)
            else:
                self.passed += 1
                log("ok   %s" % label)


class Runner:
    def __init__(self, args, tmp, world, certs, daemons):
        self.args = args
        self.tmp = tmp
        self.world = world
        self.certs = certs
        self.daemons = daemons
        self.results = Results()
        self.exim_sender = None
        self.exim_control = None
        self.exim_no_module = None
        self.exim_host_fail = None
        self.exim_bad_cache = None
        self.exim_tlsrpt = None  # the Exim sender whose report store the TLS-RPT cases read
        self.tlsrpt_https = None  # the reports' HTTPS receiver (HttpsReceiver)
        self.exim_first_at = 0.0
        self.postfix = None  # the PostfixSender
        self.policy_server = None  # the mtasts serve it asks (PolicyServer)
        self.postfix_first_at = 0.0
        self.postfix_runs = {}  # queue id -> the sendmail run that submitted it
        self.postfix_msgids = {}  # queue id -> Message-ID
        self.opensmtpd = None  # the OpenSmtpd whose tables share a SQLite cache
        self.opensmtpd_bad_cache = None  # the one whose tables' cache cannot be read
        self.opensmtpd_control = None  # the one whose tables have a memory cache (S-39)
        self.opensmtpd_first_at = 0.0

    def mtasts(self, argv, cache="memory", timeout=60, user=None):
        cmd = [self.args.mtasts, "--nameserver", DNS_ADDR + ":53", "--trust-roots",
               self.certs.ca_pem, "--cache", cache] + LOOKUP_ARGS + argv
        if user:
            cmd = ["runuser", "-u", user, "--"] + cmd
        started = time.monotonic()
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
            code, out, err = r.returncode, r.stdout, r.stderr
        except subprocess.TimeoutExpired as e:
            code, out, err = None, e.stdout or "", (e.stderr or "") + "\n(timed out)"
        return {"cmd": " ".join(cmd), "code": code, "stdout": out, "stderr": err,
                "seconds": time.monotonic() - started}

    # -- logs of one domain, for failure reports -------------------------------------------

    def domain_logs(self, d):
        names = {d["name"], "mta-sts." + d["name"]}
        hosts = {m["host"].lower().rstrip(".") for m in d["mx"]}
        out = []
        for fname, label in (("unbound.log", "unbound"), ("nginx-access.log", "nginx access"),
                             ("nginx-error.log", "nginx error")):
            lines = [ln for ln in read_lines(os.path.join(self.tmp, fname))
                     if any(n in ln for n in names)]
            out.append("--- %s (%d lines about %s)" % (label, len(lines), d["name"]))
            out += lines[-25:]
        for host in sorted(hosts):
            if host not in self.world.mx_hosts:
                continue
            for lf in ("mainlog", "paniclog", "rejectlog"):
                lines = [ln for ln in read_lines(os.path.join(self.tmp, "mx", host, "log", lf))
                         if "lost privilege for using -C" not in ln]  # -C as root: expected
                if lines:
                    out.append("--- exim receiver %s %s" % (host, lf))
                    out += lines[-25:]
        return out

    # -- mtasts lookup ------------------------------------------------------------------------

    def lookup_case(self, d, expect, cache="memory", user=None):
        run = self.mtasts(["lookup", "--json", d.get("lookup", d["name"])], cache=cache,
                          user=user)
        problems = []
        got = None
        try:
            got = json.loads(run["stdout"])[0]
        except (ValueError, IndexError, TypeError):
            problems.append("no JSON from mtasts lookup (exit %s)" % run["code"])
        if got is not None:
            problems += compare_lookup(expect, got, run["code"])
        return run, got, problems

    def lookup_cases(self):
        jobs = []
        for d in self.world.domains:
            if "expect" in d and self.selected(d):
                jobs.append(d)
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            done = list(pool.map(lambda d: (d, self.lookup_case(d, d["expect"])), jobs))
        # HTTPS request counts, from nginx's access log, once every lookup is over.
        access = read_lines(os.path.join(self.tmp, "nginx-access.log"))
        for d, (run, got, problems) in done:
            want = d["expect"].get("https_requests")
            host = "mta-sts." + d["name"]
            if want is not None and not d.get("attack"):
                seen = sum(1 for ln in access if ln.split(" ", 1)[0] == host)
                if seen != want:
                    problems.append("nginx saw %d requests for %s, expected %d" % (
                        seen, host, want))
            self.results.record(
                "%s lookup %s (%.2f s)" % (d.get("scenario", "-"), d["name"], run["seconds"]),
                problems, run, self.domain_logs(d) if problems else [])

    # -- the Python wheel: resolver.resolve ----------------------------------------------------

    def python_case(self, d, expect):
        """One lookup through the Python API; `Resolution.to_dict()` is the object `mtasts
        lookup --json` prints, so the same expectations apply (the exit status mirrors the
        command's: 1 when the resolution carries a failure)."""
        cmd = [self.args.python, "-c", PYTHON_LOOKUP, DNS_ADDR + ":53", self.certs.ca_pem,
               d.get("lookup", d["name"])]
        started = time.monotonic()
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            code, out, err = r.returncode, r.stdout, r.stderr
        except subprocess.TimeoutExpired as e:
            code, out, err = None, e.stdout or "", (e.stderr or "") + "\n(timed out)"
        run = {"cmd": " ".join(cmd[:2] + ["PYTHON_LOOKUP"] + cmd[3:]), "code": code,
               "stdout": out, "stderr": err, "seconds": time.monotonic() - started}
        problems = []
        got = None
        try:
            got = json.loads(out)
        except ValueError:
            problems.append("no JSON from resolver.resolve (exit %s)" % code)
        if got is not None:
            problems += compare_lookup(expect, got, code)
        return run, got, problems

    def python_cases(self):
        if not self.args.python:
            log("realworld: no --python: the Python wheel cases are not run")
            return
        jobs = [d for d in self.world.domains if "expect" in d and self.selected(d)]
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            done = list(pool.map(lambda d: (d, self.python_case(d, d["expect"])), jobs))
        for d, (run, got, problems) in done:
            self.results.record(
                "%s python resolve %s (%.2f s)" % (d.get("scenario", "-"), d["name"],
                                                   run["seconds"]),
                problems, run, self.domain_logs(d) if problems else [])

    # -- mtasts check -------------------------------------------------------------------------

    def check_cases(self):
        jobs = [d for d in self.world.domains if "check" in d and self.selected(d)]

        def one(d):
            run = self.mtasts(["check", "--json", d["name"]])
            problems = []
            try:
                got = json.loads(run["stdout"])
            except ValueError:
                return run, ["no JSON from mtasts check (exit %s)" % run["code"]]
            problems += compare_check(d["check"], got, run["code"])
            return run, problems

        with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
            done = list(pool.map(lambda d: (d, one(d)), jobs))
        for d, (run, problems) in done:
            self.results.record(
                "%s check %s (%.2f s)" % (d.get("scenario", "-"), d["name"], run["seconds"]),
                problems, run, self.domain_logs(d) if problems else [])

    # -- S-39 / S-40: the shared SQLite cache against an attacker ------------------------------

    def shared_cache_first(self):
        """First lookups into a SQLite file (before the attack). Returns the domains."""
        self.sqlite = os.path.join(self.tmp, "cache.db")
        self.attack_domains = [d for d in self.world.domains if d.get("attack")
                               and self.selected(d)]
        self.first_lookup_at = time.monotonic()
        for d in self.attack_domains:
            run, got, problems = self.lookup_case(d, d["expect"], cache=self.sqlite)
            self.results.record("%s shared cache: first lookup %s into SQLite" % (
                d["scenario"], d["name"]), problems, run, self.domain_logs(d) if problems else [])
            # S-40: a second process within the recheck interval: from the file, no DNS, no
            # HTTPS.
            before = self.counts(d)
            run, got, problems = self.lookup_case(
                d, dict(d["expect"], source="cache"), cache=self.sqlite)
            after = self.counts(d)
            if after != before:
                problems.append("second process made queries/requests: (TXT queries, HTTPS "
                                "requests) %s -> %s" % (before, after))
            self.results.record("S-40 shared cache: second process %s answered from SQLite, no "
                                "DNS, no HTTPS" % d["name"], problems, run,
                                self.domain_logs(d) if problems else [])

    def counts(self, d):
        txt = "_mta-sts.%s. TXT IN" % d["name"]
        # Query lines end with the class; reply lines go on with the rcode and timings.
        q = sum(1 for ln in read_lines(os.path.join(self.tmp, "unbound.log"))
                if ln.endswith(" " + txt))
        h = sum(1 for ln in read_lines(os.path.join(self.tmp, "nginx-access.log"))
                if ln.split(" ", 1)[0] == "mta-sts." + d["name"])
        return q, h

    def shared_cache_after_attack(self, reconfigure):
        if not self.attack_domains:
            return
        wait = max(self.first_lookup_at, self.exim_first_at, self.postfix_first_at,
                   self.opensmtpd_first_at) + RECHECK_MIN + 1.5 - time.monotonic()
        if wait > 0:
            log("     (waiting %.0f s: the recheck interval of the cached entries)" % wait)
            time.sleep(wait)
        reconfigure()
        for d in self.attack_domains:
            before = self.counts(d)
            exp = d["expect_attack"]
            run, got, problems = self.lookup_case(d, exp["cached"], cache=self.sqlite)
            after = self.counts(d)
            if after[0] <= before[0]:
                problems.append("the lookup after the attack did not query the TXT record "
                                "(unbound log): the recheck was not exercised")
            self.results.record("S-39 %s: after the attack a new process still enforces the "
                                "cached policy" % d["name"], problems, run,
                                self.domain_logs(d) if problems else [])
            # Control: without the cache, the attack works (so the case above means something).
            run, got, problems = self.lookup_case(d, exp["uncached"])
            self.results.record("S-39 %s: control, a fresh memory cache sees the attacker's "
                                "world" % d["name"], problems, run,
                                self.domain_logs(d) if problems else [])

    # -- Exim as the sender ----------------------------------------------------------------

    def landed(self, msgid, expect):
        """The receivers whose maildir holds `msgid`. A receiver answers 250 before its own
        delivery into the maildir, so an expected delivery gets a moment to land."""
        deadline = time.monotonic() + (3.0 if expect.get("delivered") else 0.0)
        landed = maildir_hosts(self.tmp, self.world, msgid)
        while not landed and time.monotonic() < deadline:
            time.sleep(0.05)
            landed = maildir_hosts(self.tmp, self.world, msgid)
        return landed

    def exim_delivery(self, sender, d, expect, label):
        hosts = list(self.world.mx_hosts)
        before = {h: receiver_connections(self.tmp, h) for h in hosts}
        txt_before = self.counts(d)[0]
        log_before = len(sender.mainlog())
        run, msgid, own = sender.send(d["name"], d["name"].split(".")[0])
        after = {h: receiver_connections(self.tmp, h) for h in hosts}
        if "lookups" in expect:
            # How many times the module resolved the domain in this delivery: the library logs
            # one warning per resolution whose TXT lookup failed (DNS blackholed).
            marker = "mtasts warning: %s" % LOOKUP_FAILURE_LOG % d["name"]
            made = sum(1 for ln in sender.mainlog()[log_before:] if marker in ln)
            own = own + ["(%d module lookups logged: %r)" % (made, marker)]
        landed = self.landed(msgid, expect)
        problems = compare_exim(expect, own, landed, before, after)
        if expect.get("no_host_retry"):
            # R-APPLY-1 without blocking the host for other domains (issue 10 item 2): the
            # deferral must leave no host retry record (T:host:...) for the domain's MX hosts.
            keys, _ = sender.retry_keys()
            for mx in d["mx"]:
                prefix = "T:%s:" % mx["host"].lower().rstrip(".")
                bad = [k for k in keys if k.startswith(prefix)]
                if bad:
                    problems.append("host retry record(s) %s: the host is blocked for every "
                                    "domain until the retry time" % bad)
        if "lookups" in expect and made != expect["lookups"]:
            problems.append("the module resolved %s %d times in one delivery attempt, expected %d "
                            "(one lookup's deadline per attempt)" % (d["name"], made,
                                                                     expect["lookups"]))
        if expect.get("rechecked") and self.counts(d)[0] <= txt_before:
            problems.append("the delivery did not query the TXT record (unbound log): the "
                            "recheck was not exercised")
        xfail = expect.get("xfail")
        if xfail and problems:
            self.results.xfail(label, xfail, problems)
            return
        if xfail:
            problems = ["passes now: remove its xfail (%s)" % xfail]
        logs = self.domain_logs(d) + ["--- sender %s mainlog, this message" % sender.name] + own
        paniclog = read_lines(os.path.join(sender.dir, "log", "paniclog"))
        paniclog = [ln for ln in paniclog if "lost privilege" not in ln]
        if paniclog:
            logs += ["--- sender %s paniclog" % sender.name] + paniclog[-15:]
        self.results.record(label, problems, run, logs if problems else [])

    def exim_cases(self, attacked):
        """Deliveries to the domains with an `exim` expectation: those of the S-39 domains
        (attacked=True: first, they start the recheck interval), or all the others."""
        if not self.exim_sender:
            return
        for d in self.world.domains:
            if "exim" in d and self.selected(d) and bool(d.get("attack")) == attacked:
                if attacked:
                    self.exim_first_at = time.monotonic()
                self.exim_delivery(self.exim_sender, d, d["exim"], "%s exim delivers to %s" % (
                    d.get("scenario", "-"), d["name"]))
                if "exim_no_module" in d:
                    self.exim_delivery(self.exim_no_module, d, d["exim_no_module"],
                                       "%s exim with a missing module fails closed for %s" % (
                                           d.get("scenario", "-"), d["name"]))
                if "exim_bad_cache" in d:
                    self.exim_delivery(self.exim_bad_cache, d, d["exim_bad_cache"],
                                       "%s exim whose policy cache cannot be read fails closed "
                                       "for %s" % (d.get("scenario", "-"), d["name"]))
                if "exim_host_fail" in d:
                    self.exim_delivery(self.exim_host_fail, d, d["exim_host_fail"],
                                       "%s exim whose module cannot answer per host fails "
                                       "closed for %s" % (d.get("scenario", "-"), d["name"]))

    def exim_after_attack(self):
        if not self.exim_sender:
            return
        for d in self.attack_domains:
            exp = d["expect_attack"]
            if "exim_cached" in exp:
                self.exim_delivery(self.exim_sender, d, dict(exp["exim_cached"], rechecked=True),
                                   "S-39 %s: after the attack, a new Exim delivery process "
                                   "still applies the cached policy" % d["name"])
            if "exim_uncached" in exp:
                self.exim_delivery(self.exim_control, d, exp["exim_uncached"],
                                   "S-39 %s: control, Exim without a shared cache falls for "
                                   "the attacker" % d["name"])

    def exim_sequences(self):
        """Each sequence of world.json's exim_sequences: messages to domains that share MX
        hosts, in order, each step checked (connection reuse, host retry records)."""
        if not self.exim_sender:
            return
        sender = self.exim_sender
        by_name = {d["name"]: d for d in self.world.domains}
        for seq in self.world.sequences:
            if self.args.k and not (self.args.k in seq["name"] or any(
                    self.args.k in st.get("send", st.get("queued", "")) for st in seq["steps"])):
                continue
            sent = {}  # domain -> (msgid, queue id)
            for number, step in enumerate(seq["steps"], 1):
                label = "%s %s step %d: " % (seq.get("issue", "-"), seq["name"], number)
                if "send" in step:
                    d = by_name[step["send"]]
                    hosts = list(self.world.mx_hosts)
                    before = {h: receiver_connections(self.tmp, h) for h in hosts}
                    tag = "%s-%s" % (seq["name"], d["name"].split(".")[0])
                    if step.get("forced"):
                        run, msgid, own = sender.send_forced(d["name"], tag)
                        label += "a message to %s, queued, then delivered by hand" % d["name"]
                    else:
                        run, msgid, own = sender.send(d["name"], tag)
                        label += "a message to %s" % d["name"]
                    after = {h: receiver_connections(self.tmp, h) for h in hosts}
                    sent[d["name"]] = (msgid, sender.queue_id(msgid), len(sender.mainlog()))
                    expect = step["exim"]
                    landed = self.landed(msgid, expect)
                    problems = compare_exim(expect, own, landed, before, after)
                    self.results.record(label, problems, run, (
                        self.domain_logs(d) + ["--- sender mainlog, this message"] + own)
                        if problems else [])
                elif "queued" in step:
                    name = step["queued"]
                    msgid, queue_id, log_at = sent.get(name, (None, None, 0))
                    own = sender.own_lines(queue_id)
                    landed = maildir_hosts(self.tmp, self.world, msgid) if msgid else []
                    problems = []
                    if not queue_id:
                        problems.append("no message to %s was sent earlier in the sequence" % name)
                    if landed:
                        problems.append("the message to %s was delivered to %s" % (name, landed))
                    if any(" => " in ln for ln in own):
                        problems.append("the sender logged a delivery (=>) of it")
                    if queue_id and not sender.queued(queue_id):
                        problems.append("it is no longer on the sender's queue")
                    later = [ln for ln in sender.mainlog()[log_at:]
                             if queue_id and len(ln.split()) > 2 and ln.split()[2] == queue_id]
                    if step.get("retried") and not any(" == " in ln for ln in later):
                        problems.append("no new delivery attempt (==) of it since it was sent: "
                                        "the connection was not offered to it")
                    self.results.record(
                        label + "the message to %s is still queued, delivered nowhere%s" % (
                            name, " (tried again, deferred)" if step.get("retried") else ""),
                        problems, {"cmd": "(sender log, maildirs, spool)", "code": 0,
                                   "stdout": "", "stderr": ""},
                        ["--- sender mainlog, that message"] + own if problems else [])
                elif "retry_db" in step:
                    keys, r = sender.retry_keys()
                    problems = []
                    if r.returncode not in (0, 1) and not keys:
                        problems.append("exim_dumpdb failed (exit %d): %s" % (
                            r.returncode, r.stderr.strip()))
                    for prefix in step["retry_db"].get("absent", []):
                        bad = [k for k in keys if k.startswith(prefix)]
                        if bad:
                            problems.append("retry record(s) %s present" % bad)
                    for prefix in step["retry_db"].get("present", []):
                        if not any(k.startswith(prefix) for k in keys):
                            problems.append("no retry record starting %s (got %s)" % (
                                prefix, keys))
                    self.results.record(
                        label + "the sender's retry database: %s" % json.dumps(step["retry_db"]),
                        problems, {"cmd": r.args and " ".join(r.args), "code": r.returncode,
                                   "stdout": "", "stderr": r.stderr},
                        ["--- exim_dumpdb retry"] + r.stdout.splitlines()[-30:]
                        if problems else [])
                else:
                    raise ValueError("%s: unknown step %r" % (seq["name"], step))

    # -- Postfix as the sender, with mtasts serve as its TLS policy map ----------------------

    def postfix_attempts(self, jobs, since=None):
        """Each job (domain as the world now is, expectation, label, queue id or None) is one
        message: a new one (queue id None), submitted now, or one already queued, tried again by
        the caller (a flush). Every message's delivery attempt since log line `since` is
        awaited (bounded), then held to its expectation."""
        pf = self.postfix
        if since is None:
            since = len(pf.log())
        sent = []
        for d, expect, label, queue_id in jobs:
            if queue_id is None:
                run, msgid = pf.send(d["name"], "pf-" + d["name"].split(".")[0])
                queue_id = pf.queue_id(msgid) if run["code"] == 0 else None
            else:
                run, msgid = dict(self.postfix_runs[queue_id], cmd="postqueue -f"), \
                    self.postfix_msgids[queue_id]
            self.postfix_runs[queue_id] = run
            self.postfix_msgids[queue_id] = msgid
            sent.append((d, expect, label, queue_id, run, msgid))
        done = []
        for d, expect, label, queue_id, run, msgid in sent:
            own = pf.wait_attempt(queue_id, since) if queue_id else []
            done.append((d, expect, label, queue_id, run, msgid, own))
        for d, expect, label, queue_id, run, msgid, own in done:
            # Where the attempt ended: off the queue (delivered), or in the deferred queue.
            entry = pf.queue_entry(queue_id, "deferred" if expect.get("deferred") else None)
            landed = self.landed(msgid, expect)
            tls = [ln for mx in d["mx"] for ln in pf.tls_lines(mx["host"].lower(), since)]
            problems = compare_postfix(expect, own, landed, tls, entry)
            if run["code"] != 0:
                problems.insert(0, "sendmail exited %s" % run["code"])
            if "txt_queries_before" in expect:
                # The map's server asked DNS again (S-39): the attacker's answer was seen.
                if self.counts(d)[0] <= expect["txt_queries_before"]:
                    problems.append("the map's answer did not query the TXT record (unbound "
                                    "log): the recheck was not exercised")
            xfail = expect.get("xfail")
            if xfail and problems:
                self.results.xfail(label, xfail, problems)
                continue
            if xfail:
                problems = ["passes now: remove its xfail (%s)" % xfail]
            logs = (self.domain_logs(d) + ["--- postfix maillog, this message"] + own +
                    ["--- postfix maillog, TLS"] + tls + ["--- postqueue -j: %s" % entry] +
                    ["--- mtasts serve (%s)" % self.policy_server.current] +
                    read_lines(os.path.join(self.tmp, self.policy_server.current + ".out"))[-10:])
            self.results.record(label, problems, run, logs if problems else [])
        return {d["name"]: queue_id for d, _, _, queue_id, _, _ in sent}

    def postfix_cases(self, attacked):
        """Messages through Postfix to the domains with a `postfix` expectation: those of the
        S-39 domains (attacked=True: first, they start the recheck interval), or the others,
        all submitted at once."""
        if not self.postfix:
            return
        jobs = [(d, d["postfix"], "%s postfix delivers to %s" % (d.get("scenario", "-"),
                                                                  d["name"]), None)
                for d in self.world.domains
                if "postfix" in d and self.selected(d) and bool(d.get("attack")) == attacked]
        if attacked and jobs:
            self.postfix_first_at = time.monotonic()
        self.postfix_attempts(jobs)

    def postfix_after_attack(self):
        """S-39 through Postfix: with Postfix stopped (so that it holds no connection to it),
        `mtasts serve` is stopped and started again on the same SQLite file, after the
        attacker's reload; a new message to each attacked domain must still get the cached
        policy (deferred, never delivered in clear). Control: the same messages, flushed after
        the server was restarted with a memory cache, go to the attacker."""
        if not self.postfix:
            return
        domains = [d for d in self.attack_domains if "postfix_cached" in d["expect_attack"]]
        if not domains:
            return
        self.restart_policy_server(self.policy_server.cache)
        jobs = []
        for d in domains:
            exp = d["expect_attack"]["postfix_cached"]
            jobs.append((self.world.attacked(d), dict(exp, txt_queries_before=self.counts(d)[0]),
                         "S-39 %s: after the attack, Postfix through a restarted mtasts serve "
                         "on the same cache still applies the cached policy" % d["name"], None))
        queued = self.postfix_attempts(jobs)
        controls = [d for d in domains if "postfix_uncached" in d["expect_attack"]
                    and queued.get(d["name"])]
        if not controls:
            return
        self.restart_policy_server("memory")
        since = len(self.postfix.log())
        self.postfix.flush()
        self.postfix_attempts([
            (self.world.attacked(d), d["expect_attack"]["postfix_uncached"],
             "S-39 %s: control, the same message flushed through mtasts serve restarted with a "
             "memory cache goes to the attacker" % d["name"], queued[d["name"]])
            for d in controls], since=since)

    def restart_policy_server(self, cache):
        """Postfix stopped (its smtp processes keep their socketmap connections open while
        idle), then mtasts serve stopped with SIGTERM and started again with `cache`, then
        Postfix started again; its queue stays."""
        self.postfix.stop()
        started = time.monotonic()
        code = self.policy_server.stop()
        took = time.monotonic() - started
        problems = [] if code == 0 else ["exit status %s" % code]
        if took > STOP_PROMPT:
            problems.append("the stop took %.1f s, more than %.0f s" % (took, STOP_PROMPT))
        self.results.record("S-39 mtasts serve without clients stops on SIGTERM at once (exit "
                            "0, %.1f s), then starts on %s" % (took, cache), problems,
                            {"cmd": "kill -TERM mtasts serve", "code": code, "stdout": "",
                             "stderr": ""},
                            read_lines(os.path.join(self.tmp, self.policy_server.current +
                                                    ".out"))[-10:])
        self.policy_server.start(cache=cache)
        self.postfix.start()

    # -- OpenSMTPD as the sender, with table-mtasts as its tables ---------------------------

    def opensmtpd_prime(self):
        """S-39 through smtpd, first half: the policy of each attacked domain with an
        `opensmtpd_cached` expectation is put into the tables' SQLite file by `mtasts lookup`,
        run as the tables' user (as `mtasts refresh` would be). smtpd itself never asks about
        the domain before the attack: after it, only the shared file can make it enforce."""
        if not self.opensmtpd:
            return
        for d in self.attack_domains:
            if "opensmtpd_cached" not in d["expect_attack"]:
                continue
            self.opensmtpd_first_at = time.monotonic()
            run, got, problems = self.lookup_case(d, d["expect"], cache=self.opensmtpd.cache,
                                                  user=TABLE_USER)
            self.results.record("%s shared cache: %s cached for smtpd's tables by mtasts lookup "
                                "as user %s, in their SQLite file" % (
                                    d["scenario"], d["name"], TABLE_USER),
                                problems, run, self.domain_logs(d) if problems else [])

    def opensmtpd_cases(self):
        """Messages through smtpd to the domains with an `opensmtpd` expectation (never an
        attacked one: the S-39 case must find the policy in the shared file, not in what the
        tables learnt themselves), then through the smtpd whose tables' cache cannot be read
        to those with `opensmtpd_bad_cache`."""
        if not self.opensmtpd:
            return
        started = time.monotonic()
        label = "%s opensmtpd delivers to %s"
        self.opensmtpd_batch(self.opensmtpd, [
            (d, d["opensmtpd"], label % (d.get("scenario", "-"), d["name"]))
            for d in self.world.domains
            if "opensmtpd" in d and self.selected(d) and not d.get("attack")])
        label = "%s opensmtpd whose tables' cache cannot be read, a message to %s"
        self.opensmtpd_batch(self.opensmtpd_bad_cache, [
            (d, d["opensmtpd_bad_cache"], label % (d.get("scenario", "-"), d["name"]))
            for d in self.world.domains if "opensmtpd_bad_cache" in d and self.selected(d)])
        log("     (the OpenSMTPD deliveries in %.1f s)" % (time.monotonic() - started))

    def opensmtpd_after_attack(self):
        """S-39 through smtpd, second half: after the attacker's reload, a message to each
        attacked domain goes through the smtpd whose tables share the file `mtasts lookup`
        filled (it must still be enforced, the tables having queried the TXT record again),
        then, as the control, through the one whose tables have a memory cache."""
        if not self.opensmtpd:
            return
        for d in self.attack_domains:
            exp = d["expect_attack"]
            attacked = self.world.attacked(d)
            if "opensmtpd_cached" in exp:
                self.opensmtpd_batch(self.opensmtpd, [(
                    attacked, dict(exp["opensmtpd_cached"], txt_queries_before=self.counts(d)[0]),
                    "S-39 %s: after the attack, smtpd's tables still apply the policy mtasts "
                    "lookup cached in their SQLite file" % d["name"])])
            if "opensmtpd_uncached" in exp:
                self.opensmtpd_batch(self.opensmtpd_control, [(
                    attacked, exp["opensmtpd_uncached"],
                    "S-39 %s: control, smtpd whose tables have a memory cache falls for the "
                    "attacker" % d["name"])])

    def opensmtpd_batch(self, smtpd, jobs):
        """Each job (domain as the world now is, expectation, label) is one message, submitted
        one after the other (so that the rule each was queued by can be read from the log);
        then every first delivery attempt is awaited (bounded) and held to its expectation;
        then the next attempt of those with a `retried` expectation is forced (smtpctl
        schedule) and held to that. The receivers' connection counts are taken around each
        round: no other sender delivers meanwhile."""
        if not jobs:
            return
        hosts = {h: v["address"] for h, v in self.world.mx_hosts.items()}

        def counts():
            return {h: receiver_connections(self.tmp, h) for h in hosts}

        before = counts()
        sent = []
        for d, expect, label in jobs:
            primed = self.opensmtpd_primed(smtpd, d) if expect.get("primed") else None
            sent.append((d, expect, label, smtpd.send(d["name"], "os-" + d["name"].split(".")[0]),
                         primed))
        for _, _, _, att, _ in sent:
            att.wait()
        after = counts()
        retries = []
        for d, expect, label, att, primed in sent:
            self.opensmtpd_record(smtpd, d, expect, label, att, hosts, before, after, primed)
            if "retried" in expect:
                retries.append((d, expect["retried"],
                                label + ", then its next attempt (smtpctl schedule)", att.retry()))
        if not retries:
            return
        for _, _, _, att in retries:
            att.wait()
        again = counts()
        for d, expect, label, att in retries:
            self.opensmtpd_record(smtpd, d, expect, label, att, hosts, after, again, None)

    def opensmtpd_primed(self, smtpd, d):
        """A `primed` domain's policy put into the tables' cache by `mtasts lookup` as their
        user, just before the message: returns that lookup's problems and the domain's (TXT
        queries, HTTPS requests) after it, which the smtpd delivery must leave unchanged."""
        run, got, problems = self.lookup_case(d, {"source": "fetched"}, cache=smtpd.cache,
                                              user=TABLE_USER)
        return problems, self.counts(d), run

    def opensmtpd_record(self, smtpd, d, expect, label, att, hosts, before, after, primed):
        landed = self.landed(att.header_id, expect)
        problems = compare_opensmtpd(expect, att, hosts, landed, before, after)
        if primed is not None:
            label += ", its tables answering from the cache mtasts lookup filled"
            lookup_problems, counts, run = primed
            problems += ["mtasts lookup (as %s) into the tables' cache: %s" % (TABLE_USER, p)
                         for p in lookup_problems]
            if self.counts(d) != counts:
                problems.append("smtpd's tables made queries/requests of their own: (TXT "
                                "queries, HTTPS requests) %s -> %s" % (counts, self.counts(d)))
        if "txt_queries_before" in expect and self.counts(d)[0] <= expect["txt_queries_before"]:
            # The tables asked DNS again (S-39): the attacker's answer was seen.
            problems.append("the tables did not query the TXT record (unbound log): the "
                            "recheck was not exercised")
        xfail = expect.get("xfail")
        if xfail and problems:
            self.results.xfail(label, xfail, problems)
            return
        if xfail:
            problems = ["passes now: remove its xfail (%s)" % xfail]
        addresses = {hosts.get(m["host"].lower().rstrip(".")) for m in d["mx"]}
        logs = (self.domain_logs(d) + ["--- smtpd %s, this message" % smtpd.name] +
                att.own_lines(addresses) + ["--- smtpctl show queue: %s" % (
                    att.entry and att.entry["line"])] +
                ["--- smtpd %s (last 15 lines)" % smtpd.name] + smtpd.log()[-15:])
        self.results.record(label, problems, att.run, logs if problems else [])

    # -- the reference replies: mtasts serve against postfix-mta-sts-resolver ---------------

    def reference_cases(self):
        """The same socketmap questions to `mtasts serve` and to postfix-mta-sts-resolver's
        daemon, each with a fresh memory cache, and to both with a cache that cannot be read
        (a Redis where nothing listens): equal replies, except the DEPARTURES, each of which
        must show exactly its listed pair of replies."""
        questions = reference_questions(self.world, self.selected, self.args.k)
        if not any(questions.values()):
            return
        got = {}
        for pair, qs in questions.items():
            if not qs:
                continue
            redis = DEAD_REDIS if pair == "dead-cache" else None
            ours = PolicyServer(self.daemons, self.args.mtasts, self.tmp, "ref-mtasts-" + pair,
                                redis or "memory", self.certs.ca_pem,
                                ["--strict-testing", STRICT_MAP, "--tlsrpt", TLSRPT_MAP])
            theirs = ReferenceServer(self.daemons, PMSR_DAEMON, self.tmp,
                                     "ref-pmsr-" + pair, self.certs.ca_pem, redis)
            if not got:
                version = theirs.version()
                if version != PMSR_VERSION:
                    self.results.record(
                        "reference: %s %s installed" % (PMSR, PMSR_VERSION),
                        ["%s is %s; DEPARTURES lists %s's" % (PMSR, version, PMSR_VERSION)],
                        {"cmd": PMSR_DAEMON, "code": 0, "stdout": "", "stderr": ""}, [])
            ours.start()
            theirs.start()
            started = time.monotonic()
            for q, replies in ask_both(ours, theirs, qs).items():
                got[(pair,) + q] = replies
            log("     (%d questions to both servers, %s cache, in %.1f s)" % (
                len(qs), pair, time.monotonic() - started))
            if pair == "memory":
                self.stop_with_idle_client(ours)
            else:
                ours.stop()
            theirs.stop()
        with open(os.path.join(self.tmp, "reference-replies.json"), "w") as f:
            json.dump([{"pair": q[0], "map": q[1], "key": q[2], "mtasts": o, PMSR: t}
                       for q, (o, t) in sorted(got.items())], f, indent=1, ensure_ascii=False)
        departures = {(d.pair, d.map, d.key): d for d in DEPARTURES}
        alike = []
        unlike = []
        for q, (ours, theirs) in sorted(got.items()):
            dep = departures.get(q)
            if dep is None:
                if ours == theirs:
                    alike.append(q)
                else:
                    unlike.append("%s %s %r: mtasts %r, %s %r" % (q[0], q[1], q[2], ours,
                                                                   PMSR, theirs))
                continue
            problems = []
            if not reply_matches(ours, dep.ours):
                problems.append("mtasts serve: %r, listed %r" % (ours, dep.ours))
            if not reply_matches(theirs, dep.theirs):
                problems.append("%s: %r, listed %r" % (PMSR, theirs, dep.theirs))
            self.results.record(
                "%s reference: %s %s departs for %r (%s cache): %s" % (
                    dep.rule, PMSR, PMSR_VERSION, dep.key, dep.pair, dep.why),
                problems, {"cmd": "socketmap %s %s" % (dep.map, dep.key), "code": 0,
                           "stdout": "", "stderr": ""}, [])
        self.results.record(
            "R-SRV-1..7 reference: %d socketmap questions answered alike by mtasts serve and "
            "%s %s" % (len(alike), PMSR, PMSR_VERSION), unlike,
            {"cmd": "socketmap (%d questions)" % len(got), "code": 0, "stdout": "",
             "stderr": ""}, [])

    def stop_with_idle_client(self, server):
        """SIGTERM to `server` while a client that has had its answer keeps the connection
        open, as Postfix's smtp processes do between lookups: the server stops at once
        (nothing is being answered), not after its whole drain time."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as idle:
            idle.settimeout(5)
            idle.connect(server.socket)
            request = ("%s %s" % (POLICY_MAP, "s02.rw.test")).encode()
            idle.sendall(b"%d:%s," % (len(request), request))
            answered = idle.recv(4096)
            started = time.monotonic()
            code = server.stop()
            took = time.monotonic() - started
        label = "issue-13 mtasts serve stops on SIGTERM at once with an idle client (%.1f s)" % took
        problems = [] if answered.endswith(b",") else ["no answer before the stop: %r" % answered]
        if code != 0:
            problems.append("exit status %s" % code)
        if took > STOP_PROMPT:
            problems.append("the stop took %.1f s, more than %.0f s" % (took, STOP_PROMPT))
        run = {"cmd": "kill -TERM mtasts serve", "code": code, "stdout": "", "stderr": ""}
        self.results.record(label, problems, run, [])

    def serve_dane_cases(self):
        """S-76, S-77 through `mtasts serve` asking the world's validating unbound: for each
        domain with a `serve` expectation, the reply under `--dane auto` (the default), `only`
        and `off`, each server with a fresh memory cache. A listed reply ending in "..." is
        a prefix."""
        domains = [d for d in self.world.domains if "serve" in d and self.selected(d)]
        if not domains:
            return
        for mode in ("auto", "only", "off"):
            server = PolicyServer(self.daemons, self.args.mtasts, self.tmp, "dane-" + mode,
                                  "memory", self.certs.ca_pem, ["--dane", mode])
            server.start()
            try:
                for d in domains:
                    want = d["serve"][mode]
                    got = server.query(d["name"])
                    ok = got.startswith(want[:-3]) if want.endswith("...") else got == want
                    problems = [] if ok else ["replied %r, expected %r" % (got, want)]
                    scenario = "S-77" if want.startswith("TEMP") else \
                        "S-76" if want.startswith("OK dane") else d.get("scenario", "-")
                    self.results.record(
                        "%s serve --dane %s answers %s: %s" % (
                            scenario, mode, d["name"], want),
                        problems, {"cmd": "socketmap %s %s" % (POLICY_MAP, d["name"]),
                                   "code": 0, "stdout": got, "stderr": ""},
                        self.domain_logs(d) if problems else [])
            finally:
                server.stop()

    # -- TLS-RPT end to end (issue 15) ------------------------------------------------------

    TLSRPT_ORG = "mtasts realworld sender"
    TLSRPT_SUBMITTER = "sender.test"
    # Given as a mailto: URI in the settings: the report carries the address (RFC 8460 4.4).
    TLSRPT_CONTACT = "postmaster@sender.test"
    TLSRPT_INBOX = "mail.tlsrpt-inbox.rw.test"  # the SMTP receiver (relay and mailto: host)

    def tlsrpt_settings(self):
        sender = self.exim_tlsrpt
        path = os.path.join(sender.dir, "tlsrpt-send.conf")
        with open(path, "w") as f:
            f.write("nameserver = %s:53\ntrust_roots = %s\ncache = %s\nfetch_timeout = 5\n"
                    "dns_timeout = 3\ntlsrpt.organization_name = %s\n"
                    "tlsrpt.contact_info = mailto:%s\ntlsrpt.submitter = %s\n"
                    "tlsrpt.smtp_relay = %s:25\n" % (
                        DNS_ADDR, self.certs.ca_pem, sender.cache_file, self.TLSRPT_ORG,
                        self.TLSRPT_CONTACT, self.TLSRPT_SUBMITTER, self.TLSRPT_INBOX))
        os.chmod(path, 0o644)
        return path

    def tlsrpt_cli(self, settings, argv, clock=None):
        """`mtasts --config SETTINGS tlsrpt ...` as the Exim user, the owner of the store;
        with `clock` ("YYYY-MM-DD hh:mm:ss" UTC), on that clock (libfaketime: the wall clock
        starts there and runs; monotonic clocks, and so every deadline, stay real)."""
        fake = [] if clock is None else [
            "env", "TZ=UTC", "FAKETIME_DONT_FAKE_MONOTONIC=1", "faketime", "-f", "@" + clock]
        cmd = ["runuser", "-u", "Debian-exim", "--"] + fake + [
            self.args.mtasts, "--config", settings, "tlsrpt"] + argv
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            code, out, err = r.returncode, r.stdout, r.stderr
        except subprocess.TimeoutExpired as e:
            code, out, err = None, e.stdout or "", (e.stderr or "") + "\n(timed out)"
        return {"cmd": " ".join(cmd), "code": code, "stdout": out, "stderr": err}

    def tlsrpt_expect(self, d):
        """The domain's `tlsrpt.report` with each failure's receiving IP filled in (the MX
        host's address in this run)."""
        rep = d["tlsrpt"]["report"]
        if rep is None:
            return None
        rep = dict(rep)
        # (An expectation that gives receiving_ip, null, is for a host never connected to.)
        rep["failures"] = [f if "receiving_ip" in f else dict(f, receiving_ip=self.world.mx_hosts[
            f["receiving_mx_hostname"]]["address"]) for f in rep["failures"]]
        return rep

    def sending_ips(self, report):
        """Each failure detail's sending-mta-ip must be an address the receiving MX host's
        Exim logged a connection from."""
        problems = []
        for p in report.get("policies", []):
            for f in p.get("failure-details", []):
                host = f.get("receiving-mx-hostname", "")
                if f.get("failure-reason-code") == "mx-mismatch" and "receiving-ip" not in f:
                    # A host left out is never connected to: no sending address either.
                    if "sending-mta-ip" in f:
                        problems.append("sending-mta-ip %r for %s, which was never connected "
                                        "to" % (f["sending-mta-ip"], host))
                    continue
                seen = {ln.split("[", 1)[1].split("]", 1)[0] for ln in read_lines(
                    os.path.join(self.tmp, "mx", host, "log", "mainlog"))
                    if "SMTP connection from" in ln and "[" in ln}
                if f.get("sending-mta-ip") not in seen:
                    problems.append("sending-mta-ip %r at %s: its receiver saw connections from "
                                    "%s" % (f.get("sending-mta-ip"), host, sorted(seen)))
        return problems

    def inbox_mails(self):
        new = os.path.join(self.tmp, "mx", self.TLSRPT_INBOX, "maildir", "new")
        try:
            names = sorted(os.listdir(new))
        except OSError:
            return []
        out = []
        for name in names:
            with open(os.path.join(new, name), "rb") as f:
                out.append((os.path.join(new, name), f.read()))
        return out

    def tlsrpt_cases(self):
        """Dedicated Exim deliveries through a sender of their own (its SQLite file is the
        report store the snippet's event_action records into), the store's counts read back
        exactly (`tlsrpt show`), `tlsrpt send` on the day (nothing) and on the next day's
        clock (libfaketime) to the domains' rua URIs (the HTTPS receiver, the SMTP receiver's
        maildir), and what the receivers got unpacked and held to the same counts and failure
        details."""
        if not self.exim_tlsrpt:
            return
        domains = [d for d in self.world.domains if "tlsrpt" in d and self.selected(d)]
        if not domains:
            return
        sender = self.exim_tlsrpt
        # Sessions count under the UTC day they happen: never start within 30 s of midnight
        # (the deliveries and the reads take a few seconds), wait for the new day instead.
        now = datetime.datetime.now(datetime.timezone.utc)
        left = 86400 - (now.hour * 3600 + now.minute * 60 + now.second)
        if left < 30:
            time.sleep(left + 1)
        today = datetime.datetime.now(datetime.timezone.utc).date()
        for d in domains:
            n = d["tlsrpt"]["messages"]
            for i in range(n):
                self.exim_delivery(sender, d, d["tlsrpt"]["exim"],
                                   "issue 15 TLS-RPT: exim delivers to %s (message %d of %d)" % (
                                       d["name"], i + 1, n))
        settings = self.tlsrpt_settings()
        today = today.isoformat()
        # The store, as recorded by the module through the snippet's event_action.
        for d in domains:
            want = self.tlsrpt_expect(d)
            run = self.tlsrpt_cli(settings, ["show", today, d["name"]])
            problems = []
            if want is None:
                if run["code"] != 1 or "no TLS-RPT counts" not in run["stderr"]:
                    problems.append("expected no counts for %s (show: exit 1, no TLS-RPT "
                                    "counts); exit %s" % (d["name"], run["code"]))
                label = "issue 15 TLS-RPT: the sender's store holds no session for %s" % (
                    d["name"])
            else:
                label = ("issue 15 TLS-RPT: the sender's store holds %d successful, %d failed "
                         "sessions for %s%s" % (
                             want["successful"], want["failed"], d["name"],
                             "".join(", %d %s at %s" % (f["count"], f["result_type"],
                                                        f["receiving_mx_hostname"])
                                     for f in want["failures"])))
                try:
                    report = json.loads(run["stdout"])
                    problems += compare_report(want, report, d["name"], today, self.TLSRPT_ORG,
                                               self.TLSRPT_CONTACT)
                    problems += self.sending_ips(report)
                except ValueError:
                    problems.append("show printed no JSON (exit %s)" % run["code"])
            self.results.record(label, problems, run,
                                ["--- sender %s mainlog" % sender.name] + sender.mainlog()[-30:]
                                if problems else [])
        expected = [d for d in domains if d["tlsrpt"]["report"] is not None]
        # Today: the day has not ended, nothing is sent (R-RPT-10).
        run = self.tlsrpt_cli(settings, ["send", "--json"])
        try:
            early = [o for o in json.loads(run["stdout"]) if o.get("day") == today]
        except (ValueError, TypeError, AttributeError):
            early = None
        tomorrow = (datetime.date.fromisoformat(today) + datetime.timedelta(days=1)).isoformat()
        problems = []
        if run["code"] != 0 or early is None:
            problems.append("send on the same day: exit %s, expected 0 with JSON" % run["code"])
        else:
            # Each domain with counts: not due, its send time within the next day.
            got = sorted((o.get("domain"), o.get("action"), (o.get("at") or "")[:10])
                         for o in early)
            want = sorted((d["name"], "not-due", tomorrow) for d in expected)
            if got != want:
                problems.append("send on the same day: outcomes %s, expected %s" % (got, want))
        self.results.record("issue 15 TLS-RPT: mtasts tlsrpt send on the day itself sends "
                            "nothing (the day has not ended; each send time is the next day)",
                            problems, run, [])
        # The next day: the sender runs on a clock moved to 23:00 UTC of the day after, when
        # every domain's send time (spread over that day, R-RPT-10) has come: no --now.
        problems = []
        run = self.tlsrpt_cli(settings, ["send", "--json"], clock=tomorrow + " 23:00:00")
        try:
            outcomes = json.loads(run["stdout"])
        except ValueError:
            outcomes = None
        if run["code"] != 0 or not isinstance(outcomes, list):
            problems.append("send: exit %s, expected 0 with JSON" % run["code"])
        else:
            # The view writes a mailto:'s size limit in bytes (!10m as !10485760).
            got = sorted((o["domain"], o["action"], (o.get("uri") or "").split("!")[0])
                         for o in outcomes)
            want = []
            for d in expected:
                rep = d["tlsrpt"]["report"]
                uris = [u for u in txt_rua(d) if u.startswith(rep["via"] + ":")]
                want.append((d["name"], "delivered", uris[0].split("!")[0] if uris else "?"))
            if got != sorted(want):
                problems.append("send outcomes %s, expected %s" % (got, sorted(want)))
        self.results.record("issue 15 TLS-RPT: on the next day's clock, mtasts tlsrpt send "
                            "delivers %d reports (%s)" % (len(expected), ", ".join(
                                "%s by %s" % (d["name"], d["tlsrpt"]["report"]["via"])
                                for d in expected)),
                            problems, run, [])
        # What the receivers got.
        mails_wanted = sum(1 for d in expected if d["tlsrpt"]["report"]["via"] == "mailto")
        deadline = time.monotonic() + 10
        while len(self.inbox_mails()) < mails_wanted and time.monotonic() < deadline:
            time.sleep(0.1)
        posts = self.tlsrpt_https.requests()
        mails = self.inbox_mails()
        received_files = []
        for n, (meta, body) in enumerate(posts, 1):
            if meta["path"] != REFUSING_PATH:
                path = os.path.join(self.tlsrpt_https.dir, "report-%d.json.gz" % n)
                with open(path, "wb") as f:
                    f.write(body)
                received_files.append(path)
        received_files += [path for path, _ in mails]
        for d in domains:
            want = self.tlsrpt_expect(d)
            problems = []
            # HTTPS: the accepted POSTs and the refused ones naming the domain.
            by_https, refused = [], []
            for meta, body in posts:
                try:
                    report = json.loads(gzip.decompress(body))
                except (OSError, ValueError):
                    problems.append("a POST to %s that is no gzip JSON" % meta["path"])
                    continue
                domains_in = {p.get("policy", {}).get("policy-domain")
                              for p in report.get("policies", [])}
                if d["name"] not in domains_in:
                    continue
                ctype = {k.lower(): v for k, v in meta["headers"].items()}.get("content-type")
                if ctype != "application/tlsrpt+gzip":
                    problems.append("POST Content-Type %r, expected application/tlsrpt+gzip"
                                    % ctype)
                (refused if meta["path"] == REFUSING_PATH else by_https).append(report)
            by_mail = []
            for path, raw in mails:
                try:
                    headers, report = mail_report(raw)
                except (ValueError, OSError) as e:
                    problems.append("%s: not a report mail: %s" % (path, e))
                    continue
                if headers.get("tls-report-domain") != d["name"]:
                    continue
                by_mail.append(report)
                want_subject = "Report Domain: %s Submitter: %s Report-ID: <%s@%s>" % (
                    d["name"], self.TLSRPT_SUBMITTER, report.get("report-id"),
                    self.TLSRPT_SUBMITTER)
                for key, value in (("subject", want_subject),
                                   ("tls-report-submitter", self.TLSRPT_SUBMITTER),
                                   ("tls-required", "No"), ("content-type", "multipart/report"),
                                   ("report-type", "tlsrpt"),
                                   ("to", "tlsrpt@tlsrpt-inbox.rw.test")):
                    if headers.get(key) != value:
                        problems.append("mail %s: %r, expected %r" % (key, headers.get(key),
                                                                       value))
                att = headers.get("attachment", "")
                if not (att.startswith("%s!%s!" % (self.TLSRPT_SUBMITTER, d["name"]))
                        and att.endswith(".json.gz")):
                    problems.append("attachment name %r, expected %s!%s!BEGIN!END!ID.json.gz" % (
                        att, self.TLSRPT_SUBMITTER, d["name"]))
            if want is None:
                if by_https or by_mail or refused:
                    problems.append("a report was sent (%d by HTTPS, %d by mail, %d refused)" % (
                        len(by_https), len(by_mail), len(refused)))
                label = "issue 15 TLS-RPT: no report sent for %s" % d["name"]
            else:
                got = by_https if want["via"] == "https" else by_mail
                other = by_mail if want["via"] == "https" else by_https
                if len(got) != 1 or other:
                    problems.append("received %d by HTTPS, %d by mail; expected one by %s" % (
                        len(by_https), len(by_mail), want["via"]))
                if len(refused) != (1 if want.get("refused_first") else 0):
                    problems.append("%d POSTs to the refusing URI, expected %d" % (
                        len(refused), 1 if want.get("refused_first") else 0))
                for report in got[:1]:
                    problems += compare_report(want, report, d["name"], today,
                                               self.TLSRPT_ORG, self.TLSRPT_CONTACT)
                    problems += self.sending_ips(report)
                    if refused and refused[0].get("report-id") != report.get("report-id"):
                        problems.append("the refused and the delivered copies have other ids")
                label = ("issue 15 TLS-RPT: the %s receiver got %s's report: %d successful, "
                         "%d failed%s" % (
                             "HTTPS" if want["via"] == "https" else "SMTP", d["name"],
                             want["successful"], want["failed"],
                             "".join(", %d %s at %s" % (f["count"], f["result_type"],
                                                        f["receiving_mx_hostname"])
                                     for f in want["failures"])))
            self.results.record(label, problems, run, self.tlsrpt_https.access_log()
                                if problems else [])
        # The domain owner's side: summarize reads what the receivers got.
        run = self.mtasts(["tlsrpt", "summarize", "--json"] + received_files)
        problems = []
        try:
            view = json.loads(run["stdout"])
            rows = sorted((r["policy_domain"], r["organization"], r["reports"],
                           r["successful_sessions"], r["failed_sessions"],
                           sorted((c["name"], c["sessions"]) for c in r["failures"]),
                           sorted((c["name"], c["sessions"]) for c in r["failing_mx_hosts"]))
                          for r in view["summary"])
        except (ValueError, KeyError, TypeError):
            view, rows = None, None
            problems.append("summarize printed no SummaryView (exit %s)" % run["code"])
        want = sorted((d["name"], self.TLSRPT_ORG, 1, d["tlsrpt"]["report"]["successful"],
                       d["tlsrpt"]["report"]["failed"],
                       sorted((f["result_type"], f["count"])
                              for f in d["tlsrpt"]["report"]["failures"]),
                       sorted((f["receiving_mx_hostname"], f["count"])
                              for f in d["tlsrpt"]["report"]["failures"]))
                      for d in expected)
        if view is not None and (rows != want or not view.get("ok") or run["code"] != 0):
            problems.append("summarize rows %s (ok %s, exit %s), expected %s" % (
                rows, view.get("ok"), run["code"], want))
        self.results.record("issue 15 TLS-RPT: mtasts tlsrpt summarize reads the %d received "
                            "reports back with the same counts" % len(expected),
                            problems, run, [])
        # Delivered reports are never sent again (S-85), not even when forced.
        run = self.tlsrpt_cli(settings, ["send", "--now", "--json"],
                              clock=tomorrow + " 23:00:00")
        problems = []
        try:
            outcomes = json.loads(run["stdout"])
        except ValueError:
            outcomes = None
        if run["code"] != 0 or outcomes != []:
            problems.append("a second send --now: exit %s, outcomes %s; expected 0, []" % (
                run["code"], outcomes))
        if len(self.tlsrpt_https.requests()) != len(posts) or len(self.inbox_mails()) != len(
                mails):
            problems.append("a second send --now sent again")
        self.results.record("issue 15 TLS-RPT (S-85): a second tlsrpt send --now sends "
                            "nothing again", problems, run, [])

    def selected(self, d):
        k = self.args.k
        return not k or k in d["name"] or k == d.get("scenario")


# The Python wheel's lookup of one domain (argv: nameserver, CA file, domain), printing the
# object `mtasts lookup --json` prints for it; exit 1 when the resolution carries a failure.
PYTHON_LOOKUP = """
import json, sys
import mtasts
nameserver, ca, domain = sys.argv[1:4]
resolver = mtasts.Resolver(nameservers=[nameserver], trust_roots=ca, cache="memory",
                           fetch_timeout=3.0, dns_timeout=2.0)
resolution = resolver.resolve(domain)
print(json.dumps(resolution.to_dict()))
sys.exit(1 if resolution.failure is not None else 0)
"""


def compare_lookup(expect, got, code):
    problems = []
    failure = got.get("failure") or {}
    policy = got.get("policy") or {}

    def want(key, actual):
        if key in expect and expect[key] != actual:
            problems.append("%s: got %r, expected %r" % (key, actual, expect[key]))

    want("mode", got.get("mode"))
    want("source", got.get("source"))
    want("result_type", failure.get("result_type"))
    want("failure_kind", failure.get("kind"))
    want("policy_id", policy.get("id"))
    if "reason_contains" in expect and expect["reason_contains"] not in (
            failure.get("reason") or ""):
        problems.append("failure reason %r does not contain %r" % (
            failure.get("reason"), expect["reason_contains"]))
    if expect.get("notice") and not got.get("notice"):
        problems.append("notice: expected one, got none")
    if "raw_contains" in expect and expect["raw_contains"] not in (policy.get("text") or ""):
        problems.append("policy text does not contain %r" % expect["raw_contains"])
    wanted_code = 1 if got.get("failure") else 0
    if code != wanted_code:
        problems.append("exit status %s, expected %d" % (code, wanted_code))
    return problems


def compare_check(expect, got, code):
    problems = []
    for key in ("ok", "defer"):
        if key in expect and got.get(key) != expect[key]:
            problems.append("%s: got %r, expected %r" % (key, got.get(key), expect[key]))
    errors = sorted(p["code"] + ("@" + p["mx"] if p.get("mx") else "")
                    for p in got.get("problems", []) if p.get("severity") == "error")
    if "problems" in expect and errors != sorted(expect["problems"]):
        problems.append("problems (severity error): got %s, expected %s" % (
            errors, sorted(expect["problems"])))
    by_host = {m.get("host"): m for m in got.get("mx", [])}
    for host, want in expect.get("mx", {}).items():
        m = by_host.get(host)
        if m is None:
            problems.append("MX %s not in the report (got %s)" % (host, sorted(by_host)))
            continue
        if "delivery" in want and m.get("delivery") != want["delivery"]:
            problems.append("MX %s delivery: got %r, expected %r" % (
                host, m.get("delivery"), want["delivery"]))
        if "probe" in want:
            outcome = (m.get("probe") or {}).get("outcome")
            if outcome != want["probe"]:
                problems.append("MX %s probe: got %r, expected %r" % (host, outcome, want["probe"]))
    wanted_code = 0 if got.get("ok") else 1
    if code != wanted_code:
        problems.append("exit status %s, expected %d" % (code, wanted_code))
    return problems


def txt_rua(d):
    """The rua URIs of the domain's `_smtp._tls` record in its `dns` lines."""
    for line in d["dns"]:
        if line.startswith("_smtp._tls.") and "rua=" in line:
            return line.split("rua=", 1)[1].split('"')[0].strip().rstrip(";").split(",")
    return []
