# mtasts — build and test entry points. `make test` is what CI runs (.ci/run).
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: all build test lint unit deps bench run

all: build

build:
	$(CARGO) build --release -p mtasts-cli

## Everything the project checks, on a fresh machine: tools, lint, every test.
test: deps lint unit

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

## The main job: look up a domain's policy (make run DOMAIN=example.com).
DOMAIN ?= gmail.com
run: build
	./target/release/mtasts lookup $(DOMAIN)
