#!/usr/bin/env bash
# Builds sealfs and mounts a vault, creating it on first use.
#
#   scripts/try.sh [--passfile F] [VAULT [MOUNTPOINT]]
#
# Defaults: VAULT=~/sealfs-vault, MOUNTPOINT=~/sealfs-mnt. Without --passfile
# the password is asked on the terminal (twice when the vault is created).
# Unmount with: target/release/sealfs umount MOUNTPOINT
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
ensure_fuse
pass=()
if [ "${1:-}" = "--passfile" ]; then pass=(--passfile "$2"); shift 2; fi
VAULT=${1:-$HOME/sealfs-vault}
MNT=${2:-$HOME/sealfs-mnt}
cargo build --release --quiet
BIN=$PWD/target/release/sealfs
if [ ! -f "$VAULT/sealfs.conf" ]; then
  "$BIN" init "${pass[@]}" "$VAULT"
fi
mkdir -p "$MNT"
"$BIN" mount "${pass[@]}" "$VAULT" "$MNT"
echo "mounted $VAULT at $MNT (plaintext view); unmount with: $BIN umount $MNT"
