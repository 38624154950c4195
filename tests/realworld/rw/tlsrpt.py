"""TLS-RPT end to end (issue 15): the HTTPS report receiver (HttpsReceiver, Python's
http.server over TLS with a certificate of the test CA, on an address of the namespace), the
sender's report store read through `mtasts tlsrpt show`, the reports received (by HTTPS, or as
mail in an Exim receiver's maildir) unpacked, and compare_report(), a report's JSON against a
domain's `tlsrpt` expectation."""

import email
import email.policy
import gzip
import http.server
import json
import os
import ssl
import threading

from .common import read_lines

# What the receiver answers for a POST to this path: a refusal, so the sender goes on to the
# record's next URI (R-RPT-10).
REFUSING_PATH = "/refuse"


class HttpsReceiver:
    """A real HTTPS server (TLS with a leaf of the test CA) that stores every POST: one
    directory entry per request, `N.json` (path, headers) and `N.body` (the raw body)."""

    def __init__(self, tmp, address, cert, key):
        self.dir = os.path.join(tmp, "tlsrpt-https")
        os.makedirs(self.dir)
        self.lock = threading.Lock()
        store = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with store.lock:
                    n = len([f for f in os.listdir(store.dir) if f.endswith(".json")]) + 1
                    with open(os.path.join(store.dir, "%d.body" % n), "wb") as f:
                        f.write(body)
                    with open(os.path.join(store.dir, "%d.json" % n), "w") as f:
                        json.dump({"path": self.path, "headers": dict(self.headers.items())}, f)
                status = 503 if self.path == REFUSING_PATH else 201
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, fmt, *args):
                with open(os.path.join(store.dir, "access.log"), "a") as f:
                    f.write("%s %s\n" % (self.address_string(), fmt % args))

        self.server = http.server.ThreadingHTTPServer((address, 443), Handler)
        self.server.timeout = 5
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def requests(self):
        """[(meta, body)] in arrival order."""
        out = []
        n = 1
        while os.path.exists(os.path.join(self.dir, "%d.json" % n)):
            with open(os.path.join(self.dir, "%d.json" % n)) as f:
                meta = json.load(f)
            with open(os.path.join(self.dir, "%d.body" % n), "rb") as f:
                out.append((meta, f.read()))
            n += 1
        return out

    def access_log(self):
        return read_lines(os.path.join(self.dir, "access.log"))

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def mail_report(raw):
    """(headers, report JSON) of a report mail: its headers and its decompressed
    application/tlsrpt+gzip part."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    headers = {k.lower(): str(v) for k, v in msg.items()}
    headers["content-type"] = msg.get_content_type()
    headers["report-type"] = msg.get_param("report-type") or ""
    parts = [p for p in msg.walk() if p.get_content_type() == "application/tlsrpt+gzip"]
    if len(parts) != 1:
        raise ValueError("%d application/tlsrpt+gzip parts" % len(parts))
    part = parts[0]
    headers["attachment"] = part.get_filename() or ""
    return headers, json.loads(gzip.decompress(part.get_payload(decode=True)))


def compare_report(expect, report, domain, day, org, contact):
    """One report's JSON against the domain's `tlsrpt.report`: organisation, contact (an
    email address, RFC 8460 4.4), date range, one sts policy with its counts, and the
    failure details (result type, receiving MX host and IP, reason code, count), exactly."""
    problems = []
    if report.get("organization-name") != org:
        problems.append("organization-name %r, expected %r" % (report.get("organization-name"),
                                                               org))
    if report.get("contact-info") != contact:
        problems.append("contact-info %r, expected %r" % (report.get("contact-info"), contact))
    rng = report.get("date-range") or {}
    want = {"start-datetime": "%sT00:00:00Z" % day, "end-datetime": "%sT23:59:59Z" % day}
    if rng != want:
        problems.append("date-range %s, expected %s" % (json.dumps(rng), json.dumps(want)))
    pols = report.get("policies") or []
    if len(pols) != 1:
        problems.append("%d policies, expected 1" % len(pols))
        return problems
    p = pols[0]
    pol = p.get("policy", {})
    if pol.get("policy-type") != "sts" or pol.get("policy-domain") != domain:
        problems.append("policy %s, expected sts for %s" % (json.dumps(pol), domain))
    mode = "mode: %s" % expect["mode"]
    if mode not in (pol.get("policy-string") or []):
        problems.append("policy-string %s has no %r" % (pol.get("policy-string"), mode))
    if pol.get("mx-host") != expect["mx_host"]:
        problems.append("mx-host %s, expected %s" % (pol.get("mx-host"), expect["mx_host"]))
    summary = p.get("summary", {})
    got = (summary.get("total-successful-session-count"),
           summary.get("total-failure-session-count"))
    if got != (expect["successful"], expect["failed"]):
        problems.append("sessions %d successful, %d failed; expected %d, %d" % (
            got + (expect["successful"], expect["failed"])))
    details = sorted((d.get("result-type"), d.get("receiving-mx-hostname"),
                      d.get("receiving-ip"), d.get("failure-reason-code"),
                      d.get("failed-session-count")) for d in p.get("failure-details", []))
    want = sorted((f["result_type"], f["receiving_mx_hostname"], f["receiving_ip"],
                   f.get("failure_reason_code"), f["count"]) for f in expect["failures"])
    if details != want:
        problems.append("failure-details %s, expected %s" % (details, want))
    return problems
