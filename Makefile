# mtasts — build and test entry points. `make test` is what CI runs (.ci/run).
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: all build test lint unit deps bench run

all: build

build:
	$(CARGO) build --release -p mtasts-cli

## Everything the project checks, on a fresh machine: tools, lint, every test.
test: deps lint unit test-c test-python test-realworld

## Installs what the tests need (idempotent; a no-op when everything is there).
deps:
	./scripts/install-deps

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	RUSTDOCFLAGS=-Dwarnings $(CARGO) doc --workspace --no-deps --locked

unit:
	$(CARGO) test --workspace --all-targets --locked
	$(CARGO) test --workspace --doc --locked

## Criterion benchmarks (prints ns/op figures).
bench:
	$(CARGO) bench -p mtasts-core --locked

## Issue 12's figures, mtasts side by side with postfix-mta-sts-resolver 1.5.1 (benches/compare):
## CPU per cold lookup, cold batch throughput, resolve_many scaling, fresh processes against
## /bin/true. Builds what it measures (release); the real-daemon part needs root and is skipped
## otherwise. BENCH_COMPARE_ARGS: e.g. --quick, --no-realworld, --only fresh-process.
.PHONY: bench-compare
bench-compare:
	./benches/compare $(BENCH_COMPARE_ARGS)

## The main job: `make run` looks up domains of the hermetic test world (scripts/demo);
## `make run DOMAIN=example.com` looks up a real domain through the system's resolver.
DOMAIN ?=
run:
ifeq ($(strip $(DOMAIN)),)
	$(CARGO) build --release --locked -p mtasts-cli -p mtasts-testworld
	./scripts/demo
else
	$(CARGO) build --release --locked -p mtasts-cli
	./target/release/mtasts lookup $(DOMAIN)
endif

## The C library (mtasts-ffi): header, install, C examples and their tests.
# `make install PREFIX=/usr/local` installs include/mtasts.h, libmtasts.so.VERSION (soname
# libmtasts.so.MAJOR, with the usual symlinks), libmtasts.a and lib/pkgconfig/mtasts.pc.
# FFI_PROFILE=debug installs the debug build instead of a release build (what test-c uses).
.PHONY: header install install-exim install-opensmtpd test-c
PREFIX ?= /usr/local
FFI_PROFILE ?= release
MTASTS_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
MTASTS_MAJOR := $(firstword $(subst ., ,$(MTASTS_VERSION)))
FFI_OUT := target/$(FFI_PROFILE)
LIBDIR := $(DESTDIR)$(PREFIX)/lib

## Regenerates include/mtasts.h from mtasts-ffi with cbindgen (commit the result).
header:
	MTASTS_UPDATE_HEADER=1 $(CARGO) test -p mtasts-ffi --test header --locked

install:
	$(CARGO) build -p mtasts-ffi --locked $(if $(filter release,$(FFI_PROFILE)),--release)
	install -d $(DESTDIR)$(PREFIX)/include $(LIBDIR)/pkgconfig
	install -m 644 include/mtasts.h $(DESTDIR)$(PREFIX)/include/mtasts.h
	install -m 755 $(FFI_OUT)/libmtasts.so $(LIBDIR)/libmtasts.so.$(MTASTS_VERSION)
	ln -sf libmtasts.so.$(MTASTS_VERSION) $(LIBDIR)/libmtasts.so.$(MTASTS_MAJOR)
	ln -sf libmtasts.so.$(MTASTS_MAJOR) $(LIBDIR)/libmtasts.so
	install -m 644 $(FFI_OUT)/libmtasts.a $(LIBDIR)/libmtasts.a
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(MTASTS_VERSION)|g' \
		mtasts-ffi/mtasts.pc.in > $(LIBDIR)/pkgconfig/mtasts.pc

