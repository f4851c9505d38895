# Sourced by the scripts: installs what they need when missing (apt when root).
apt_updated=0
apt_install() {
  # apt_install PACKAGE... : installs the Debian packages that are missing.
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "need Debian packages: ${missing[*]} (run as root or install them)" >&2
    return 1
  fi
  if [ $apt_updated -eq 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_fuse() {
  apt_install fuse3
  if [ ! -e /dev/fuse ]; then
    echo "/dev/fuse is missing: FUSE mounts cannot work on this machine" >&2
    return 1
  fi
}

ensure_cargo_tool() {
  # ensure_cargo_tool CRATE BINARY : cargo install CRATE if BINARY is not on PATH.
  command -v "$2" >/dev/null 2>&1 && return 0
  [ -x "$HOME/.cargo/bin/$2" ] && return 0
  cargo install --locked --quiet "$1" || cargo install --quiet "$1"
}
