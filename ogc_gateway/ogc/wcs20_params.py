"""WCS 2.0.1 GetCoverage options beyond subsetting: the range fields and RANGESUBSET (12-040),
scaling (12-039: SCALEFACTOR multiplies the grid size, 0.5 halves it, as rasdaman reads it; the
outer edges stay), interpolation (12-049) and the GeoTIFF encoding's GEOTIFF:* parameters
(12-100r1), as engine values."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from ..engine import Compression, Grid, Raster, Resampling
from .common import KVP, OGCError
from .common import number as num
from .coverage import Coverage, interpolation_of
from .crs import Axes

INTERPOLATION = "http://www.opengis.net/def/interpolation/OGC/1/"
# the advertised URIs (the engine's table reads them, short names and 1.x spellings too)
INTERPOLATIONS = (INTERPOLATION + "nearest-neighbor", INTERPOLATION + "linear", INTERPOLATION + "cubic")
AXIS_URI = "http://www.opengis.net/def/axis/OGC/"
DATA_TYPES = {"uint8": "unsignedByte", "int8": "signedByte", "uint16": "unsignedShort", "int16": "signedShort",
              "uint32": "unsignedInt", "int32": "signedInt", "float32": "float32", "float64": "float64"}


@dataclass(frozen=True)
class Field:
    name: str                   # the swe:field name (band name made a NameToken)
    band: str                   # the band's own name
    nodata: str | None
    definition: str | None


def fields_of(cov: Coverage) -> tuple[Field, ...]:
    names, out = set(), []
    nodata = None
    if cov.nodata is not None:
        nodata = num(cov.nodata) if math.isfinite(cov.nodata) else "NaN"
    kind = DATA_TYPES.get(cov.dtype)
    for i, band in enumerate(cov.band_names):
        name = re.sub(r"[^A-Za-z0-9_\-]", "_", band)
        if not re.match(r"[A-Za-z]", name):
            name = "b" + name
        while name in names:
            name += f"_{i + 1}"
        names.add(name)
        out.append(Field(name, band, nodata, f"http://www.opengis.net/def/dataType/OGC/0/{kind}" if kind else None))
    return tuple(out)


_AXIS_ITEM = re.compile(r"\s*([^\s(),]+)\s*\(\s*([^()]*?)\s*\)\s*(?:,|$)")


def _axis_items(raw: str, name: str) -> list[tuple[str, str]]:
    items, pos = [], 0
    text = raw.strip()
    while pos < len(text):
        match = _AXIS_ITEM.match(text, pos)
        if not match:
            raise OGCError("InvalidParameterValue", f"{name}={raw!r} is not axis(value),axis(value)", name.lower())
        items.append((match.group(1), match.group(2)))
        pos = match.end()
    if not items:
        raise OGCError("InvalidParameterValue", f"{name} is empty", name.lower())
    return items


def grid_axis(label: str, *axes: Axes) -> int | None:
    """0 (columns) or 1 (rows) for a scaling axis name: grid labels i/j or x/y, the axis URIs
    (…/def/axis/OGC/1/i), or a CRS axis label (E/N, Lat/Lon …)."""
    name = label.rsplit("/", 1)[1] if label.startswith(AXIS_URI) else label
    if name.lower() in ("i", "x"):
        return 0
    if name.lower() in ("j", "y"):
        return 1
    for ax in axes:
        found = ax.axis_of(name)
        if found is not None:
            return found
    if name.lower() in ("lon", "long", "e", "easting"):
        return 0
    if name.lower() in ("lat", "n", "northing"):
        return 1
    return None


def scaled_size(kvp: KVP, grid: Grid, *axes: Axes) -> tuple[int, int]:
    """The output size after SCALEFACTOR, SCALEAXES, SCALESIZE or SCALEEXTENT (or MapServer's SIZE /
    RESOLUTION, which OWSLib sends); the outer edges stay where they are."""
    given = [n for n in ("SCALEFACTOR", "SCALEAXES", "SCALESIZE", "SCALEEXTENT") if (kvp.get(n) or "").strip()]
    if len(given) > 1:
        raise OGCError("InvalidParameterValue", f"give only one of {', '.join(given)}", given[1].lower())
    size = [grid.width, grid.height]
    name = given[0] if given else next((n for n in ("SIZE", "RESOLUTION") if (kvp.get(n) or "").strip()), None)
    if name is None:
        return grid.width, grid.height
    raw = (kvp.get(name) or "").strip()
    if name == "SCALEFACTOR":
        factor = _positive(raw, name)
        return max(1, round(grid.width * factor)), max(1, round(grid.height * factor))
    done = set()
    for label, value in _axis_items(raw, name):
        axis = grid_axis(label, *axes)
        if axis is None:
            raise OGCError("ScaleAxisUndefined", f"{name}: {label!r} is not an axis of the coverage "
                           "(i, j or the CRS's axis labels)", label)
        if axis in done:
            raise OGCError("ScaleAxisUndefined", f"{name}: axis {label!r} is given twice", label)
        done.add(axis)
        if name == "SCALEAXES":
            size[axis] = max(1, round(size[axis] * _positive(value, name)))
        elif name in ("SCALESIZE", "SIZE"):
            n = _positive(value, name)
            if not float(n).is_integer():
                raise OGCError("InvalidScaleFactor", f"{name}: {label}({value}) is not a whole number", label)
            size[axis] = int(n)
        elif name == "SCALEEXTENT":
            parts = value.split(":")
            try:
                lo, hi = (float(p) for p in parts)
            except ValueError:
                raise OGCError("InvalidExtent", f"{name}: {label}({value}) is not low:high", label) from None
            if not (lo.is_integer() and hi.is_integer()) or lo > hi:
                raise OGCError("InvalidExtent", f"{name}: {label}({value}) needs whole numbers with low <= high",
                               label)
            size[axis] = int(hi - lo) + 1
        else:                                           # RESOLUTION: cell size in CRS units
            extent = grid.bounds[axis + 2] - grid.bounds[axis]
            size[axis] = max(1, round(extent / _positive(value, name)))
    return size[0], size[1]


def _positive(text: str, name: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise OGCError("InvalidScaleFactor", f"{name}: {text!r} is not a number above 0", name.lower())
    return value


def range_subset(raw: str | None, fields: tuple[Field, ...]) -> tuple[int, ...] | None:
    """RANGESUBSET: field names (or band names, or 1-based band numbers) and intervals a:b, in the
    order asked."""
    if raw is None or not raw.strip():
        return None

    def index(token: str) -> int:
        token = token.strip()
        for i, f in enumerate(fields):
            if token in (f.name, f.band):
                return i
        if token.isdigit() and 1 <= int(token) <= len(fields):
            return int(token) - 1
        raise OGCError("NoSuchField", f"RANGESUBSET: there is no field {token!r} (fields: "
                       f"{', '.join(f.name for f in fields)})", token)

    bands: list[int] = []
    for item in raw.split(","):
        if ":" in item:
            first, last = item.split(":", 1)
            a, b = index(first), index(last)
            if a > b:
                raise OGCError("IllegalFieldSequence", f"RANGESUBSET: {item.strip()!r} runs backwards", first.strip())
            bands.extend(range(a, b + 1))
        else:
            bands.append(index(item))
    return tuple(bands)


def interpolation(kvp: KVP, *axes: Axes) -> Resampling:
    """The engine's resampling for INTERPOLATION (and INTERPOLATIONPERAXIS, one method for all)."""
    methods = []
    raw = (kvp.get("INTERPOLATION") or "").strip()
    if raw:
        methods.append(("interpolation", raw))
    per_axis = (kvp.get("INTERPOLATIONPERAXIS") or "").strip()
    for item in filter(None, (p.strip() for p in per_axis.split(";"))):
        label, _, uri = item.partition(",")
        if not uri.strip() or grid_axis(label.strip(), *axes) is None:
            raise OGCError("InvalidParameterValue", f"INTERPOLATIONPERAXIS: {item!r} is not axis,method",
                           "interpolationPerAxis")
        methods.append(("interpolationPerAxis", uri.strip()))
    found: set[Resampling] = set()
    for locator, uri in methods:
        method = interpolation_of(uri)
        if method is None:
            raise OGCError("InterpolationMethodNotSupported", f"interpolation {uri!r} is not supported "
                           f"({', '.join(INTERPOLATIONS)})", locator)
        found.add(method)
    if len(found) > 1:
        raise OGCError("InterpolationMethodNotSupported", "one interpolation method for all axes, please",
                       "interpolationPerAxis")
    return found.pop() if found else Resampling.NEAREST


