#!/usr/bin/env bash
# Side-by-side benchmark of sealfs and its peers over the same backing
# filesystem, interleaved rounds, medians, ratios, and sealfs's peak RSS.
#
#   scripts/bench.sh [--rounds N] [--backing tmpfs|ext4] [--systems "sealfs gocryptfs securefs bindfs tmpfs"]
#                    [--quick] [--baseline SEALFS_BINARY]
# --baseline adds system "baseline": another sealfs build (e.g. the last
# release) mounted the same way, so a change is measured A/B in one run.
#
# Workloads (as in issue 4): 1 GiB sequential write (dd bs=1M, fdatasync) and
# cold read; untar of /usr/include; cold ls -lR; md5sum of every file (cold);
# rm -rf; 2000 files named "IMG (k).jpg" made in one directory; 100 MiB appended with dd bs=4k conv=fsync and 20 MiB with bs=512;
# fio random 4 KiB read+write (psync) on a 256 MiB file.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
. scripts/systems.sh
ensure_fuse
apt_install gocryptfs securefs bindfs fio python3 e2fsprogs
ROUNDS=3
BACKING=tmpfs
SYSTEMS="sealfs gocryptfs securefs bindfs tmpfs"
SEQ_MB=1024
APPEND_MB=100
APPEND512_MB=20
FIO_SECS=10
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --backing) BACKING=$2; shift 2 ;;
    --systems) SYSTEMS=$2; shift 2 ;;
    --baseline) BASE_BIN=$(realpath "$2"); shift 2 ;;
    --quick) ROUNDS=1; SEQ_MB=256; APPEND_MB=20; APPEND512_MB=4; FIO_SECS=4; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
if [ -n "${BASE_BIN:-}" ]; then SYSTEMS="$SYSTEMS baseline"; fi
cargo build --release --quiet
BIN=$PWD/target/release/sealfs

WORK=$(mktemp -d /dev/shm/sealfs-bench-XXXXXX)
if [ "$BACKING" = ext4 ]; then
  # An ext4 image on local disk, loop-mounted.
  IMG=$(mktemp /var/tmp/sealfs-bench-XXXXXX.img)
  truncate -s 8G "$IMG"; mkfs.ext4 -q -F "$IMG"
  BACK=$(mktemp -d /var/tmp/sealfs-bench-mnt-XXXXXX); mount -o loop "$IMG" "$BACK"
else
  BACK=$WORK/back
  mkdir -p "$BACK"
