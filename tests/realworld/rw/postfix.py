"""Postfix as the sender (issue 13): `mtasts serve` as its smtp_tls_policy_maps (PolicyServer,
also the server the reference comparison asks), a socketmap client (socketmap_query), Debian's
postfix run from the directory scripts/install-deps unpacked it into (PostfixSender: its own
configuration, queue, data and log; submission with its sendmail, the queue read with
`postqueue -j`, flushed with `postqueue -f`), and compare_postfix(), what Postfix did with one
message against a `postfix` expectation.

Debian's postfix package cannot be installed beside exim4-daemon-heavy (each is the system's
MTA), so install-deps unpacks its .deb (dpkg-deb -x) into target/rw-postfix. Its binaries carry
RUNPATH /usr/lib/postfix, which does not exist here: they find their own libraries through
LD_LIBRARY_PATH, which main.cf passes on (import_environment for the daemons,
export_environment for sendmail's postdrop). Nothing is setgid (postdrop and postqueue run as
root here), so the loader honours that variable; `postfix check` warns about it, harmlessly."""

import json
import os
import shutil
import signal
import socket
import subprocess
import time

from .common import DNS_ADDR, read_lines
from .namespace import process_state

SENDER_DOMAIN = "sender.test"
POLICY_MAP = "postfix"  # the socketmap name in smtp_tls_policy_maps
# `mtasts serve`'s lookups: the resolver deadlines of the other cases (cases.LOOKUP_ARGS).
SERVE_ARGS = ["--dns-timeout", "2", "--timeout", "3"]
START_LIMIT = 10.0  # seconds a server or Postfix gets to come up
DELIVERY_LIMIT = 20.0  # seconds Postfix gets to finish one delivery attempt of a message
QUERY_TIMEOUT = 20.0  # seconds one socketmap answer may take


# ---------------------------------------------------------------------------------------------
# The socketmap protocol (netstrings), as Postfix speaks it.


def socketmap_query(path, name, key, timeout=QUERY_TIMEOUT):
    """Asks the socketmap server on the Unix socket `path` for `key` in map `name`; returns the
    reply text (`OK ...`, `NOTFOUND `, `TEMP ...`, `PERM ...`), or `(error: ...)` when there
    is no complete answer."""
    request = ("%s %s" % (name, key)).encode("utf-8")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(path)
            s.sendall(b"%d:%s," % (len(request), request))
            buf = b""
            while True:
                head, colon, rest = buf.partition(b":")
                if colon and head.isdigit() and len(rest) > int(head):
                    if rest[int(head):int(head) + 1] != b",":
                        return "(error: netstring not terminated by ',': %r)" % buf[:200]
                    return rest[:int(head)].decode("utf-8", "replace")
                chunk = s.recv(4096)
                if not chunk:
                    return "(error: connection closed after %r)" % buf[:200]
                buf += chunk
    except OSError as e:
        return "(error: %s)" % e


def wait_for_socket(what, path, proc, limit=START_LIMIT):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with status %s" % (what, proc.returncode))
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(0.5)
                s.connect(path)
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("%s did not listen on %s within %.0f s" % (what, path, limit))


class PolicyServer:
    """`mtasts serve` on a Unix socket in the run's directory, resolving through the world's
    unbound with the test CA as trust roots. start() and stop() may be called again (a
    restart on the same cache); each start is its own entry in `daemons` (so the teardown ends
    it) with its own output file."""

    def __init__(self, daemons, mtasts, tmp, name, cache, ca_pem, options=()):
        self.daemons, self.mtasts, self.name, self.cache = daemons, mtasts, name, cache
        self.ca_pem, self.options = ca_pem, list(options)
        self.socket = os.path.join(tmp, name + ".sock")
        self.starts = 0
        self.current = None

    def start(self, cache=None):
        if cache is not None:
            self.cache = cache
        self.starts += 1
        self.current = "%s-%d" % (self.name, self.starts)
        self.daemons.start(self.current, [
            self.mtasts, "--nameserver", DNS_ADDR + ":53", "--trust-roots", self.ca_pem,
            "--cache", self.cache] + SERVE_ARGS + [
            "serve", "--listen", "unix:" + self.socket,
            # No background refresh: each case decides when a policy is looked at again (the
            # S-39 recheck must be the delivery's own); the refresh is tested in
            # mtasts-cli/tests/serve_ops.rs.
            "--refresh-interval", "0",
            # Postfix's smtp processes run as the postfix user.
            "--socket-mode", "666"] + self.options)
        wait_for_socket("mtasts serve (%s)" % self.current, self.socket,
                        self.daemons.procs[self.current])

    def stop(self):
        """SIGTERM, as a service manager stops it; returns the exit status."""
        proc = self.daemons.procs.pop(self.current)  # stopped on purpose, not "exited early"
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return "killed: SIGTERM did not stop it within 15 s"

    def query(self, key, name=POLICY_MAP):
        return socketmap_query(self.socket, name, key)


