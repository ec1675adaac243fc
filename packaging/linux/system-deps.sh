#!/usr/bin/env sh
# Installs the Debian/Ubuntu packages Qt needs for a real window and for Xvfb screenshots.
# Does nothing when they are already there, or when this is not a Debian-like system.
set -eu
PKGS="xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-shape0 \
libxcb-xkb1 libxcb-cursor0 libxkbcommon-x11-0 libxkbcommon0 libegl1 libgl1 libfontconfig1 libdbus-1-3 \
fonts-dejavu-core iproute2"
command -v dpkg-query >/dev/null 2>&1 || { echo "system-deps: not a Debian-like system; see README for your platform"; exit 0; }
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "system-deps: please install:$missing"; exit 0; fi
fi
echo "Installing system packages:$missing"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
