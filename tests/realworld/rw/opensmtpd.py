"""OpenSMTPD as the sender (issue 14): Debian's smtpd 6.8, unpacked by scripts/install-deps into
target/rw-opensmtpd, run with the shipped smtpd.conf (integrations/opensmtpd/smtpd.conf: its
`mtasts` and `mtasts_late` tables served by table-mtasts) in a private mount namespace of its
own (OpenSmtpd); messages submitted over SMTP to its listener on 127.0.0.1; its queue read and
its retries forced with smtpctl inside that mount namespace (nsenter); what one delivery
attempt did, read from smtpd's log (Attempt); and compare_opensmtpd(), that attempt against an
`opensmtpd` expectation.

smtpd's paths are compiled in: /usr/libexec/opensmtpd (its helpers and `table-<backend>`, which
must exist when the configuration is read), /var/spool/smtpd (the queue), /var/lib/opensmtpd/
empty (the chroot of its unprivileged processes) and /var/run/smtpd.sock, /var/run/smtpd.pid.
Each instance gets all of them in a mount namespace of its own (`unshare --mount`, private
propagation: nothing is seen outside it, and it ends with smtpd): a read-only overlay on
/usr/libexec and on /var/lib adding the run's opensmtpd/ directories, a writable overlay on
/var/spool whose upper directory is the run's, a tmpfs on /run. The host's /etc, /usr and /var
are never written. smtpd runs in the foreground (-d) and logs to stderr (-v; -T lookup shows
every table question and answer, -T rules which rule chose the action), which the table
backends share. The namespace's /etc/resolv.conf points at the world's unbound. The shipped
`ca mtasts` line is pointed at the test CA, and the system bundle (which 6.8 trusts besides a
`ca`) is an empty file in smtpd's mount namespace: smtpd can verify the receivers'
certificates only through the `ca` of its relay actions. smtpd's own resolver (the bundled libasr) skips 127.0.0.1 for its AI_ADDRCONFIG
test; the world's other addresses on lo satisfy it."""

import os
import re
import shutil
import smtplib
import socket
import subprocess
import time

from .common import DNS_ADDR, read_lines, sh

SENDER_DOMAIN = "sender.test"
# table-mtasts runs as this user (smtpd's lookup process after its privilege drop): the table's
# cache must be its own, and so is `mtasts lookup` run for it (docs/cache.md).
TABLE_USER = "opensmtpd"
START_LIMIT = 10.0  # seconds smtpd gets to listen
# Seconds one delivery attempt may take. A refused TLS session disables the route to that
# address for 15 s; smtpd ends the attempt (TempFail) about 11 s after it started.
ATTEMPT_LIMIT = 40.0
QUEUE_LIMIT = 5.0  # seconds a message gets to leave `inflight` in `smtpctl show queue`
# What the test changes in the shipped smtpd.conf (each must be there; all but the first once):
# the tables' settings file, the trust store of `ca mtasts`, the listener, the aliases file.
SNIPPET_SETTINGS = "mtasts:/etc/mtasts/mtasts.conf"
SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
SNIPPET_CA = 'cert "%s"' % SYSTEM_BUNDLE
SNIPPET_LISTEN = "listen on localhost"
SNIPPET_ALIASES = "file:/etc/aliases"

SESSION = re.compile(r"^([0-9a-f]{16}) ")
CONNECTING = re.compile(r"^([0-9a-f]{16}) mta connecting address=[a-z+]+://([0-9.]+):25 ")
RULE = re.compile(r"^rule #\d+ matched: .* action (\S+)$")


