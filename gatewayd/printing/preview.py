"""Label previews: ZPL to PNG, SVG or PDF.

With ``zplkit`` installed (the ``preview`` extra) the ZPL itself is rendered, which is
faithful to what the printer draws. Without it, :func:`render_preview` falls back to an
approximate drawing made with Pillow and segno from the field data found in the ZPL: text
fields are drawn at their ``^FO`` origin in Pillow's default font and QR codes are redrawn
by segno; other barcodes are drawn as labelled placeholders. The fallback is a layout
sketch, not a print preview.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

__all__ = ["SUFFIXES", "render_preview", "renderable_zpl"]

SUFFIXES = (".png", ".svg", ".pdf")
# zplkit 0.3 refuses ^PQ (print quantity); it does not change the picture of one label.
# ^PQ (quantity) and ^JZ (reprint after error) change what the printer does, not the image.
_PQ_RE = re.compile(rb"[\^\x1e](?:[Pp][Qq]|[Jj][Zz])[^\^~\x1e\x10]*")


def renderable_zpl(zpl: bytes) -> bytes:
    """ZPL with the commands zplkit cannot render but that do not change the image removed."""
    return _PQ_RE.sub(b"", zpl)


def render_preview(zpl: bytes, *, dpi: int, width_mm: float, height_mm: float,
                   path: Path) -> Path:
    """Write a preview of the first label in ``zpl`` to ``path`` (.png, .svg or .pdf)."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"preview path: expected a .png, .svg or .pdf file, got {str(path)!r}")
    width = round(width_mm * dpi / 25.4)
    height = round(height_mm * dpi / 25.4)
    try:
        import zplkit
    except ImportError:
        image = _fallback(zpl, dpi=dpi, width=width, height=height)
        if suffix == ".svg":
            path.write_bytes(_svg_wrapping_png(image))
        else:
            image.save(path, format="PNG" if suffix == ".png" else "PDF", resolution=dpi)
        return path
    document = zplkit.render(renderable_zpl(zpl),
                             zplkit.Options(dpi=dpi, width=width, height=height))
    if not document.labels:
        raise ValueError("preview: the ZPL holds no label format (^XA ... ^XZ)")
    scene = document.labels[0]
    data = {".png": scene.png, ".svg": scene.svg, ".pdf": scene.pdf}[suffix]()
    path.write_bytes(data)
    return path


def _svg_wrapping_png(image: Image.Image) -> bytes:
    import base64

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{image.width}" '
        f'height="{image.height}"><image width="{image.width}" height="{image.height}" '
        f'href="data:image/png;base64,{encoded}"/></svg>'
    ).encode()


_COMMAND_RE = re.compile(rb"[\^~]([A-Za-z@][A-Za-z0-9@]?)([^\^~]*)")


def _unhex(data: bytes) -> str:
    return re.sub(rb"_([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]),
                  data).decode("utf-8", "replace")


def _fallback(zpl: bytes, *, dpi: int, width: int, height: int) -> Image.Image:
    """Approximate drawing: text and QR codes at their ^FO origins (see module docstring)."""
    import segno

    zpl = zpl.replace(b"\x1e", b"^").replace(b"\x10", b"~")
    image = Image.new("L", (max(1, width), max(1, height)), 255)
    draw = ImageDraw.Draw(image)
    origin = (0, 0)
    state: dict[str, Any] = {}
    for match in _COMMAND_RE.finditer(zpl):
        name = match.group(1).upper().decode()
        args = match.group(2)
        if name == "FO":
            parts = [p.strip() for p in args.split(b",")]
            try:
                origin = (int(parts[0] or 0), int(parts[1] or 0))
            except (ValueError, IndexError):
                origin = (0, 0)
        elif name == "BQ":
            parts = args.split(b",")
            state = {"kind": "qr", "mag": int(parts[2]) if len(parts) > 2 and parts[2].strip()
                     .isdigit() else 3}
        elif name.startswith("B") and name != "BY":
            state = {"kind": "barcode", "name": name}
        elif name == "GB":
            parts = [p.strip() for p in args.split(b",")]
            w, h = (int(parts[i]) if len(parts) > i and parts[i].isdigit() else 1 for i in (0, 1))
            draw.rectangle([origin, (origin[0] + w, origin[1] + h)], outline=0)
        elif name == "FD":
            text = _unhex(args)
            if state.get("kind") == "qr":
                qr = segno.make(text.split(",", 1)[-1], error="m", micro=False)
                buffer = io.BytesIO()
                qr.save(buffer, kind="png", scale=state["mag"], border=0)
                image.paste(Image.open(buffer).convert("L"), origin)
            elif state.get("kind") == "barcode":
                draw.rectangle([origin, (origin[0] + width // 2, origin[1] + dpi // 4)],
                               outline=0)
                draw.text((origin[0] + 4, origin[1] + 4), f"[{state['name']}] {text}", fill=0)
            else:
                draw.text(origin, text, fill=0)
        elif name == "FS":
            state = {}
    return image
