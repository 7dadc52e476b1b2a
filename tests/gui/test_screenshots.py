"""``tools/screenshots.py`` renders every main screen under a real Xvfb server (Qt's xcb
platform) into PNG files: each one there, of its window's size, with a picture in it (not
one flat colour), and the Xvfb server it started gone afterwards."""

from __future__ import annotations

import ctypes.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtGui import QImage

REPO = Path(__file__).resolve().parents[2]
PYTHON = REPO / ".venv" / "bin" / "python"

pytestmark = pytest.mark.multinode

# What the script shows, at the sizes it gives the windows.
EXPECTED = {
    "wizard.png": (620, 400),
    "wizard-local.png": (620, 400),
    "main.png": (1060, 700),
    "chat.png": (1060, 700),
    "in-call.png": (1060, 700),
    "incoming.png": (420, 150),
    "settings.png": (620, 520),
    "settings-calls.png": (620, 520),
    "overlay.png": (1100, 640),
    "main-dark.png": (1060, 700),
}
XCB_LIBRARIES = ("xcb-icccm", "xcb-keysyms", "xcb-cursor", "xkbcommon-x11", "xcb-image", "xcb-render-util")


def _unavailable() -> str | None:
    if shutil.which("Xvfb") is None:
        return "Xvfb is not installed (Debian: xvfb)"
    missing = [name for name in XCB_LIBRARIES if ctypes.util.find_library(name) is None]
    if missing:
        return f"Qt's xcb platform needs lib{', lib'.join(missing)} (tools/bootstrap.sh installs them)"
    return None


def pixels(path: Path) -> np.ndarray:
    """The image as an (height, width, 3) array of RGB bytes."""
    image = QImage(str(path)).convertToFormat(QImage.Format.Format_RGB888)
    assert not image.isNull(), path
    rows = np.frombuffer(image.constBits(), dtype=np.uint8).reshape(image.height(), image.bytesPerLine())
    # A copy: the array must not outlive the QImage's own buffer.
    return rows[:, : image.width() * 3].reshape(image.height(), image.width(), 3).copy()


def test_every_screen_is_rendered_under_xvfb(tmp_path: Path) -> None:
    reason = _unavailable()
    if reason is not None:
        pytest.skip(reason)
    out, manifest = tmp_path / "shots", tmp_path / "manifest.json"
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    python = str(PYTHON if PYTHON.exists() else sys.executable)
    done = subprocess.run(
        [python, "tools/screenshots.py", "--out", str(out), "--manifest", str(manifest)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    trace = done.stderr[done.stderr.find("Traceback") :] if "Traceback" in done.stderr else done.stderr
    assert done.returncode == 0, f"{done.stdout[-2000:]}\n{trace[-8000:]}"

    # Its own Xvfb, on a display number the server chose, stopped at the end.
    started = re.search(r"^Xvfb (:\d+) started \(pid (\d+),", done.stdout, re.M)
    assert started is not None, done.stdout
    pid = int(started.group(2))
    assert f"Xvfb stopped (pid {pid})" in done.stdout
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()

    shots = json.loads(manifest.read_text())
    assert sorted(shots) == sorted(EXPECTED)
    assert sorted(p.name for p in out.glob("*.png")) == sorted(EXPECTED)
    brightness = {}
    for name, size in EXPECTED.items():
        shot = shots[name]
        assert shot["platform"] == "xcb", shot  # drawn on the X server, not offscreen
        assert (shot["width"], shot["height"]) == size, (name, shot)
        image = pixels(out / name)
        assert (image.shape[1], image.shape[0]) == size == tuple(shot["image"]), name
        # A picture, not a blank: the grey levels spread out and many colours are used.
        grey = image.mean(axis=2)
        colours = len(np.unique(image.reshape(-1, 3), axis=0))
        assert grey.std() > 15 and colours > 100, f"{name}: std {grey.std():.1f}, {colours} colours"
        brightness[name] = float(grey.mean())
    # The dark palette is dark, the light one light.
    assert brightness["main-dark.png"] < 80 < brightness["main.png"], brightness
