"""The reference replies (issue 13): postfix-mta-sts-resolver's mta-sts-daemon (from PyPI, in
the venv scripts/install-deps makes) run inside the namespace beside `mtasts serve`, both asked
the same keys under the same map names over socketmap (ReferenceServer, ask_both), and the
replies compared: equal, except where postfix-mta-sts-resolver departs from RFC 8461 or the
project's rules. Each such departure is listed in DEPARTURES with the rule it breaks and the
exact pair of replies it gives, so that a departure that goes away (or changes) fails too."""

import collections
import concurrent.futures
import os
import subprocess

from .postfix import POLICY_MAP, socketmap_query, wait_for_socket

PMSR = "postfix-mta-sts-resolver"
PMSR_VERSION = "1.5.1"  # the departures below are this version's
STRICT_MAP = "strict"  # a map name answering `testing` as `enforce` on both servers
TLSRPT_MAP = "tlsrpt"  # a map name with the TLSRPT attributes on both servers
# A Redis cache where nothing listens (connections refused at once): the cache cannot be read.
DEAD_REDIS = "redis://192.0.2.99:6379/0"


Departure = collections.namedtuple("Departure", "pair map key rule why ours theirs")

# Where postfix-mta-sts-resolver 1.5.1 departs from RFC 8461 and the rules (docs/rules.md),
# found by running it here: `pair` says which two servers are asked ("memory": each with a
# fresh memory cache; "dead-cache": each with a cache that cannot be read), `ours` and `theirs`
# are the exact replies of mtasts serve and of postfix-mta-sts-resolver (a reply ending in
# "..." is a prefix: the rest varies from run to run).
OK_S01 = "OK secure match=mail.s01.rw.test servername=hostname"
DEPARTURES = [
    Departure("memory", POLICY_MAP, "[s01.rw.test]", "R-SRV-4",
              "it strips the brackets of an explicit next hop and answers the host's policy",
              "NOTFOUND ", OK_S01),
    Departure("memory", POLICY_MAP, "[s01.rw.test]:25", "R-SRV-4",
              "it strips brackets and port and answers the host's policy",
              "NOTFOUND ", OK_S01),
    Departure("memory", POLICY_MAP, "s01.rw.test:25", "R-SRV-4",
              "it strips the port of a host:port next hop and answers the host's policy",
              "NOTFOUND ", OK_S01),
    Departure("memory", POLICY_MAP, "iplit.rw.test", "R-POL-7",
              "an IP address among the policy's mx patterns goes into match=",
              "OK secure match=mail.iplit.rw.test servername=hostname",
              "OK secure match=198.51.100.250:mail.iplit.rw.test servername=hostname"),
    Departure("memory", POLICY_MAP, "order.rw.test", "R-SRV-2",
              "match= in the order of a Python set (fixed here by PYTHONHASHSEED=0), not the "
              "policy's",
              "OK secure match=mail.order.rw.test:.order.rw.test:backup.order.rw.test:"
              "mx.example.net servername=hostname",
              "OK secure match=.order.rw.test:mail.order.rw.test:mx.example.net:"
              "backup.order.rw.test servername=hostname"),
    Departure("memory", POLICY_MAP, "s07.rw.test", "R-DISC-4",
              "it accepts the record id 2024-01-01 (only letters and digits are allowed) and "
              "applies the policy of a domain that has none",
              "NOTFOUND ", "OK secure match=mail.s07.rw.test servername=hostname"),
    Departure("memory", POLICY_MAP, "s09.rw.test", "R-DISC-1",
              "it does not follow a CNAME the DNS server answers without its target (as the "
              "world's unbound does for local data; a recursive resolver follows it for it)",
              "OK secure match=mail.s09.rw.test servername=hostname", "NOTFOUND "),
    Departure("memory", POLICY_MAP, "s16b.rw.test", "R-FETCH-2",
              "it fetches the policy from a host whose certificate names it only in the "
              "subject CN (Python's ssl falls back to the CN)",
              "NOTFOUND ", "OK secure match=mail.s16b.rw.test servername=hostname"),
    Departure("memory", POLICY_MAP, "s23.rw.test", "R-POL-4",
              "the last of two mode fields counts (mode: testing), not the first (enforce)",
              "OK secure match=mail.s23.rw.test servername=hostname", "NOTFOUND "),
    Departure("memory", TLSRPT_MAP, "s01.rw.test", "R-SRV-5",
              "the policy_string attributes are rebuilt from its parsed fields, mx lines first, "
              "not the policy's lines in order",
              OK_S01 + " policy_type=sts policy_domain=s01.rw.test "
              "mx_host_pattern=mail.s01.rw.test { policy_string = version: STSv1 } "
              "{ policy_string = mode: enforce } { policy_string = mx: mail.s01.rw.test } "
              "{ policy_string = max_age: 86400 }",
              OK_S01 + " policy_type=sts policy_domain=s01.rw.test "
              "mx_host_pattern=mail.s01.rw.test { policy_string = mx: mail.s01.rw.test } "
              "{ policy_string = version: STSv1 } { policy_string = mode: enforce } "
              "{ policy_string = max_age: 86400 }"),
    Departure("memory", POLICY_MAP, "dane1.dnssec.test", "R-SRV-6",
              "it knows no DANE: the MX host's validated TLSA record does not take precedence",
              "OK dane", "OK secure match=mx.dane1.dnssec.test servername=hostname"),
    Departure("memory", POLICY_MAP, "danebogus.dnssec.test", "R-SRV-6",
              "it knows no DANE: a TLSA lookup that fails (a bogus signature) does not defer",
              "TEMP DANE lookup failed: ...",
              "OK secure match=mx.danebogus.dnssec.test servername=hostname"),
    Departure("dead-cache", POLICY_MAP, "s02.rw.test", "R-SRV-7",
              "when its cache cannot be read it answers as if nothing were cached (fails "
              "open) instead of deferring",
              "TEMP s02.rw.test: policy cache: the shared policy cache could not be read for "
              "s02.rw.test: ...", "NOTFOUND "),
]

