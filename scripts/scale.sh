#!/usr/bin/env bash
# Scale benchmark (long; not run in CI): a million small files in one vault.
#
#   scripts/scale.sh [--files N] [--dirs D] [--systems "sealfs gocryptfs"] [--backing DIR] [--no-build]
#
# For each system in turn, on a fresh vault on tmpfs: create N small files (a
# few bytes each, distinct content) spread over D directories, then, each timed
# separately after dropping caches: cold ls -lR; find -type f | wc -l (must be
# N); du -s; read every file; rm -rf. For sealfs it also reports the daemon's
# peak RSS, and its RSS and open fds sampled right after the read of every file
# (caches not dropped in between, so the kernel still holds about N inodes;
# the fuse_inode and dentry slab lines are printed at that moment to show it).
# Each system's backing data is deleted before the next one runs.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
. scripts/systems.sh
ensure_fuse
apt_install gocryptfs python3
FILES=1000000
DIRS=1000
SYSTEMS="sealfs gocryptfs"
BACKING=
BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --files) FILES=$2; shift 2 ;;
    --dirs) DIRS=$2; shift 2 ;;
    --systems) SYSTEMS=$2; shift 2 ;;
    --backing) BACKING=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
if [ $BUILD -eq 1 ] && [[ " $SYSTEMS " == *" sealfs "* ]]; then cargo build --release --quiet; fi
BIN=$PWD/target/release/sealfs

WORK=$(mktemp -d /dev/shm/sealfs-scale-XXXXXX)
if [ -n "$BACKING" ]; then
  mkdir -p "$BACKING"
  BACK=$(mktemp -d "$BACKING/sealfs-scale-back-XXXXXX")
else
  BACK=$WORK/back
  mkdir -p "$BACK"
