#!/usr/bin/env bash
# Smoke test of a built Loci artefact, as a person would use it: unpack or install it into a
# temp dir, then with an empty environment (env -i, HOME a fresh temp dir) and, on Linux, no
# network (unshare -n): `loci --version`, `loci demo`, the GUI up for 10 s offscreen, an
# add/search(/export/import) round trip, and nothing written outside the data folder and the
# temp dir; `loci serve` (HTTP on loopback) and `loci mcp` (stdio) answer a client
# (packaging/smoke_clients.py). On Linux it then installs the .deb and starts both entry points.
#
#   packaging/smoke_test.sh [DIST_DIR]      (default: dist; run as root on Linux)
#   SMOKE_DEB=skip|apt|root                 .deb check: apt-get install (default as root), a
#                                           scratch root (dpkg --root) or none
set -euo pipefail

DIST=$(cd "${1:-dist}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$HERE/../pyproject.toml" | head -1)
case "$(uname -s)" in
  Linux) OS=linux ;; Darwin) OS=macos ;; MINGW*|MSYS*|CYGWIN*) OS=windows ;; *) OS=other ;;
esac
T=$(mktemp -d "${TMPDIR:-/tmp}/loci-smoke.XXXXXX")
T=$(cd "$T" && pwd -P)
APP="$T/app" HOMEDIR="$T/home" TMPD="$T/tmp"
mkdir -p "$APP" "$HOMEDIR" "$TMPD"
FAILS=0
pass() { printf 'PASS  %s\n' "$*"; }
fail() { printf 'FAIL  %s\n' "$*"; FAILS=$((FAILS + 1)); }
note() { printf 'NOTE  %s\n' "$*"; }
cleanup() {
  if [ -n "${DEB_INSTALLED:-}" ]; then apt-get purge -y -qq loci >/dev/null 2>&1 || true; fi
  [ -n "${SMOKE_KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT

# -- unpack / install the artefact into $APP -------------------------------------------------
case $OS in
  linux)
    TARBALL=$(ls "$DIST"/loci-"$VERSION"-linux-*.tar.gz | head -1)
    tar -xzf "$TARBALL" -C "$APP" --strip-components=1
    LOCI="$APP/loci" GUI="$APP/loci-gui"
    DATA="$HOMEDIR/.local/share/loci" ;;
  macos)
    DMG=$(ls "$DIST"/Loci-"$VERSION"-macos-*.dmg | head -1)
    mkdir -p "$T/mnt"
    hdiutil attach -nobrowse -readonly -mountpoint "$T/mnt" "$DMG" >/dev/null
    ditto "$T/mnt/Loci.app" "$APP/Loci.app"
    hdiutil detach "$T/mnt" >/dev/null
    LOCI="$APP/Loci.app/Contents/MacOS/loci" GUI="$APP/Loci.app/Contents/MacOS/loci-gui"
    DATA="$HOMEDIR/Library/Application Support/loci" ;;
  windows)
    SETUP=$(ls "$DIST"/Loci-"$VERSION"-windows-*-setup.exe | head -1)
    WAPP=$(cygpath -w "$APP/Loci")
    "$SETUP" //VERYSILENT //SUPPRESSMSGBOXES //NORESTART "//DIR=$WAPP" "//LOG=$(cygpath -w "$T/setup.log")"
    LOCI="$APP/Loci/loci.exe" GUI="$APP/Loci/loci-gui.exe"
    [ -f "$APP/Loci/unins000.exe" ] && pass "installer wrote an uninstaller" || fail "no uninstaller"
    MENU="$(cygpath -u "$APPDATA")/Microsoft/Windows/Start Menu/Programs/Loci/Loci.lnk"
    [ -f "$MENU" ] && pass "Start-menu entry $MENU" || fail "no Start-menu entry at $MENU"
    DATA="" ;;  # %LOCALAPPDATA%\loci: platformdirs asks Windows, not $HOME
  *) echo "unsupported OS $(uname -s)"; exit 2 ;;
esac
[ -x "$LOCI" ] && [ -x "$GUI" ] && pass "both executables are in the artefact" || fail "executables missing"

