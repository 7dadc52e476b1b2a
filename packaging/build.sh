#!/usr/bin/env bash
# `make package`: the PyInstaller folder dist/p2psip-phone and, where dpkg-deb exists,
# dist/p2psip-phone_VERSION_ARCH.deb. PYTHON is the interpreter that has PyInstaller and
# the project installed (default .venv/bin/python).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PY=${PYTHON:-$ROOT/.venv/bin/python}
"$PY" -m PyInstaller --noconfirm --log-level WARN --distpath dist --workpath build/pyinstaller packaging/p2psip.spec
echo "package: dist/p2psip-phone ($(du -sh dist/p2psip-phone | cut -f1))"
if command -v dpkg-deb >/dev/null 2>&1; then
  packaging/build_deb.sh dist
else
  echo "package: no dpkg-deb here; .deb not built"
fi
