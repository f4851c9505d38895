# Sourced by bench.sh and scale.sh: timing helpers, and mounting each system
# side by side over one backing directory. Uses $WORK (scratch, holds the
# password file pw), $BACK (backing directory) and $BIN (the sealfs binary);
# system "baseline" is sealfs run from $BASE_BIN (another build, for A/B).

now() { date +%s.%N; }
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.3f}')" "$1" "$2"; }
drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches; }

mount_system() {  # mount_system NAME -> prints the directory to use
  local s=$1 data=$BACK/data-$s m=$WORK/mnt-$s
  rm -rf "$data"; mkdir -p "$data" "$m"
  case "$s" in
    sealfs|baseline)
      local bin=$BIN; [ "$s" = baseline ] && bin=$BASE_BIN
      "$bin" init --passfile "$WORK/pw" --kdf-memory 64 --recovery-key-file "$WORK/rk-$s" "$data" >/dev/null 2>&1
      "$bin" mount --passfile "$WORK/pw" "$data" "$m" ;;
    gocryptfs)
      gocryptfs -q -init -extpass "cat $WORK/pw" "$data" >/dev/null
      gocryptfs -q -extpass "cat $WORK/pw" "$data" "$m" ;;
    securefs)
      securefs create --format 4 --pass "$(cat "$WORK/pw")" "$data" >/dev/null 2>&1
      securefs mount -b --pass "$(cat "$WORK/pw")" "$data" "$m" >/dev/null 2>&1
      for _ in $(seq 50); do grep -q " $m " /proc/mounts && break; sleep 0.1; done ;;
    bindfs)
      bindfs "$data" "$m" ;;
    tmpfs)
      m=$data ;;
    *) echo "unknown system $s" >&2; return 1 ;;
  esac
  echo "$m"
}

umount_system() {  # umount_system NAME: unmounts and deletes its backing data
  local s=$1 m=$WORK/mnt-$s
  case "$s" in
    sealfs) "$BIN" umount "$m" ;;
    baseline) "$BASE_BIN" umount "$m" ;;
    tmpfs) ;;
    *) fusermount3 -u "$m" 2>/dev/null || umount "$m" ;;
  esac
  rm -rf "$BACK/data-$s" "$WORK/rk-$s"
}