# -- run one command isolated: env -i, fresh HOME, no network, writes traced -----------------
NET=""
if [ "$OS" = linux ]; then
  if [ "$(id -u)" = 0 ] && unshare -n true 2>/dev/null; then NET="unshare -n"
  elif unshare -rn true 2>/dev/null; then NET="unshare -rn"
  else note "cannot cut the network (need root for unshare -n): running with it"; fi
fi
TRACE=""
if [ "$OS" = linux ] && command -v strace >/dev/null; then
  TRACE="strace -f --seccomp-bpf -qq -y -e signal=none -o $T/trace.%s \
-e trace=open,openat,openat2,creat,mkdir,mkdirat,rename,renameat,renameat2,unlink,unlinkat,rmdir,symlink,symlinkat,link,linkat,truncate"
else
  note "strace not available: writes are checked by listing HOME and the bundle, not traced"
fi
ENVV=(HOME="$HOMEDIR" TMPDIR="$TMPD" LANG=C.UTF-8 QT_QPA_PLATFORM=offscreen)
if [ "$OS" = windows ]; then
  ENVV+=(SYSTEMROOT="${SYSTEMROOT:-C:\\Windows}" USERPROFILE="$(cygpath -w "$HOMEDIR")" TEMP="$(cygpath -w "$TMPD")" TMP="$(cygpath -w "$TMPD")" PATH="/usr/bin:/bin")
else
  ENVV+=(PATH=/usr/bin:/bin)
