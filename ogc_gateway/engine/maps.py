"""Requests to encoded images in one call: the faces hand over what was asked for and send back the
bytes, so the raster work of a picture (the default rendering, WMS's composition of layers, the
background colour) lives in the engine and a face holds no arrays (issue 20: "face -> engine API ->
encode with no way back").

- `render_image`: exportImage (and thumbnails): one service's raster, rendered if the format is a
  picture, encoded.
- `render_map`: WMS GetMap: each layer exported and rendered, drawn bottom first, flattened on the
  background unless transparent (JPEG always), encoded; or one layer's raw values as GeoTIFF.
- `encode_map`: an RGBA picture a face drew itself (WMS's INIMAGE/BLANK exception images) as a map
  format, on the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .encode import encode
from .encoded import Encoded
from .export import export
from .names import Compression, OutputFormat
from .pictures import MAP_FORMATS, encode_rgba, grey_png
from .render import composite, flatten, picture, rgba
from .requests import ExportRequest, Raster
from .service import ImageService

RAW_MAP_FORMAT = "tiff"     # the one map format that carries values, not a picture (one layer only)


@dataclass(frozen=True, slots=True)
class EncodeOptions:
    """How `render_image` encodes: the output format and what its encoder takes."""

    format: OutputFormat
    quality: int = 75
    compression: Compression = Compression.NONE
    tolerance: float | None = None
    lerc_version: int = 2


@dataclass(frozen=True, slots=True)
class MapRequest:
    """A map of stacked layers: each a service and its export request (the same grid), bottom first.
    `format` is a key of MAP_FORMATS or "tiff"; `background` is the RGB that transparent pixels take
    unless `transparent` (JPEG has no alpha: always flattened)."""

    layers: tuple[tuple[ImageService, ExportRequest], ...]
    format: str
    transparent: bool = False
    background: tuple[int, int, int] = (255, 255, 255)


def render_image(service: ImageService, req: ExportRequest, opts: EncodeOptions) -> tuple[Raster, Encoded]:
    """The raster (rendered, for a picture format) and its encoding; 8-bit formats get the default
    rendering, with the service's default bands unless the request names its own."""
    raster = export(service, req)
    if opts.format.picture:
        raster = picture(raster, band_ids_given=req.band_ids is not None,
                         default_band_ids=service.info.default_band_ids)
    return raster, encode(raster, opts.format, quality=opts.quality, compression=opts.compression,
                          tolerance=opts.tolerance, lerc_version=opts.lerc_version)


def render_map(req: MapRequest) -> Encoded:
    """The encoded map; a raw ("tiff") map is one layer's values, never a composition."""
    if req.format == RAW_MAP_FORMAT:
        if len(req.layers) != 1:
            raise ValueError("a raw map holds exactly one layer")
        service, layer_req = req.layers[0]
        return encode(export(service, layer_req), OutputFormat.TIFF)
    if req.format not in MAP_FORMATS:
        raise ValueError(f"unknown map format {req.format!r}")
    rendered = [picture(export(service, layer_req), band_ids_given=False,
                        default_band_ids=service.info.default_band_ids)
                for service, layer_req in req.layers]
    if len(rendered) == 1 and rendered[0].data.shape[0] == 1 and req.format == "png" and req.transparent:
        return grey_png(np.ma.getdata(rendered[0].data)[0], rendered[0].valid)     # the same bytes, sooner
    return encode_map(composite([rgba(r) for r in rendered]), req.format, transparent=req.transparent,
                      background=req.background)


def encode_map(image: np.ndarray, fmt: str, *, transparent: bool, background: tuple[int, int, int]) -> Encoded:
    """A (rows, cols, 4) RGBA picture (alpha 0 or 255) as map format `fmt`, flattened on
    `background` unless transparent (JPEG always)."""
    if not transparent or fmt == "jpg":
        image = flatten(image, background)
    return encode_rgba(image, fmt)
