#!/usr/bin/env bash
# Where the time goes for one bench workload on sealfs (tmpfs backing):
# a perf profile of the daemon (top symbols, cpu-clock) and the FUSE requests
# the workload caused, counted by type from a second, debug-logged run.
#
#   scripts/profile.sh seq_write|seq_read|untar|md5|rm|du|ls|rand4k
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
ensure_fuse
apt_install linux-perf fio
WL=${1:?workload: seq_write seq_read untar md5 rm du ls rand4k}
cargo build --release --quiet
BIN=$PWD/target/release/sealfs
WORK=$(mktemp -d /dev/shm/sealfs-profile-XXXXXX)
MNT=$WORK/mnt
cleanup() { grep -q " $MNT " /proc/mounts && "$BIN" umount "$MNT"; rm -rf "$WORK"; }
trap cleanup EXIT
mkdir -p "$MNT"
echo "profile password" > "$WORK/pw"
chmod 600 "$WORK/pw"
tar -C /usr -cf "$WORK/include.tar" include

prepare() {  # state the workload starts from
  case "$WL" in
    seq_read) dd if=/dev/zero of="$MNT/seq" bs=1M count=1024 conv=fdatasync status=none ;;
    md5|rm|du|ls) tar -C "$MNT" -xf "$WORK/include.tar"; sync ;;
    rand4k) fio --name=lay --filename="$MNT/fio" --size=256M --rw=write --bs=1M --output=/dev/null ;;
  esac
  sync; echo 3 > /proc/sys/vm/drop_caches
}
workload() {
  case "$WL" in
    seq_write) dd if=/dev/zero of="$MNT/seq" bs=1M count=1024 conv=fdatasync status=none ;;
    seq_read) dd if="$MNT/seq" of=/dev/null bs=1M status=none ;;
    untar) tar -C "$MNT" -xf "$WORK/include.tar"; sync ;;
    md5) find "$MNT/include" -type f -print0 | xargs -0 md5sum > /dev/null ;;
    rm) rm -rf "$MNT/include" ;;
    du) du -s "$MNT/include" > /dev/null ;;
    ls) ls -lR "$MNT/include" > /dev/null ;;
    rand4k) fio --name=rand --filename="$MNT/fio" --size=256M --rw=randrw --bs=4k --ioengine=psync \
              --runtime=10 --time_based --output=/dev/null ;;
    *) echo "unknown workload $WL" >&2; exit 2 ;;
  esac
}
fresh_vault() { rm -rf "$WORK/vault"; "$BIN" init --passfile "$WORK/pw" --kdf-memory 64 "$WORK/vault" >/dev/null 2>&1; }

# 1. perf profile of the daemon
fresh_vault
"$BIN" mount --passfile "$WORK/pw" "$WORK/vault" "$MNT"
prepare
pid=$(pgrep -f "sealfs mount .*$MNT" | tail -1)
perf record -e cpu-clock -F 2000 -g -p "$pid" -o "$WORK/perf.data" >/dev/null 2>&1 &
perf_pid=$!
sleep 0.3  # let perf attach (not a synchronisation of the code under test)
start=$(date +%s.%N)
workload
end=$(date +%s.%N)
kill -INT $perf_pid; wait $perf_pid || true
"$BIN" umount "$MNT"
echo "== $WL: $(python3 -c "print(f'{$end - $start:.3f}')") s; daemon profile (cpu-clock, self time):"
perf report -i "$WORK/perf.data" --no-children --sort dso,symbol 2>/dev/null | grep -E '^ +[0-9]' | head -20 || true
echo "== daemon CPU vs wall: idle time in finish_task_switch means waiting for requests (latency-bound)"

# 2. FUSE requests by type (debug log of a foreground daemon)
fresh_vault
RUST_LOG=fuser=debug "$BIN" mount -f --passfile "$WORK/pw" "$WORK/vault" "$MNT" 2> "$WORK/debug.log" &
for _ in $(seq 100); do grep -q " $MNT " /proc/mounts && break; sleep 0.05; done
prepare
: > "$WORK/debug.log"
workload
"$BIN" umount "$MNT"
echo "== FUSE requests during $WL:"
grep -aoE ' (LOOKUP|GETATTR|SETATTR|CREATE|OPEN|READ|WRITE|FLUSH|RELEASE|FSYNC|GETXATTR|LISTXATTR|MKDIR|UNLINK|RMDIR|OPENDIR|READDIR|READDIRPLUS|RELEASEDIR|FORGET|RENAME|SYMLINK) ' "$WORK/debug.log" \
  | sort | uniq -c | sort -rn || true