# Keys that are not plain domain names (R-SRV-4), asked about a domain with an enforce policy,
# and the same domain spelt as Postfix may send it (S-71).
KEY_FORMS = ["[%s]", "[%s]:25", "%s:25", ".%s", "%s."]
KEY_FORM_DOMAIN = "s01.rw.test"
OTHER_KEYS = ["192.0.2.1", "[192.0.2.1]", "[IPv6:2001:db8::1]", "rw.test", ".rw.test",
              "S01.RW.TEST."]
# Domains asked with a cache that cannot be read, besides the departures': a policy that can
# be fetched now (then the cache is not needed to tell).
DEAD_CACHE_DOMAINS = ["s01.rw.test"]


def reply_matches(got, listed):
    """`got` is the listed reply (a listed reply ending in "..." is a prefix)."""
    if listed.endswith("..."):
        return got.startswith(listed[:-3])
    return got == listed


def reference_questions(world, selected, k):
    """{pair: [(map name, key), ...]}: every domain of the world (and its `lookup` spelling)
    under the plain map name, the `testing` ones under the strict one too, the key forms, the
    dead-cache questions, and every departure's own question (the TLSRPT map's among them);
    with -k only those about the selected domains."""
    memory, dead = [], []
    for d in world.domains:
        if not selected(d):
            continue
        memory.append((POLICY_MAP, d["name"]))
        if "lookup" in d:
            memory.append((POLICY_MAP, d["lookup"]))
        if d["policy"].get("mode") == "testing":
            memory.append((STRICT_MAP, d["name"]))
        if d["name"] in DEAD_CACHE_DOMAINS:
            dead.append((POLICY_MAP, d["name"]))
        if d["name"] == KEY_FORM_DOMAIN:
            memory += [(POLICY_MAP, form % d["name"]) for form in KEY_FORMS]
    memory += [(POLICY_MAP, key) for key in OTHER_KEYS if not k or k in key.lower()]
    for dep in DEPARTURES:
        if not k or k in dep.key.lower():
            (dead if dep.pair == "dead-cache" else memory).append((dep.map, dep.key))
    return {"memory": sorted(set(memory)), "dead-cache": sorted(set(dead))}


class ReferenceServer:
    """mta-sts-daemon on a Unix socket, its internal (memory) cache or `redis_url`, the same
    map names and options as the mtasts serve it is compared with. It resolves through the
    namespace's /etc/resolv.conf (unbound) and trusts SSL_CERT_FILE (the test CA). Python's
    hash seed is fixed so that its replies are the same in every run."""

    def __init__(self, daemons, daemon, tmp, name, ca_pem, redis_url=None):
        self.daemons, self.daemon, self.name = daemons, daemon, name
        self.socket = os.path.join(tmp, name + ".sock")
        self.conf = os.path.join(tmp, name + ".yml")
        self.env = dict(os.environ, SSL_CERT_FILE=ca_pem, PYTHONHASHSEED="0",
                        PYTHONDONTWRITEBYTECODE="1")
        cache = ("cache:\n  type: redis\n  options:\n    url: \"%s\"\n"
                 "    socket_connect_timeout: 2\n    socket_timeout: 2\n" % redis_url
                 if redis_url else "cache:\n  type: internal\n")
        with open(self.conf, "w") as f:
            f.write("path: \"%s\"\nmode: 0666\nshutdown_timeout: 2\n%s"
                    "default_zone:\n  strict_testing: false\n  timeout: 4\n"
                    "zones:\n"
                    "  %s:\n    strict_testing: true\n    timeout: 4\n"
                    "  %s:\n    tlsrpt: true\n    timeout: 4\n" % (
                        self.socket, cache, STRICT_MAP, TLSRPT_MAP))

    def start(self):
        self.daemons.start(self.name, [self.daemon, "-c", self.conf, "-v", "warn"],
                           env=self.env)
        wait_for_socket(PMSR + " (%s)" % self.name, self.socket, self.daemons.procs[self.name])

    def query(self, key, name=POLICY_MAP):
        return socketmap_query(self.socket, name, key)

    def stop(self):
        proc = self.daemons.procs.pop(self.name)  # stopped on purpose, not "exited early"
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def version(self):
        """The installed postfix-mta-sts-resolver's version (its venv's Python beside the
        daemon), or why it cannot be read."""
        python = os.path.join(os.path.dirname(self.daemon), "python")
        r = subprocess.run([python, "-c", "import importlib.metadata as m; print(m.version(%r))"
                            % PMSR], capture_output=True, text=True, timeout=30)
        return r.stdout.strip() if r.returncode == 0 else "(%s)" % r.stderr.strip()[-200:]


def ask_both(ours, reference, questions, workers=8):
    """Each (map name, key) of `questions` asked of both servers; returns
    {(name, key): (our reply, the reference's reply)}."""
    def one(q):
        name, key = q
        return q, (ours.query(key, name), reference.query(key, name))

    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(pool.map(one, questions))
