"""Target grids and spatial references: bbox/size/aspect maths, ArcGIS wkid handling (pyproj)."""

from __future__ import annotations

import functools
import math

from pyproj import CRS as ProjCRS
from pyproj.exceptions import CRSError as ProjCRSError
from rasterio.crs import CRS
from rasterio.errors import CRSError
from rasterio.warp import transform_bounds

from .bounds import edges_exist, finite_bounds
from .errors import InvalidParameter
from .requests import Grid

# Esri codes for Web Mercator that clients send; they all mean EPSG:3857.
_WEB_MERCATOR_ALIASES = {102100, 102113, 900913, 3857}
WEB_MERCATOR_HALF = 20037508.342789244          # half the side of the Web Mercator world square


@functools.lru_cache(maxsize=256)
def crs_from_wkid(wkid: int) -> CRS:
    """A CRS for an EPSG or Esri well-known id (102100 and friends are Web Mercator)."""
    if not 0 < wkid < 10_000_000:
        # Never hand PROJ an absurd code: its failed lookup lingers and breaks the next GDAL call.
        raise CRSError(f"unknown wkid {wkid}")
    if wkid in _WEB_MERCATOR_ALIASES:
        return CRS.from_epsg(3857)
    # Esri's own codes start at 100000 (102067, 104145 ...); asking EPSG first would warn on them.
    # pyproj answers whether a code exists first: a failed lookup inside GDAL leaves an error
    # pending that would break the next, unrelated GDAL call.
    for authority in (("ESRI", "EPSG") if wkid >= 100000 else ("EPSG", "ESRI")):
        try:
            ProjCRS.from_authority(authority, str(wkid))
        except ProjCRSError:
            continue
        return CRS.from_user_input(f"{authority}:{wkid}")
    raise CRSError(f"unknown wkid {wkid}")


def parse_sr(value: object, name: str) -> CRS:
    """A spatial reference as ArcGIS clients send it: a wkid, '{"wkid":..}', latestWkid or WKT JSON."""
    try:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, int):
            return crs_from_wkid(value)
        if isinstance(value, float) and value.is_integer():
            return crs_from_wkid(int(value))
        if isinstance(value, dict):
            for key in ("latestWkid", "wkid"):
                if value.get(key) is not None:
                    try:
                        return crs_from_wkid(int(value[key]))
                    except (CRSError, TypeError, ValueError):
                        if key == "wkid" or value.get("wkid") is None:
                            raise
            if isinstance(value.get("wkt"), str):
                return _crs_from_wkt(value["wkt"])
            raise ValueError
        if isinstance(value, str):
            text = value.strip()
            if text.upper().startswith("EPSG:"):
                text = text[5:]
            return crs_from_wkid(int(text))
    except (CRSError, TypeError, ValueError):
        pass
    raise InvalidParameter(name, f"not a spatial reference: {str(value)[:80]!r} "
                                 "(give a wkid such as 3857, or JSON such as {\"wkid\": 4326})")


@functools.lru_cache(maxsize=64)
def _crs_from_wkt(wkt: str) -> CRS:
    try:
        ProjCRS.from_wkt(wkt)          # validated outside GDAL first, as in crs_from_wkid
    except ProjCRSError as exc:
        raise CRSError(str(exc)) from exc
    return CRS.from_wkt(wkt)


@functools.lru_cache(maxsize=256)
def sr_json(crs: CRS) -> dict[str, int | str]:
    """ArcGIS spatial-reference JSON: wkid plus latestWkid (102100 for Web Mercator), else WKT."""
    epsg = crs.to_epsg()
    if epsg == 3857:
        return {"wkid": 102100, "latestWkid": 3857}
    if epsg is not None:
        return {"wkid": epsg, "latestWkid": epsg}
    try:
        auth = ProjCRS.from_wkt(crs.to_wkt()).to_authority(min_confidence=90)
    except ProjCRSError:
        auth = None
    if auth and auth[0] == "ESRI":
        return {"wkid": int(auth[1])}
    return {"wkt": _esri_wkt_or_own(crs)}


def _esri_wkt_or_own(crs: CRS) -> str:
    """Esri's WKT1 when it means the same CRS; else GDAL's own WKT (Esri's dialect drops some
    parameters, e.g. a geostationary projection's sweep axis, and the CRS a client sends back
    would then be another one)."""
    esri: str = crs.to_wkt(version="WKT1_ESRI")     # (rasterio ships no types)
    try:
        if CRS.from_wkt(esri) == crs:
            return esri
    except CRSError:
        pass
    own: str = crs.to_wkt()
    return own


def reproject_bounds(bounds: tuple[float, float, float, float], src: CRS, dst: CRS
                     ) -> tuple[float, float, float, float]:
    """Bounds of a box after reprojection (edges densified, so curved edges are covered)."""
    if src == dst:
        return bounds
    out: tuple[float, float, float, float] | None
    try:
        out = transform_bounds(src, dst, *bounds, densify_pts=21)
    except Exception:                 # rasterio/PROJ: a point off the projection's domain, or no operation
        out = (math.inf, math.inf, math.inf, math.inf)
    if not all(math.isfinite(v) for v in out) or not edges_exist(bounds, src, dst):
        out = finite_bounds(bounds, src, dst)     # only the part of the box that exists in dst
        if out is None:
            raise InvalidParameter("bbox", "the box cannot be transformed into the output spatial reference")
    return out


