"""What every part of the real-daemon world shares: the repository's paths (with the one
constant naming the Exim integration's directory, and the one naming OpenSMTPD's), the
namespace's addresses, and the small helpers log(), read_lines() and sh()."""

import os
import subprocess

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/realworld
ROOT = os.path.dirname(os.path.dirname(HERE))
# The Exim integration (the ${dlfunc} module's sources, its configuration snippet and routers):
# the only place the run names its directory.
EXIM_DIR = os.path.join(ROOT, "integrations", "exim")
# The shipped snippet, the default of --exim-snippet.
DEFAULT_EXIM_SNIPPET = os.path.join(EXIM_DIR, "mtasts.conf")

# The OpenSMTPD integration: the shipped smtpd.conf, the default of --opensmtpd-snippet (its
# table backend, table-mtasts, is built by cargo: --table-mtasts).
OPENSMTPD_DIR = os.path.join(ROOT, "integrations", "opensmtpd")
DEFAULT_OPENSMTPD_SNIPPET = os.path.join(OPENSMTPD_DIR, "smtpd.conf")
# Debian's opensmtpd (6.8), unpacked by scripts/install-deps (the package cannot be installed
# beside Exim either): the OpenSMTPD sender.
OPENSMTPD_ROOT = os.path.join(ROOT, "target", "rw-opensmtpd")

# Debian's postfix, unpacked by scripts/install-deps (the package cannot be installed beside
# Exim), and postfix-mta-sts-resolver's daemon in the venv install-deps makes: the Postfix sender
# and the reference the socketmap answers of `mtasts serve` are compared with.
POSTFIX_ROOT = os.path.join(ROOT, "target", "rw-postfix")
PMSR_DAEMON = os.path.join(ROOT, "target", "rw-pmsr-venv", "bin", "mta-sts-daemon")

# The namespace's addresses (documentation ranges; they exist only inside the namespace, on its
# own loopback interface).
DNS_ADDR = "192.0.2.53"  # unbound, serving the test zones
DNS_OUT_ADDR = "192.0.2.54"  # unbound's own upstream queries come from here; it refuses them
HTTPS_ADDR = "192.0.2.80"  # nginx: every mta-sts.<domain>, chosen by SNI
TLSRPT_HTTPS_ADDR = "192.0.2.81"  # the TLS-RPT reports' HTTPS receiver (rw/tlsrpt.py)
UNREACHABLE_ADDR = "192.0.2.99"  # assigned, nothing listens: connections are refused at once
BLACKHOLE_NET = "203.0.113.0/24"  # routed into lo, not assigned: packets vanish (timeouts)
BLACKHOLE_ADDR = "203.0.113.53"
MX_NET = "198.51.100."  # one address per receiving MX host, from .10 on

OVERLAY_MARKER = "mtasts-realworld-overlay"  # in the namespace's own /etc/ssl


def log(msg=""):
    print(msg, flush=True)



def read_lines(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().splitlines()
    except OSError:
        return []


def sh(argv):
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(argv), r.stderr.strip()))
