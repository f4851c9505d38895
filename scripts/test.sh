#!/usr/bin/env bash
# The whole test suite: POSIX conformance (pjdfstest) and a short fsx run on a
# real mount, two devices syncing through Syncthing, then the unit, property, tamper, CLI and FUSE mount tests.
# Installs what it needs. Mount tests fail, never skip, without FUSE.
# Long soak runs: scripts/conformance.sh (fsx 100k x 3), scripts/bench.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
ensure_fuse
apt_install sqlite3 git util-linux attr keyutils gnome-keyring dbus-x11 libsecret-tools \
  man-db zsh fish rsyslog systemd
export PATH="$HOME/.cargo/bin:$PATH"

# Any mount under a test's directory: FUSE mounts (type fuse.sealfs, root's
# and users' alike) and the tmpfs and bind mounts some tests make.
tmp="${TMPDIR:-/tmp}"
leftovers() { awk '{print $2}' /proc/mounts | grep -E "^$tmp/(sealfs-test-|sealfs-conformance-|\.tmp[A-Za-z0-9]{6}/)" || true; }
check_leftovers() {
  local left
  left=$(leftovers)
  if [ -n "$left" ]; then
    echo "mounts left behind by the tests (now unmounted): $left" >&2
    for m in $left; do umount -l "$m" || true; done
    return 1
  fi
}
trap 'check_leftovers' EXIT

scripts/conformance.sh --fsx-ops "${SEALFS_FSX_OPS:-20000}" --fsx-seeds "${SEALFS_FSX_SEEDS:-$RANDOM}"
# Two devices: two Syncthing instances on loopback, sealfs mounted on each.
scripts/sync-e2e.sh
cargo build --quiet --all-targets
cargo test --quiet --lib --bins --tests -- --test-threads=4
check_leftovers
