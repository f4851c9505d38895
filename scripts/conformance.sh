#!/usr/bin/env bash
# POSIX conformance (pjdfstest) and data integrity (fsx) against a fresh
# sealfs mount. Installs both from crates.io when missing. Prints the counts.
#
#   scripts/conformance.sh [--fsx-ops N] [--fsx-seeds "S1 S2 ..."] [--no-pjdfstest]
#
# Defaults are the full issue-3 runs: pjdfstest, then fsx 100000 ops x 3 seeds.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
ensure_fuse
export PATH="$HOME/.cargo/bin:$PATH"
FSX_OPS=100000
FSX_SEEDS="11 22 33"
RUN_PJD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --fsx-ops) FSX_OPS=$2; shift 2 ;;
    --fsx-seeds) FSX_SEEDS=$2; shift 2 ;;
    --no-pjdfstest) RUN_PJD=0; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
SHARED=$(cd "${SEALFS_SHARED:-../shared}" 2>/dev/null && pwd) || { echo "shared/ (pjdfstest.toml, fsx.toml) not found beside the repository" >&2; exit 1; }
[ -f "$SHARED/pjdfstest.toml" ] || { echo "missing $SHARED/pjdfstest.toml" >&2; exit 1; }
ensure_cargo_tool pjdfstest pjdfstest
ensure_cargo_tool fsx fsx
cargo build --release --quiet
BIN=$PWD/target/release/sealfs

WORK=$(mktemp -d /tmp/sealfs-conformance-XXXXXX)
chmod 755 "$WORK"  # pjdfstest switches to other users, who must reach the mount
MNT=$WORK/mnt
cleanup() {
  if grep -q " $MNT " /proc/mounts; then "$BIN" umount "$MNT" || umount -l "$MNT"; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$MNT" "$WORK/secondary"
echo "conformance password" > "$WORK/pw"
chmod 600 "$WORK/pw"
"$BIN" init --passfile "$WORK/pw" --kdf-memory 64 --recovery-key-file "$WORK/rk" "$WORK/vault" 2>/dev/null
"$BIN" mount --allow-other --passfile "$WORK/pw" --log-file "$WORK/daemon.log" "$WORK/vault" "$MNT"

status=0
if [ $RUN_PJD -eq 1 ]; then
  # -s: a second filesystem, so the two EXDEV tests run. link_count_max always
  # skips on FUSE: glibc's pathconf(_PC_LINK_MAX) answers 127 for FUSE_SUPER_MAGIC.
  (cd "$MNT" && pjdfstest -c "$SHARED/pjdfstest.toml" -p "$MNT" -s "$WORK/secondary") > "$WORK/pjdfstest.log" 2>&1 || true
  summary=$(grep '^Summary:' "$WORK/pjdfstest.log" || echo "Summary: none")
  echo "pjdfstest $summary"
  grep 'FAILED$' "$WORK/pjdfstest.log" || true
  passed=$(echo "$summary" | sed -n 's/.* \([0-9]*\) passed.*/\1/p')
  failed=$(echo "$summary" | sed -n 's/Summary: \([0-9]*\) failed.*/\1/p')
  if [ "${failed:-1}" != 0 ] || [ "${passed:-0}" -lt 383 ]; then status=1; fi
fi

fsx_failed=0
for seed in $FSX_SEEDS; do
  start=$(date +%s)
  if (cd "$WORK" && fsx -q -f "$SHARED/fsx.toml" -N "$FSX_OPS" -S "$seed" -P "$WORK" "$MNT/fsxfile-$seed") > "$WORK/fsx-$seed.log" 2>&1; then
    echo "fsx seed $seed: $FSX_OPS operations completed without a miscompare ($(( $(date +%s) - start )) s)"
  else
    echo "fsx seed $seed: FAILED"; tail -30 "$WORK/fsx-$seed.log"; fsx_failed=$((fsx_failed + 1)); status=1
  fi
  rm -f "$MNT/fsxfile-$seed"
done
if grep -q "panic" "$WORK/daemon.log"; then echo "daemon log has a panic"; status=1; fi
"$BIN" umount "$MNT"
seeds=$(echo $FSX_SEEDS | wc -w)
echo "fsx: $((seeds - fsx_failed)) passed, $fsx_failed failed"
exit $status
