"""Exim as the sender: the configuration of our own (EximSender) that includes the shipped
snippet unchanged (or a copy whose per-host module calls cannot be answered), its deliveries
(-odf, or queued and forced with -M), its log, spool and retry database; the policy cache that
opens but cannot be read (damage_cache); and compare_exim(), what Exim did with one message
against an `exim` expectation."""

import os
import shutil
import subprocess
import time

from .common import DNS_ADDR, read_lines, sh


SENDER_DOMAIN = "sender.test"
# The domain whose lookup creates the policy cache that damage_cache() then damages (its own,
# so that no other case's request counts change).
CACHE_SEED_DOMAIN = "seed.rw.test"
# The shipped routers, installed beside the transport snippet.
ROUTER_SNIPPET = "mtasts-router.conf"
# Where the "missing module" sender looks for mtasts_exim.so (nothing is there).
MISSING_MODULE = "/nonexistent/mtasts/mtasts_exim.so"
# The configuration the "host failure" sender gives the module for its per-host calls only
# (nothing is there): the module loads and answers for the domain, then cannot answer per host.
MISSING_HOST_CONF = "/nonexistent/mtasts/exim.conf"


class EximSender:
    """An Exim sender configuration of our own (-C) that includes the shipped snippet as is and
    routes every remote domain through its transport. Each delivery is a separate
    `exim -odf` process, so a policy shared between deliveries goes through the SQLite cache.
    Exim finds the world with the namespace's /etc/resolv.conf and trusts its test CA through
    the namespace's system trust store (the snippet says `tls_verify_certificates = system`)."""

    def __init__(self, tmp, name, exim, module, snippet, ca_pem, cache, host_conf=None):
        self.exim = exim
        self.name = name
        # The shipped routers (mtasts-router.conf), beside the transport snippet; an older
        # snippet without them is routed by a plain dnslookup router.
        router = os.path.join(os.path.dirname(snippet), ROUTER_SNIPPET)
        self.router = router if os.path.isfile(router) else None
        self.dir = os.path.join(tmp, name)
        for sub in ("spool", "log", "cache"):
            os.makedirs(os.path.join(self.dir, sub))
        subdirs = [os.path.join(self.dir, sub) for sub in ("spool", "log", "cache")]
        sh(["chown", "Debian-exim:Debian-exim"] + subdirs)
        self.mtasts_conf = os.path.join(self.dir, "mtasts.conf")
        location = "memory" if cache == "memory" else os.path.join(self.dir, "cache", "cache.db")
        with open(self.mtasts_conf, "w") as f:
            f.write("# mtasts_exim.so configuration of the realworld sender %s\n"
                    "nameserver = %s:53\ntrust_roots = %s\ncache = %s\n"
                    "fetch_timeout = 5\ndns_timeout = 3\nlog_level = info\n" % (
                        name, DNS_ADDR, ca_pem, location))
        if host_conf:
            # A copy of the snippet whose per-host module calls (those with $host) use
            # host_conf: they fail while the domain-level one (`port`) succeeds.
            with open(snippet) as f:
                text = f.read()
            marker = "{$host}{MTASTS_CONF}"
            if marker not in text:
                raise RuntimeError("%s: no per-host module call (%s) to redirect" % (
                    snippet, marker))
            snippet = os.path.join(self.dir, "snippet-host-conf.conf")
            with open(snippet, "w") as f:
                f.write(text.replace(marker, "{$host}{%s}" % host_conf))
            os.chmod(snippet, 0o644)
        self.cache_file = location
        self.conf = os.path.join(self.dir, "exim.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join([
                "primary_hostname = %s" % SENDER_DOMAIN,
                "spool_directory = %s/spool" % self.dir,
                "log_file_path = %s/log/%%slog" % self.dir,
                "exim_user = Debian-exim",
                "exim_group = Debian-exim",
                "keep_environment =",
                "host_lookup =",
                "rfc1413_hosts =",
                "domainlist local_domains = %s" % SENDER_DOMAIN,
                "log_selector = +tls_certificate_verified +tls_peerdn +tls_sni +outgoing_port",
                # DANE needs DNSSEC answers (the AD bit; the namespace's resolv.conf has
                # options trust-ad).
                "dns_dnssec_ok = 1",
                "MTASTS_SO = %s" % module,
                "MTASTS_CONF = %s" % self.mtasts_conf,
                # Every address of the world is local to the namespace: send anyway.
                "MTASTS_ROUTER_SELF = send",
                "begin routers",
            ] + ([".include %s" % self.router] if self.router else [
                "dnslookup:",
                "  driver = dnslookup",
                "  domains = ! +local_domains",
                "  transport = remote_smtp_mtasts",
                "  self = send",
                "  no_more",
            ]) + [
                "begin transports",
                ".include %s" % snippet,
                "begin retry",
                "* * F,1h,10m",
            ]) + "\n")
        os.chmod(self.conf, 0o644)
        os.chmod(self.mtasts_conf, 0o644)
        self.count = 0

    def mainlog(self):
        return read_lines(os.path.join(self.dir, "log", "mainlog"))

    def run_exim(self, argv, message=None, as_exim_user=False):
        cmd = [self.exim, "-C", self.conf] + argv
        if as_exim_user:
            cmd = ["runuser", "-u", "Debian-exim", "--"] + cmd
        started = time.monotonic()
        try:
            r = subprocess.run(cmd, input=message, capture_output=True, text=True, timeout=60)
            code, out, err = r.returncode, r.stdout, r.stderr
        except subprocess.TimeoutExpired as e:
            code, out, err = None, e.stdout or "", (e.stderr or "") + "\n(timed out)"
        return {"cmd": " ".join(cmd), "code": code, "stdout": out,
                "stderr": "\n".join(x for x in err.splitlines() if "lost privilege" not in x),
                "seconds": time.monotonic() - started}

    def continued_running(self):
        """Whether an Exim process of this sender continuing a connection (-MC) still runs."""
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open("/proc/%s/cmdline" % entry, "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if b"-MC" in argv and self.conf.encode() in argv:
                return True
        return False

    def queue_id(self, msgid):
        for ln in self.mainlog():
            if " <= " in ln and ("id=" + msgid) in ln:
                return ln.split()[2]
        return None

    def own_lines(self, queue_id):
        return [ln for ln in self.mainlog() if queue_id and len(ln.split()) > 2
                and ln.split()[2] == queue_id]

    def queued(self, queue_id):
        """Whether the message is still on the sender's queue (its spool header exists)."""
        return os.path.exists(os.path.join(self.dir, "spool", "input", queue_id + "-H"))

    def retry_keys(self):
        """The keys of the sender's retry database (exim_dumpdb SPOOL retry)."""
        dumpdb = shutil.which("exim_dumpdb") or "/usr/sbin/exim_dumpdb"
        r = subprocess.run([dumpdb, os.path.join(self.dir, "spool"), "retry"],
                           capture_output=True, text=True)
        # Each record: "  T:host:ip errno more_errno text", then a line of dates.
        keys = [ln.split()[0] for ln in r.stdout.splitlines()
                if ln.strip() and ln.strip()[1:2] == ":" and ln.strip()[0].isupper()]
        return keys, r

    def send_forced(self, domain, tag):
        """Queues one message to user@domain (-odq), then delivers it by hand (-M: retry
        times ignored, as a queue run forcing it would), and waits (10 s at most) until no
        delivery continuing its connection (-MC, a waiting message) runs any more."""
        self.count += 1
        msgid = "%s.%d.%s@%s" % (tag, self.count, self.name, SENDER_DOMAIN)
        message = ("From: postmaster@%s\nTo: user@%s\nSubject: realworld %s\n"
                   "Message-ID: <%s>\n\nA message of the mtasts real-daemon test world.\n" % (
                       SENDER_DOMAIN, domain, tag, msgid))
        run = self.run_exim(["-odq", "-f", "postmaster@" + SENDER_DOMAIN, "user@" + domain],
                            message)
        queue_id = self.queue_id(msgid)
        if queue_id:
            # As the Exim user, as a queue runner's delivery would be after dropping root: the
            # library refuses, for a root process, a cache directory the Exim user owns.
            forced = self.run_exim(["-M", queue_id], as_exim_user=True)
            run = dict(forced, cmd=run["cmd"] + " ; " + forced["cmd"])
        time.sleep(0.5)  # a continued delivery is started by a process -M does not wait for
        deadline = time.monotonic() + 10
        while self.continued_running() and time.monotonic() < deadline:
            time.sleep(0.1)
        return run, msgid, self.own_lines(queue_id)

    def send(self, domain, tag):
        """Submits one message to user@domain and delivers it in the foreground. Returns the
        command record and the sender's log lines of this message."""
        self.count += 1
        msgid = "%s.%d.%s@%s" % (tag, self.count, self.name, SENDER_DOMAIN)
        message = ("From: postmaster@%s\nTo: user@%s\nSubject: realworld %s\n"
                   "Message-ID: <%s>\n\nA message of the mtasts real-daemon test world.\n" % (
                       SENDER_DOMAIN, domain, tag, msgid))
        run = self.run_exim(["-odf", "-f", "postmaster@" + SENDER_DOMAIN, "user@" + domain],
                            message)
        return run, msgid, self.own_lines(self.queue_id(msgid))


def damage_cache(mtasts, path, ca_pem, user="Debian-exim"):
    """Makes `path` a policy cache that opens but cannot be read: a lookup as `user` (the Exim
    user, or smtpd's table user) creates it (the library checkpoints the WAL into the file when
    it closes), then the first bytes of pages 2 and 3 (the entries table and its index) are
    overwritten, as examples/c/test_mtasts.c does."""
    sh(["runuser", "-u", user, "--", mtasts, "--nameserver", DNS_ADDR + ":53",
        "--trust-roots", ca_pem, "--cache", path, "lookup", CACHE_SEED_DOMAIN])
    with open(path, "r+b") as f:
        for page in (2, 3):
            f.seek((page - 1) * 4096)
            f.write(b"\xa5" * 64)


def compare_exim(expect, own, landed, contacts_before, contacts_after):
    """What Exim did with one message against an `exim` expectation."""
    problems = []
    delivered = [ln for ln in own if " => " in ln]
    deferred = [ln for ln in own if " == " in ln]
    if not own:
        problems.append("the message is not in the sender's log")
    if "delivered" in expect:
        want = expect["delivered"].lower()
        hosts = [ln.split(" H=", 1)[1].split()[0].lower() for ln in delivered if " H=" in ln]
        if hosts != [want]:
            problems.append("delivered to %s, expected %s" % (hosts or "nobody", want))
        if landed != [want]:
            problems.append("the message is in the maildir of %s, expected %s" % (
                landed or "no receiver", want))
        line = delivered[0] if delivered else ""
        if "verified" in expect and ("CV=yes" in line) != expect["verified"]:
            problems.append("certificate verified (CV=yes): %s, expected %s" % (
                "CV=yes" in line, expect["verified"]))
        if "dane" in expect and ("CV=dane" in line) != expect["dane"]:
            problems.append("DANE-verified (CV=dane): %s, expected %s" % (
                "CV=dane" in line, expect["dane"]))
        if "tls" in expect and (" X=TLS" in line) != expect["tls"]:
            problems.append("TLS used: %s, expected %s" % (" X=TLS" in line, expect["tls"]))
    if expect.get("deferred"):
        if delivered or landed:
            problems.append("delivered (%s), expected deferred" % (landed or delivered))
        if not deferred:
            problems.append("no deferral (==) in the sender's log")
        reason = expect.get("reason_contains")
        if reason and not any(reason in ln for ln in own):
            problems.append("no log line of the message contains %r" % reason)
    for host in expect.get("not_contacted", []):
        b, a = contacts_before.get(host, 0), contacts_after.get(host, 0)
        if a != b:
            problems.append("%s was contacted (%d new SMTP connections)" % (host, a - b))
    return problems