def target_grid(bbox: tuple[float, float, float, float], bbox_crs: CRS, image_crs: CRS,
                width: int, height: int, adjust_aspect: bool = True) -> Grid:
    """The output grid: bbox taken into imageSR and, with adjustAspectRatio, grown around its centre
    so pixels are square for the requested size (the response reports the adjusted extent)."""
    xmin, ymin, xmax, ymax = reproject_bounds(bbox, bbox_crs, image_crs)
    if not (xmax > xmin and ymax > ymin):
        raise InvalidParameter("bbox", "xmin must be less than xmax and ymin less than ymax")
    if adjust_aspect:
        res = max((xmax - xmin) / width, (ymax - ymin) / height)
        cx, cy = (xmin + xmax) / 2, (ymin + ymax) / 2
        xmin, xmax = cx - res * width / 2, cx + res * width / 2
        ymin, ymax = cy - res * height / 2, cy + res * height / 2
    return Grid(image_crs, (xmin, ymin, xmax, ymax), width, height)


# --- OGC CRS identifiers and axis order -------------------------------------------------------------

_OGC_LONLAT = {"CRS:84": 4326, "CRS:83": 4269, "CRS:27": 4267}


@functools.lru_cache(maxsize=256)
def crs_from_ogc(code: str) -> CRS:
    """A CRS for an OGC identifier (EPSG:n, CRS:84/83/27, urn:ogc:def:crs:..., the
    opengis.net/def/crs URIs, EPSG:900913). CRS:84 and friends are their EPSG datum in lon/lat:
    the engine works in x/y order throughout, so only the faces care about axis order.
    An unknown identifier is an InvalidParameter named "crs"."""
    text = code.strip()
    upper = text.upper()
    if upper in _OGC_LONLAT:
        return CRS.from_epsg(_OGC_LONLAT[upper])
    for prefix in ("URN:OGC:DEF:CRS:", "HTTP://WWW.OPENGIS.NET/DEF/CRS/"):
        if upper.startswith(prefix):
            parts = [p for p in upper[len(prefix):].replace("/", ":").split(":") if p]
            authority, number = parts[0], parts[-1]
            if authority == "OGC" and number in ("CRS84", "CRS83", "CRS27"):
                return CRS.from_epsg(_OGC_LONLAT[f"CRS:{number[3:]}"])
            if authority == "EPSG" and number.isdigit():
                try:
                    return crs_from_wkid(int(number))
                except CRSError:
                    pass
            raise InvalidParameter("crs", f"unknown CRS {code!r}")
    if upper.startswith("EPSG:") and upper[5:].isdigit():
        try:
            return crs_from_wkid(int(upper[5:]))
        except CRSError:
            pass
    raise InvalidParameter("crs", f"unknown CRS {code!r}")


@functools.lru_cache(maxsize=256)
def axis_inverted(code: str) -> bool:
    """Whether the CRS's first axis points north or south (EPSG:4326: lat, lon), as the EPSG
    database says; OGC's CRS:84 family is lon/lat by definition."""
    if code.strip().upper() in _OGC_LONLAT or "CRS84" in code.upper():
        return False
    try:
        crs = crs_from_ogc(code)
        axes = ProjCRS.from_user_input(crs.to_wkt()).axis_info if not crs.to_epsg() else \
            ProjCRS.from_epsg(crs.to_epsg()).axis_info
    except (InvalidParameter, ProjCRSError):
        return False
    return bool(axes) and axes[0].direction.lower() in ("north", "south")


def extent_in(bounds: tuple[float, float, float, float], src: CRS, dst: CRS
              ) -> tuple[float, float, float, float]:
    """A service extent as advertised in another CRS: through its lon/lat box clipped to where
    `dst` is used (a global grid is ±85° in Web Mercator, not ±90°)."""
    if src == dst:
        return bounds
    wgs84 = CRS.from_epsg(4326)
    w, s, e, n = reproject_bounds(bounds, src, wgs84)
    epsg = dst.to_epsg()
    area = (ProjCRS.from_epsg(epsg) if epsg else ProjCRS.from_wkt(dst.to_wkt())).area_of_use
    if area is not None:
        w, s, e, n = max(w, area.west), max(s, area.south), min(e, area.east), min(n, area.north)
        if not (w < e and s < n):
            raise InvalidParameter("crs", "the extent lies outside the area where the CRS is used")
    out = reproject_bounds((w, s, e, n), wgs84, dst)
    if epsg == 3857:         # its area of use (85.06 degrees) reaches past the square world of its tiles
        x0, y0, x1, y1 = (max(-WEB_MERCATOR_HALF, min(WEB_MERCATOR_HALF, v)) for v in out)
        out = (x0, y0, x1, y1)
    return out
