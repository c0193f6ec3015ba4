"""ImageServiceClient: one ArcGIS ImageServer (ours or ArcGIS Server's) through its REST API only.

Reads are value rasters: exportImage with `format=tiff` (or `lerc`), never a rendered picture. An
area larger than the service's maxImageWidth/Height is read as blocks of one grid, fetched in
parallel by a bounded pool and stitched into one array.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, wait
from functools import cached_property

import numpy as np
from rasterio.crs import CRS
from rasterio.io import MemoryFile
from rasterio.windows import Window

from .gis import Credentials
from .grid import ReadGrid, crs_from_sr, plan_grid, sr_param
from .http import (
    DEFAULT_WORKERS,
    TOKEN_ERRORS,
    ImageServiceError,
    ThreadSessions,
    compact,
    json_of,
    pool,
    raise_for_error,
)

# Blocks of 1024 x 1024 keep the pool busy: on a 2-CPU server a 6000 x 6000 read took half the time of
# the same read in maxImageWidth x maxImageHeight (4100 x 4100) blocks (benchmarks/client_read.py).
DEFAULT_BLOCK = 1024

# ArcGIS pixel types <-> numpy
PIXEL_TYPES = {"U1": "uint8", "U2": "uint8", "U4": "uint8", "U8": "uint8", "S8": "int8", "U16": "uint16",
               "S16": "int16", "U32": "uint32", "S32": "int32", "F32": "float32", "F64": "float64"}
DTYPE_PIXEL_TYPES = {"uint8": "U8", "int8": "S8", "uint16": "U16", "int16": "S16", "uint32": "U32",
                     "int32": "S32", "float32": "F32", "float64": "F64"}


def service_root(url: str) -> str:
    """The …/ImageServer root of a URL that may name an operation or carry a query."""
    url = url.split("?", 1)[0].rstrip("/")
    marker = "/imageserver"
    at = url.lower().rfind(marker)
    if at < 0:
        raise ValueError(f"{url} is not an ImageServer URL (…/rest/services/NAME/ImageServer)")
    return url[:at + len(marker)]


class ImageServiceClient(ThreadSessions):
    """A client of one image service.

    `token` (a fixed token) or `gis` (the name of a registered GIS: tokens generated and renewed)
    authorise requests to secured services. `workers` bounds the parallel block requests.
    """

    def __init__(self, url: str, token: str | None = None, gis=None, *, workers: int = DEFAULT_WORKERS,
                 timeout: float = 300.0, credentials: Credentials | None = None):
        self.url = service_root(url)
        self.credentials = credentials or Credentials(token=token, gis=gis)
        self.workers = self.session_workers = max(1, int(workers))
        self.timeout = timeout
        self._reset_sessions()

    # --- HTTP (one session per thread: http.ThreadSessions) ------------------------------------------

    def request(self, operation: str, params: dict, *, method: str = "GET", files=None):
        """One call to `{url}/{operation}` with the token; a token the server rejects is renewed
        once (registered GIS only). Long parameter sets go as a POST form, as ArcGIS allows."""
        url = f"{self.url}/{operation}" if operation else self.url
        params = {k: v for k, v in params.items() if v is not None}
        for attempt in (0, 1):
            token = self.credentials.token(force=attempt == 1)
            query = dict(params, token=token) if token else params
            use_post = method == "POST" or files is not None or sum(len(str(v)) for v in query.values()) > 1800
            if use_post:
                resp = self.session.post(url, data=query, files=files, timeout=self.timeout,
                                         verify=self.credentials.verify)
            else:
                resp = self.session.get(url, params=query, timeout=self.timeout, verify=self.credentials.verify)
            try:
                raise_for_error(resp)
            except ImageServiceError as exc:
                if exc.code in TOKEN_ERRORS and attempt == 0 and self.credentials.renewable:
                    continue
                raise
            return resp
        raise AssertionError("unreachable")

    def get_json(self, operation: str = "", **params) -> dict:
        return json_of(self.request(operation, dict(params, f="json")))

    # --- description --------------------------------------------------------------------------
    @cached_property
    def info(self) -> dict:
        """The service's root JSON."""
        return self.get_json("")

    @property
    def crs(self) -> CRS:
        return crs_from_sr(self.info.get("spatialReference") or (self.info.get("extent") or {}).get("spatialReference"))

    @property
    def extent(self) -> tuple[float, float, float, float]:
        e = self.info["extent"]
        return float(e["xmin"]), float(e["ymin"]), float(e["xmax"]), float(e["ymax"])

    @property
    def pixel_size(self) -> tuple[float, float]:
        return float(self.info["pixelSizeX"]), float(self.info["pixelSizeY"])

    @property
    def max_image_size(self) -> tuple[int, int]:
        return int(self.info.get("maxImageWidth") or 4000), int(self.info.get("maxImageHeight") or 4000)

    @property
    def band_count(self) -> int:
        return int(self.info.get("bandCount") or 1)

    # --- pixels ---------------------------------------------------------------------------------
    def plan(self, extent=None, cell_size=None, size=None, sr=None, extent_sr=None) -> ReadGrid:
        """The grid a read covers: `extent` in `extent_sr`'s units (default: `sr`'s, else the
        service's), projected to `sr`."""
        target = crs_from_sr(sr) or self.crs
        if extent is None:
            extent, extent_crs = self.extent, self.crs
        else:
            extent_crs = crs_from_sr(extent_sr) or target
        return plan_grid(self.crs, self.pixel_size, extent, extent_crs, target, cell_size, size)

    def export(self, extent=None, cell_size=None, size=None, band_ids=None, sr=None, mosaic_rule=None,
               rendering_rule=None, time=None, pixel_type=None, *, format: str = "tiff",
               interpolation: str | None = None, block_size: tuple[int, int] | None = None
               ) -> tuple[np.ndarray, dict]:
        """(values as (bands, rows, cols), a rasterio profile) of an area; `extent` in `sr`'s units
        (default: the service's CRS and extent), `band_ids` 0-based as the REST API's bandIds."""
        grid = self.plan(extent, cell_size, size, sr)
        if block_size is not None:
            mw, mh = self.max_image_size
            block_size = (min(block_size[0], mw), min(block_size[1], mh))
        data, nodata = self.read_grid(grid, block_size=block_size, band_ids=band_ids, mosaic_rule=mosaic_rule,
                                      rendering_rule=rendering_rule, time=time, pixel_type=pixel_type,
                                      format=format, interpolation=interpolation)
        profile = dict(driver="GTiff", width=grid.width, height=grid.height, count=data.shape[0],
                       dtype=data.dtype.name, crs=grid.crs, transform=grid.transform, nodata=nodata)
        return data, profile

    def read_grid(self, grid: ReadGrid, *, block_size=None, **params) -> tuple[np.ndarray, float | None]:
        """All of `grid` as one (bands, rows, cols) array, stitched from its blocks; and the nodata."""
        out, nodata = None, None
        for window, data, block_nodata in self.iter_blocks(grid, block_size=block_size, **params):
            if out is None:
                out = np.empty((data.shape[0], grid.height, grid.width), data.dtype)
                nodata = block_nodata
            r, c = int(window.row_off), int(window.col_off)
            out[:, r:r + data.shape[1], c:c + data.shape[2]] = data
        return out, nodata

    def iter_blocks(self, grid: ReadGrid, *, block_size=None,
                    **params) -> Iterator[tuple[Window, np.ndarray, float | None]]:
        """(window, values, nodata) of each block of `grid` (default: 1024 x 1024 cells, or less within
        the service's maxImageWidth x maxImageHeight), in the order they arrive; at most
        2 x workers blocks are in flight or waiting, so memory stays bounded."""
        if block_size is None:
            mw, mh = self.max_image_size
            block_size = (min(DEFAULT_BLOCK, mw), min(DEFAULT_BLOCK, mh))
        bw, bh = block_size                               # callers keep a given size within the limits
        windows = grid.windows(bw, bh)
        if len(windows) == 1:
            yield windows[0], *self.read_block(grid, windows[0], **params)
            return
        with pool(self.workers) as executor:
            pending, todo = {}, iter(windows)
            for w in todo:
                pending[executor.submit(self.read_block, grid, w, **params)] = w
                if len(pending) >= 2 * self.workers:
                    break
            try:
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        w = pending.pop(fut)
                        data, nodata = fut.result()
                        nxt = next(todo, None)
                        if nxt is not None:
                            pending[executor.submit(self.read_block, grid, nxt, **params)] = nxt
                        yield w, data, nodata
            finally:
                for fut in pending:
                    fut.cancel()

    def export_params(self, bbox, crs: CRS, width: int, height: int, band_ids=None, mosaic_rule=None,
                      rendering_rule=None, time=None, pixel_type=None, format: str = "tiff",
                      interpolation: str | None = None) -> dict:
        """The exportImage parameters of one value read (f=image)."""
        sr = sr_param(crs)
        return {
            "bbox": ",".join(repr(float(v)) for v in bbox), "bboxSR": sr, "imageSR": sr,
            "size": f"{width},{height}", "format": format, "f": "image", "adjustAspectRatio": "false",
            "bandIds": ",".join(str(int(b)) for b in band_ids) if band_ids is not None else None,
            "mosaicRule": compact(mosaic_rule) if mosaic_rule is not None else None,
            "renderingRule": compact(rendering_rule) if rendering_rule is not None else None,
            "time": _time_param(time), "pixelType": pixel_type, "interpolation": interpolation,
            "compression": "LZ77" if format == "tiff" else None,
        }

    def read_block(self, grid: ReadGrid, window: Window, **params) -> tuple[np.ndarray, float | None]:
        """One exportImage of a window of `grid`: (values (bands, rows, cols), nodata)."""
        width, height = int(window.width), int(window.height)
        fmt = params.get("format", "tiff")
        resp = self.request("exportImage", self.export_params(grid.window_bounds(window), grid.crs, width,
                                                             height, **params))
        if fmt == "lerc":
            data, nodata = self._decode_lerc(resp.content, params.get("pixel_type"))
        else:
            with MemoryFile(resp.content) as mem, mem.open() as ds:
                data, nodata = ds.read(), ds.nodata
        if data.shape[1:] != (height, width):
            raise ImageServiceError(502, f"exportImage answered {data.shape[2]}x{data.shape[1]} cells "
                                         f"for a {width}x{height} request", url=resp.url)
        return data, nodata

    def _decode_lerc(self, blob: bytes, pixel_type: str | None) -> tuple[np.ndarray, float | None]:
        import lerc

        result, data, valid = lerc.decode(blob)[:3]
        if result != 0:
            raise ImageServiceError(502, f"LERC decoding failed (code {result})")
        data = np.asarray(data)
        if data.ndim == 2:
            data = data[None]
        if pixel_type and PIXEL_TYPES.get(pixel_type.upper()):
            data = data.astype(PIXEL_TYPES[pixel_type.upper()], copy=False)
        nodata = self.info.get("noDataValue")
        if valid is not None and not np.all(valid):
            if nodata is None:
                nodata = _type_nodata(data.dtype)
            valid = np.asarray(valid, bool)
            data = np.where(valid if valid.ndim == data.ndim else valid[None], data, data.dtype.type(nodata))
        return data, (float(nodata) if nodata is not None else None)

    # --- JSON operations --------------------------------------------------------------------------
    def query(self, where: str = "1=1", geometry=None, out_fields: str = "*", return_geometry: bool = True,
              sr=None, page: bool = True, **params) -> dict:
        """Catalog items (query): a FeatureSet; pages are followed while the server says there are more."""
        base = dict(where=where, outFields=out_fields, returnGeometry=str(bool(return_geometry)).lower(),
                    outSR=sr_param(crs_from_sr(sr)) if sr is not None else None, **_geometry(geometry, sr), **params)
        result = self.get_json("query", **base)
        features = list(result.get("features", []))
        while page and result.get("exceededTransferLimit") and features:
            result = self.get_json("query", **dict(base, resultOffset=len(features)))
            if not result.get("features"):
                break
            features.extend(result["features"])
        result = dict(result, features=features)
        result.pop("exceededTransferLimit", None)
        return result

    def identify(self, geometry, sr=None, mosaic_rule=None, rendering_rule=None, **params) -> dict:
        """The value (and catalog items) at a point."""
        return self.get_json("identify", **_geometry(geometry, sr),
                             mosaicRule=compact(mosaic_rule) if mosaic_rule is not None else None,
                             renderingRule=compact(rendering_rule) if rendering_rule is not None else None,
                             **params)

    def samples(self, geometry, sr=None, mosaic_rule=None, out_fields: str | None = None, **params) -> list[dict]:
        """getSamples: the values at points or along a line (sampleCount / sampleDistance)."""
        body = self.get_json("getSamples", **_geometry(geometry, sr),
                             mosaicRule=compact(mosaic_rule) if mosaic_rule is not None else None,
                             outFields=out_fields, **params)
        return body.get("samples", [])


