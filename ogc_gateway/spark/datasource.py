"""`spark.read.format("image-service")` and `df.write.format("image-service")` with PySpark's
Python Data Source API.

Read: one partition per tile of one grid (the extent in the layer's units, projected by the server to
`sr` when given), so tiles meet without gaps; each partition is one exportImage (format=tiff, a value
raster), or several stitched when a tile exceeds the service's maxImageWidth/Height.

Write: every partition uploads its rasters (promoted, see promotion.py) to the server's uploads; the
driver's commit creates the service from all of them in one createService job.

DataSource objects are built by Spark in Python worker processes, not in the driver's interpreter:
a `gis` name is looked up in the per-user registry file (ogc_gateway.client.gis), and the resolved
registration travels inside the pickled reader/writer to the executors, which renew tokens themselves.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field

from pyspark.sql.datasource import DataSource, DataSourceReader, DataSourceWriter, InputPartition, WriterCommitMessage
from pyspark.sql.types import StructType

from ..client.gis import Credentials
from ..client.grid import ReadGrid, crs_from_sr
from ..client.publish import PublishingClient
from ..client.service import ImageServiceClient
from .promotion import ReferencedRasters, check_uniform, promote
from .raster import RASTER_FIELDS, SCHEMA_DDL, has_spatial_reference, raster_value, to_numpy

log = logging.getLogger("ogc_gateway.spark")
DEFAULT_TILE = 1024


def _option(options, name: str, default=None):
    """Options are case-insensitive in Spark; be so here too."""
    for key, value in options.items():
        if key.lower() == name.lower():
            return value
    return default


def parse_extent(text: str) -> tuple[float, float, float, float]:
    values = [float(v) for v in str(text).replace(";", ",").split(",") if v.strip()]
    if len(values) != 4:
        raise ValueError(f'extent {text!r}: expected "xmin, ymin, xmax, ymax"')
    return tuple(values)


def parse_bands(text) -> list[int] | None:
    """1-based bands, "2", "1,3", "[1, 3]" or "1;3" -> 0-based band ids."""
    if text is None or str(text).strip() == "":
        return None
    raw = json.loads(text) if str(text).strip().startswith("[") else str(text).replace(";", ",").split(",")
    bands = [int(b) for b in ([raw] if isinstance(raw, int) else raw) if str(b).strip() != ""]
    if not bands or min(bands) < 1:
        raise ValueError(f"bands {text!r}: bands count from 1")
    return [b - 1 for b in bands]


def _positive_int(options, name: str, default: int) -> int:
    value = int(_option(options, name, default))
    if value < 1:
        raise ValueError(f"{name} must be a positive integer")
    return value


@dataclass(frozen=True)
class Tile(InputPartition):
    col: int
    row: int
    col_off: int
    row_off: int
    width: int
    height: int


class ImageServiceDataSource(DataSource):
    @classmethod
    def name(cls) -> str:
        return "image-service"

    def schema(self) -> str:
        return SCHEMA_DDL

    def reader(self, schema: StructType) -> ImageServiceReader:
        return ImageServiceReader(dict(self.options))

    def writer(self, schema: StructType, overwrite: bool) -> ImageServiceWriter:
        return ImageServiceWriter(dict(self.options), schema, overwrite)


class ImageServiceReader(DataSourceReader):
    def __init__(self, options: dict):
        url = _option(options, "path") or _option(options, "url")
        if not url:
            raise ValueError('spark.read.format("image-service").load(URL): the image service URL is missing')
        self.credentials = Credentials(token=_option(options, "token"), gis=_option(options, "gis"))
        client = ImageServiceClient(url, credentials=self.credentials, workers=1)
        self.url = client.url
        extent = _option(options, "extent")
        sr = _option(options, "sr")
        grid = client.plan(parse_extent(extent) if extent else None, sr=sr, extent_sr=client.crs)
        self.crs_wkt = grid.crs.to_wkt()
        self.transform = tuple(grid.transform)[:6]
        self.width, self.height = grid.width, grid.height
        self.tile_cols = _positive_int(options, "tileColumns", DEFAULT_TILE)
        self.tile_rows = _positive_int(options, "tileRows", DEFAULT_TILE)
        self.block_size = client.max_image_size      # a tile larger than that is read in blocks
        self.params = {"band_ids": parse_bands(_option(options, "bands"))}
        for opt, key in (("mosaicRule", "mosaic_rule"), ("renderingRule", "rendering_rule"), ("time", "time"),
                         ("pixelType", "pixel_type")):
            if _option(options, opt) is not None:
                self.params[key] = _option(options, opt)

    def grid(self) -> ReadGrid:
        from affine import Affine

        return ReadGrid(crs_from_sr(self.crs_wkt), Affine(*self.transform), self.width, self.height)

    def partitions(self) -> list[Tile]:
        return [Tile(c // self.tile_cols, r // self.tile_rows, c, r, min(self.tile_cols, self.width - c),
                     min(self.tile_rows, self.height - r))
                for r in range(0, self.height, self.tile_rows) for c in range(0, self.width, self.tile_cols)]

    def read(self, partition: Tile):
        from rasterio.windows import Window

        grid = self.grid()
        window = Window(partition.col_off, partition.row_off, partition.width, partition.height)
        client = ImageServiceClient(self.url, credentials=self.credentials, workers=2)
        tile = ReadGrid(grid.crs, grid.window_transform(window), partition.width, partition.height)
        data, nodata = client.read_grid(tile, block_size=self.block_size, **self.params)
        xmin, ymin, xmax, ymax = grid.window_bounds(window)
        yield (raster_value(data, nodata, self.crs_wkt, grid.window_transform(window)),
               partition.col, partition.row, (xmin, ymin, xmax, ymax))


@dataclass
class Uploaded(WriterCommitMessage):
    item_ids: list = field(default_factory=list)
    kinds: list = field(default_factory=list)          # (pixel type, bands) of each upload
    skipped: int = 0


def raster_column(schema: StructType, wanted: str | None) -> str:
    """`fieldName`, else the first column shaped like the reader's raster struct."""
    def is_raster(f) -> bool:
        return isinstance(f.dataType, StructType) and {"data", "width", "height", "bands", "pixel_type"} <= \
            set(f.dataType.fieldNames())

    if wanted:
        match = [f for f in schema.fields if f.name == wanted]
        if not match:
            raise ValueError(f"fieldName {wanted!r}: no such column ({', '.join(schema.fieldNames())})")
        if not is_raster(match[0]):
            raise ValueError(f"fieldName {wanted!r} is not a raster column (struct<{', '.join(RASTER_FIELDS)}>)")
        return wanted
    for f in schema.fields:
        if is_raster(f):
            return f.name
    raise ValueError(f"the frame has no raster column (struct<{', '.join(RASTER_FIELDS)}>)")


