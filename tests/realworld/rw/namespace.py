"""The network namespace of a run, `mtasts-rw-<pid>`: creating it with its own /etc overlay
(resolv.conf, the trust store) and checking it can be entered; deleting it; sweeping the
namespaces of killed runs; putting the world's addresses on its loopback interface; and the
process helpers that find and end whatever runs inside it."""

import os
import shutil
import signal
import subprocess
import time

from .common import DNS_ADDR, OVERLAY_MARKER, log, sh

NAME_PREFIX = "mtasts-rw-"  # + the pid of the run that made it


def create_namespace(ns):
    """Adds the namespace `ns` with its /etc overlay and enters it once. Returns (the overlay
    directory, None), or (None, why it cannot be done) with nothing left behind."""
    made = subprocess.run(["ip", "netns", "add", ns], capture_output=True, text=True)
    if made.returncode != 0:
        reason = (made.stderr or made.stdout).strip() or "ip netns add exited %d" % made.returncode
        return None, reason
    # The namespace's own /etc/resolv.conf and /etc/ssl (ip netns exec bind-mounts
    # /etc/netns/<ns>/* over /etc/*): programs that use the system resolver and the system
    # trust store (Exim) see the world's DNS server and only its test CA (written by the
    # inner part into /etc/ssl/certs/ca-certificates.crt).
    etc = os.path.join("/etc/netns", ns)
    os.makedirs(os.path.join(etc, "ssl", "certs"))
    with open(os.path.join(etc, "resolv.conf"), "w") as f:
        f.write("nameserver %s\noptions timeout:2 attempts:1 trust-ad\n" % DNS_ADDR)
    if os.path.exists("/etc/ssl/openssl.cnf"):
        shutil.copy("/etc/ssl/openssl.cnf", os.path.join(etc, "ssl", "openssl.cnf"))
    open(os.path.join(etc, "ssl", "certs", "ca-certificates.crt"), "w").close()
    with open(os.path.join(etc, "ssl", OVERLAY_MARKER), "w") as f:
        f.write(ns + "\n")
    entered = subprocess.run(["ip", "netns", "exec", ns, "true"], capture_output=True, text=True)
    if entered.returncode != 0:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(etc, ignore_errors=True)
        reason = entered.stderr.strip() or "ip netns exec exited %d" % entered.returncode
        return None, "cannot enter one: %s" % reason
    return etc, None


def delete_namespace(ns, etc):
    """Ends what still runs in `ns`, deletes it and its /etc overlay `etc`."""
    kill_namespace_processes(ns)
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    shutil.rmtree(etc, ignore_errors=True)
    try:
        os.rmdir("/etc/netns")  # only when empty: other namespaces' files stay
    except OSError:
        pass


def add_addresses(addrs, routed_net):
    """Inside the namespace: `addrs` (each a /32) on its own loopback interface (no kernel
    module needed), and `routed_net` routed into it without being assigned."""
    sh(["ip", "link", "set", "lo", "up"])
    for a in addrs:
        sh(["ip", "addr", "add", a + "/32", "dev", "lo"])
    sh(["ip", "route", "add", routed_net, "dev", "lo"])


def sweep_stale_namespaces():
    """Namespaces of earlier runs that were killed before their teardown (their runner's pid
    is gone): end what runs in them and delete them."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        name = line.split()[0] if line.split() else ""
        owner = name[len(NAME_PREFIX):]
        if not (name.startswith(NAME_PREFIX) and owner.isdigit()):
            continue
        if process_state(int(owner)) not in (None, "Z"):
            continue  # its run is still going (or the pid was reused: leave it alone)
        log("realworld: removing the stale namespace %s" % name)
        kill_namespace_processes(name)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
        shutil.rmtree(os.path.join("/etc/netns", name), ignore_errors=True)


def process_state(pid):
    """The state letter of a process (R, S, Z, ...), or None when there is no such process."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def children(pid):
    """Pids of the live children of `pid`."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(entry))
    return out


def kill_namespace_processes(ns):
    """Whatever still runs in our namespace was started by this run: end it, by pid."""
    for sig, pause in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 0.5)):
        pids = namespace_pids(ns)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + pause
        while time.monotonic() < deadline and namespace_pids(ns):
            time.sleep(0.1)


def namespace_pids(ns):
    out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout
    return [int(p) for p in out.split() if p.isdigit() and int(p) != os.getpid()]
