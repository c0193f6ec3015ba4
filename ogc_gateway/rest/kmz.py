"""exportImage `f=kmz`: the picture and a doc.kml whose GroundOverlay drapes it over its box.

The KML comes from a template (capabilities_templates/ground_overlay.kml), so it is built here, on
the face's side: the engine encodes the picture and never renders templates.
"""

from __future__ import annotations

import io
import zipfile

from ..engine import Encoded
from ..templates import render


def kmz(image: Encoded, bounds_4326: tuple[float, float, float, float], name: str) -> bytes:
    """A KMZ: doc.kml with one GroundOverlay draping `image` over (west, south, east, north)."""
    west, south, east, north = (float(v) for v in bounds_4326)
    href = f"image.{image.extension}"
    kml = render("ground_overlay.kml", name=name, href=href,
                 north=north, south=south, east=east, west=west)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("doc.kml", kml)     # first entry: KMZ readers take the first .kml as the root
        zf.writestr(href, image.data)
    return buf.getvalue()
