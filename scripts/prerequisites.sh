#!/usr/bin/env bash
# Makes sure this machine has what stack-emulator's tests and examples need, installing what is
# missing from Debian's packages when run as root (otherwise it prints the command), and the
# npm dependencies when node_modules is absent. Safe to run again: it does nothing when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."

# command -> Debian package
declare -A needs=(
  [qemu-system-x86_64]=qemu-system-x86
  [qemu-img]=qemu-utils
  [debootstrap]=debootstrap
  [mkfs.ext4]=e2fsprogs
  [cpio]=cpio
  [xz]=xz-utils
  [zstd]=zstd
  [chromium]=chromium
)
missing=()
for cmd in "${!needs[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${needs[$cmd]}")
done
[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx insmod || missing+=(busybox-static)
[ -f /usr/share/qemu/qboot.rom ] || missing+=(qemu-system-data)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "prerequisites: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" ca-certificates >/dev/null
  else
    echo "prerequisites: missing ${missing[*]}. Install them with:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
fi

if [ ! -d node_modules ]; then
  echo "prerequisites: installing npm dependencies (npm ci)" >&2
  npm ci --no-audit --no-fund
fi
