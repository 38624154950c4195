"""The world's keys and certificates, made per run: openssl's test CA (the trust roots), a
second CA nobody trusts and a leaf per (host, case) (Certs); the keys and signing of the
DNSSEC zone under SIGNED_ZONE (SignedZone); the TLSA 3 1 1 data of the leaves' shared key."""

import base64
import hashlib
import os
import shutil
import subprocess
import time

from .common import DNS_ADDR, OVERLAY_MARKER

# A DNSSEC-signed zone (ldns-signzone) that unbound serves as an auth-zone and validates with
# its own trust anchor: names under it get the AD bit (DANE, R-APPLY-4).
SIGNED_ZONE = "dnssec.test."


class Certs:
    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "certs")
        os.makedirs(self.dir)
        self.made = {}
        self.key = os.path.join(self.dir, "leaf.key")
        self.openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                      "-out", self.key])
        os.chmod(self.key, 0o644)  # a throwaway test key; Exim reads it as Debian-exim
        self.csr = os.path.join(self.dir, "leaf.csr")
        self.openssl(["req", "-new", "-key", self.key, "-subj", "/CN=leaf", "-out", self.csr])
        self.ca = {}
        for ca, cn in (("trusted", "mtasts realworld test CA"),
                       ("untrusted", "mtasts realworld untrusted CA")):
            base = os.path.join(self.dir, ca)
            os.makedirs(base + "-db")
            open(base + "-db/index.txt", "w").close()
            self.openssl(["genpkey", "-algorithm", "EC", "-pkeyopt",
                          "ec_paramgen_curve:P-256", "-out", base + ".key"])
            self.openssl(["req", "-x509", "-new", "-key", base + ".key", "-subj", "/CN=" + cn,
                          "-days", "36500", "-sha256",
                          "-addext", "basicConstraints=critical,CA:TRUE",
                          "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                          "-out", base + ".pem"])
            with open(base + ".cnf", "w") as f:
                f.write(
                    "[ca]\ndefault_ca = testca\n[testca]\n"
                    "dir = %s-db\ndatabase = $dir/index.txt\nnew_certs_dir = $dir\n"
                    "rand_serial = yes\ndefault_md = sha256\npolicy = any\n"
                    "unique_subject = no\ncopy_extensions = none\n"
                    "[any]\ncommonName = supplied\n" % base)
            self.ca[ca] = base
        self.ca_pem = self.ca["trusted"] + ".pem"
        # The namespace's system trust store (see outer()): the test CA alone. Written only
        # when /etc/ssl is the namespace's own (its marker is there), never the host's.
        if os.path.exists(os.path.join("/etc/ssl", OVERLAY_MARKER)):
            shutil.copy(self.ca_pem, "/etc/ssl/certs/ca-certificates.crt")

    def openssl(self, argv):
        r = subprocess.run(["openssl"] + argv, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("openssl %s: %s" % (" ".join(argv[:2]), r.stderr.strip()))

    def cert(self, host, kind):
        """PEM file of a certificate for `host` in case `kind` (the key is self.key)."""
        host = host.lower().rstrip(".")
        if (host, kind) in self.made:
            return self.made[(host, kind)]
        parent = host.split(".", 1)[1]
        san = {"valid": "DNS:" + host, "wildcard": "DNS:*." + parent,
               "wrong-name": "DNS:other." + parent, "cn-only": None, "expired": "DNS:" + host,
               "untrusted": "DNS:" + host}[kind]
        start, end = ("20000101000000Z", "20010101000000Z") if kind == "expired" else \
            ("20000101000000Z", "20991231235959Z")
        ca = self.ca["untrusted" if kind == "untrusted" else "trusted"]
        out = os.path.join(self.dir, "%s.%s.pem" % (host, kind))
        ext = out + ".ext"
        with open(ext, "w") as f:
            f.write("[leaf]\nbasicConstraints = critical,CA:FALSE\n"
                    "keyUsage = critical,digitalSignature\nextendedKeyUsage = serverAuth\n")
            if san:
                f.write("subjectAltName = %s\n" % san)
        self.openssl(["ca", "-batch", "-notext", "-config", ca + ".cnf", "-cert", ca + ".pem",
                      "-keyfile", ca + ".key", "-in", self.csr, "-out", out, "-subj",
                      "/CN=" + host, "-startdate", start, "-enddate", end,
                      "-extfile", ext, "-extensions", "leaf"])
        self.made[(host, kind)] = out
        return out


def in_signed_zone(name):
    name = name.lower().rstrip(".") + "."
    return name == SIGNED_ZONE or name.endswith("." + SIGNED_ZONE)


class SignedZone:
    """The keys of SIGNED_ZONE (made once per run): sign() writes the zone file for a set of
    RRs and returns it with the trust anchor (the KSK's DNSKEY) for unbound."""

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "dnssec")
        os.makedirs(self.dir)
        origin = SIGNED_ZONE.rstrip(".")
        self.keys = []
        for extra in (["-k"], []):  # KSK, then ZSK
            r = subprocess.run(["ldns-keygen", "-a", "ECDSAP256SHA256"] + extra + [origin],
                               capture_output=True, text=True, cwd=self.dir)
            if r.returncode != 0:
                raise RuntimeError("ldns-keygen: %s" % r.stderr.strip())
            self.keys.append(os.path.join(self.dir, r.stdout.strip()))
        with open(self.keys[0] + ".key") as f:
            self.trust_anchor = " ".join(f.read().split())

    def sign(self, rrs, generation, bogus=()):
        """The signed zone file for `rrs`; the RRSIGs of the owners in `bogus` are spoilt
        (one byte of each signature changed), so a validating resolver finds them bogus and
        answers SERVFAIL (S-77)."""
        zone = os.path.join(self.dir, "zone-%d" % generation)
        with open(zone, "w") as f:
            f.write("$ORIGIN %s\n" % SIGNED_ZONE)
            f.write("%s 300 IN SOA ns.%s hostmaster.%s %d 3600 600 86400 60\n" % (
                SIGNED_ZONE, SIGNED_ZONE, SIGNED_ZONE, generation))
            f.write("%s 300 IN NS ns.%s\n" % (SIGNED_ZONE, SIGNED_ZONE))
            f.write("ns.%s 300 IN A %s\n" % (SIGNED_ZONE, DNS_ADDR))
            for line in rrs:
                f.write(line + "\n")
        # Valid from an hour ago, for a day (clock skew; the run is short).
        start = time.strftime("%Y%m%d%H%M%S", time.gmtime(time.time() - 3600))
        end = time.strftime("%Y%m%d%H%M%S", time.gmtime(time.time() + 86400))
        r = subprocess.run(["ldns-signzone", "-i", start, "-e", end, "-f", zone + ".signed",
                            zone, self.keys[1], self.keys[0]], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("ldns-signzone: %s" % r.stderr.strip())
        if bogus:
            spoil_signatures(zone + ".signed", bogus)
        os.chmod(zone + ".signed", 0o644)
        return zone + ".signed"


def spoil_signatures(path, owners):
    """Changes one byte of the signature of every RRSIG owned by one of `owners` in the
    signed zone file at `path` (ldns-signzone's one-record-per-line output)."""
    owners = {o.lower() for o in owners}
    out, spoilt = [], 0
    with open(path) as f:
        for line in f:
            fields = line.split()
            if len(fields) > 12 and fields[0].lower() in owners and fields[3] == "RRSIG":
                sig = base64.b64decode("".join(fields[12:]))
                sig = bytes([sig[0] ^ 0xff]) + sig[1:]
                line = "\t".join(fields[:12] + [base64.b64encode(sig).decode()]) + "\n"
                spoilt += 1
            out.append(line)
    if spoilt < len(owners):
        raise RuntimeError("spoil_signatures: found %d RRSIGs for %s" % (spoilt, sorted(owners)))
    with open(path, "w") as f:
        f.writelines(out)


def tlsa_311(key_pem):
    """The TLSA 3 1 1 (DANE-EE, SPKI, SHA-256) data for the private key `key_pem`."""
    der = subprocess.run(["openssl", "pkey", "-in", key_pem, "-pubout", "-outform", "DER"],
                         capture_output=True, check=True).stdout
    return "3 1 1 " + hashlib.sha256(der).hexdigest()