fi
N=0
iso() {  # iso CMD... : run isolated; stdout+stderr to $T/out.N, returns the command's status
  N=$((N + 1))
  local trace=""
  [ -n "$TRACE" ] && trace=${TRACE//%s/$N}
  (cd "$T" && $NET env -i "${ENVV[@]}" $trace "$@") >"$T/out.$N" 2>&1
}
out() { tr -d '\r' <"$T/out.$N"; }
if [ "$OS" = windows ]; then PY=$(command -v python || true)  # python3 may be the Store's stub there
else PY=$(command -v python3 || command -v python || true); fi
isoclient() {  # isoclient serve|mcp : packaging/smoke_clients.py (system Python, same network
  # namespace) starts the isolated loci itself, talks to it over loopback or stdio and stops it
  N=$((N + 1))
  local trace=""
  [ -n "$TRACE" ] && trace=${TRACE//%s/$N}
  if [ "$OS" = windows ]; then  # started directly, so that stopping it stops loci.exe, not env.exe
    (cd "$T" && HOME="$HOMEDIR" "$PY" -B "$HERE/smoke_clients.py" "$1" -- "$(cygpath -w "$LOCI")") >"$T/out.$N" 2>&1
  else
    (cd "$T" && $NET "$PY" -B "$HERE/smoke_clients.py" "$1" -- env -i "${ENVV[@]}" $trace "$LOCI") >"$T/out.$N" 2>&1
  fi
}

# 1. version
if iso "$LOCI" --version && out | grep -q "^loci $VERSION\$"; then
  pass "loci --version: $(out | tr '\n' ' ')"
else fail "loci --version"; out; fi
if [ -n "$DATA" ]; then
  out | grep -qF "data folder: $DATA" && pass "data folder is the platform's user data folder" \
    || { fail "data folder is not $DATA"; out; }
fi

# 2. demo: the sister question finds Bergen first
START=$(date +%s)
if iso "$LOCI" demo; then
  sister=$(out | grep -A1 "^? Where does Maya's sister live?" | tail -1)
  if out | grep -q "^Stored [1-9][0-9]* memories" && grep -q Bergen <<<"$sister"; then
    pass "loci demo ($(( $(date +%s) - START )) s): top answer for the sister question:$sister"
  else fail "loci demo printed no sensible results"; out; fi
else fail "loci demo exited $?"; out; fi

# 3. the GUI starts offscreen and stays up 10 s
if [ "$OS" = linux ]; then
  iso timeout -s TERM 12 "$GUI" && rc=0 || rc=$?
  if [ "$rc" = 124 ]; then pass "loci-gui stayed up 12 s (stopped by timeout)"
  else fail "loci-gui exited with $rc before 12 s"; out | tail -30; fi
else
  cd "$T"
  env -i "${ENVV[@]}" "$GUI" >"$T/gui.log" 2>&1 & gpid=$!
  sleep 12
  if kill -0 "$gpid" 2>/dev/null; then
    pass "loci-gui stayed up 12 s"
    if [ "$OS" = windows ]; then taskkill //F //PID "$(cat /proc/$gpid/winpid)" >/dev/null 2>&1 || true; fi
    kill "$gpid" 2>/dev/null || true
  else fail "loci-gui exited early"; tail -30 "$T/gui.log"; fi
  wait "$gpid" 2>/dev/null || true
fi
GUILOG="$T/out.$N"; [ "$OS" = linux ] || GUILOG="$T/gui.log"
if grep -q "Traceback" "$GUILOG" 2>/dev/null; then fail "the GUI logged a traceback"; tail -30 "$GUILOG"; fi

# 4. add / search (/ export / import) round trip
iso "$LOCI" add "My neighbour Ottilie keeps bees on her roof in Tromso" --user smoke \
  && pass "loci add" || { fail "loci add"; out; }
if iso "$LOCI" search "who keeps bees?" --user smoke -k 3 && out | head -1 | grep -q Ottilie; then
  pass "loci search finds it first: $(out | head -1)"
else fail "loci search"; out; fi
iso "$LOCI" --help || true
if out | grep -qw export; then
  if iso "$LOCI" export "$T/export.json" && [ -s "$T/export.json" ] && grep -q Ottilie "$T/export.json"; then
    pass "loci export wrote $(wc -c <"$T/export.json") bytes"
    if iso "$LOCI" --help && out | grep -qw import; then
      if iso "$LOCI" --data-dir "$T/restored" import "$T/export.json" \
        && iso "$LOCI" --data-dir "$T/restored" search "who keeps bees?" --user smoke -k 1 \
        && out | grep -q Ottilie; then pass "loci import restores it into a fresh store"
      else fail "export -> import round trip"; out; fi
    fi
  else fail "loci export"; out; fi
else
  note "this build's CLI has no 'export' command yet: export/import round trip skipped"
fi

# 4b. the REST API and the MCP server, as other programs on this computer use them
if [ -n "$PY" ]; then
  START=$(date +%s)
  if isoclient serve; then pass "loci serve: add + search over HTTP with the API key ($(( $(date +%s) - START )) s)"
  else fail "loci serve"; fi
  out | sed 's/^/      /'
  START=$(date +%s)
  if isoclient mcp; then pass "loci mcp: initialize, tools/list, search_memories over stdio ($(( $(date +%s) - START )) s)"
  else fail "loci mcp"; fi
  out | sed 's/^/      /'
else
  note "no python3 on this system: loci serve and loci mcp not checked"
fi

# 5. nothing written outside the data folder and the temp dir
if [ -n "$TRACE" ]; then
  "$PY" "$HERE/trace_writes.py" "$T" "$T"/trace.* >"$T/written.txt"
  outside=$(grep -vE "^($T/|/dev/null$|/dev/tty$|/dev/pts/|/dev/shm/|/proc/self/|/proc/[0-9]+/)" "$T/written.txt" || true)
  inbundle=$(grep -E "^$APP/" "$T/written.txt" || true)
  inhome=$(grep -E "^$HOMEDIR/" "$T/written.txt" | grep -vE "^$HOMEDIR/(\.local/share/loci|\.config/loci)(/|$)" \
    | grep -vE "^$HOMEDIR(/\.local(/share)?|/\.config)?$" || true)
  [ -z "$outside" ] && pass "no writes outside the temp dir ($(wc -l <"$T/written.txt") paths written, traced)" \
    || { fail "written outside the temp dir:"; echo "$outside" | head -20; }
  [ -z "$inbundle" ] && pass "nothing written inside the bundle" || { fail "written inside the bundle:"; echo "$inbundle" | head; }
  [ -z "$inhome" ] && pass "in HOME only the data and config folders were written" \
    || { fail "written in HOME outside loci's folders:"; echo "$inhome" | head; }
else
  extra=$(cd "$HOMEDIR" && find . -mindepth 1 | grep -vE '^\./(\.local|\.config|Library|AppData)($|/)' || true)
  [ -z "$extra" ] && pass "HOME holds only the data and config folders" || { fail "unexpected files in HOME:"; echo "$extra" | head; }
fi
if [ -n "$DATA" ]; then
  [ -d "$DATA" ] && pass "the store is in $DATA" || fail "no store in $DATA"
fi

# 6. the .deb: install it, start both entry points from /usr/bin
DEB=$(ls "$DIST"/loci_"$VERSION"_*.deb 2>/dev/null | head -1 || true)
MODE=${SMOKE_DEB:-}
if [ -z "$MODE" ]; then
  if [ "$OS" = linux ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then MODE=apt; else MODE=skip; fi
fi
if [ -n "$DEB" ] && [ "$MODE" != skip ]; then
  if [ "$MODE" = apt ]; then
    apt-get -s install "$DEB" >/dev/null 2>&1 && pass "its Depends resolve on this system" \
      || fail "apt-get cannot satisfy the .deb's Depends"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$DEB" >"$T/apt.log" 2>&1 \
      && DEB_INSTALLED=1 && pass "apt-get install $(basename "$DEB")" || { fail "apt-get install"; tail "$T/apt.log"; }
    PREFIX=""
  else
    PREFIX="$T/root"
    mkdir -p "$PREFIX/var/lib/dpkg/updates" "$PREFIX/var/lib/dpkg/info"
    touch "$PREFIX/var/lib/dpkg/status"
    dpkg --root="$PREFIX" --force-depends --force-not-root -i "$DEB" >"$T/dpkg.log" 2>&1 \
      && pass "dpkg --root installs $(basename "$DEB")" || { fail "dpkg --root -i"; tail "$T/dpkg.log"; }
  fi
  for f in /usr/share/applications/loci.desktop /usr/share/icons/hicolor/256x256/apps/loci.png /opt/loci/loci; do
    [ -e "$PREFIX$f" ] && pass "installed $f" || fail "missing $f"
  done
  resolve() { [ -z "$PREFIX" ] && echo "$1" || echo "$PREFIX$(readlink "$PREFIX$1")"; }
  if iso "$(resolve /usr/bin/loci)" --version && out | grep -q "^loci $VERSION\$"; then
    pass "/usr/bin/loci --version"
  else fail "/usr/bin/loci --version"; out; fi
  iso "$(resolve /usr/bin/loci)" search "who keeps bees?" --user smoke -k 1 && out | grep -q Ottilie \
    && pass "/usr/bin/loci searches the same user data as the tarball" || { fail "/usr/bin/loci search"; out; }
  iso timeout -s TERM 8 "$(resolve /usr/bin/loci-gui)" && rc=0 || rc=$?
  [ "$rc" = 124 ] && pass "/usr/bin/loci-gui stayed up 8 s" || { fail "/usr/bin/loci-gui exited with $rc"; out | tail -20; }
  if [ "$MODE" = apt ]; then
    apt-get purge -y -qq loci >/dev/null 2>&1 && DEB_INSTALLED="" && [ ! -e /opt/loci/loci ] && [ -d "$DATA" ] \
      && pass "apt-get purge leaves the user's memories in place" || fail "removing the .deb"
  fi
elif [ "$OS" = linux ]; then
  note ".deb not checked (SMOKE_DEB=$MODE, deb: ${DEB:-none})"
fi

# 7. Windows: the uninstaller removes the program and leaves the memories
if [ "$OS" = windows ]; then
  WDATA="$(cygpath -u "$LOCALAPPDATA")/loci"
  "$APP/Loci/unins000.exe" //VERYSILENT //SUPPRESSMSGBOXES //NORESTART
  for _ in $(seq 30); do [ -e "$APP/Loci/loci.exe" ] || break; sleep 2; done
  [ ! -e "$APP/Loci/loci.exe" ] && pass "the uninstaller removed Loci" || fail "loci.exe is still there after uninstalling"
  [ -d "$WDATA" ] && pass "the memories in $WDATA survive uninstalling" || fail "no data folder $WDATA after uninstalling"
fi

echo
if [ "$FAILS" = 0 ]; then echo "smoke test passed ($OS, loci $VERSION)"; else echo "smoke test: $FAILS failure(s)"; exit 1; fi