fi
RESULTS=$WORK/results.tsv
: > "$RESULTS"
cleanup() {
  for s in $SYSTEMS; do
    m=$WORK/mnt-$s
    if grep -q " $m " /proc/mounts; then fusermount3 -u "$m" 2>/dev/null || umount -l "$m" || true; fi
  done
  if [ "$BACKING" = ext4 ]; then umount "$BACK" || true; rm -f "$IMG"; rmdir "$BACK" || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

tar -C /usr -cf "$WORK/include.tar" include
echo "bench password" > "$WORK/pw"
chmod 600 "$WORK/pw"

record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$RESULTS"; }  # system metric round value

sealfs_rss_kib() {
  local pid
  pid=$(pgrep -f "sealfs mount .*$WORK/mnt-sealfs" | head -1 || true)
  [ -n "$pid" ] && awk '/VmHWM/ {print $2}' /proc/$pid/status || echo 0
}

run_round() {
  local s=$1 r=$2 m t0 t1
  m=$(mount_system "$s")
  # sequential write and cold read
  t0=$(now); dd if=/dev/zero of="$m/seq" bs=1M count=$SEQ_MB conv=fdatasync status=none; t1=$(now)
  record "$s" seq_write_MBps "$r" "$(python3 -c "print(f'{$SEQ_MB*1.048576/($(elapsed $t0 $t1)):.1f}')")"
  drop_caches
  t0=$(now); dd if="$m/seq" of=/dev/null bs=1M status=none; t1=$(now)
  record "$s" seq_read_MBps "$r" "$(python3 -c "print(f'{$SEQ_MB*1.048576/($(elapsed $t0 $t1)):.1f}')")"
  rm -f "$m/seq"
  # small-file tree
  t0=$(now); tar -C "$m" -xf "$WORK/include.tar"; sync; t1=$(now); record "$s" untar_s "$r" "$(elapsed $t0 $t1)"
  drop_caches
  t0=$(now); ls -lR "$m/include" > /dev/null; t1=$(now); record "$s" ls_lR_s "$r" "$(elapsed $t0 $t1)"
  drop_caches
  t0=$(now); find "$m/include" -type f -print0 | xargs -0 md5sum > /dev/null; t1=$(now); record "$s" md5_s "$r" "$(elapsed $t0 $t1)"
  t0=$(now); rm -rf "$m/include"; t1=$(now); record "$s" rm_s "$r" "$(elapsed $t0 $t1)"
  # 2000 new files named like conflict copies ("IMG (k).jpg") in one growing
  # directory: the names sealfs checks against its index of sync copies.
  mkdir "$m/paren"
  t0=$(now); for k in $(seq 2000); do : > "$m/paren/IMG ($k).jpg"; done; t1=$(now)
  record "$s" paren2k_s "$r" "$(elapsed $t0 $t1)"
  rm -rf "$m/paren"
  # appends
  t0=$(now); dd if=/dev/zero of="$m/app4k" bs=4k count=$((APPEND_MB * 256)) conv=fsync status=none; t1=$(now)
  record "$s" append4k_MBps "$r" "$(python3 -c "print(f'{$APPEND_MB*1.048576/($(elapsed $t0 $t1)):.1f}')")"
  t0=$(now); dd if=/dev/zero of="$m/app512" bs=512 count=$((APPEND512_MB * 2048)) conv=fsync status=none; t1=$(now)
  record "$s" append512_MBps "$r" "$(python3 -c "print(f'{$APPEND512_MB*1.048576/($(elapsed $t0 $t1)):.1f}')")"
  rm -f "$m/app4k" "$m/app512"
  # fio random 4k read+write
  fio --name=rand --filename="$m/fio" --size=256M --rw=randrw --bs=4k --ioengine=psync --runtime=$FIO_SECS \
      --time_based --output-format=json --output="$WORK/fio.json" >/dev/null 2>&1
  record "$s" rand4k_IOPS "$r" "$(python3 -c "import json; j=json.load(open('$WORK/fio.json'))['jobs'][0]; print(round(j['read']['iops']+j['write']['iops']))")"
  rm -f "$m/fio"
  if [ "$s" = sealfs ]; then record sealfs peak_rss_MiB "$r" "$(( $(sealfs_rss_kib) / 1024 ))"; fi
  umount_system "$s"
}

for r in $(seq "$ROUNDS"); do
  for s in $SYSTEMS; do
    echo "round $r: $s" >&2
    run_round "$s" "$r"
  done
done

python3 - "$RESULTS" "$SYSTEMS" "$BACKING" <<'PY'
import sys, statistics, collections
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
systems = sys.argv[2].split()
data = collections.defaultdict(list)
for s, m, r, v in rows:
    data[(s, m)].append(float(v))
metrics = ["seq_write_MBps", "seq_read_MBps", "untar_s", "ls_lR_s", "md5_s", "rm_s", "paren2k_s", "append4k_MBps", "append512_MBps", "rand4k_IOPS"]
higher = {m: not m.endswith("_s") for m in metrics}
med = {k: statistics.median(v) for k, v in data.items()}
print(f"backing: {sys.argv[3]}; medians of {max(len(v) for v in data.values())} interleaved rounds")
print("| system | " + " | ".join(metrics) + " |")
print("|---" * (len(metrics) + 1) + "|")
for s in systems:
    print(f"| {s} | " + " | ".join(f"{med.get((s, m), float('nan')):g}" for m in metrics) + " |")
peers = [s for s in systems if s not in ("sealfs", "tmpfs", "bindfs")]
for p in peers:
    cells = []
    for m in metrics:
        a, b = med.get(("sealfs", m)), med.get((p, m))
        if a is None or b is None or a == 0 or b == 0:
            cells.append("n/a")
        else:
            cells.append(f"{(a / b) if higher[m] else (a / b):.2f}x")
    print(f"| sealfs/{p} | " + " | ".join(cells) + " |")
if ("sealfs", "peak_rss_MiB") in med:
    print(f"sealfs daemon peak RSS: {max(data[('sealfs', 'peak_rss_MiB')]):g} MiB")
print("(ratios: throughput and IOPS as sealfs/peer, higher is better; times as sealfs/peer, lower is better)")
PY
