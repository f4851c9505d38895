#!/usr/bin/env bash
# The cost of one FUSE round trip on this machine, per filesystem: a loop of
# getxattr("user.nothing") on one file, which every FUSE filesystem that
# supports extended attributes must answer itself (the kernel caches no
# xattrs). A system without xattr support answers the first call ENOSYS and
# the kernel then answers every later one alone: its figure is not a round
# trip, and the script says so.
#
#   scripts/roundtrip.sh [--calls N] [--systems "sealfs gocryptfs securefs"]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
. scripts/systems.sh
ensure_fuse
apt_install gocryptfs securefs python3
CALLS=100000
SYSTEMS="sealfs gocryptfs securefs"
while [ $# -gt 0 ]; do
  case "$1" in
    --calls) CALLS=$2; shift 2 ;;
    --systems) SYSTEMS=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
cargo build --release --quiet
BIN=$PWD/target/release/sealfs
WORK=$(mktemp -d /dev/shm/sealfs-roundtrip-XXXXXX)
BACK=$WORK/back
mkdir -p "$BACK"
cleanup() {
  local s
  for s in $SYSTEMS; do
    grep -q " $WORK/mnt-$s " /proc/mounts && umount_system "$s" || true
  done
  grep -q " $WORK/" /proc/mounts || rm -rf "$WORK"
}
trap cleanup EXIT
echo "roundtrip password" > "$WORK/pw"
chmod 600 "$WORK/pw"
for s in $SYSTEMS; do
  m=$(mount_system "$s")
  python3 - "$m/probe" "$CALLS" "$s" <<'PY'
import errno, os, sys, time
path, n, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
open(path, "w").close()
seen = set()
t0 = time.perf_counter()
for _ in range(n):
    try:
        os.getxattr(path, "user.nothing")
    except OSError as e:
        seen.add(e.errno)
us = (time.perf_counter() - t0) / n * 1e6
what = "no xattrs: answered by the kernel, not a round trip" if errno.EOPNOTSUPP in seen else "per round trip"
print(f"{name}: {us:.1f} us per getxattr ({what})")
os.unlink(path)
PY
  umount_system "$s"
done
