"""CRSs as the OGC faces name them: one place that reads every OGC form (EPSG:n, CRS:84,
urn:ogc:def:crs:..., http://www.opengis.net/def/crs/...), knows each CRS's axis order, and writes
the form each version uses (WMS and WCS 1.0 `EPSG:n`, WCS 1.1 and WMTS URNs, WCS 2.0 URIs).

The engine works in x/y throughout; the faces swap to the CRS's own axis order (lat, lon for
EPSG:4326) only where their protocol says so, through `inverted` / `ordered` / `Axes` here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from pyproj import CRS as ProjCRS
from rasterio.crs import CRS

from ..engine import GatewayError, axis_inverted, crs_from_ogc
from .common import OGCError

CRS_URI = "http://www.opengis.net/def/crs/"
CRS84_URI = CRS_URI + "OGC/1.3/CRS84"              # WCS 2.0
CRS84_URN = "urn:ogc:def:crs:OGC:1.3:CRS84"        # WCS 1.1


def parse(code: str, error: str, message: str, locator: str | None) -> CRS:
    """The engine's CRS for an OGC identifier; one it does not know is the face's `error` with
    `message` (each face words its refusal its own way)."""
    try:
        return crs_from_ogc(code)
    except GatewayError:
        raise OGCError(error, message, locator) from None


def inverted(code: str) -> bool:
    """Whether the CRS's first axis points north or south (EPSG:4326 is lat, lon; CRS:84 lon, lat)."""
    return axis_inverted(code)


def ordered(x: float, y: float, is_inverted: bool) -> tuple[float, float]:
    """An x/y pair in the CRS's axis order."""
    return (y, x) if is_inverted else (x, y)


def epsg_code(crs: CRS) -> str | None:
    """`EPSG:n` of a CRS with an EPSG code (the WMS / WCS 1.0 form), else None."""
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else None


def urn(code: str) -> str:
    """EPSG:n -> urn:ogc:def:crs:EPSG::n and CRS:84 -> its URN (the WCS 1.1 forms); other
    identifiers unchanged."""
    if code.upper().startswith("EPSG:"):
        return f"urn:ogc:def:crs:EPSG::{code[5:]}"
    if code.upper() == "CRS:84":
        return CRS84_URN
    return code


def uri(text: str | None) -> str | None:
    """An OGC CRS identifier (opengis.net URI, URN, EPSG:n, CRS:84 ...) as the URI WCS 2.0 writes,
    or None when it is not one."""
    if not text or not text.strip():
        return None
    value = text.strip()
    upper = value.upper()
    if "CRS84" in upper.replace(":", "") and ("OGC" in upper or upper.startswith("CRS")):
        return CRS84_URI
    match = (re.fullmatch(r"HTTPS?://WWW\.OPENGIS\.NET/DEF/CRS/EPSG/[^/]*/(\d+)", upper)
             or re.fullmatch(r"URN:OGC:DEF:CRS:EPSG:[^:]*:(\d+)", upper)
             or re.fullmatch(r"EPSG:(\d+)", upper))
    return f"{CRS_URI}EPSG/0/{int(match.group(1))}" if match else None


def epsg_uri(crs: CRS) -> str | None:
    """The WCS 2.0 URI of a CRS with an EPSG code, else None."""
    epsg = crs.to_epsg()
    return None if epsg is None else f"{CRS_URI}EPSG/0/{epsg}"


@dataclass(frozen=True)
class Axes:
    """A CRS as WCS 2.0 names it: its URI, its axes in the CRS's own order, and the engine's CRS."""

    uri: str
    crs: CRS                          # the engine's (always x/y internally)
    labels: tuple[str, str]           # CRS axis order
    uoms: tuple[str, str]
    inverted: bool                    # the first axis points north/south (EPSG:4326)

    def ordered(self, x: float, y: float) -> tuple[float, float]:
        """An x/y pair in the CRS's axis order."""
        return ordered(x, y, self.inverted)

    def axis_of(self, label: str) -> int | None:
        """0 for the east/west (x) axis, 1 for the north/south (y) axis, None for other labels.
        The exact labels, plus `Long` for pyproj's `Lon` (the older EPSG abbreviation that many
        clients send)."""
        names = list(self.labels)
        if label not in names and label in ("Long", "Lon") and ("Lon" in names or "Long" in names):
            label = "Lon" if "Lon" in names else "Long"
        if label not in names:
            return None
        index = names.index(label)
        return 1 - index if self.inverted else index


def _unit(name: str) -> str:
    return {"metre": "m", "meter": "m", "degree": "deg", "foot": "ft", "US survey foot": "ftUS"}.get(
        name, re.sub(r"\s+", "_", name) or "unknown")


@lru_cache(maxsize=64)
def axes_of(crs_uri: str) -> Axes:
    """The axes of a WCS 2.0 CRS URI (as `uri` writes it), labels and units as the EPSG database
    gives them; a CRS the engine cannot use is OGCError NotACrs."""
    try:
        crs = crs_from_ogc(crs_uri)
        proj = ProjCRS("OGC:CRS84") if crs_uri == CRS84_URI else ProjCRS.from_epsg(int(crs_uri.rsplit("/", 1)[1]))
    except Exception as exc:  # noqa: BLE001 -- the engine's InvalidParameter, pyproj's CRSError
        raise OGCError("NotACrs", f"{crs_uri} is not a CRS this server can use ({exc})", "crs") from None
    info = proj.axis_info[:2]
    if len(info) < 2:
        raise OGCError("NotACrs", f"{crs_uri} is not a two-dimensional CRS", "crs")
    is_inverted = info[0].direction.lower() in ("north", "south")
    labels = (info[0].abbrev, info[1].abbrev)
    if not all(labels) or labels[0] == labels[1] or any(" " in a for a in labels):
        labels = ("y", "x") if is_inverted else ("x", "y")
    return Axes(crs_uri, crs, labels, (_unit(info[0].unit_name), _unit(info[1].unit_name)), is_inverted)