## The Exim ${dlfunc} module and its configuration snippet, built against the libmtasts
## installed in PREFIX (run `make install` first): PREFIX/lib/mtasts/mtasts_exim.so,
## PREFIX/share/mtasts/exim/mtasts.conf (the transport) and mtasts-router.conf (the routers).
install-exim:
	rm -f target/exim-module/mtasts_exim.so
	PKG_CONFIG_PATH=$(DESTDIR)$(PREFIX)/lib/pkgconfig $(MAKE) -C integrations/exim \
		BUILD=$(CURDIR)/target/exim-module $(CURDIR)/target/exim-module/mtasts_exim.so
	install -d $(LIBDIR)/mtasts $(DESTDIR)$(PREFIX)/share/mtasts/exim
	install -m 644 target/exim-module/mtasts_exim.so $(LIBDIR)/mtasts/mtasts_exim.so
	install -m 644 integrations/exim/mtasts.conf $(DESTDIR)$(PREFIX)/share/mtasts/exim/mtasts.conf
	install -m 644 integrations/exim/mtasts-router.conf \
		$(DESTDIR)$(PREFIX)/share/mtasts/exim/mtasts-router.conf

## The OpenSMTPD table backend and the documented smtpd.conf (docs/opensmtpd.md), a release
## build: PREFIX/libexec/opensmtpd/table-mtasts (smtpd runs /usr/libexec/opensmtpd/table-NAME
## for `table T NAME:...`, so PREFIX=/usr for Debian's opensmtpd) and
## PREFIX/share/mtasts/opensmtpd/smtpd.conf.
install-opensmtpd:
	$(CARGO) build --release -p mtasts-opensmtpd --locked
	install -d $(DESTDIR)$(PREFIX)/libexec/opensmtpd $(DESTDIR)$(PREFIX)/share/mtasts/opensmtpd
	install -m 755 target/release/table-mtasts $(DESTDIR)$(PREFIX)/libexec/opensmtpd/table-mtasts
	install -m 644 integrations/opensmtpd/smtpd.conf \
		$(DESTDIR)$(PREFIX)/share/mtasts/opensmtpd/smtpd.conf

## The C examples and the C test program, built with pkg-config from a temporary install,
## run against the test world plainly, under ASan+UBSan and under valgrind; then the Exim
## ${dlfunc} module in a real Exim (examples/c/run-tests.sh, integrations/exim/tests/run.sh;
## honours $$VALGRIND).
test-c:
	./examples/c/run-tests.sh

## The Python wheel (bindings/python): built and installed into a fresh virtual environment
## (target/python-venv), then pytest against the test world, mypy --strict and stubtest.
.PHONY: test-python
test-python:
	./scripts/test-python

## The real-daemon world (tests/realworld): unbound, nginx and one Exim receiver per MX host in
## a network namespace of its own; the `mtasts` command, an Exim sender with the ${dlfunc}
## module and snippet installed by `make install install-exim` (into target/realworld), a
## Postfix sender asking `mtasts serve` (Postfix unpacked into target/rw-postfix by `make deps`),
## and OpenSMTPD senders with the shipped smtpd.conf and table-mtasts (OpenSMTPD unpacked into
## target/rw-opensmtpd by `make deps`), run against them on ports 53, 443 and 25; `mtasts
## serve`'s replies compared with postfix-mta-sts-resolver's (target/rw-pmsr-venv). Needs root;
## prints SKIPPED (and passes) where network namespaces cannot be created.
.PHONY: test-realworld
test-realworld:
	$(CARGO) build -p mtasts-cli --locked
	$(CARGO) build -p mtasts-opensmtpd --locked
	$(MAKE) -s install install-exim PREFIX=$(CURDIR)/target/realworld FFI_PROFILE=debug
	python3 tests/realworld/run --mtasts target/debug/mtasts \
		$(if $(wildcard target/python-venv/bin/python),--python target/python-venv/bin/python) \
		--exim-module target/realworld/lib/mtasts/mtasts_exim.so \
		--exim-snippet target/realworld/share/mtasts/exim/mtasts.conf \
		--table-mtasts target/debug/table-mtasts \
		--opensmtpd-snippet integrations/opensmtpd/smtpd.conf