# ---------------------------------------------------------------------------------------------
# Postfix.


MASTER_CF = """\
# service type  private unpriv  chroot  wakeup  maxproc command
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class PostfixSender:
    """One Postfix instance of our own: configuration, queue and data directories and its log
    under <tmp>/postfix, the programs from `root` (the unpacked package), the TLS policy from
    the socketmap server on `policy_socket`, the test CA as smtp_tls_CAfile. Opportunistic TLS
    (`may`) where the map says nothing, as a typical installation. It resolves through the
    namespace's /etc/resolv.conf (unbound) and listens nowhere: mail is submitted with its
    sendmail."""

    def __init__(self, tmp, root, policy_socket, ca_pem):
        self.root = root
        self.dir = os.path.join(tmp, "postfix")
        self.etc = os.path.join(self.dir, "etc")
        self.maillog = os.path.join(self.dir, "maillog")
        self.sbin = os.path.join(root, "usr", "sbin")
        lib = os.path.join(root, "usr", "lib", "postfix")
        for sub in ("etc", "queue"):
            os.makedirs(os.path.join(self.dir, sub))
        # The package's metadata (the file list post-install creates directories from, the
        # dynamic map registry Debian's postinst would copy into /etc/postfix).
        shutil.copy(os.path.join(root, "etc", "postfix", "postfix-files"), self.etc)
        for sub in ("postfix-files.d", "dynamicmaps.cf.d"):
            shutil.copytree(os.path.join(root, "etc", "postfix", sub), os.path.join(self.etc, sub))
        shutil.copy(os.path.join(root, "usr", "share", "postfix", "dynamicmaps.cf"), self.etc)
        settings = [
            ("compatibility_level", "3.6"),
            ("queue_directory", os.path.join(self.dir, "queue")),
            ("data_directory", os.path.join(self.dir, "data")),
            ("meta_directory", self.etc),
            ("daemon_directory", os.path.join(lib, "sbin")),
            ("shlib_directory", lib),
            ("command_directory", self.sbin),
            ("sendmail_path", os.path.join(self.sbin, "sendmail")),
            ("newaliases_path", os.path.join(root, "usr", "bin", "newaliases")),
            ("mailq_path", os.path.join(root, "usr", "bin", "mailq")),
            ("manpage_directory", os.path.join(root, "usr", "share", "man")),
            ("import_environment", "MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C "
                                   "POSTLOG_SERVICE POSTLOG_HOSTNAME LD_LIBRARY_PATH"),
            ("export_environment", "TZ MAIL_CONFIG LANG LD_LIBRARY_PATH"),
            ("mail_owner", "postfix"),
            ("setgid_group", "postdrop"),
            ("maillog_file", self.maillog),
            ("maillog_file_prefixes", self.dir),
            ("myhostname", SENDER_DOMAIN),
            ("mydomain", SENDER_DOMAIN),
            ("myorigin", SENDER_DOMAIN),
            ("mydestination", ""),
            ("local_recipient_maps", ""),
            ("alias_maps", ""),
            ("alias_database", ""),
            # Only loopback is "myself": the MX addresses are on the namespace's lo as well,
            # and with inet_interfaces = all Postfix would refuse them as a mail loop.
            ("inet_interfaces", "127.0.0.1"),
            ("inet_protocols", "ipv4"),
            ("smtp_address_preference", "ipv4"),
            ("smtp_tls_security_level", "may"),
            ("smtp_tls_CAfile", ca_pem),
            ("smtp_tls_loglevel", "1"),
            ("smtp_tls_policy_maps", "socketmap:unix:%s:%s" % (policy_socket, POLICY_MAP)),
            # For the `dane` answers (S-76): Postfix does the DANE lookups itself, through the
            # namespace's validating unbound (resolv.conf: options trust-ad).
            ("smtp_dns_support_level", "dnssec"),
            ("smtp_host_lookup", "dns"),
            # Each message its own connection: a case's outcome is its own.
            ("smtp_connection_cache_on_demand", "no"),
            ("smtp_connect_timeout", "5s"),
            ("smtp_helo_timeout", "10s"),
            ("biff", "no"),
            ("delay_warning_time", "0"),
        ]
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write("# Postfix of the mtasts real-daemon world (tests/realworld/rw/postfix.py)\n")
            f.write("".join("%s = %s\n" % kv for kv in settings))
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write(MASTER_CF)
        self.env = dict(os.environ, LD_LIBRARY_PATH=lib, MAIL_CONFIG=self.etc)
        self.count = 0
        self.running = False

    def command(self, argv, message=None, timeout=30):
        """One of the package's commands (postfix, postqueue, sendmail, ...) on this instance."""
        # The configuration directory: `sendmail -C DIR`, the others `-c DIR`.
        flag = "-C" if argv[0] == "sendmail" else "-c"
        cmd = [os.path.join(self.sbin, argv[0]), flag, self.etc] + argv[1:]
        started = time.monotonic()
        try:
            r = subprocess.run(cmd, input=message, capture_output=True, text=True,
                               timeout=timeout, env=self.env)
            code, out, err = r.returncode, r.stdout, r.stderr
        except subprocess.TimeoutExpired as e:
            code, out, err = None, e.stdout or "", (e.stderr or "") + "\n(timed out)"
        return {"cmd": " ".join(cmd), "code": code, "stdout": out or "", "stderr": err or "",
                "seconds": time.monotonic() - started}

    def version(self):
        r = self.command(["postconf", "-h", "mail_version"])
        return r["stdout"].strip() if r["code"] == 0 else None

    def start(self):
        r = self.command(["postfix", "start"])
        if r["code"] != 0:
            raise RuntimeError("postfix start exited %s: %s %s" % (
                r["code"], r["stderr"].strip()[-500:], "\n".join(self.log()[-10:])))
        self.running = True
        qmgr = os.path.join(self.dir, "queue", "public", "qmgr")
        deadline = time.monotonic() + START_LIMIT
        while not (os.path.exists(qmgr) and self.master_pid()):
            if time.monotonic() > deadline:
                raise RuntimeError("postfix did not come up within %.0f s: %s" % (
                    START_LIMIT, "\n".join(self.log()[-10:])))
            time.sleep(0.05)

    def master_pid(self):
        try:
            with open(os.path.join(self.dir, "queue", "pid", "master.pid")) as f:
                pid = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        # A daemon: not our child, so an exited one may linger as a zombie for a moment.
        return pid if process_state(pid) not in (None, "Z") else None

    def stop(self):
        """Stops Postfix as `postfix stop` does, SIGTERM to its master (which ends its
        children), without that script's one-second polling; waits (bounded) until the master
        is gone, then SIGKILL."""
        if not self.running:
            return
        self.running = False
        pid = self.master_pid()
        if not pid:
            return
        for sig, pause in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 2.0)):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + pause
            while self.master_pid() == pid and time.monotonic() < deadline:
                time.sleep(0.02)
            if self.master_pid() != pid:
                return

    def log(self):
        return read_lines(self.maillog)

    def use_policy_socket(self, path):
        """smtp_tls_policy_maps pointed at the socketmap server on `path`: postconf -e, then
        postfix reload (running smtp processes end; new ones read the new map)."""
        for argv in (["postconf", "-e", "smtp_tls_policy_maps=socketmap:unix:%s:%s" % (
                path, POLICY_MAP)], ["postfix", "reload"]):
            r = self.command(argv)
            if r["code"] != 0:
                raise RuntimeError("%s exited %s: %s" % (r["cmd"], r["code"], r["stderr"]))

    def send(self, domain, tag):
        """Submits one message to user@domain with Postfix's sendmail. Returns the command
        record and the message's Message-ID."""
        self.count += 1
        msgid = "%s.%d.postfix@%s" % (tag, self.count, SENDER_DOMAIN)
        message = ("From: postmaster@%s\nTo: user@%s\nSubject: realworld %s\n"
                   "Message-ID: <%s>\n\nA message of the mtasts real-daemon test world.\n" % (
                       SENDER_DOMAIN, domain, tag, msgid))
        run = self.command(["sendmail", "-oi", "-f", "postmaster@" + SENDER_DOMAIN,
                            "user@" + domain], message)
        return run, msgid

    def queue_id(self, msgid, limit=5.0):
        """The queue id cleanup gave the message (its `message-id=<...>` log line); pickup
        takes a moment after sendmail returns."""
        deadline = time.monotonic() + limit
        while True:
            for ln in self.log():
                if ("message-id=<%s>" % msgid) in ln:
                    return ln.split(": ", 1)[1].split(":", 1)[0]
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)

    def own_lines(self, queue_id, since=0):
        mark = " %s: " % queue_id
        return [ln for ln in self.log()[since:] if queue_id and mark in ln]

    def wait_attempt(self, queue_id, since=0, limit=DELIVERY_LIMIT):
        """Waits until the message's delivery attempt after log line `since` has ended (a
        `status=` line of it). Returns its lines from there."""
        deadline = time.monotonic() + limit
        while True:
            own = self.own_lines(queue_id, since)
            if any(" status=" in ln for ln in own) or time.monotonic() > deadline:
                return own
            time.sleep(0.1)

    def queue(self):
        """`postqueue -j`: queue id -> its JSON object (queue_name, recipients, ...)."""
        r = self.command(["postqueue", "-j"])
        out = {}
        for ln in r["stdout"].splitlines():
            try:
                entry = json.loads(ln)
            except ValueError:
                continue
            out[entry.get("queue_id")] = entry
        return out

    def queue_entry(self, queue_id, want=None, limit=5.0):
        """The message's `postqueue -j` entry, or None once it has left the queue. With `want`
        (a queue name), waits (bounded) until it is in that queue or has left it; without, until
        it has left (qmgr removes a delivered message a moment after its status=sent line)."""
        deadline = time.monotonic() + limit
        while True:
            entry = self.queue().get(queue_id) if queue_id else None
            done = entry is None or (want and entry.get("queue_name") == want)
            if done or time.monotonic() > deadline:
                return entry
            time.sleep(0.1)

    def flush(self):
        """`postqueue -f`: every queued message tried again now, retry times ignored."""
        return self.command(["postqueue", "-f"])

    def tls_lines(self, host, since=0):
        """The smtp client's `... TLS connection established to host[addr]:25: ...` lines."""
        mark = "TLS connection established to %s[" % host
        return [ln for ln in self.log()[since:] if mark in ln]