fi
RESULTS=$WORK/results.tsv
SLABS=$WORK/slabs.txt
: > "$RESULTS"; : > "$SLABS"
is_mounted() { grep -q " $1 " /proc/mounts; }
cleanup() {
  local s m
  for s in $SYSTEMS; do
    m=$WORK/mnt-$s
    if is_mounted "$m"; then
      if [ "$s" = sealfs ]; then "$BIN" umount "$m" 2>/dev/null || true; fi
      if is_mounted "$m"; then fusermount3 -u "$m" 2>/dev/null || umount -l "$m" || true; fi
    fi
  done
  # Never recurse into a mount that is somehow still there.
  if grep -q " $WORK/" /proc/mounts; then
    echo "still mounted under $WORK; leaving it and $BACK in place" >&2
    return
  fi
  rm -rf "$BACK" "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "scale password" > "$WORK/pw"
chmod 600 "$WORK/pw"

# The fast creator: makedirs, then open/write/close per file; file i lives in
# d(i mod D) and holds "i\n".
cat > "$WORK/create.py" <<'PY'
import os, sys
root, n, d = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for j in range(d):
    os.makedirs(os.path.join(root, f"d{j}"), exist_ok=True)
flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
for i in range(n):
    fd = os.open(os.path.join(root, f"d{i % d}", f"f{i}"), flags, 0o644)
    os.write(fd, f"{i}\n".encode())
    os.close(fd)
PY
EXPECT_BYTES=$(python3 -c "print(sum(len(str(i)) + 1 for i in range($FILES)))")

record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$RESULTS"; }  # system metric value
fail() { echo "$*" >&2; exit 1; }
cold() {  # cold SYSTEM METRIC CMD...: times CMD on cold caches; its output goes to $WORK/out
  local s=$1 metric=$2 t0 t1
  shift 2
  echo "$s: $metric" >&2
  drop_caches
  t0=$(now); "$@" > "$WORK/out"; t1=$(now)
  record "$s" "$metric" "$(elapsed "$t0" "$t1")"
}

sealfs_pid() { pgrep -f "sealfs mount.*$WORK/mnt-sealfs" | head -1 || true; }
status_kib() {  # status_kib PID FIELD -> value in KiB from /proc/PID/status
  awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"
}
mib() { python3 -c "import sys; print(f'{int(sys.argv[1]) / 1024:.1f}')" "$1"; }

run_system() {
  local s=$1 m t0 t1 n bytes pid
  m=$(mount_system "$s")
  echo "$s: create $FILES files in $DIRS dirs" >&2
  drop_caches
  t0=$(now); python3 "$WORK/create.py" "$m" "$FILES" "$DIRS"; sync; t1=$(now)
  record "$s" create "$(elapsed "$t0" "$t1")"

  cold "$s" ls_lR ls -lR "$m"
  cold "$s" find find "$m" -type f
  n=$(wc -l < "$WORK/out")
  [ "$n" -eq "$FILES" ] || fail "$s: find counted $n files, expected $FILES"
  cold "$s" du du -s "$m"
  cold "$s" read_all sh -c 'find "$1" -type f -print0 | xargs -0 cat' sh "$m"
  bytes=$(wc -c < "$WORK/out")
  [ "$bytes" -eq "$EXPECT_BYTES" ] || fail "$s: read $bytes bytes, expected $EXPECT_BYTES"

  # Sample now: no cache drop since the read, so the kernel still holds the inodes.
  {
    echo "$s, right after read-all (fuse_inode is shared by every FUSE mount on the machine):"
    grep -E 'fuse_inode|dentry' /proc/slabinfo 2>/dev/null || echo "(/proc/slabinfo not readable)"
  } >> "$SLABS"
  if [ "$s" = sealfs ]; then
    pid=$(sealfs_pid)
    [ -n "$pid" ] || fail "sealfs: no daemon found for $m"
    record sealfs rss_sample_MiB "$(mib "$(status_kib "$pid" VmRSS)")"
    record sealfs fds_sample "$(ls "/proc/$pid/fd" | wc -l)"
  fi

  cold "$s" rm sh -c 'rm -rf "$1"/*' sh "$m"
  [ -z "$(ls -A "$m")" ] || fail "$s: $m not empty after rm"

  if [ "$s" = sealfs ]; then
    pid=$(sealfs_pid)
    [ -n "$pid" ] || fail "sealfs: no daemon found for $m"
    record sealfs peak_rss_MiB "$(mib "$(status_kib "$pid" VmHWM)")"
  fi
  umount_system "$s"
}

for s in $SYSTEMS; do
  run_system "$s"
done

python3 - "$RESULTS" "$SYSTEMS" "$FILES" "$DIRS" "$SLABS" <<'PY'
import sys
res = {}
for line in open(sys.argv[1]):
    if line.strip():
        s, m, v = line.rstrip("\n").split("\t")
        res[(s, m)] = v
systems = sys.argv[2].split()
cols = [("create", "create s"), ("ls_lR", "ls -lR s"), ("find", "find s"), ("du", "du s"),
        ("read_all", "read-all s"), ("rm", "rm s")]
print(f"{sys.argv[3]} files in {sys.argv[4]} directories, tmpfs backing, one run per system")
print()
print("| system | " + " | ".join(c for _, c in cols) + " |")
print("|---" * (len(cols) + 1) + "|")
for s in systems:
    print(f"| {s} | " + " | ".join(res.get((s, m), "n/a") for m, _ in cols) + " |")
if "sealfs" in systems and "gocryptfs" in systems:
    cells = []
    for m, _ in cols:
        a, b = float(res[("sealfs", m)]), float(res[("gocryptfs", m)])
        cells.append(f"{a / b:.2f}x" if b > 0 else "n/a")
    print("| sealfs/gocryptfs | " + " | ".join(cells) + " |")
if "sealfs" in systems:
    print()
    print(f"sealfs daemon peak RSS: {res.get(('sealfs', 'peak_rss_MiB'), 'n/a')} MiB; "
          f"after read-all: RSS {res.get(('sealfs', 'rss_sample_MiB'), 'n/a')} MiB, "
          f"{res.get(('sealfs', 'fds_sample'), 'n/a')} open fds")
print()
print("Kernel slab caches at the sample:")
print("```")
print(open(sys.argv[5]).read().rstrip())
print("```")
PY
