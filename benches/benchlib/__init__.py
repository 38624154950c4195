"""The package behind benches/compare (`make bench-compare`), by concern:

- common     paths, progress messages, running a child with a deadline and its rusage, the
             Report and its tables
- build      the release builds, libmtasts in target/bench-prefix, the C helpers, the venv
             target/bench-venv (postfix-mta-sts-resolver, the mtasts wheel), what is present
- hermetic   the test world of N bench domains (mtasts-testworld on loopback)
- measure    against a world: CPU per cold lookup, cold batch throughput, resolve_many scaling
- fresh      whole fresh processes (C via dlopen, the command) against /bin/true
- realworld  the namespace with unbound and nginx (from tests/realworld/rw), measured the same
"""
