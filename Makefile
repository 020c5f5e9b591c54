# review-relay: build, test and try it locally. Everything runs against local services on 127.0.0.1.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON      ?= python3
MOTO_VENV   := .venv-moto
SAM_VENV    := .venv-sam
LAMBDA_VENV := .venv-lambda
MOTO_VERSION      := 5.2.5
SAM_CLI_VERSION   := 1.170.0
CFN_LINT_VERSION  := 1.58.0
CARGO_LAMBDA_VERSION := 1.9.2
ZIGLANG_VERSION   := 0.17.1

# Tests and the tested binary share the release profile, so everything is compiled once.
CARGO_TEST := cargo test --release

.PHONY: help
help:
	@echo "make demo      build, start local services, relay sample reviews twice, show what arrived"
	@echo "make bench     measure cold start, idle runs, a 10,000-review backlog; write BENCHMARKS.md"
	@echo "make test      the whole test suite (unit and integration)"
	@echo "make lint      cargo fmt --check and clippy -D warnings"
	@echo "make validate  sam validate --lint and cfn-lint on template.yaml"
	@echo "make package   the Lambda zip for x86-64 (cargo lambda, LTO)"
	@echo "make lambda-build  cargo lambda build --release --x86-64 (what CI checks; no LTO, quicker)"
	@echo "make venv      the moto virtualenv the tests and the demo use"

$(MOTO_VENV)/.installed:
	$(PYTHON) -m venv $(MOTO_VENV)
	$(MOTO_VENV)/bin/pip install --quiet 'moto[server]==$(MOTO_VERSION)'
	touch $@

.PHONY: venv
venv: $(MOTO_VENV)/.installed

.PHONY: test
test: venv
	$(CARGO_TEST) --no-run
	$(CARGO_TEST)

.PHONY: lint
lint:
	cargo fmt --all -- --check
	cargo clippy --release --all-targets -- -D warnings

.PHONY: demo
demo: venv
	cargo build --release --bins --examples
	cargo run --release --quiet --example demo

# The release binary as a Lambda (Runtime API double) against the local services, with
# examples/hello.rs as the cold-start baseline; a few minutes. Dummy AWS keys, no instance metadata.
BENCH_ENV := AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_EC2_METADATA_DISABLED=true

.PHONY: bench
bench: venv
	cargo build --release --bins --examples
	$(BENCH_ENV) cargo run --release --quiet --example bench

$(SAM_VENV)/.installed:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet 'aws-sam-cli==$(SAM_CLI_VERSION)' 'cfn-lint==$(CFN_LINT_VERSION)'
	touch $@

.PHONY: validate
validate: $(SAM_VENV)/.installed
	SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam validate --lint --template template.yaml
	$(SAM_VENV)/bin/cfn-lint template.yaml

$(LAMBDA_VENV)/.installed:
	$(PYTHON) -m venv $(LAMBDA_VENV)
	$(LAMBDA_VENV)/bin/pip install --quiet 'cargo-lambda==$(CARGO_LAMBDA_VERSION)' 'ziglang==$(ZIGLANG_VERSION)'
	touch $@

# Packaging only: thin LTO and one codegen unit make a smaller, faster binary but a slow build.
.PHONY: package
package: $(LAMBDA_VENV)/.installed
	PATH="$(CURDIR)/$(LAMBDA_VENV)/bin:$$PATH" \
	CARGO_PROFILE_RELEASE_LTO=thin CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
	CARGO_PROFILE_RELEASE_STRIP=symbols CARGO_PROFILE_RELEASE_PANIC=abort \
	CARGO_TARGET_DIR=target/lambda-build \
	cargo lambda build --release --x86-64 --output-format zip

# What CI checks: the Lambda build itself, cross-linked by zig, with the everyday release profile.
# Building for arm64 needs `rustup target add aarch64-unknown-linux-gnu` first (it downloads).
.PHONY: lambda-build
lambda-build: $(LAMBDA_VENV)/.installed
	PATH="$(CURDIR)/$(LAMBDA_VENV)/bin:$$PATH" cargo lambda build --release --x86-64
