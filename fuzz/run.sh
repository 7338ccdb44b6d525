#!/usr/bin/env bash
# Builds and runs every fuzz target for N seconds each (default 30); exits non-zero on a crash.
#
#   fuzz/run.sh [seconds]
#
# The toolchain is stable: RUSTC_BOOTSTRAP=1 lets it take cargo-fuzz's nightly flags. Set
# SANITIZER=none if -Zsanitizer=address is unavailable. The committed seeds in fuzz/corpus/<target>
# are read only; what libFuzzer finds goes to fuzz/target/corpus/<target> (not committed), crashes
# to fuzz/artifacts/<target>.
set -euo pipefail

seconds="${1:-30}"
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
export RUSTC_BOOTSTRAP=1
sanitizer="${SANITIZER:-address}"
targets=(event_parser gateway_text zlib_stream zstd_stream rest_error cache_sequence voice_packet)

command -v cargo-fuzz >/dev/null || { echo "cargo install cargo-fuzz" >&2; exit 2; }
# Build once, then run the binaries: every target fuzzes the same snapshot of the sources.
cargo fuzz build --sanitizer "$sanitizer"
bin_dir="target/$(rustc -vV | sed -n 's/^host: //p')/release"

failed=()
for target in "${targets[@]}"; do
    work="target/corpus/$target"
    mkdir -p "$work" "artifacts/$target"
    echo "== $target: ${seconds}s"
    log="target/fuzz-$target.log"
    # -rss_limit_mb: unbounded memory is a finding. -timeout: one input over 60 s is a hang.
    if "$bin_dir/$target" -artifact_prefix="artifacts/$target/" -max_total_time="$seconds" \
        -rss_limit_mb=2048 -timeout=60 -print_final_stats=1 "$work" "corpus/$target" \
        >"$log" 2>&1; then
        grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "$log" | tr -s ' ' | tr '\n' ' '
        echo
    else
        echo "!! $target crashed: see $here/$log and $here/artifacts/$target" >&2
        grep -E "panicked|ERROR: libFuzzer|SUMMARY|Test unit written" "$log" | head -5 >&2 || true
        failed+=("$target")
    fi
done

if ((${#failed[@]})); then
    echo "crashed: ${failed[*]}" >&2
    exit 1
fi
echo "all targets ran ${seconds}s without a crash"
