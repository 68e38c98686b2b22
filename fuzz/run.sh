#!/usr/bin/env bash
# Runs each of gmk's fuzz targets for a bounded time on a copy of its committed seed corpus.
#
#   fuzz/run.sh <build dir> [seconds per target = 30] [target ...]
#
# The build dir is the one `cmake --preset fuzz && cmake --build --preset fuzz` builds
# (build/fuzz). The committed corpus (fuzz/corpus/<target>/) is copied to a temporary directory
# first, so a run never writes to the checkout; new inputs stay there. Prints libFuzzer's
# "Done N runs in T second(s)" per target, then a summary; exits non-zero when any target
# reports a finding (a mismatch, a sanitizer report, a crash, a leak, a timeout or running out
# of memory), leaving the reproducer (crash-*, leak-*, ...) in fuzz-findings/ under the
# current directory.
set -uo pipefail

build=${1:?usage: fuzz/run.sh <build dir> [seconds per target] [target ...]}
seconds=${2:-30}
shift $(( $# >= 2 ? 2 : 1 ))
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(window attention discrete schedules)

work=$(mktemp -d "${TMPDIR:-/tmp}/gmk-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
findings="$PWD/fuzz-findings"
failed=()
summary=()
for t in "${targets[@]}"; do
  bin="$build/fuzz/gmk_fuzz_$t"
  [ -x "$bin" ] || { echo "fuzz: $bin is missing (build the fuzz preset first)"; exit 2; }
  mkdir -p "$work/$t"
  cp "$here/corpus/$t/"* "$work/$t/" 2>/dev/null || true
  echo "fuzz: $t for $seconds s (seed corpus: $(ls "$work/$t" | wc -l) inputs)"
  mkdir -p "$findings"
  # -timeout: one input taking longer than 10 s is a finding (inputs are bounded to milliseconds).
  "$bin" "$work/$t" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$findings/$t-" > "$work/$t.log" 2>&1
  rc=$?
  runs=$(grep -o 'Done [0-9]* runs in [0-9]* second(s)' "$work/$t.log" | tail -1)
  if [ $rc -ne 0 ]; then
    echo "fuzz: $t FAILED (exit $rc); the end of its log:"
    tail -n 40 "$work/$t.log"
    failed+=("$t")
    summary+=("$t: FAILED ${runs:-(no run count)}")
  else
    rmdir "$findings" 2>/dev/null || true
    echo "fuzz: $t: $runs, no findings"
    summary+=("$t: $runs, no findings")
  fi
done
echo "fuzz: summary"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: findings in: ${failed[*]} (reproducers in $findings)"
  exit 1
fi