def geotiff_bytes(raster) -> tuple[bytes, str, int]:
    """A row's raster promoted and encoded as a GeoTIFF: (bytes, pixel type, bands)."""
    from affine import Affine
    from rasterio.io import MemoryFile

    r = raster.asDict() if hasattr(raster, "asDict") else dict(raster)
    values, pixel_type, nodata = promote(to_numpy(r), r["pixel_type"], r.get("nodata"))
    with MemoryFile() as mem:
        with mem.open(driver="GTiff", width=r["width"], height=r["height"], count=r["bands"], dtype=values.dtype,
                      crs=r["crs"], transform=Affine.from_gdal(*r["transform"]), nodata=nodata, tiled=True,
                      blockxsize=256, blockysize=256, compress="deflate") as dst:
            dst.write(values)
        return mem.read(), pixel_type, int(r["bands"])


class ImageServiceWriter(DataSourceWriter):
    def __init__(self, options: dict, schema: StructType, overwrite: bool):
        self.name = _option(options, "serviceName") or _option(options, "path")
        if not self.name:
            raise ValueError('df.write.format("image-service"): option serviceName (or path) names the new service')
        self.field = raster_column(schema, _option(options, "fieldName"))
        wait = str(_option(options, "waitForCompletion", "true")).strip().lower()
        if wait not in ("true", "false", "1", "0"):
            raise ValueError("waitForCompletion must be true or false")
        self.wait = wait in ("true", "1")
        self.overwrite = overwrite
        self.publisher = PublishingClient.for_options(_option(options, "url"), _option(options, "token"),
                                                      _option(options, "gis"))
        if not overwrite and self.publisher.service_exists(self.name):
            raise ValueError(f"an image service named {self.name!r} exists; write with .mode(\"overwrite\") "
                             "to replace it")
        self.job_id = None

    def write(self, iterator) -> Uploaded:
        rasters = ReferencedRasters(self.field, has_spatial_reference)
        message = Uploaded()
        try:
            for raster in rasters(iterator):
                content, pixel_type, bands = geotiff_bytes(raster)
                item = self.publisher.upload(content, f"{self.name}_{uuid.uuid4().hex[:12]}.tif",
                                             description=f"Spark writer, service {self.name}")
                message.item_ids.append(item)
                message.kinds.append((pixel_type, bands))
        except BaseException:
            for item in message.item_ids:      # this task's uploads go with it
                try:
                    self.publisher.delete_upload(item)
                except Exception:  # noqa: BLE001 - best effort; unused uploads expire anyway
                    pass
            raise
        message.skipped = rasters.skipped
        return message

    def commit(self, messages) -> None:
        messages = [m for m in messages if m is not None]
        items = [i for m in messages for i in m.item_ids]
        skipped = sum(m.skipped for m in messages)
        if skipped:
            log.warning("image-service %s: %d row(s) without a spatial reference skipped", self.name, skipped)
        if not items:
            raise ValueError(f"image service {self.name!r} not created: " +
                             (f"none of the {skipped} row(s) has a spatial reference" if skipped
                              else "the frame has no rasters"))
        try:
            check_uniform([tuple(k) for m in messages for k in m.kinds])
            if self.overwrite and self.publisher.service_exists(self.name):
                self.publisher.delete_service(self.name)
            self.job_id = self.publisher.create_service({"name": self.name}, items)
        except BaseException:
            self._delete(items)
            raise
        log.info("image-service %s: createService job %s submitted with %d raster(s)", self.name, self.job_id,
                 len(items))
        if self.wait:
            self.publisher.wait(self.job_id)

    def abort(self, messages) -> None:
        self._delete([i for m in messages if m is not None for i in m.item_ids])

    def _delete(self, items) -> None:
        for item in items:
            try:
                self.publisher.delete_upload(item)
            except Exception:  # noqa: BLE001 - best effort; unused uploads expire after their TTL
                log.warning("image-service %s: upload %s not deleted", self.name, item)
