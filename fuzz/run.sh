#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 20), starting from the checked-in seeds in
# fuzz/seeds/TARGET and the working corpus in fuzz/corpus/TARGET (not checked in; new inputs
# that reach new code are saved there). Stops at the first crash; libFuzzer saves the input
# under fuzz/artifacts/TARGET/. Extra arguments go to libFuzzer, e.g. `-jobs=4`.
#
#   fuzz/run.sh            # 20 s per target, as CI does
#   fuzz/run.sh 3600       # an hour per target
#
# cargo-fuzz passes nightly-only compiler flags; RUSTC_BOOTSTRAP=1 lets a stable toolchain
# accept them, so no nightly toolchain is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
shift || true
export RUSTC_BOOTSTRAP=1

command -v cargo-fuzz >/dev/null 2>&1 || {
  echo "cargo-fuzz is not installed: cargo install --locked cargo-fuzz" >&2
  exit 1
}
# cargo-fuzz builds in fuzz/target unless told otherwise; honour CARGO_TARGET_DIR.
dir=()
if [ -n "${CARGO_TARGET_DIR:-}" ]; then dir=(--target-dir "$CARGO_TARGET_DIR"); fi
targets=$(cargo fuzz list)
# One build for all targets, so the time limits below are fuzzing time only.
cargo fuzz build "${dir[@]}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in $targets; do
  printf '\n-- %s (%s s)\n' "$t" "$seconds"
  mkdir -p "fuzz/corpus/$t"
  if cargo fuzz run "${dir[@]}" "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
    -max_total_time="$seconds" -print_final_stats=1 "$@" >"$log" 2>&1; then
    # libFuzzer is chatty: keep the summary.
    grep -E '^(INFO: seed corpus|#[0-9]+[[:space:]]+(INITED|DONE)|Done [0-9]+ runs|stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb):)' "$log" || true
  else
    status=$?
    tail -n 100 "$log"
    echo "fuzz target $t failed (exit $status); the input is in fuzz/artifacts/$t/" >&2
    exit "$status"
  fi
done
