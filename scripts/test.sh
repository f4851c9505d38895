#!/usr/bin/env bash
# The whole test suite: unit, property, tamper, CLI and (real) FUSE mount
# tests. Installs what it needs. Mount tests fail, never skip, without FUSE.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
ensure_fuse
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --quiet --all-targets
cargo test --quiet --lib --bins --tests -- --test-threads=4
