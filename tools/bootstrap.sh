#!/usr/bin/env bash
# Creates .venv if missing and installs what the project needs: Debian packages where
# apt-get is available and we are root, then the Python packages. Says clearly what it
# could not install; never stops the caller for an optional tool.
set -u
cd "$(dirname "$0")/.."

DEB_PACKAGES=(tshark sip-tester libportaudio2 openssl curl iproute2 coturn iptables jackd2 espeak-ng sox linphone-cli
  # Xvfb and the libraries Qt's xcb platform loads: tools/screenshots.py renders under Xvfb.
  xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxkbcommon-x11-0 libxcb-image0 libxcb-render-util0 libxcb-shape0)
missing=()
for p in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "bootstrap: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true
    if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >/tmp/p2psip-apt.log 2>&1; then
      echo "bootstrap: WARNING: apt-get could not install ${missing[*]} (see /tmp/p2psip-apt.log);" \
           "tests that need them will be skipped with a reason"
    fi
  else
    echo "bootstrap: WARNING: not root or no apt-get; not installed: ${missing[*]}." \
         "Tests that need them will be skipped with a reason."
  fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv with $($PY --version)"
  "$PY" -m venv .venv || { echo "bootstrap: ERROR: could not create .venv"; exit 1; }
fi
stamp=.venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)
if [ ! -f "$stamp" ]; then
  echo "bootstrap: installing Python packages into .venv"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  if ! .venv/bin/python -m pip install -q -e ".[dev]"; then
    echo "bootstrap: ERROR: pip could not install the project's packages"; exit 1
  fi
  rm -f .venv/.installed-*
  touch "$stamp"
fi
