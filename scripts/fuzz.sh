#!/usr/bin/env bash
# `make fuzz`: runs every fuzz target of fuzz/ (cargo-fuzz, libFuzzer) one after another and
# rewrites FUZZING.md with, per target, the executions, libFuzzer's final coverage (`cov:`
# edges, `ft:` features), the corpus size, the findings (crash, timeout, OOM files) and the
# date.
#
#   FUZZ_RUNS       executions per target (libFuzzer -runs=), default 10000000
#   FUZZ_SECS       seconds per target instead (-max_total_time=); set: a time-boxed run
#   FUZZ_TARGETS    space-separated subset (default: every target of fuzz/Cargo.toml)
#   FUZZ_SANITIZER  none (default: the crate is safe Rust, a finding is a panic or an
#                   overflow, caught by debug assertions) or address
#
# Needs a nightly toolchain and cargo-fuzz; says how to install each when one is missing.
# Each target's working corpus grows in fuzz/corpus/<target>/ (not committed), seeded from
# the committed fuzz/seeds/<target>/; findings land in fuzz/artifacts/<target>/ and the
# full libFuzzer output in fuzz/logs/<target>.log. Exits 1 when any target found something.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_RUNS=${FUZZ_RUNS:-10000000}
FUZZ_SECS=${FUZZ_SECS:-}
FUZZ_SANITIZER=${FUZZ_SANITIZER:-none}

if ! cargo +nightly --version >/dev/null 2>&1; then
	echo "make fuzz: no nightly toolchain: install it with 'rustup toolchain install nightly'" >&2
	exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
	echo "make fuzz: cargo-fuzz not found: install it with 'cargo install cargo-fuzz --locked'" >&2
	exit 1
fi

all_targets=$(sed -n 's/^name = "\([a-z_]*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^mfa-gate-fuzz$')
targets=${FUZZ_TARGETS:-$all_targets}
if [ -z "$targets" ]; then
	echo "make fuzz: no targets found in fuzz/Cargo.toml" >&2
	exit 1
fi

if [ -n "$FUZZ_SECS" ]; then
	budget=(-max_total_time="$FUZZ_SECS")
	budget_text="$FUZZ_SECS s a target (time-boxed)"
else
	budget=(-runs="$FUZZ_RUNS")
	budget_text="$FUZZ_RUNS executions a target"
fi

(cd fuzz && cargo +nightly fuzz build --sanitizer "$FUZZ_SANITIZER")

