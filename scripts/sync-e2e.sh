#!/usr/bin/env bash
# Two devices on one machine: two Syncthing instances on loopback only (no
# discovery, relays, NAT, upgrades, usage or crash reports: nothing leaves
# the machine), each syncing its own copy of one vault folder, each with
# sealfs mounted on top. Shows: a file written on A appears on B with its
# content; a rename and a delete propagate; the same file edited on both
# while the link is down ends as the file plus a conflict copy that both
# mounts show as readable plaintext, each side's content kept.
# Usage: scripts/sync-e2e.sh [--timeout SECONDS]   (per step; default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
ensure_fuse
apt_install syncthing curl
export PATH="$HOME/.cargo/bin:$PATH"
STEP=60
[ "${1:-}" = --timeout ] && STEP=$2

cargo build --quiet --release
BIN=$PWD/target/release/sealfs
W=$(mktemp -d /tmp/sealfs-sync-e2e.XXXXXX)
PIDS=()
cleanup() {
  for m in "$W"/mnt-a "$W"/mnt-b; do
    if grep -q " $m " /proc/mounts; then "$BIN" umount "$m" || umount -l "$m" || true; fi
  done
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
fail() { echo "sync-e2e: FAIL: $*" >&2; for d in a b; do echo "--- syncthing $d log (tail)" >&2; tail -20 "$W/st-$d.log" >&2 || true; done; exit 1; }

# A port nobody listens on.
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 20000))
    (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo "$p"; return; }
  done
}

# Waits until "$@" succeeds, at most $STEP seconds.
await() {
  local what=$1; shift
  local t0=$SECONDS
  until "$@" >/dev/null 2>&1; do
    [ $((SECONDS - t0)) -lt "$STEP" ] || fail "$what (waited ${STEP}s)"
    sleep 0.2
  done
  echo "sync-e2e: $what after $((SECONDS - t0))s"
}

KEY=sealfs-e2e-$RANDOM$RANDOM
for d in a b; do
  mkdir -p "$W/st-$d" "$W/vault-$d/.stfolder" "$W/mnt-$d"
  syncthing generate --home="$W/st-$d" --no-default-folder >/dev/null 2>&1
done
id_of() { syncthing serve --home="$W/st-$1" --device-id; }
ID_A=$(id_of a); ID_B=$(id_of b)
PORT_A=$(free_port); PORT_B=$(free_port); GUI_A=$(free_port); GUI_B=$(free_port)

config() { # device, its port, its gui port
  cat > "$W/st-$1/config.xml" <<EOF
<configuration version="36">
  <folder id="vault" label="vault" path="$W/vault-$1" type="sendreceive" rescanIntervalS="5" fsWatcherEnabled="true" fsWatcherDelayS="1">
    <filesystemType>basic</filesystemType>
    <device id="$ID_A"></device>
    <device id="$ID_B"></device>
    <minDiskFree unit="%">0</minDiskFree>
    <maxConflicts>10</maxConflicts>
    <markerName>.stfolder</markerName>
  </folder>
  <device id="$ID_A" name="A" compression="metadata"><address>tcp://127.0.0.1:$PORT_A</address></device>
  <device id="$ID_B" name="B" compression="metadata"><address>tcp://127.0.0.1:$PORT_B</address></device>
  <gui enabled="true" tls="false"><address>127.0.0.1:$3</address><apikey>$KEY</apikey></gui>
  <options>
    <listenAddress>tcp://127.0.0.1:$2</listenAddress>
    <globalAnnounceEnabled>false</globalAnnounceEnabled>
    <localAnnounceEnabled>false</localAnnounceEnabled>
    <relaysEnabled>false</relaysEnabled>
    <natEnabled>false</natEnabled>
    <announceLANAddresses>false</announceLANAddresses>
    <urAccepted>-1</urAccepted>
    <urSeen>3</urSeen>
    <crashReportingEnabled>false</crashReportingEnabled>
    <autoUpgradeIntervalH>0</autoUpgradeIntervalH>
    <startBrowser>false</startBrowser>
    <minHomeDiskFree unit="%">0</minHomeDiskFree>
  </options>
</configuration>
EOF
}
config a "$PORT_A" "$GUI_A"
config b "$PORT_B" "$GUI_B"

# Device A's vault exists before the devices meet; B receives it.
printf 'e2e password\n' > "$W/pw"; chmod 600 "$W/pw"
"$BIN" init --passfile "$W/pw" --kdf-memory 64 --recovery-key-file "$W/rk" "$W/vault-a" >/dev/null

for d in a b; do
  STNORESTART=1 STNOUPGRADE=1 syncthing serve --home="$W/st-$d" --no-browser --no-restart \
    --no-upgrade --skip-port-probing --logfile="$W/st-$d.log" >/dev/null 2>&1 &
  PIDS+=($!)