# --- GetCoverage: encoding ---------------------------------------------------------------------------------

# the GeoTIFF extension's words for the engine's compressions
_COMPRESSION = {"none": Compression.NONE, "packbits": Compression.PACKBITS, "lzw": Compression.LZW,
                "deflate": Compression.DEFLATE, "jpeg": Compression.JPEG, "huffman": Compression.CCITTRLE}
_PREDICTOR = {"none": 1, "horizontal": 2, "floatingpoint": 3}


def geotiff_options(kvp: KVP) -> dict:
    """rasterio creation options from the GeoTIFF extension's GEOTIFF:* parameters."""
    opts: dict = {}
    raw = (kvp.get("GEOTIFF:COMPRESSION") or "").strip()
    if raw:
        if raw.lower() not in _COMPRESSION:
            raise OGCError("InvalidParameterValue", f"GEOTIFF:COMPRESSION={raw!r} (None, PackBits, LZW, Deflate, "
                           "JPEG, Huffman)", "geotiff:compression")
        opts["compress"] = _COMPRESSION[raw.lower()].gdal
    raw = (kvp.get("GEOTIFF:JPEG_QUALITY") or "").strip()
    if raw:
        q = kvp.integer("GEOTIFF:JPEG_QUALITY", lo=1)
        if q is None or q > 100:     # None: not with a value given
            raise OGCError("InvalidParameterValue", "GEOTIFF:JPEG_QUALITY is 1 to 100", "geotiff:jpeg_quality")
        opts["jpeg_quality"] = q
    raw = (kvp.get("GEOTIFF:PREDICTOR") or "").strip()
    if raw:
        if raw.lower() not in _PREDICTOR:
            raise OGCError("InvalidParameterValue", f"GEOTIFF:PREDICTOR={raw!r} (None, Horizontal, FloatingPoint)",
                           "geotiff:predictor")
        opts["predictor"] = _PREDICTOR[raw.lower()]
    raw = (kvp.get("GEOTIFF:INTERLEAVE") or "").strip()
    if raw:
        if raw.lower() not in ("pixel", "band"):
            raise OGCError("InvalidParameterValue", f"GEOTIFF:INTERLEAVE={raw!r} (Pixel, Band)", "geotiff:interleave")
        opts["interleave"] = raw.lower()
    if kvp.flag("GEOTIFF:TILING", False):
        opts["tiled"] = True
    for key, opt in (("GEOTIFF:TILEWIDTH", "blockxsize"), ("GEOTIFF:TILEHEIGHT", "blockysize")):
        if (kvp.get(key) or "").strip():
            n = kvp.integer(key, lo=16)
            if n is None or n % 16:
                raise OGCError("InvalidParameterValue", f"{key} must be a multiple of 16", key.lower())
            opts[opt] = n
            opts["tiled"] = True
    return opts


def check_tiff_options(raster: Raster, opts: dict) -> None:
    """The GEOTIFF:* options checked against the data, so a refusal names the parameter at fault."""
    dtype = raster.data.dtype
    compress = opts.get("compress")
    if compress == "JPEG" and (dtype != np.uint8 or raster.data.shape[0] not in (1, 3)):
        raise OGCError("InvalidParameterValue", "JPEG compression needs 8-bit data with 1 or 3 bands",
                       "geotiff:compression")
    if compress == "CCITTRLE":
        raise OGCError("InvalidParameterValue", "Huffman (CCITT) compression is for 1-bit data only",
                       "geotiff:compression")
    if opts.get("predictor") == 3 and dtype.kind != "f":
        raise OGCError("InvalidParameterValue", "the FloatingPoint predictor needs floating-point data",
                       "geotiff:predictor")
