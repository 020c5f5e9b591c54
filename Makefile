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
	@echo "make package   the Lambda zip for template.yaml's architecture (cargo lambda, LTO)"
	@echo "make lambda-build  cargo lambda build --release for that architecture (what CI checks; no LTO)"
	@echo "make check-arch    the built bootstrap's ELF machine is template.yaml's architecture"
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

# The function's architecture, from its one place: the `Architectures: [...]` line of template.yaml.
ARCH := $(shell sed -n 's/^ *Architectures: *\[ *\([a-z0-9_]*\) *\].*/\1/p' template.yaml)
ARCH_FLAG = $(if $(filter x86_64,$(ARCH)),--x86-64,$(if $(filter arm64,$(ARCH)),--arm64,))
ARM64_TARGET := aarch64-unknown-linux-gnu
# Where cargo lambda puts the bootstrap (the shared target directory, if there is one).
LAMBDA_DIR = $(or $(CARGO_TARGET_DIR),target)/lambda

# Stops unless template.yaml has exactly one known architecture.
define require_arch
	@if [ -z "$(ARCH_FLAG)" ] || [ "$(words $(ARCH))" != 1 ]; then \
		echo "template.yaml must have one \`Architectures: [x86_64]\` or \`[arm64]\` line (found: '$(ARCH)')" >&2; \
		exit 1; \
	fi
endef

# "yes" when template.yaml says arm64 and rustup lacks its target (asked only for arm64).
ifeq ($(strip $(ARCH)),arm64)
ARM64_MISSING := $(if $(shell rustup target list --installed 2>/dev/null | grep -x $(ARM64_TARGET)),,yes)
endif
ARM64_HINT = target $(ARM64_TARGET) not installed (rustup target add $(ARM64_TARGET))

# Packaging only: thin LTO and one codegen unit make a smaller, faster binary but a slow build.
.PHONY: package
ifeq ($(ARM64_MISSING),yes)
package:
	@echo "cannot package arm64: $(ARM64_HINT)" >&2; exit 1
else
package: $(LAMBDA_VENV)/.installed
	$(require_arch)
	PATH="$(CURDIR)/$(LAMBDA_VENV)/bin:$$PATH" \
	CARGO_PROFILE_RELEASE_LTO=thin CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
	CARGO_PROFILE_RELEASE_STRIP=symbols CARGO_PROFILE_RELEASE_PANIC=abort \
	CARGO_TARGET_DIR=target/lambda-build \
	cargo lambda build --release $(ARCH_FLAG) --output-format zip
endif

# What CI checks: the Lambda build itself, cross-linked by zig, with the everyday release profile.
# arm64 needs `rustup target add aarch64-unknown-linux-gnu` first (it downloads); without it
# lambda-build and check-arch say so and skip.
.PHONY: lambda-build check-arch
ifeq ($(ARM64_MISSING),yes)
lambda-build check-arch:
	@echo "skipping arm64: $(ARM64_HINT)"
else
lambda-build: $(LAMBDA_VENV)/.installed
	$(require_arch)
	PATH="$(CURDIR)/$(LAMBDA_VENV)/bin:$$PATH" cargo lambda build --release $(ARCH_FLAG)

# The bootstrap `make lambda-build` wrote must be a Linux binary for the function's architecture:
# its ELF header's e_machine (offset 18, little-endian) is 62 for x86_64, 183 for aarch64.
check-arch:
	$(require_arch)
	@bin="$(LAMBDA_DIR)/review-relay/bootstrap"; \
	[ -f "$$bin" ] || { echo "check-arch: $$bin not found; run make lambda-build first" >&2; exit 1; }; \
	set -- $$(od -An -tu1 -N20 "$$bin"); \
	[ "$$1 $$2 $$3 $$4" = "127 69 76 70" ] || { echo "check-arch: $$bin is not an ELF binary" >&2; exit 1; }; \
	machine=$$(( $${19} + 256 * $${20} )); \
	case "$(ARCH)" in x86_64) want=62;; arm64) want=183;; esac; \
	if [ "$$machine" = "$$want" ]; then \
		echo "check-arch: $$bin is $(ARCH) (ELF machine $$machine), as template.yaml says"; \
	else \
		echo "check-arch: $$bin has ELF machine $$machine, but template.yaml says $(ARCH) ($$want)" >&2; \
		exit 1; \
	fi
endif
