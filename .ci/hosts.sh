#!/usr/bin/env bash
# Installs the real hosts that tests/hosts/ drive, idempotently:
#   - Krita 5 with kritarunner (Debian packages krita, python3-pyqt5), Xvfb and xdotool for the full windows;
#   - a Debian trixie root with GIMP 3 (gimp-console-3.0 + Python GI), since bookworm only has GIMP 2.10.
# Needs root. Re-running is cheap: each step is skipped when its result is already there.
# The root lives in $NOISEBRUSH_GIMP_ROOT (default: /var/cache/noisebrush/gimp-root, kept between clones and CI runs on one machine).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
root=${NOISEBRUSH_GIMP_ROOT:-/var/cache/noisebrush/gimp-root}
suite=${NOISEBRUSH_GIMP_SUITE:-trixie}

if [ "$(id -u)" != 0 ]; then
  echo "hosts.sh: needs root (apt-get, debootstrap, chroot); host tests will skip" >&2
  exit 1
fi

missing=()
command -v kritarunner >/dev/null || missing+=(krita)
python3 -c 'import PyQt5' 2>/dev/null || missing+=(python3-pyqt5)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v Xvfb >/dev/null || missing+=(xvfb)
command -v xdotool >/dev/null || missing+=(xdotool)  # the full-window tests press keys as a painter does
if [ ${#missing[@]} -gt 0 ]; then
  echo "hosts.sh: apt-get install ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi

if [ -x "$root/usr/bin/gimp-console-3.0" ] && [ -e "$root/.noisebrush-ready" ]; then
  echo "hosts.sh: GIMP root ready at $root"
  exit 0
fi

if [ ! -e "$root/.debootstrap-done" ]; then
  echo "hosts.sh: debootstrap $suite into $root"
  rm -rf "$root"
  mkdir -p "$(dirname "$root")"
  debootstrap --variant=minbase "$suite" "$root"
  touch "$root/.debootstrap-done"
fi

cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
trap 'umount "$root/proc" 2>/dev/null || true' EXIT
chroot "$root" bash -c "export DEBIAN_FRONTEND=noninteractive && apt-get update -q && \
  apt-get install -y -q --no-install-recommends gimp python3-gi gir1.2-gimp-3.0"
chroot "$root" gimp-console-3.0 --version
touch "$root/.noisebrush-ready"
echo "hosts.sh: GIMP root ready at $root"