def _time_param(time) -> str | None:
    """ms since epoch, datetimes, or a (start, end) pair as the REST API's `time`."""
    if time is None:
        return None
    if isinstance(time, (tuple, list)):
        return ",".join(_time_param(t) or "null" for t in time)
    if hasattr(time, "timestamp"):
        return str(int(round(time.timestamp() * 1000)))
    return str(time)


def _geometry(geometry, sr) -> dict:
    """geometry + geometryType from (x, y), [(x, y), …] (multipoint), an envelope tuple of four, or
    ArcGIS JSON."""
    if geometry is None:
        return {}
    spatial = {"spatialReference": {"wkid": crs_from_sr(sr).to_epsg()}} if sr is not None else {}
    if isinstance(geometry, dict):
        g = dict(geometry)
        kind = ("esriGeometryPoint" if "x" in g else "esriGeometryMultipoint" if "points" in g else
                "esriGeometryPolyline" if "paths" in g else "esriGeometryPolygon" if "rings" in g else
                "esriGeometryEnvelope")
    elif len(geometry) == 2 and all(isinstance(v, (int, float)) for v in geometry):
        g, kind = {"x": geometry[0], "y": geometry[1]}, "esriGeometryPoint"
    elif len(geometry) == 4 and all(isinstance(v, (int, float)) for v in geometry):
        g = dict(zip(("xmin", "ymin", "xmax", "ymax"), geometry, strict=False))
        kind = "esriGeometryEnvelope"
    else:
        g, kind = {"points": [list(p) for p in geometry]}, "esriGeometryMultipoint"
    if spatial and "spatialReference" not in g:
        g.update(spatial)
    return {"geometry": compact(g), "geometryType": kind}


def _type_nodata(dtype: np.dtype):
    return np.finfo(dtype).min if dtype.kind == "f" else np.iinfo(dtype).max
