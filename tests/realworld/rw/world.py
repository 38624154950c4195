"""world.json, read (World): the domains with their defaults applied, the attacker's version
of a domain (S-39), one receiving address per MX host; and the policy file a domain serves
(policy_body)."""

import copy
import json

from .common import MX_NET

DEFAULT_ID = "20240101T000000"
DEFAULT_TXT_TTL = 300
CERT_KINDS = ("valid", "wildcard", "wrong-name", "cn-only", "expired", "untrusted")


class World:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        self.domains = [self.normalise(d) for d in data["domains"]]
        self.sequences = data.get("exim_sequences", [])
        names = [d["name"] for d in self.domains]
        if len(set(names)) != len(names):
            raise ValueError("world.json: a domain name appears twice")
        # One receiving address per MX host with a receiver, in file order.
        self.mx_hosts = {}  # host -> {"address", "cert", "starttls"}
        for d in self.domains:
            for mx in d["mx"] + (d.get("attack") or {}).get("mx", []):
                host = mx["host"].lower().rstrip(".")
                if "cert" not in mx or host in self.mx_hosts:
                    continue
                if len(self.mx_hosts) >= 240:
                    raise ValueError("world.json: too many MX hosts")
                self.mx_hosts[host] = {
                    "address": MX_NET + str(10 + len(self.mx_hosts)),
                    "cert": check_kind(mx["cert"]),
                    "starttls": mx.get("starttls", True),
                }

    @staticmethod
    def normalise(d):
        d = dict(d)
        d.setdefault("txt", [["v=STSv1; id=%s;" % DEFAULT_ID]])
        d.setdefault("txt_ttl", DEFAULT_TXT_TTL)
        d.setdefault("address", "https")
        d["cert"] = check_kind(d.get("cert", "valid"))
        d.setdefault("http", {})
        d.setdefault("policy", {})
        d.setdefault("mx", [])
        d.setdefault("dns", [])
        for mx in d["mx"]:
            mx.setdefault("pref", 10)
        return d

    def attacked(self, d):
        """The domain as the attacker makes it look (S-39), or unchanged."""
        a = d.get("attack")
        if not a:
            return d
        d = dict(d)
        d.update(copy.deepcopy(a))
        d["cert"] = check_kind(d["cert"])
        for mx in d["mx"]:
            mx.setdefault("pref", 10)
        return d


def check_kind(kind):
    if kind not in CERT_KINDS:
        raise ValueError("unknown certificate case %r (one of %s)" % (kind, ", ".join(CERT_KINDS)))
    return kind


def policy_body(d):
    """The bytes served at mta-sts.<name>: http.body, or a policy built from `policy`."""
    http = d["http"]
    if "body" in http:
        body = http["body"]
    else:
        p = d["policy"]
        mode = p.get("mode", "enforce")
        if "mx" in p:
            patterns = p["mx"]
        elif d["mx"]:
            patterns = [m["host"].lower().rstrip(".") for m in d["mx"]]
        else:
            patterns = ["mail." + d["name"]]
        lines = ["version: STSv1", "mode: " + mode]
        lines += ["mx: " + m for m in patterns]
        lines.append("max_age: %d" % p.get("max_age", 86400))
        body = "\n".join(lines) + "\n"
    body = body.encode("utf-8")
    pad_to = http.get("pad_to")
    if pad_to:
        # Pad with an unknown field (so the policy stays valid) to exactly pad_to bytes.
        need = pad_to - len(body)
        if need < 10:
            raise ValueError("%s: pad_to too small" % d["name"])
        body += b"x-pad: " + b"a" * (need - 8) + b"\n"
        assert len(body) == pad_to
    return body
