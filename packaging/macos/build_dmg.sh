#!/usr/bin/env bash
# macOS recipe (NOT BUILT ON THESE MACHINES): the .app through PyInstaller's BUNDLE
# (packaging/p2psip.spec on darwin makes "dist/P2PSIP Phone.app"), then a compressed disk
# image with the app and a link to /Applications, by hdiutil.
# Run from anywhere on a Mac with Python 3.11+ (python3 -m pip install -e ".[package]"):
#   packaging/macos/build_dmg.sh
# Unsigned: Gatekeeper asks on first start (right-click, Open). To sign and notarise, set
# CODESIGN_IDENTITY (codesign --deep) and submit the dmg with `xcrun notarytool`.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
PY=${PYTHON:-python3}
[ "$(uname -s)" = Darwin ] || { echo "build_dmg: macOS only (hdiutil, the .app bundle)" >&2; exit 1; }
"$PY" -m PyInstaller --noconfirm --distpath dist --workpath build/pyinstaller packaging/p2psip.spec
VERSION=$("$PY" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
APP="dist/P2PSIP Phone.app"
[ -d "$APP" ] || { echo "build_dmg: $APP was not made" >&2; exit 1; }
if [ -n "${CODESIGN_IDENTITY:-}" ]; then
  codesign --force --deep --options runtime --sign "$CODESIGN_IDENTITY" "$APP"
fi
STAGE=build/dmg
rm -rf "$STAGE"
mkdir -p "$STAGE"
cp -R "$APP" "$STAGE/"
ln -s /Applications "$STAGE/Applications"
DMG="dist/p2psip-phone-$VERSION.dmg"
rm -f "$DMG"
hdiutil create -volname "P2PSIP Phone $VERSION" -srcfolder "$STAGE" -fs HFS+ -format UDZO -ov "$DMG"
echo "build_dmg: $DMG"
