"""The daemons of the world, inside the namespace: the configurations of unbound (the test
zones), nginx (one server per mta-sts.<domain>) and the Exim receivers (one per MX host); the
Daemons that run them; waiting for each to answer (a marker TXT record, a marker URL, port
25); and what the receivers saw (connections, maildirs)."""

import os
import socket
import ssl
import struct
import subprocess
import time

from .common import (BLACKHOLE_ADDR, DNS_ADDR, DNS_OUT_ADDR, HTTPS_ADDR, UNREACHABLE_ADDR,
                     read_lines)
from .pki import SIGNED_ZONE, in_signed_zone
from .world import policy_body

ZONE = "test."  # every name of the world is under it; unbound answers nothing else
DAEMON_WAIT = 10.0  # seconds a daemon gets to come up


# ---------------------------------------------------------------------------------------------
# unbound: the test zones.


def txt_rdata(strings):
    out = []
    for s in strings:
        if "'" in s:
            raise ValueError("TXT strings cannot contain ' here: %r" % s)
        out.append('"%s"' % s.replace("\\", "\\\\").replace('"', '\\"'))
    return " ".join(out)


def unbound_conf(tmp, world, attacked, generation, signed=None, tlsa=None):
    data = []  # local-data RRs
    stubs = []  # (name, address)
    rr = data.append
    bogus = []  # owners in the signed zone whose signatures are spoilt after signing
    rr("%s 300 IN SOA ns.%s hostmaster.%s 1 3600 600 86400 60" % (ZONE, ZONE, ZONE))
    rr("generation.%s 0 IN TXT \"%d\"" % (ZONE, generation))
    for d0 in world.domains:
        d = world.attacked(d0) if attacked else d0
        name = d["name"] + "."
        txt_name = "_mta-sts." + name
        txt = d["txt"]
        if isinstance(txt, list):
            for strings in txt:
                rr("%s %d IN TXT %s" % (txt_name, d["txt_ttl"], txt_rdata(strings)))
        elif isinstance(txt, dict):
            rr("%s %d IN CNAME %s." % (txt_name, d["txt_ttl"], txt["cname"].rstrip(".")))
        elif txt == "nodata":  # an empty non-terminal: the name exists, without records
            rr("x.%s %d IN TXT \"not an STS record\"" % (txt_name, d["txt_ttl"]))
        elif txt in ("servfail", "timeout"):
            stubs.append((txt_name, DNS_ADDR if txt == "servfail" else BLACKHOLE_ADDR))
        elif txt != "nxdomain":
            raise ValueError("%s: bad txt %r" % (d["name"], txt))
        host = "mta-sts." + name
        addr = d["address"]
        if addr == "https":
            rr("%s 300 IN A %s" % (host, HTTPS_ADDR))
        elif addr == "unreachable":
            rr("%s 300 IN A %s" % (host, UNREACHABLE_ADDR))
        elif isinstance(addr, dict):
            target = addr["cname"].rstrip(".") + "."
            rr("%s 300 IN CNAME %s" % (host, target))
            rr("%s 300 IN A %s" % (target, HTTPS_ADDR))
        elif addr in ("servfail", "timeout"):
            stubs.append((host, DNS_ADDR if addr == "servfail" else BLACKHOLE_ADDR))
        elif addr != "nxdomain":
            raise ValueError("%s: bad address %r" % (d["name"], addr))
        for mx in d["mx"]:
            if not mx.get("implicit"):
                rr("%s 300 IN MX %d %s." % (name, mx["pref"], mx["host"].rstrip(".")))
            if mx.get("tlsa"):
                owner = "_25._tcp.%s." % mx["host"].lower().rstrip(".")
                rr("%s 300 IN TLSA %s" % (owner, tlsa))
                if mx["tlsa"] == "bogus":
                    bogus.append(owner)
        data.extend(d["dns"])
    for host, h in world.mx_hosts.items():
        rr("%s. 300 IN A %s" % (host, h["address"]))
    # Names under the signed zone go into its zone file, not into local-data (unsigned).
    zone_rrs = [ln for ln in data if in_signed_zone(ln.split()[0])]
    data = [ln for ln in data if not in_signed_zone(ln.split()[0])]
    zone_file = signed.sign(zone_rrs, generation, bogus) if signed and zone_rrs else None
    seen = set()
    lines = [
        "server:",
        "  interface: %s" % DNS_ADDR,
        "  port: 53",
        "  outgoing-interface: %s" % DNS_OUT_ADDR,
        "  do-ip6: no",
        "  do-daemonize: no",
        "  username: \"\"",
        "  chroot: \"\"",
        "  directory: \"%s\"" % tmp,
        "  pidfile: \"%s/unbound.pid\"" % tmp,
        "  logfile: \"%s/unbound.log\"" % tmp,
        "  use-syslog: no",
        "  log-time-ascii: yes",
        "  verbosity: 1",
        "  log-queries: yes",
        "  log-replies: yes",
        "  module-config: \"%s\"" % ("validator iterator" if zone_file else "iterator"),
        "  num-threads: 1",
        "  access-control: 0.0.0.0/0 allow",
        # unbound asks its stubs from DNS_OUT_ADDR; a stub pointing at unbound itself is
        # refused, so unbound answers the client SERVFAIL (a real upstream failure).
        "  access-control: %s/32 refuse" % DNS_OUT_ADDR,
        "  local-zone: \".\" refuse",
        "  local-zone: \"%s\" static" % ZONE,
    ]
    for line in data:
        if "'" in line:
            raise ValueError("DNS record with ': %r" % line)
        lines.append("  local-data: '%s'" % line)
    for name, _ in stubs:
        lines.append("  local-zone: \"%s\" transparent" % name)
    if zone_file:
        # The signed zone: answered from the auth-zone below as if from upstream, validated
        # with its own trust anchor, so its answers carry the AD bit.
        lines += ["  local-zone: \"%s\" transparent" % SIGNED_ZONE,
                  "  trust-anchor: \"%s\"" % signed.trust_anchor]
    for name, addr in stubs:
        if name in seen:
            continue
        seen.add(name)
        lines += ["stub-zone:", "  name: \"%s\"" % name, "  stub-addr: %s" % addr]
    if zone_file:
        lines += ["auth-zone:", "  name: \"%s\"" % SIGNED_ZONE,
                  "  zonefile: \"%s\"" % zone_file, "  for-downstream: no",
                  "  for-upstream: yes", "  fallback-enabled: no"]
    lines += ["remote-control:", "  control-enable: no"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# nginx: one server per mta-sts.<domain>.


def nginx_conf(tmp, world, certs, attacked, generation, need_echo):
    www = os.path.join(tmp, "www-%d" % generation)
    os.makedirs(www, exist_ok=True)
    out = []
    if need_echo:
        out.append("load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;")
    out += [
        "worker_processes 1;",
        "user www-data;",
        "daemon off;",
        "pid %s/nginx.pid;" % tmp,
        "error_log %s/nginx-error.log info;" % tmp,
        "events { worker_connections 256; }",
        "http {",
        "  log_format rw '$ssl_server_name $remote_addr \"$request\" $status $body_bytes_sent';",
        "  access_log %s/nginx-access.log rw;" % tmp,
        "  client_body_temp_path %s/nginx-tmp/body;" % tmp,
        "  proxy_temp_path %s/nginx-tmp/proxy;" % tmp,
        "  fastcgi_temp_path %s/nginx-tmp/fastcgi;" % tmp,
        "  uwsgi_temp_path %s/nginx-tmp/uwsgi;" % tmp,
        "  scgi_temp_path %s/nginx-tmp/scgi;" % tmp,
        "  ssl_protocols TLSv1.2 TLSv1.3;",
        "  server_tokens off;",
        "  keepalive_timeout 0;",
        # The first server is the default one (unknown SNI): it serves the reload marker.
        "  server {",
        "    listen %s:443 ssl default_server;" % HTTPS_ADDR,
        "    server_name generation.test;",
        "    ssl_certificate %s;" % certs.cert("generation.test", "valid"),
        "    ssl_certificate_key %s;" % certs.key,
        "    location = /generation { default_type text/plain; return 200 \"%d\"; }" % generation,
        "    location / { return 421; }",
        "  }",
    ]
    for d0 in world.domains:
        d = world.attacked(d0) if attacked else d0
        if not (d["address"] == "https" or isinstance(d["address"], dict)):
            continue
        host = "mta-sts." + d["name"]
        http = d["http"]
        status = http.get("status", 200)
        ctype = http.get("content_type", "text/plain")
        transfer = http.get("transfer", "content-length")
        out += [
            "  server {",
            "    listen %s:443 ssl;" % HTTPS_ADDR,
            "    server_name %s;" % host,
            "    ssl_certificate %s;" % certs.cert(host, d["cert"]),
            "    ssl_certificate_key %s;" % certs.key,
            "    location = /.well-known/mta-sts.txt {",
        ]
        if status != 200:
            if "location" in http:
                out.append("      return %d %s;" % (status, http["location"]))
            else:
                out.append("      return %d;" % status)
        elif transfer == "drip":
            # Headers at once, then one line per second: a fetch deadline must end it.
            out.append("      default_type \"%s\";" % ctype)
            for line in policy_body(d).decode().splitlines() + ["x-pad: a"] * 20:
                out += ["      echo \"%s\";" % line, "      echo_flush;", "      echo_sleep 1;"]
        elif "delay" in http:
            # The whole response after `delay` seconds (the echo module): slower than a short
            # bound (the OpenSMTPD tables'), well within the fetch deadline.
            out += ["      default_type \"%s\";" % ctype, "      echo_sleep %s;" % http["delay"]]
            out += ["      echo \"%s\";" % line for line in policy_body(d).decode().splitlines()]
        else:
            path = os.path.join(www, d["name"] + ".txt")
            with open(path, "wb") as f:
                f.write(policy_body(d))
            out += ["      types { }", "      default_type \"%s\";" % ctype,
                    "      alias %s;" % path]
            if transfer == "chunked":
                # The SSI filter drops Content-Length: nginx sends the body chunked.
                out += ["      ssi on;", "      ssi_types *;"]
            elif transfer != "content-length":
                raise ValueError("%s: bad transfer %r" % (d["name"], transfer))
        out += ["    }", "    location / { return 404; }", "  }"]
    out.append("}")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# Exim receivers: one daemon per MX host, STARTTLS with its certificate, into a maildir.


def receiver_conf(tmp, host, h, certs):
    base = os.path.join(tmp, "mx", host)
    lines = [
        "primary_hostname = %s" % host,
        "local_interfaces = <; %s.25" % h["address"],
        "daemon_smtp_ports = 25",
        "spool_directory = %s/spool" % base,
        "log_file_path = %s/log/%%slog" % base,
        "pid_file_path = %s/exim.pid" % base,
        "exim_user = Debian-exim",
        "exim_group = Debian-exim",
        "keep_environment =",
        "host_lookup =",
        "rfc1413_hosts =",
        "log_selector = +smtp_connection +tls_sni +received_recipients +tls_cipher",
        "acl_smtp_rcpt = acl_rcpt",
    ]
    if h["starttls"]:
        lines += ["tls_advertise_hosts = *",
                  "tls_certificate = %s" % certs.cert(host, h["cert"]),
                  "tls_privatekey = %s" % certs.key]
    else:
        lines.append("tls_advertise_hosts =")
    lines += [
        "begin acl",
        "acl_rcpt:",
        "  accept",
        "begin routers",
        "maildir:",
        "  driver = accept",
        "  transport = maildir",
        "begin transports",
        "maildir:",
        "  driver = appendfile",
        "  directory = %s/maildir" % base,
        "  maildir_format",
        "  create_directory",
        "  user = Debian-exim",
        "  group = Debian-exim",
        "  mode = 0644",
    ]
    return base, "\n".join(lines) + "\n"


def receiver_connections(tmp, host):
    return sum(1 for ln in read_lines(os.path.join(tmp, "mx", host, "log", "mainlog"))
               if "SMTP connection from" in ln and "closed" not in ln and " lost" not in ln)


def maildir_hosts(tmp, world, msgid):
    """The receivers whose maildir holds the message."""
    found = []
    for host in world.mx_hosts:
        new = os.path.join(tmp, "mx", host, "maildir", "new")
        try:
            names = os.listdir(new)
        except OSError:
            continue
        for name in names:
            with open(os.path.join(new, name), "rb") as f:
                if ("<%s>" % msgid).encode() in f.read():
                    found.append(host)
    return found


# ---------------------------------------------------------------------------------------------
# Daemons inside the namespace.


class Daemons:
    def __init__(self, tmp):
        self.tmp = tmp
        self.procs = {}  # name -> Popen

    def start(self, name, argv, env=None):
        out = open(os.path.join(self.tmp, name.replace("/", "_") + ".out"), "wb")
        self.procs[name] = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=env)
        out.close()

    def alive(self, name):
        return self.procs[name].poll() is None

    def signal(self, name, sig):
        self.procs[name].send_signal(sig)

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + 5
        for p in self.procs.values():
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def dns_query(name, qtype=16, server=DNS_ADDR, timeout=0.5):
    """One UDP query; returns (rcode, [TXT strings of the answer]) or None on timeout."""
    qid = int.from_bytes(os.urandom(2), "big")
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack(">HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(q, (server, 53))
            resp = s.recv(4096)
        except OSError:
            return None
    rcode = resp[3] & 0x0F
    texts = []
    if resp[6:8] != b"\0\0" and qtype == 16:
        # Skip the question, read TXT answers (good enough for our own marker record).
        pos = 12
        while resp[pos] != 0:
            pos += 1 + resp[pos]
        pos += 5
        for _ in range(struct.unpack(">H", resp[6:8])[0]):
            pos += 2 if resp[pos] & 0xC0 == 0xC0 else 0
            rtype, _, _, rdlen = struct.unpack(">HHIH", resp[pos:pos + 10])
            pos += 10
            if rtype == 16:
                texts.append(resp[pos + 1:pos + 1 + resp[pos]].decode())
            pos += rdlen
    return rcode, texts


def https_generation():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((HTTPS_ADDR, 443), timeout=1) as raw:
            with ctx.wrap_socket(raw, server_hostname="generation.test") as s:
                s.sendall(b"GET /generation HTTP/1.0\r\nHost: generation.test\r\n\r\n")
                data = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
        return data.split(b"\r\n\r\n", 1)[1].decode()
    except (OSError, IndexError, ssl.SSLError):
        return None


def tcp_open(addr, port):
    try:
        with socket.create_connection((addr, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(what, predicate, limit=DAEMON_WAIT, proc=None):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():
            return True
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("%s exited with status %s" % (what, proc.returncode))
        time.sleep(0.05)
    raise RuntimeError("%s did not come up within %.0f s" % (what, limit))