def compare_postfix(expect, own, landed, tls, queued):
    """What Postfix did with one message against a `postfix` expectation: `own` its log lines
    (this attempt), `landed` the receivers holding it, `tls` the TLS lines for its MX host,
    `queued` its `postqueue -j` entry (or None)."""
    problems = []
    sent = [ln for ln in own if " status=sent " in ln]
    deferred = [ln for ln in own if " status=deferred " in ln]
    if not own:
        problems.append("the message is not in Postfix's log")
    if "delivered" in expect:
        want = expect["delivered"].lower()
        relays = [ln.split(" relay=", 1)[1].split("[", 1)[0].lower() for ln in sent
                  if " relay=" in ln]
        if relays != [want]:
            problems.append("delivered (status=sent) to %s, expected %s" % (
                relays or "nobody", want))
        if landed != [want]:
            problems.append("the message is in the maildir of %s, expected %s" % (
                landed or "no receiver", want))
        if queued is not None:
            problems.append("still in Postfix's queue (%s)" % queued.get("queue_name"))
        if "tls" in expect:
            # Postfix says Verified (name matched), Trusted (chain only), Untrusted or
            # Anonymous; false: no TLS at all.
            kinds = sorted({ln.split(" TLS connection established", 1)[0].rsplit(" ", 1)[-1]
                            for ln in tls})
            want_tls = [expect["tls"]] if expect["tls"] else []
            if kinds != want_tls:
                problems.append("TLS connections logged: %s, expected %s" % (
                    kinds or "none", want_tls or "none (clear text)"))
    if expect.get("deferred"):
        if sent or landed:
            problems.append("delivered (%s), expected deferred" % (landed or sent))
        if not deferred:
            problems.append("no status=deferred in Postfix's log")
        if queued is None or queued.get("queue_name") != "deferred":
            problems.append("not in Postfix's deferred queue (postqueue -j: %s)" % (
                queued and queued.get("queue_name")))
        reason = expect.get("reason_contains")
        if reason and not any(reason in ln for ln in deferred):
            problems.append("no status=deferred line of the message contains %r" % reason)
    return problems