mkdir -p fuzz/logs
rows=()
found=0
for t in $targets; do
	corpus=fuzz/corpus/$t
	artifacts=fuzz/artifacts/$t
	mkdir -p "$corpus" "$artifacts"
	log=fuzz/logs/$t.log
	echo "== $t ($budget_text)"
	start=$(date +%s)
	# A finding makes libFuzzer exit non-zero; the loop goes on to the next target.
	set +e
	(cd fuzz && cargo +nightly fuzz run --sanitizer "$FUZZ_SANITIZER" "$t" \
		"corpus/$t" "seeds/$t" -- \
		"${budget[@]}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="artifacts/$t/") >"$log" 2>&1
	rc=$?
	set -e
	secs=$(( $(date +%s) - start ))
	# libFuzzer's last status line: `#N  DONE  cov: C ft: F corp: K/S ...`.
	status=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	[ -n "$execs" ] || execs=$(echo "$status" | sed -n 's/^#\([0-9]*\).*/\1/p')
	cov=$(echo "$status" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
	ft=$(echo "$status" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
	corp_files=$(find "$corpus" -type f | wc -l | tr -d ' ')
	corp_bytes=$(( $(du -sb "$corpus" | cut -f1) / 1024 ))
	findings=$(find "$artifacts" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' -o -name 'slow-unit-*' \) | sort)
	if [ -n "$findings" ]; then
		found=1
		finding_text=$(echo "$findings" | sed 's|^fuzz/||' | tr '\n' ' ')
	elif [ "$rc" -ne 0 ]; then
		found=1
		finding_text="libFuzzer exited $rc without an artifact: see fuzz/logs/$t.log"
	else
		finding_text="none"
	fi
	echo "   ${execs:-?} executions in ${secs}s, cov ${cov:-?} ft ${ft:-?}, corpus $corp_files files, findings: $finding_text"
	rows+=("| \`$t\` | ${execs:-?} | ${secs} | ${cov:-?} | ${ft:-?} | $corp_files files, ${corp_bytes} KB | $finding_text |")
done

if [ -n "$FUZZ_SECS" ] || [ "$FUZZ_RUNS" -lt 10000000 ]; then
	kind="**Short run**, $budget_text: a smoke test of every target, not the full campaign."
else
	kind="Full run, $budget_text."
fi

{
	cat <<EOF
# Fuzzing

Written by \`make fuzz\` (scripts/fuzz.sh); do not edit by hand.

Every parser that reads bytes from outside the filter has a libFuzzer target in \`fuzz/\`
(cargo-fuzz; its own workspace, excluded from the root one, so \`make test\` and CI never
build it). Each asserts that the parser never panics and, where it is cheap, an invariant:

| target | entry point | invariant besides "no panic" |
| --- | --- | --- |
| \`token_verify\` | \`verify::peek_issuer\`, \`verify::verify\` (Envoy's test JWKS + an HMAC secret, fixed options) | an accepted token has the configured \`iss\`, an allowed \`alg\`, an unexpired \`exp\` |
| \`jwks_parse\` | \`jwks::KeySet::from_jwks_json\` | counts agree (\`len\`, \`is_empty\`, skipped reasons) |
| \`config_parse\` | \`config::parse\` | the same document compiles the same way twice |
| \`jwt_authn_metadata\` | \`token::jwt_authn::decode_payload\` | decoded claims serialize as JSON |
| \`pairs\` | \`pairs::parse\`, \`pairs::serialize\`, \`RequestHeaders\` | parse(serialize(parse(x))) == parse(x); every entry found by its name |
| \`events\` | \`events::verify_set\`, \`verify_logout_token\`, \`logout_token_from_form\`, \`parse_poll_response\` | a poll answer holds at most \`MAX_POLL_SETS\` SETs |
| \`dpop\` | \`token::dpop::verify_proof\`, \`normalize_htu\` | \`htu\` normalization is idempotent |
| \`rls_answer\` | \`wire::rls::decode_answer\` | every refusal has its reason code |
| \`introspection\` | \`introspection::answer::parse\` | — |
| \`sign_in_state\` | \`sign_in::state::decode_cookie\` (as sent, and re-signed with the target's key) | decode(encode(x)) == x; the return URL is a path |

Seeds (\`fuzz/seeds/<target>/\`, committed, small) come from shared/vectors (Envoy's
jwt_authn test tokens and JWKS, the JOSE cookbook, Wycheproof JWKs, IdP claim sets) and from
the configurations in envoy/: \`python3 fuzz/make_seeds.py\` rewrites them. Every finding is to
become a native regression test in tests/ that feeds its exact bytes, and a fix (none so far).

## Latest run

$kind

Date: $(date -u '+%Y-%m-%d %H:%M UTC'); sanitizer: $FUZZ_SANITIZER; toolchain: $(cargo +nightly --version);
machine: $(nproc) cores, shared with other builds.

| target | executions | seconds | cov (edges) | ft (features) | corpus | findings |
| --- | ---: | ---: | ---: | ---: | --- | --- |
EOF
	printf '%s\n' "${rows[@]}"
	cat <<EOF

The full campaign is 10,000,000 executions a target (the table above says how long each
took on this machine); run it on an idle machine:

    make fuzz                      # FUZZ_RUNS=10000000 is the default
    FUZZ_SECS=20 make fuzz         # a short run, 20 s a target
    FUZZ_TARGETS=pairs make fuzz   # one target

Reproduce a finding: \`cd fuzz && cargo +nightly fuzz run --sanitizer none <target> artifacts/<target>/<file>\`.
EOF
} >FUZZING.md

echo "FUZZING.md written"
exit "$found"
