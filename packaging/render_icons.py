"""Renders the application icon (``app/gui/resources/app.svg``, the one the GUI shows) into
the raster forms the installers need: a 256x256 PNG (the Linux menu's hicolor theme), a
Windows ``.ico`` and a macOS ``.icns``.

Both container formats may hold PNG images as they are (ICO since Windows Vista, ICNS's
``ic07``/``ic08``/``ic09`` types), so no image library beyond Qt's SVG renderer is needed.
Run with the project's Python: ``python packaging/render_icons.py OUT_DIR``.
"""

from __future__ import annotations

import os
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SVG = ROOT / "app" / "gui" / "resources" / "app.svg"
NAME = "p2psip-phone"
#: ICNS element types holding PNG data, by pixel size.
ICNS_TYPES = {128: b"ic07", 256: b"ic08", 512: b"ic09"}
ICO_SIZES = (16, 32, 48, 256)


def render_png(size: int) -> bytes:
    """The SVG drawn on a transparent ``size`` x ``size`` canvas, as PNG bytes."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    renderer = QSvgRenderer(str(SVG))
    if not renderer.isValid():
        raise SystemExit(f"render_icons: cannot read {SVG}")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    # The stubs say bytes for the format, PySide6 6.11 accepts only str.
    image.save(buffer, "PNG")  # type: ignore[call-overload]
    buffer.close()
    return bytes(data.data())


def ico(images: dict[int, bytes]) -> bytes:
    """An ICO file of PNG images (ICONDIR, one ICONDIRENTRY each; 0 in a size byte is 256)."""
    header = struct.pack("<HHH", 0, 1, len(images))
    offset = len(header) + 16 * len(images)
    entries, blobs = b"", b""
    for size, png in sorted(images.items()):
        entries += struct.pack("<BBBBHHII", size % 256, size % 256, 0, 0, 1, 32, len(png), offset)
        offset += len(png)
        blobs += png
    return header + entries + blobs


def icns(images: dict[int, bytes]) -> bytes:
    """An ICNS file of PNG elements (big-endian type + length, length counting the header)."""
    body = b"".join(
        ICNS_TYPES[size] + struct.pack(">I", 8 + len(png)) + png for size, png in sorted(images.items())
    )
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else ROOT / "build" / "icons")
    out.mkdir(parents=True, exist_ok=True)
    pngs = {size: render_png(size) for size in {*ICO_SIZES, *ICNS_TYPES}}
    (out / f"{NAME}.svg").write_bytes(SVG.read_bytes())
    (out / f"{NAME}.png").write_bytes(pngs[256])
    (out / f"{NAME}.ico").write_bytes(ico({s: pngs[s] for s in ICO_SIZES}))
    (out / f"{NAME}.icns").write_bytes(icns({s: pngs[s] for s in ICNS_TYPES}))
    print(f"render_icons: {out}/{NAME}.{{svg,png,ico,icns}}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