done
api() { # device, method, path
  local port=$GUI_A; [ "$1" = b ] && port=$GUI_B
  curl -sf -X "$2" -H "X-API-Key: $KEY" "http://127.0.0.1:$port$3"
}
await "both instances answer" api b GET /rest/system/ping
api a GET /rest/system/ping >/dev/null
await "device B has the vault" cmp -s "$W/vault-a/sealfs.conf" "$W/vault-b/sealfs.conf"

# Loopback only: every socket either instance holds is bound to 127.0.0.1
# (or ::1) and talks to loopback or nobody (read from /proc: the socket
# inodes in each process's fd table, looked up in /proc/net).
loopback_only() {
  local top pid inodes
  for top in "${PIDS[@]}"; do
    # Syncthing runs as a monitor process and its child.
    pid="$top $(pgrep -P "$top" | tr '\n' ' ')"
    inodes=$(for p in $pid; do ls -l "/proc/$p/fd" 2>/dev/null; done | sed -n 's/.*socket:\[\([0-9]*\)\].*/\1/p' | sort -u)
    [ -n "$inodes" ] || fail "no sockets found for Syncthing pid $pid"
    awk -v list="$(echo $inodes)" '
      BEGIN { n = split(list, a, " "); for (i = 1; i <= n; i++) want[a[i]] = 1 }
      FNR > 1 && ($10 in want) {
        split($2, l, ":"); split($3, r, ":")
        lo = (l[1] == "0100007F" || l[1] == "0000000000000000FFFF00000100007F" || l[1] == "00000000000000000000000001000000")
        ro = (r[1] ~ /^0+$/ || r[1] == "0100007F" || r[1] == "0000000000000000FFFF00000100007F" || r[1] == "00000000000000000000000001000000")
        if (!lo || !ro) { print FILENAME ": " $2 " -> " $3; bad = 1 }
        seen++
      }
      END { if (!seen) print "no socket of the process found in /proc/net"; exit (bad || !seen) }
    ' /proc/net/tcp /proc/net/tcp6 /proc/net/udp /proc/net/udp6 || fail "Syncthing pid $pid has a socket off loopback"
  done
}
loopback_only
echo "sync-e2e: every Syncthing socket is on loopback"

for d in a b; do
  "$BIN" mount --passfile "$W/pw" --log-file "$W/sealfs-$d.log" "$W/vault-$d" "$W/mnt-$d"
done
A=$W/mnt-a B=$W/mnt-b

has() { [ "$(cat "$1" 2>/dev/null)" = "$2" ]; }
gone() { [ ! -e "$1" ]; }

echo "written on A" > "$A/hello.txt"
mkdir "$A/docs"; echo "to be renamed" > "$A/docs/old-name.txt"; echo "to be deleted" > "$A/bye.txt"
await "a file written on A reads on B" has "$B/hello.txt" "written on A"
await "a nested file reaches B" has "$B/docs/old-name.txt" "to be renamed"
await "the file to delete reaches B" has "$B/bye.txt" "to be deleted"

mv "$A/docs/old-name.txt" "$A/docs/new-name.txt"; rm "$A/bye.txt"
await "a rename on A shows on B" has "$B/docs/new-name.txt" "to be renamed"
await "the old name is gone on B" gone "$B/docs/old-name.txt"
await "a delete on A shows on B" gone "$B/bye.txt"

# A conflict: the link goes down, both edit one file, the link comes back.
echo "first version" > "$A/report.txt"
await "the shared file reaches B" has "$B/report.txt" "first version"
api a POST "/rest/system/pause?device=$ID_B" >/dev/null
api b POST "/rest/system/pause?device=$ID_A" >/dev/null
echo "edited on A" > "$A/report.txt"; sync
sleep 1.1 # different modification times on the two devices (seconds resolution in the index)
echo "edited on B, later" > "$B/report.txt"; sync
api a POST "/rest/db/scan?folder=vault" >/dev/null
api b POST "/rest/db/scan?folder=vault" >/dev/null
api a POST "/rest/system/resume?device=$ID_B" >/dev/null
api b POST "/rest/system/resume?device=$ID_A" >/dev/null

contents() { cat "$1"/report*.txt 2>/dev/null | sort | tr '\n' '|'; }
both_kept() {
  local want="edited on A|edited on B, later|"
  [ "$(contents "$A")" = "$want" ] && [ "$(contents "$B")" = "$want" ] \
    && ls "$A" | grep -q '^report (sync-conflict .*)\.txt$' \
    && ls "$B" | grep -q '^report (sync-conflict .*)\.txt$'
}
await "both mounts show the file and its conflict copy, both edits kept" both_kept
echo "sync-e2e: on A: $(ls "$A" | tr '\n' ' ')"
loopback_only
echo "sync-e2e: in the vault: $(ls "$W/vault-a" | grep -c sync-conflict) conflict copy, named like $(ls "$W/vault-a" | grep sync-conflict | sed 's/^[A-Za-z0-9_-]*\./<encrypted name>./' | head -1)"
for d in a b; do
  if grep -E "ERROR|panic" "$W/sealfs-$d.log"; then fail "sealfs on $d logged errors"; fi
done
echo "sync-e2e: PASS"
