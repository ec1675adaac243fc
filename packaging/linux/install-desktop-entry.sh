#!/usr/bin/env sh
# Adds Loci to your application menu (per user, no root): run it from the unpacked folder.
# To remove: rm ~/.local/share/applications/loci.desktop ~/.local/share/icons/hicolor/256x256/apps/loci.png
set -eu
here=$(cd "$(dirname "$0")" && pwd)
data=${XDG_DATA_HOME:-$HOME/.local/share}
mkdir -p "$data/applications" "$data/icons/hicolor/256x256/apps"
cp "$here/loci.png" "$data/icons/hicolor/256x256/apps/loci.png"
sed -e "s|^Exec=.*|Exec=\"$here/loci-gui\" %U|" -e "s|^Icon=.*|Icon=$here/loci.png|" \
  "$here/loci.desktop" > "$data/applications/loci.desktop"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$data/applications" || true
echo "Loci is in your application menu. The command line is $here/loci"
