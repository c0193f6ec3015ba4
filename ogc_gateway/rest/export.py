"""exportImage: parameters -> ExportRequest -> engine -> encoder -> image, JSON descriptor or KMZ."""

from __future__ import annotations

import os
import re
import time
import uuid
from pathlib import Path
from typing import BinaryIO

from rasterio.crs import CRS

from ..engine import (
    Compression,
    Encoded,
    EncodeOptions,
    ExportRequest,
    ImageService,
    InvalidParameter,
    NotFound,
    OutputFormat,
    Raster,
    parse_rendering_rule,
    reproject_bounds,
    target_grid,
)
from .kmz import kmz
from .params import (
    Params,
    parse_band_ids,
    parse_bbox,
    parse_interpolation,
    parse_mosaic_rule,
    parse_nodata,
    parse_pixel_type,
    parse_size,
    parse_sr_param,
    parse_time,
    with_slice,
)
from .root import envelope

# MIME types as format names: GDAL's AGS driver sends its ImageFormat (default image/png) as is.
_MIME_FORMATS = {"image/png": OutputFormat.PNG, "image/jpeg": OutputFormat.JPG, "image/jpg": OutputFormat.JPG,
                 "image/tiff": OutputFormat.TIFF, "image/geotiff": OutputFormat.TIFF, "image/gif": OutputFormat.GIF,
                 "image/bmp": OutputFormat.BMP}
# The REST face's words for the engine's formats and compressions, in one place.
_FORMAT_CHOICES = ({f.value: f for f in OutputFormat} | {"tif": OutputFormat.TIFF, "jpeg": OutputFormat.JPG}
                   | _MIME_FORMATS)
_COMPRESSION = {"none": Compression.NONE, "jpeg": Compression.JPEG, "lz77": Compression.DEFLATE,
                "deflate": Compression.DEFLATE,
                "lerc": Compression.NONE}      # QGIS sends compression=LERC with format=lerc: nothing to do
_WGS84 = CRS.from_epsg(4326)
OUTPUT_NAME = re.compile(r"^_ags_[0-9a-f]{32}\.[a-z0-9]{2,5}$")


def parse_export(p: Params, service: ImageService, *, kmz_output: bool = False
                 ) -> tuple[ExportRequest, EncodeOptions]:
    """Every exportImage parameter of the reference document, checked before any raster work."""
    info = service.info
    bbox, bbox_crs = parse_bbox(p, info.extent, info.crs)
    image_crs = _WGS84 if kmz_output else parse_sr_param(p, "imageSR", info.crs)
    width, height = parse_size(p)
    grid = target_grid(bbox, bbox_crs, image_crs, width, height, p.bool("adjustAspectRatio", True))
    if p.bool("validateExtent", False):
        ext = reproject_bounds(info.extent, info.crs, grid.crs)
        b = grid.bounds
        if b[0] >= ext[2] or b[2] <= ext[0] or b[1] >= ext[3] or b[3] <= ext[1]:
            raise InvalidParameter("bbox", "the extent lies outside the service's extent")
    resampling = parse_interpolation(p, info.resampling)
    nodata, match_all = parse_nodata(p)
    req = ExportRequest(
        grid=grid, band_ids=parse_band_ids(p),
        mosaic_rule=with_slice(p, service, parse_mosaic_rule(p, info.default_rule, info.crs, service.templates)),
        rendering_rule=parse_rendering_rule(p.json_or_text("renderingRule"), service.templates),
        time=parse_time(p), pixel_type=parse_pixel_type(p), nodata=nodata,
        nodata_match_all=match_all, resampling=resampling)
    fmt = p.enum("format", _FORMAT_CHOICES, OutputFormat.JPGPNG)
    if kmz_output and not fmt.picture:
        fmt = OutputFormat.PNG
    lerc_version = p.number("lercVersion", 2)
    if lerc_version not in (1, 2):
        raise InvalidParameter("lercVersion", "expected 1 or 2")
    tolerance = p.number("compressionTolerance", None, lo=0)
    opts = EncodeOptions(format=fmt, quality=int(p.number("compressionQuality", 75, lo=0, hi=100)),
                         compression=p.enum("compression", _COMPRESSION, Compression.NONE),
                         tolerance=tolerance, lerc_version=int(lerc_version))
    return req, opts


def kmz_bytes(service: ImageService, raster: Raster, image: Encoded) -> bytes:
    return kmz(image, raster.grid.bounds, service.info.title or service.info.name)


def write_output(folder: Path, image: Encoded, ttl: int) -> str:
    """Store an f=json result where every worker can serve it; sweep expired ones. Returns its name."""
    folder.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for entry in os.scandir(folder):
        try:
            if entry.is_file() and now - entry.stat().st_mtime > ttl:
                os.unlink(entry.path)
        except FileNotFoundError:
            pass                    # another worker swept it first
    name = f"_ags_{uuid.uuid4().hex}.{image.extension}"
    tmp = folder / f".{name}.part"
    tmp.write_bytes(image.data)
    os.replace(tmp, folder / name)
    return name


def open_output(folder: Path, name: str, ttl: int) -> tuple[BinaryIO, int]:
    """An output file opened for streaming, and its size; NotFound once it is gone or older than its
    time to live. (Open, it stays readable even if a sweep removes it meanwhile.)"""
    path = folder / name
    if not OUTPUT_NAME.match(name):
        raise NotFound("File not found.", details=[name])
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        raise NotFound("File not found.", details=[name])
    st = os.fstat(handle.fileno())
    if time.time() - st.st_mtime > ttl:
        handle.close()
        path.unlink(missing_ok=True)
        raise NotFound("File not found.", details=["The output file has expired."])
    return handle, st.st_size


def json_descriptor(href: str, raster: Raster) -> dict:
    g = raster.grid
    return {"href": href, "width": g.width, "height": g.height, "extent": envelope(g.bounds, g.crs),
            "scale": 0}
