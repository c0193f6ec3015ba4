"""A direct GeoTIFF writer for the common raw-values answer: one band, uncompressed, a north-up
grid in a CRS with an EPSG code, nodata (if any) as GDAL_NODATA.

Creating a GeoTIFF through GDAL (a MemoryFile dataset: driver, CRS to GeoKeys, tags, flush) costs
about a millisecond before the first pixel, a fifth of a 512 x 512 WCS GetCoverage; this writes the
same file structure with struct and one numpy copy. The layout follows what encode._geotiff asks
GDAL for — 256 x 256 tiles from 512 pixels a side, else one strip — and the tags GDAL reads back:
GeoKeys naming the EPSG code (GTModelType, GTRasterType PixelIsArea, ProjectedCSType or
GeographicType), ModelPixelScale and ModelTiepoint, GDAL_NODATA, and the band description in
GDAL_METADATA. Anything else returns None and goes through GDAL.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from affine import Affine
from rasterio.crs import CRS

_SHORT, _LONG, _DOUBLE, _ASCII = 3, 4, 12, 2
_FORMATS = {_SHORT: "H", _LONG: "I", _DOUBLE: "d"}
_SAMPLE_FORMAT = {"u": 1, "i": 2, "f": 3}
_TILE = 256
_PLAIN = re.compile(r"[\w .,:;()/+-]*", re.ASCII)     # band names written as they are

Tag = tuple[int, int, Sequence[float] | str]        # (tag, field type, numbers or ASCII text)


def geotiff(values: npt.NDArray[np.generic], crs: CRS, transform: Affine, nodata: float | None,
            description: str | None, tiled: bool) -> bytes | None:
    """`values` (1, rows, cols) as a GeoTIFF, or None when this writer does not do the case."""
    if values.ndim != 3 or values.shape[0] != 1 or values.dtype.kind not in _SAMPLE_FORMAT:
        return None
    if transform.b != 0 or transform.d != 0 or not (transform.a > 0 and transform.e < 0):
        return None
    keys = _geokeys(crs)
    if keys is None or (description and not _PLAIN.fullmatch(description)):
        return None                           # (GDAL escapes XML twice in GDAL_METADATA: let it)
    band = values[0].astype(values.dtype.newbyteorder("<"), copy=False)
    rows, cols = band.shape
    if tiled:
        across, down = -(-cols // _TILE), -(-rows // _TILE)
        padded = np.zeros((down * _TILE, across * _TILE), band.dtype)
        padded[:rows, :cols] = band
        pixels = padded.reshape(down, _TILE, across, _TILE).swapaxes(1, 2).tobytes()
        chunk = _TILE * _TILE * band.itemsize
        layout: list[Tag] = [(322, _LONG, [_TILE]), (323, _LONG, [_TILE])]
        offsets_tag, counts_tag, chunks = 324, 325, across * down
    else:
        pixels = np.ascontiguousarray(band).tobytes()
        chunk = len(pixels)
        layout = [(278, _LONG, [rows])]
        offsets_tag, counts_tag, chunks = 273, 279, 1
    if len(pixels) > 2 ** 31:
        return None
    tags: list[Tag] = [(256, _LONG, [cols]), (257, _LONG, [rows]), (258, _SHORT, [band.itemsize * 8]),
            (259, _SHORT, [1]), (262, _SHORT, [1]), (277, _SHORT, [1]), (284, _SHORT, [1]),
            (339, _SHORT, [_SAMPLE_FORMAT[band.dtype.kind]]),
            (33550, _DOUBLE, [transform.a, -transform.e, 0.0]),
            (33922, _DOUBLE, [0.0, 0.0, 0.0, transform.c, transform.f, 0.0]),
            (34735, _SHORT, keys)] + layout
    if description:
        metadata = ('<GDALMetadata>\n  <Item name="DESCRIPTION" sample="0" '
                    f'role="description">{description}</Item>\n</GDALMetadata>\n')
        tags.append((42112, _ASCII, metadata))
    if nodata is not None:
        tags.append((42113, _ASCII, "nan" if np.isnan(nodata) else format(float(nodata), ".18g")))
    # Offsets of the pixel data are known once the directory's size is: two passes over the tags.
    tags += [(offsets_tag, _LONG, [0] * chunks), (counts_tag, _LONG, [chunk] * chunks)]
    head = _directory(tags, 8)
    start = 8 + len(head)
    tags[-2] = (offsets_tag, _LONG, [start + i * chunk for i in range(chunks)])
    head = _directory(tags, 8)
    return b"II*\x00" + struct.pack("<I", 8) + head + pixels


def _geokeys(crs: CRS) -> list[int] | None:
    """GeoKeyDirectory for a CRS that is exactly an EPSG projected or geographic 2-D CRS."""
    try:
        epsg = crs.to_epsg(confidence_threshold=100)
    except Exception:  # noqa: BLE001 -- rasterio/GDAL cannot identify it: GDAL writes it
        return None
    if not epsg or not 0 < epsg < 65535:
        return None
    if crs.is_projected:
        model, key = 1, 3072                    # ModelTypeProjected, ProjectedCSTypeGeoKey
    elif crs.is_geographic:
        model, key = 2, 2048                    # ModelTypeGeographic, GeographicTypeGeoKey
    else:
        return None
    entries = [(1024, 0, 1, model), (1025, 0, 1, 1), (key, 0, 1, epsg)]   # 1025: RasterPixelIsArea
    return [1, 1, 0, len(entries)] + [v for entry in entries for v in entry]


def _directory(tags: list[Tag], offset: int) -> bytes:
    """One IFD at `offset` (sorted entries, no next IFD) followed by the values that do not fit in
    an entry."""
    tags = sorted(tags, key=lambda t: t[0])
    extra_at = offset + 2 + 12 * len(tags) + 4
    entries: list[bytes] = []
    extra = bytearray()
    for tag, kind, value in tags:
        if isinstance(value, str):              # kind _ASCII
            data = value.encode("utf-8") + b"\x00"
            count = len(data)
        else:
            data = struct.pack(f"<{len(value)}{_FORMATS[kind]}", *value)
            count = len(value)
        if len(data) <= 4:
            entries.append(struct.pack("<HHI", tag, kind, count) + data.ljust(4, b"\x00"))
        else:
            if (extra_at + len(extra)) % 2:
                extra += b"\x00"                # values start on a word boundary
            entries.append(struct.pack("<HHII", tag, kind, count, extra_at + len(extra)))
            extra += data
    body = struct.pack("<H", len(tags)) + b"".join(entries) + struct.pack("<I", 0) + bytes(extra)
    return body + (b"\x00" if len(body) % 2 else b"")
