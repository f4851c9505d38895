#!/usr/bin/env bash
# Installs sealfs where a Linux system looks for each part:
#   PREFIX/bin/sealfs                                   the binary (built here, release)
#   PREFIX/share/man/man1/sealfs*.1, man5/sealfs-format.5
#   PREFIX/share/bash-completion/completions/sealfs
#   PREFIX/share/zsh/site-functions/_sealfs
#   PREFIX/share/fish/vendor_completions.d/sealfs.fish
#   /sbin/mount.fuse.sealfs -> PREFIX/bin/sealfs        for `mount -t fuse.sealfs` and /etc/fstab
#   the systemd user unit sealfs@.service               (contrib/; PREFIX/lib/systemd/user, or
#                                                        ~/.local/share/systemd/user for ~/.local)
# usage: scripts/install.sh [--prefix P] [--destdir D] [--bin FILE]
#   --prefix  default /usr/local as root, ~/.local otherwise
#   --destdir stage everything under D (for packaging and tests)
#   --bin     install this binary instead of building one
# As root it also installs fuse3 (apt) when missing. An ordinary user's
# install skips the mount helper (mount(8) looks for it in /sbin only).
set -euo pipefail
usage() { echo "usage: $0 [--prefix P] [--destdir D] [--bin FILE]" >&2; exit 2; }
prefix="" destdir="" bin=""
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || usage
  case "$1" in
    # Paths are taken relative to where the script was called from.
    --prefix) prefix=$(realpath -m -- "$2"); shift 2 ;;
    --destdir) destdir=$(realpath -m -- "$2"); shift 2 ;;
    --bin) bin=$(realpath -e -- "$2"); shift 2 ;;
    *) usage ;;
  esac
done
cd "$(dirname "$0")/.."
root=0; [ "$(id -u)" -eq 0 ] && root=1
if [ -z "$prefix" ]; then
  if [ $root -eq 1 ]; then prefix=/usr/local; else prefix="$HOME/.local"; fi
fi
if [ -z "$bin" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
  if ! command -v cargo >/dev/null; then
    echo "cargo is not on PATH: build as yourself first (cargo build --release)," \
      "then run: $0 --bin target/release/sealfs" >&2
    exit 1
  fi
  cargo build --release --quiet
  bin=$PWD/target/release/sealfs
fi
if [ $root -eq 1 ] && [ -z "$destdir" ]; then
  . scripts/deps.sh
  ensure_fuse || echo "warning: FUSE is not ready here (see above); sealfs mount needs it" >&2
fi
d="$destdir$prefix"
install -d "$d/bin" "$d/share/man/man1" "$d/share/man/man5" \
  "$d/share/bash-completion/completions" "$d/share/zsh/site-functions" \
  "$d/share/fish/vendor_completions.d"
install -m 0755 "$bin" "$d/bin/sealfs"
install -m 0644 man/*.1 "$d/share/man/man1/"
install -m 0644 man/*.5 "$d/share/man/man5/"
"$bin" completions bash > "$d/share/bash-completion/completions/sealfs"
"$bin" completions zsh > "$d/share/zsh/site-functions/_sealfs"
"$bin" completions fish > "$d/share/fish/vendor_completions.d/sealfs.fish"
if [ "$prefix" = "$HOME/.local" ]; then
  unitdir="$d/share/systemd/user"
else
  unitdir="$d/lib/systemd/user"
fi
install -d "$unitdir"
unit=$(<contrib/sealfs@.service)
printf '%s\n' "${unit//@BINDIR@/$prefix/bin}" > "$unitdir/sealfs@.service"
chmod 0644 "$unitdir/sealfs@.service"
if [ $root -eq 1 ] || [ -n "$destdir" ]; then
  install -d "$destdir/sbin"
  ln -sfn "$prefix/bin/sealfs" "$destdir/sbin/mount.fuse.sealfs"
  helper="$destdir/sbin/mount.fuse.sealfs"
else
  helper="(skipped: mount(8) looks in /sbin only; install as root for fstab mounts)"
fi
echo "installed sealfs into $d"
echo "  mount helper: $helper"
echo "  user unit:    $unitdir/sealfs@.service"
if [ "$prefix" = "$HOME/.local" ]; then
  echo "  zsh: add $prefix/share/zsh/site-functions to fpath (before compinit) for completions"
fi
