#!/usr/bin/env bash
# Builds dist/p2psip-phone_VERSION_ARCH.deb from the PyInstaller folder dist/p2psip-phone
# (packaging/p2psip.spec): the program under /opt/p2psip-phone, /usr/bin/p2psip, the menu
# entry and the icons. Depends is measured from the bundle (packaging/deb_depends.py).
# Usage: packaging/build_deb.sh [DIST_DIR]   (needs dpkg-deb, ldd, dpkg-query, python3)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIST=$(cd "${1:-$ROOT/dist}" && pwd)
BUNDLE=$DIST/p2psip-phone
ICONS=$ROOT/build/icons
PYTHON=${PYTHON:-python3}
[ -x "$BUNDLE/p2psip" ] || { echo "build_deb: no bundle at $BUNDLE (run pyinstaller first)" >&2; exit 1; }
[ -f "$ICONS/p2psip-phone.png" ] || "$ROOT/.venv/bin/python" "$ROOT/packaging/render_icons.py" "$ICONS"

VERSION=$("$PYTHON" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' "$ROOT/pyproject.toml")
ARCH=$(dpkg --print-architecture)
NAME=p2psip-phone
STAGE=$ROOT/build/deb/${NAME}_${VERSION}_${ARCH}
DEB=$DIST/${NAME}_${VERSION}_${ARCH}.deb

rm -rf "$STAGE"
mkdir -p "$STAGE/DEBIAN" "$STAGE/opt" "$STAGE/usr/bin" "$STAGE/usr/share/applications" \
  "$STAGE/usr/share/icons/hicolor/scalable/apps" "$STAGE/usr/share/icons/hicolor/256x256/apps" \
  "$STAGE/usr/share/doc/$NAME"
cp -a "$BUNDLE" "$STAGE/opt/$NAME"
install -m 0755 "$ROOT/packaging/linux/p2psip" "$STAGE/usr/bin/p2psip"
install -m 0644 "$ROOT/packaging/linux/$NAME.desktop" "$STAGE/usr/share/applications/$NAME.desktop"
install -m 0644 "$ICONS/$NAME.svg" "$STAGE/usr/share/icons/hicolor/scalable/apps/$NAME.svg"
install -m 0644 "$ICONS/$NAME.png" "$STAGE/usr/share/icons/hicolor/256x256/apps/$NAME.png"
cat > "$STAGE/usr/share/doc/$NAME/copyright" <<COPY
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: $NAME
License: MIT
Comment: /opt/$NAME bundles Python, Qt (LGPLv3, PySide6), FFmpeg (av), OpenSSL and the
 other libraries of the project's dependencies, each under its own licence.
COPY
for script in postinst postrm; do
  install -m 0755 "$ROOT/packaging/linux/debian/$script" "$STAGE/DEBIAN/$script"
done

echo "build_deb: measuring Depends (ldd over the bundle)"
DEPENDS=$("$PYTHON" "$ROOT/packaging/deb_depends.py" "$BUNDLE")
SIZE_KB=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
cat > "$STAGE/DEBIAN/control" <<CONTROL
Package: $NAME
Version: $VERSION
Architecture: $ARCH
Maintainer: P2PSIP Phone developers <p2psip-phone@localhost>
Installed-Size: $SIZE_KB
Depends: $DEPENDS
Section: comm
Priority: optional
Homepage: https://example.invalid/p2psip-phone
Description: desktop softphone with no SIP server
 Calls and messages over a RELOAD peer-to-peer overlay (RFC 6940) with the SIP
 usage (RFC 7904): a local network overlay with no set-up, or an enrolled overlay.
 Media is ICE + DTLS-SRTP (Opus, G.722, G.711) with echo cancellation.
 .
 The p2psip command is both the CLI and, as "p2psip gui", the Qt window.
CONTROL

rm -f "$DEB"
# --root-owner-group: files owned by root in the package whoever builds it; xz keeps it small.
dpkg-deb --root-owner-group -Zxz --build "$STAGE" "$DEB" >/dev/null
echo "build_deb: $DEB ($(du -h "$DEB" | cut -f1)); Depends: $DEPENDS"
