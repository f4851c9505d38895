#!/usr/bin/env bash
# Times the key commands on real vaults, to show that plain `rekey` grows with
# the number of files, not their size:
#   - unlock alone (Argon2id at the KDF given; `sealfs ls` of an empty root),
#   - rekey of 10,000 small files, rekey of one 1 GiB file,
#   - rekey --full of both (re-encrypts everything: grows with size),
#   - passwd (one config write), fsck of both vaults.
#
#   scripts/bench-keys.sh [--files N] [--big-mib M] [--kdf-memory MIB]
#
# Files are written through a mount; caches are synced before each timing.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
ensure_fuse
FILES=10000 BIG=1024 KDF=256
while [ $# -gt 0 ]; do
  case "$1" in
    --files) FILES=$2; shift 2 ;;
    --big-mib) BIG=$2; shift 2 ;;
    --kdf-memory) KDF=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
cargo build --release --quiet
BIN=$PWD/target/release/sealfs
WORK=$(mktemp -d /var/tmp/sealfs-bench-keys-XXXXXX)
trap 'for m in "$WORK"/mnt-*; do "$BIN" umount "$m" 2>/dev/null || true; done; rm -rf "$WORK"' EXIT
printf 'bench keys password 7c1e\n' > "$WORK/pw"
printf 'bench keys password two 9d2f\n' > "$WORK/pw2"
chmod 600 "$WORK/pw" "$WORK/pw2"
. scripts/systems.sh

make_vault() {  # make_vault NAME: an empty vault at $WORK/NAME, mounted at $WORK/mnt-NAME
  "$BIN" init --passfile "$WORK/pw" --kdf-memory "$KDF" --recovery-key-file "$WORK/rk-$1" "$WORK/$1" >/dev/null 2>&1
  mkdir -p "$WORK/mnt-$1"
  "$BIN" mount --passfile "$WORK/pw" "$WORK/$1" "$WORK/mnt-$1"
}

run() {  # run LABEL CMD...: prints LABEL and the wall time of CMD
  local label=$1 t0 t1; shift
  sync
  t0=$(now)
  "$@" >/dev/null 2>&1 || { echo "$label: failed" >&2; return 1; }
  t1=$(now)
  printf '%-36s %8s s\n' "$label" "$(elapsed "$t0" "$t1")"
}

make_vault small
for j in $(seq 0 $((FILES / 100))); do mkdir -p "$WORK/mnt-small/d/$j"; done
for i in $(seq 1 "$FILES"); do
  printf 'file %s\n' "$i" > "$WORK/mnt-small/d/$((i / 100))/f$i"
done
"$BIN" umount "$WORK/mnt-small"
make_vault big
dd if=/dev/urandom of="$WORK/mnt-big/big.bin" bs=1M count="$BIG" status=none
"$BIN" umount "$WORK/mnt-big"

echo "sealfs key commands, Argon2id ${KDF} MiB x 3 ($(nproc) cores)"
run "unlock only (ls /)" "$BIN" ls --passfile "$WORK/pw" "$WORK/small" /
run "rekey, $FILES small files" "$BIN" rekey --passfile "$WORK/pw" "$WORK/small"
run "rekey, one ${BIG} MiB file" "$BIN" rekey --passfile "$WORK/pw" "$WORK/big"
run "rekey again, $FILES small files" "$BIN" rekey --passfile "$WORK/pw" "$WORK/small"
run "rekey --full, $FILES small files" "$BIN" rekey --full --passfile "$WORK/pw" "$WORK/small"
run "rekey --full, one ${BIG} MiB file" "$BIN" rekey --full --passfile "$WORK/pw" "$WORK/big"
run "passwd" "$BIN" passwd --passfile "$WORK/pw" --new-passfile "$WORK/pw2" --kdf-memory "$KDF" "$WORK/small"
run "fsck, $FILES small files" "$BIN" fsck --passfile "$WORK/pw2" "$WORK/small"
run "fsck, one ${BIG} MiB file" "$BIN" fsck --passfile "$WORK/pw" "$WORK/big"
