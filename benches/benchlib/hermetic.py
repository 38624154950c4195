"""The hermetic test world for benchmarks: a world file of N bench domains (bNNNNN.bench.test,
each with the default enforce policy, valid certificate, 127.0.0.1), served by
target/release/mtasts-testworld on loopback ephemeral ports until its stdin closes."""

import json
import os
import select
import subprocess
import time

from .common import TESTWORLD, log

PMSR_UNUSABLE_HERE = (
    "it cannot be pointed at the hermetic world: it always fetches "
    "https://mta-sts.<domain>/.well-known/mta-sts.txt on port 443 (no port setting), and its DNS "
    "comes only from /etc/resolv.conf (no nameserver setting), while the test world serves on "
    "ephemeral loopback ports; measured in the real-daemon world only")


def bench_domains(n):
    return ["b%05d.bench.test" % i for i in range(n)]


def write_world(path, domains):
    with open(path, "w") as f:
        json.dump({"comment": "bench-compare: %d bench domains, every default (enforce)"
                   % len(domains), "domains": [{"name": d} for d in domains]}, f)
    return path


class TestWorld:
    """`with TestWorld(world_file) as w:` w.dns ("127.0.0.1:PORT"), w.https_port, w.ca."""

    START_LIMIT = 60.0

    def __init__(self, world_file, log_path):
        self.world_file, self.log_path = world_file, log_path
        self.proc = None

    def __enter__(self):
        started = time.monotonic()
        err = open(self.log_path, "wb")
        self.proc = subprocess.Popen([TESTWORLD, "--world", self.world_file],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
        err.close()
        ready, _, _ = select.select([self.proc.stdout], [], [], self.START_LIMIT)
        line = self.proc.stdout.readline() if ready else b""
        try:
            info = json.loads(line)
        except ValueError:
            self.__exit__(None, None, None)
            raise RuntimeError("the test world did not start (see %s)" % self.log_path)
        self.dns, self.https_port, self.ca = info["dns"], info["https_port"], info["ca_pem"]
        log("test world up in %.1f s: DNS %s, HTTPS port %d" % (
            time.monotonic() - started, self.dns, self.https_port))
        return self

    def __exit__(self, *exc):
        if self.proc is None:
            return
        try:
            self.proc.stdin.close()  # EOF on stdin: it shuts down and deletes its CA file
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.proc = None


def world_file(tmp, n):
    return write_world(os.path.join(tmp, "world.json"), bench_domains(n))
