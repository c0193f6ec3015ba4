"""Naming a raster's CRS: a WKT that matches an EPSG definition is that code; one that matches
none (a custom projection, a datum "based upon" an ellipsoid) stays unnamed and is served in
CRSs that can be named (see ogc/coverage.py), never refused.

Why: OGC documents and ArcGIS clients identify CRSs by code, and a file's WKT often lacks its
AUTHORITY node although it is plainly EPSG:32618. pyproj scores the match; 70 is the score of a
definition equal up to names (what rasterio's own `to_epsg` accepts), and only one EPSG code may
score it (a tie is no identification).
"""

from __future__ import annotations

import functools

from pyproj import CRS as ProjCRS
from pyproj.exceptions import CRSError as ProjCRSError
from rasterio.crs import CRS

MIN_CONFIDENCE = 70


@functools.lru_cache(maxsize=128)
def epsg_of(crs: CRS) -> int | None:
    """The one EPSG code that matches `crs` with confidence >= MIN_CONFIDENCE, else None."""
    epsg: int | None = crs.to_epsg()   # rasterio ships no types
    if epsg is not None:
        return epsg
    try:
        matches = ProjCRS.from_wkt(crs.to_wkt()).list_authority(auth_name="EPSG", min_confidence=MIN_CONFIDENCE)
    except ProjCRSError:
        return None
    if not matches:
        return None
    best = max(m.confidence for m in matches)
    codes = [m.code for m in matches if m.confidence == best]
    return int(codes[0]) if len(codes) == 1 and codes[0].isdigit() else None


def identified(crs: CRS) -> CRS:
    """`crs` as its EPSG definition when it matches one, else itself."""
    epsg = epsg_of(crs)
    return crs if epsg is None else CRS.from_epsg(epsg)


def unnamed_warning(crs: CRS) -> str | None:
    """A plain sentence for check-config when `crs` matches no EPSG code, else None."""
    if epsg_of(crs) is not None:
        return None
    name = ProjCRS.from_wkt(crs.to_wkt()).name
    return (f"its CRS ({name!r}) matches no EPSG code: WMS, WCS and WMTS offer it only in the CRSs of "
            "ogc_crs (EPSG:4326 and EPSG:3857 by default), reprojected")
