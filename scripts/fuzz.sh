#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets) for a fixed time, starting from
# the committed seed corpus (fuzz/corpus/TARGET). New inputs go to a
# scratch corpus; --update-corpus merges what adds coverage back into the
# committed one (kept small by libFuzzer's merge). Crashes are saved under
# fuzz/artifacts/TARGET and make the script fail.
# usage: scripts/fuzz.sh [SECONDS_PER_TARGET (default 60)] [--update-corpus] [TARGET...]
# Needs the nightly toolchain (rustup) and cargo-fuzz (installed if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
secs=60 update=0 targets=()
for a in "$@"; do
  case "$a" in
    --update-corpus) update=1 ;;
    ''|*[!0-9]*) targets+=("$a") ;;
    *) secs="$a" ;;
  esac
done
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo +nightly fuzz list)
cargo +nightly fuzz build -O
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
status=0
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t" "$scratch/$t"
  start=$(date +%s)
  if cargo +nightly fuzz run -O "$t" "$scratch/$t" "fuzz/corpus/$t" -- \
      -max_total_time="$secs" -max_len=65536 -rss_limit_mb=4096 >"$scratch/$t.log" 2>&1; then
    result=ok
  else
    result=FAILED; status=1
  fi
  runs=$(grep -oE 'Done [0-9]+ runs' "$scratch/$t.log" | grep -oE '[0-9]+' || echo '?')
  cov=$(grep -oE 'cov: [0-9]+' "$scratch/$t.log" | tail -1 | grep -oE '[0-9]+' || echo '?')
  echo "fuzz $t: $result, $((($(date +%s) - start))) s, $runs runs, coverage $cov"
  [ "$result" = ok ] || tail -30 "$scratch/$t.log"
  if [ $update -eq 1 ] && [ "$result" = ok ]; then
    merged=$(mktemp -d)
    cargo +nightly fuzz run -O "$t" "$merged" "fuzz/corpus/$t" "$scratch/$t" -- -merge=1 >/dev/null 2>&1 || true
    rm -rf "fuzz/corpus/$t" && mv "$merged" "fuzz/corpus/$t"
  fi
done
exit $status
