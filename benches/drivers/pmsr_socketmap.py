"""Clients of postfix-mta-sts-resolver's daemon (mta-sts-daemon), as Postfix talks to it: the
socketmap protocol (netstrings `NAME DOMAIN`, answers `OK secure match=...` or `NOTFOUND `).
CONCURRENCY threads, each with its own connection, take domains from DOMAINS_FILE until none is
left and wait for each answer before sending the next request.

    python pmsr_socketmap.py PORT CONCURRENCY DOMAINS_FILE

Prints one JSON line: {"n", "ok", "wall", "answers"}; "ok" counts `OK secure` answers. Python 3
standard library only."""

import collections
import json
import socket
import sys
import threading
import time

TIMEOUT = 30.0  # seconds one answer may take


def read_netstring(sock, buf):
    while b":" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("the daemon closed the connection")
        buf += chunk
    head, _, rest = buf.partition(b":")
    length = int(head)
    while len(rest) < length + 1:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("the daemon closed the connection")
        rest += chunk
    if rest[length:length + 1] != b",":
        raise ValueError("bad netstring terminator")
    return rest[:length], rest[length + 1:]


def main(port, concurrency, domains):
    todo = list(reversed(domains))
    lock = threading.Lock()
    answers = collections.Counter()
    errors = []

    def client():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
                buf = b""
                while True:
                    with lock:
                        if not todo:
                            return
                        domain = todo.pop()
                    req = ("postfix %s" % domain).encode()
                    sock.sendall(b"%d:%s," % (len(req), req))
                    answer, buf = read_netstring(sock, buf)
                    with lock:
                        answers[answer.split(b" ", 2)[0].decode() + (
                            " secure" if answer.startswith(b"OK secure") else "")] += 1
        except Exception as e:  # noqa: BLE001 - reported, counted as not ok
            with lock:
                errors.append("%s: %s" % (type(e).__name__, e))

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT * 2)
    wall = time.perf_counter() - started
    return {"n": len(domains), "ok": answers.get("OK secure", 0), "wall": wall,
            "answers": dict(answers), "errors": errors[:3]}


if __name__ == "__main__":
    with open(sys.argv[3]) as f:
        names = f.read().split()
    print(json.dumps(main(int(sys.argv[1]), int(sys.argv[2]), names)))
