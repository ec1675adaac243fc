"""Render assets/loci.svg to the PNG, ICO and ICNS files the app and the installers use.

Run: python assets/render_icons.py  (Qt's QSvgRenderer draws each size; ICO and ICNS hold PNGs)
"""
from __future__ import annotations

import os
import struct
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt  # noqa: E402
from PySide6.QtGui import QGuiApplication, QImage, QPainter  # noqa: E402
from PySide6.QtSvg import QSvgRenderer  # noqa: E402

HERE = Path(__file__).resolve().parent
SVG = HERE / "loci.svg"
OUT = HERE / "icons"
PACKAGED = HERE.parent / "app" / "gui" / "resources"  # shipped inside the wheel (package-data)
PACKAGED_SIZES = (16, 32, 64, 128, 256)
SIZES = (16, 24, 32, 48, 64, 128, 256, 512, 1024)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
# ICNS chunk types holding PNG data, by pixel size (the @2x types reuse the larger renders)
ICNS_TYPES = ((b"icp4", 16), (b"icp5", 32), (b"icp6", 64), (b"ic07", 128), (b"ic08", 256), (b"ic09", 512),
              (b"ic10", 1024), (b"ic11", 32), (b"ic12", 64), (b"ic13", 256), (b"ic14", 512))


def render(renderer: QSvgRenderer, size: int) -> bytes:
    """The icon drawn at size x size, as PNG bytes."""
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    buffer.close()
    return bytes(data.data())


def write_ico(path: Path, pngs: dict[int, bytes]) -> None:
    """An ICO whose entries are PNGs (supported since Windows Vista)."""
    entries = [(s, pngs[s]) for s in ICO_SIZES]
    header = struct.pack("<HHH", 0, 1, len(entries))
    offset = 6 + 16 * len(entries)
    directory, blobs = b"", b""
    for size, png in entries:
        dim = 0 if size >= 256 else size
        directory += struct.pack("<BBBBHHII", dim, dim, 0, 0, 1, 32, len(png), offset + len(blobs))
        blobs += png
    path.write_bytes(header + directory + blobs)


def write_icns(path: Path, pngs: dict[int, bytes]) -> None:
    """An ICNS made of PNG chunks (macOS 10.7+)."""
    body = b"".join(kind + struct.pack(">I", 8 + len(pngs[size])) + pngs[size] for kind, size in ICNS_TYPES)
    path.write_bytes(b"icns" + struct.pack(">I", 8 + len(body)) + body)


def main() -> int:
    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841
    renderer = QSvgRenderer(str(SVG))
    if not renderer.isValid():
        print(f"cannot read {SVG}", file=sys.stderr)
        return 1
    OUT.mkdir(exist_ok=True)
    pngs = {size: render(renderer, size) for size in SIZES}
    for size, png in pngs.items():
        if size <= 512:
            (OUT / f"loci-{size}.png").write_bytes(png)
    PACKAGED.mkdir(parents=True, exist_ok=True)
    for size in PACKAGED_SIZES:
        (PACKAGED / f"loci-{size}.png").write_bytes(pngs[size])
    write_ico(OUT / "loci.ico", pngs)
    write_icns(OUT / "loci.icns", pngs)
    print(f"wrote {len(SIZES) - 1} PNGs, loci.ico and loci.icns to {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
