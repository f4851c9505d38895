#!/usr/bin/env bash
# Crash soak: the daemon killed with SIGKILL at many points during writes,
# atomic saves and size changes (tests/mount_crash.rs with more rounds), and
# the mounted-vault tamper matrix, repeated.
#   scripts/crash-soak.sh [ROUNDS]   (default 200 kill points)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
ensure_fuse
export PATH="$HOME/.cargo/bin:$PATH"
SEALFS_CRASH_ROUNDS=${1:-200} cargo test --release --quiet --test mount_crash -- --nocapture 2>&1 \
  | grep -E "seed|synced writes|torn \{[0-9]|test result|panicked"