class OpenSmtpd:
    """One smtpd of our own under <tmp>/opensmtpd/<name>: the shipped smtpd.conf with its
    settings file, listener (127.0.0.1:`port`) and aliases file replaced, its table-mtasts
    settings (the world's unbound, the test CA, `cache`: a SQLite file in a directory owned by
    the table's user, or `memory`), its queue (the upper directory of /var/spool's overlay),
    its log (the daemon's output file)."""

    def __init__(self, daemons, tmp, root, name, port, table_mtasts, snippet, ca_pem, cache):
        self.daemons, self.name, self.port = daemons, name, port
        self.dir = os.path.join(tmp, "opensmtpd", name)
        self.smtpd = os.path.join(root, "usr", "sbin", "smtpd")
        self.smtpctl_path = os.path.join(root, "usr", "sbin", "smtpctl")
        self.daemon = "opensmtpd/" + name
        self.out = os.path.join(tmp, self.daemon.replace("/", "_") + ".out")
        libexec = os.path.join(self.dir, "libexec", "opensmtpd")
        for sub in ("spool", "spool-work", "cache", os.path.join("varlib", "opensmtpd", "empty")):
            os.makedirs(os.path.join(self.dir, sub))
        # smtpd's helpers from the package and the table backend, as
        # /usr/libexec/opensmtpd/table-mtasts (make install-opensmtpd installs it there).
        shutil.copytree(os.path.join(root, "usr", "libexec", "opensmtpd"), libexec, symlinks=True)
        shutil.copy(table_mtasts, os.path.join(libexec, "table-mtasts"))
        sh(["chown", "%s:%s" % (TABLE_USER, TABLE_USER), os.path.join(self.dir, "cache")])
        self.cache = cache if cache == "memory" else os.path.join(self.dir, "cache", cache)
        self.settings = os.path.join(self.dir, "mtasts.conf")
        with open(self.settings, "w") as f:
            f.write("# table-mtasts settings of the realworld smtpd %s\n"
                    "nameserver = %s:53\ntrust_roots = %s\ncache = %s\n"
                    "fetch_timeout = 3\ndns_timeout = 2\nlog_level = info\n" % (
                        name, DNS_ADDR, ca_pem, self.cache))
        aliases = os.path.join(self.dir, "aliases")
        with open(aliases, "w") as f:
            f.write("# no aliases: the realworld smtpd delivers nothing locally\n")
        with open(snippet) as f:
            text = f.read()
        for old, new, once in ((SNIPPET_SETTINGS, "mtasts:" + self.settings, False),
                               (SNIPPET_CA, 'cert "%s"' % ca_pem, True),
                               (SNIPPET_LISTEN, "listen on 127.0.0.1 port %d" % port, True),
                               (SNIPPET_ALIASES, "file:" + aliases, True)):
            if (text.count(old) != 1) if once else (text.count(old) == 0):
                raise RuntimeError("%s: %r appears %d times, expected %s: the test cannot use "
                                   "it" % (snippet, old, text.count(old),
                                           "once" if once else "at least once"))
            text = text.replace(old, new)
        self.conf = os.path.join(self.dir, "smtpd.conf")
        with open(self.conf, "w") as f:
            f.write("# the shipped %s, with the run's paths and port\n" % snippet + text)
        # The system bundle (OpenSSL's default paths, which 6.8 adds to a `ca`) empty in smtpd's
        # mount namespace: only the `ca` of the relay actions can make it trust the test CA.
        empty_bundle = os.path.join(self.dir, "empty-bundle.crt")
        open(empty_bundle, "w").close()
        self.setup = os.path.join(self.dir, "mounts.sh")
        with open(self.setup, "w") as f:
            f.write("\n".join([
                "# smtpd's compiled-in directories, in this mount namespace only",
                "set -e",
                "mount -t overlay overlay -o ro,lowerdir=%s:/usr/libexec /usr/libexec" %
                os.path.join(self.dir, "libexec"),
                "mount -t overlay overlay -o ro,lowerdir=%s:/var/lib /var/lib" %
                os.path.join(self.dir, "varlib"),
                "mount -t overlay overlay -o lowerdir=/var/spool,upperdir=%s,workdir=%s "
                "/var/spool" % (os.path.join(self.dir, "spool"),
                                os.path.join(self.dir, "spool-work")),
                "mount -t tmpfs -o mode=0755 tmpfs /run",
                "mount --bind %s %s" % (empty_bundle, SYSTEM_BUNDLE),
                "exec %s -d -v -T lookup -T rules -f %s" % (self.smtpd, self.conf), ""]))
        self.count = 0

    def version(self):
        """From its start-up line (`info: OpenSMTPD 6.8.0p2 starting`)."""
        for ln in self.log():
            m = re.match(r"info: OpenSMTPD (\S+) starting", ln)
            if m:
                return m.group(1)
        return None

    def start(self):
        self.daemons.start(self.daemon, ["unshare", "--mount", "--propagation", "private",
                                         "sh", self.setup])
        proc = self.daemons.procs[self.daemon]
        deadline = time.monotonic() + START_LIMIT
        while True:
            if proc.poll() is not None:
                raise RuntimeError("smtpd %s exited with status %s: %s" % (
                    self.name, proc.returncode, "\n".join(self.log()[-15:])))
            if "smtpd: setup done" in self.log() and self.listening():
                return
            if time.monotonic() > deadline:
                raise RuntimeError("smtpd %s did not listen on 127.0.0.1:%d within %.0f s: %s" % (
                    self.name, self.port, START_LIMIT, "\n".join(self.log()[-15:])))
            time.sleep(0.05)

    def listening(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.recv(512)  # its greeting
                s.sendall(b"QUIT\r\n")
            return True
        except OSError:
            return False

    @property
    def pid(self):
        """smtpd's parent process: unshare and sh exec it in turn."""
        return self.daemons.procs[self.daemon].pid

    def log(self):
        return read_lines(self.out)

    def smtpctl(self, argv, timeout=15):
        """smtpctl (setgid opensmtpq, as install-deps leaves it) in smtpd's mount namespace, where
        its control socket is."""
        cmd = ["nsenter", "--target", str(self.pid), "--mount", "--", self.smtpctl_path] + argv
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
            return {"cmd": " ".join(cmd), "code": r.returncode, "stdout": r.stdout,
                    "stderr": r.stderr}
        except subprocess.TimeoutExpired as e:
            return {"cmd": " ".join(cmd), "code": None, "stdout": e.stdout or "",
                    "stderr": (e.stderr or "") + "\n(timed out)"}

    def queue(self):
        """`smtpctl show queue`: evpid -> {state, retries, error}."""
        out = {}
        for ln in self.smtpctl(["show", "queue"])["stdout"].splitlines():
            f = ln.split("|", 13)
            if len(f) == 14:
                out[f[0]] = {"state": f[11], "retries": f[10], "error": f[13], "line": ln}
        return out

    def queue_entry(self, evpid, limit=QUEUE_LIMIT):
        """The message's queue entry once it is no longer in flight (None: not queued)."""
        deadline = time.monotonic() + limit
        while True:
            entry = self.queue().get(evpid) if evpid else None
            if entry is None or entry["state"] != "inflight" or time.monotonic() > deadline:
                return entry
            time.sleep(0.1)

    def schedule(self, evpid):
        """`smtpctl schedule EVPID`: its next delivery attempt now, retry time ignored."""
        return self.smtpctl(["schedule", evpid])

    def send(self, domain, tag):
        """One message to user@domain over SMTP, as a local client. Returns the Attempt being
        made (its envelope id from the DATA reply and smtpd's log)."""
        self.count += 1
        header_id = "%s.%d.%s@%s" % (tag, self.count, self.name, SENDER_DOMAIN)
        message = ("From: postmaster@%s\r\nTo: user@%s\r\nSubject: realworld %s\r\n"
                   "Message-ID: <%s>\r\n\r\nA message of the mtasts real-daemon test world.\r\n" % (
                       SENDER_DOMAIN, domain, tag, header_id))
        since = len(self.log())
        replies = []
        msgid = None
        started = time.monotonic()
        try:
            with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as s:
                s.ehlo("client." + SENDER_DOMAIN)
                replies.append(("MAIL",) + s.mail("postmaster@" + SENDER_DOMAIN))
                replies.append(("RCPT",) + s.rcpt("user@" + domain))
                if replies[-1][1] == 250:
                    replies.append(("DATA",) + s.data(message.encode()))
                    m = re.search(rb"\b([0-9a-f]{8})\b", replies[-1][2])
                    if replies[-1][1] == 250 and m:
                        msgid = m.group(1).decode()
        except (OSError, smtplib.SMTPException) as e:
            replies.append(("error", None, str(e).encode()))
        run = {"cmd": "SMTP to 127.0.0.1:%d (smtpd %s): MAIL FROM:<postmaster@%s> RCPT TO:"
                      "<user@%s> DATA" % (self.port, self.name, SENDER_DOMAIN, domain),
               "code": msgid and 0, "stdout": "\n".join(
                   "%s %s %s" % (v, c, (t or b"").decode("utf-8", "replace"))
                   for v, c, t in replies), "stderr": "",
               "seconds": time.monotonic() - started}
        return Attempt(self, domain, header_id, msgid, run, since)


class Attempt:
    """One delivery attempt of the message to `domain`, read from smtpd's log after line
    `since`: the action its rule chose when it was queued, the table's relayhost answer, the
    mta sessions, how the attempt ended."""

    def __init__(self, smtpd, domain, header_id, msgid, run, since):
        self.smtpd, self.domain, self.header_id, self.msgid = smtpd, domain, header_id, msgid
        self.run, self.since = run, since
        self.evpid = None
        self.end = None  # the log line that ended the attempt
        self.end_at = None
        self.lines = []
        self.entry = None

    def retry(self):
        """The same message's next attempt, forced now (`smtpctl schedule`)."""
        nxt = Attempt(self.smtpd, self.domain, self.header_id, self.msgid, None,
                      len(self.smtpd.log()))
        nxt.evpid = self.evpid
        nxt.run = dict(self.smtpd.schedule(self.evpid) if self.evpid else
                       {"cmd": "smtpctl schedule (no envelope)", "code": None, "stdout": "",
                        "stderr": ""}, seconds=0)
        return nxt

    def wait(self, limit=ATTEMPT_LIMIT):
        """Waits (bounded) until the attempt has ended: a `mta delivery` line of the envelope
        with its result, or smtpd failing to get a relay host for it from the table."""
        deadline = time.monotonic() + limit
        while True:
            self.lines = self.smtpd.log()[self.since:]
            if self.evpid is None and self.msgid:
                for ln in self.lines:
                    m = re.search(r" smtp envelope evpid=(%s[0-9a-f]{8}) " % self.msgid, ln)
                    if m:
                        self.evpid = m.group(1)
            if self.evpid:
                # The delivery line prints the id with %016x, the smarthost warning with %x.
                no_smarthost = "Failed to retrieve smarthost for envelope %x" % int(self.evpid, 16)
                for i, ln in enumerate(self.lines):
                    if (("mta delivery evpid=%s " % self.evpid) in ln and " result=" in ln) or \
                            ln.endswith(no_smarthost):
                        self.end, self.end_at = ln, i
                        break
            if self.end or not self.msgid or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.entry = self.smtpd.queue_entry(self.evpid)
        return self

    def window(self):
        return self.lines[:self.end_at + 1] if self.end is not None else self.lines

    def action(self):
        """The action of the rule that matched when the message was queued: the last `rule #N
        matched` line before its envelope line (messages are submitted one at a time)."""
        if self.run is None or not self.evpid:
            return None
        found = None
        for ln in self.lines:
            if (" smtp envelope evpid=%s " % self.evpid) in ln:
                return found
            m = RULE.match(ln)
            if m:
                found = m.group(1)
        return None

    def relayhost(self):
        """The table's answer to this attempt's `lookup relayhost` (a URL, or "error"), and the
        table asked; (None, None) if smtpd asked none."""
        mark = 'lookup: lookup "%s" as RELAYHOST in table proc:' % self.domain.lower()
        for ln in self.window():
            if ln.startswith(mark):
                table, _, answer = ln[len(mark):].partition(" -> ")
                answer = answer.strip()
                return (answer[1:-1] if answer.startswith('"') else "error"), table
        return None, None

    def sessions(self, addresses):
        """The mta sessions of the attempt that connected to one of `addresses`: {session id:
        (address, its lines)}."""
        out = {}
        for ln in self.window():
            m = CONNECTING.match(ln)
            if m and m.group(2) in addresses:
                out[m.group(1)] = (m.group(2), [])
        for ln in self.lines:
            m = SESSION.match(ln)
            if m and m.group(1) in out:
                out[m.group(1)][1].append(ln)
        return out

    def contacted(self):
        """The addresses smtpd connected to during the attempt."""
        return {m.group(2) for m in map(CONNECTING.match, self.window()) if m}

    def own_lines(self, addresses):
        """Every log line of the attempt about this message: its envelope, the table questions
        about its domain and their answers, table-mtasts about it, its sessions, its end."""
        dom = self.domain.lower()
        sids = self.sessions(addresses)
        ids = (self.evpid, "envelope %x" % int(self.evpid, 16)) if self.evpid else ()
        out = []
        for ln in self.window():
            m = SESSION.match(ln)
            if any(i in ln for i in ids) or ('"%s"' % dom) in ln or \
                    (ln.startswith("table-mtasts: ") and dom in ln) or (m and m.group(1) in sids):
                out.append(ln)
        return out


def compare_opensmtpd(expect, att, hosts, landed, before, after):
    """What smtpd did in one attempt against an `opensmtpd` expectation. `hosts`: MX host ->
    address (the world's receivers); `landed`: the receivers whose maildir holds the message;
    `before`, `after`: the receivers' connection counts around the attempt."""
    problems = []
    addresses = {a: h for h, a in hosts.items()}
    if att.run is not None and not att.msgid:
        problems.append("smtpd did not accept the message: %s" % att.run["stdout"])
        return problems
    if att.end is None:
        problems.append("the attempt did not end within %.0f s (no delivery line for %s)" % (
            ATTEMPT_LIMIT, att.evpid))
    if "action" in expect and att.action() != expect["action"]:
        problems.append("queued for the action %r, expected %r" % (att.action(), expect["action"]))
    answer, table = att.relayhost()
    if "relayhost" in expect and answer != expect["relayhost"]:
        problems.append("the table's relayhost answer: %r (table %s), expected %r" % (
            answer, table, expect["relayhost"]))
    end = att.end or ""
    if 'result="PermFail"' in end:
        problems.append("a permanent failure (bounce): %s" % end)
    if "delivered" in expect:
        want = expect["delivered"].lower()
        sid = SESSION.match(end).group(1) if 'result="Ok"' in end and SESSION.match(end) else None
        session = att.sessions(set(addresses)).get(sid)
        got = addresses.get(session[0]) if session else None
        if got != want:
            problems.append("delivered (result=\"Ok\") to %s, expected %s" % (
                got or "nobody (%s)" % (end or "no result"), want))
        if landed != [want]:
            problems.append("the message is in the maildir of %s, expected %s" % (
                landed or "no receiver", want))
        if att.entry is not None:
            problems.append("still in smtpd's queue: %s" % att.entry["line"])
        lines = session[1] if session else []
        tls = any(" mta tls ciphers=" in ln for ln in lines)
        verified = any(' mta server-cert-check result="success"' in ln for ln in lines)
        if "tls" in expect and tls != expect["tls"]:
            problems.append("TLS used: %s, expected %s" % (tls, expect["tls"]))
        if "verified" in expect and verified != expect["verified"]:
            problems.append("certificate verified (server-cert-check success): %s, expected %s"
                            % (verified, expect["verified"]))
    if expect.get("deferred"):
        if 'result="Ok"' in end or landed:
            problems.append("delivered (%s), expected deferred" % (landed or end))
        if end and not ('result="TempFail"' in end or "Failed to retrieve smarthost" in end):
            problems.append("the attempt did not end in a temporary failure: %s" % end)
        if att.entry is None or att.entry["state"] != "pending":
            problems.append("not pending in smtpd's queue (smtpctl show queue: %s)" % (
                att.entry and att.entry["line"]))
        if "queue_error" in expect and (att.entry or {}).get("error") != expect["queue_error"]:
            problems.append("the queue's error for it: %r, expected %r" % (
                (att.entry or {}).get("error"), expect["queue_error"]))
        reason = expect.get("reason_contains")
        if reason and not any(reason in ln for ln in att.own_lines(set(addresses))):
            problems.append("no log line of the attempt contains %r" % reason)
    contacted = att.contacted()
    for host in expect.get("not_contacted", []):
        host = host.lower()
        if hosts.get(host) in contacted:
            problems.append("smtpd connected to %s (%s), which must not be contacted" % (
                host, hosts[host]))
        if after.get(host, 0) != before.get(host, 0):
            problems.append("%s saw %d SMTP connection(s), expected none" % (
                host, after.get(host, 0) - before.get(host, 0)))
    return problems
