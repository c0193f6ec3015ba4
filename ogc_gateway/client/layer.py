"""Make Image Server Layer: a layer of an image service as a GDAL description or a COG.

`*.xml` / `*.vrt`: a GDAL WMS-driver description in AGS mode. GDAL's AGS mini-driver appends
`f=image&bbox=…&size=…&imageSR=…&bboxSR=…&format=…` to a ServerUrl that already names
`exportImage?`, so everything else the layer needs — bandIds, mosaicRule (method, lock raster,
where, order field), renderingRule (the processing template) and a token — rides in that URL's
query. `format=tiff` makes every block a value raster (never a rendered picture). GDAL, rasterio and
QGIS open the file like a raster and fetch blocks on demand.

`*.tif`: the same layer materialised through ImageServiceClient (parallel exportImage blocks, a
tqdm progress bar), then written as a cloud-optimised GeoTIFF by GDAL's COG driver.
"""

from __future__ import annotations

import os
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.crs import CRS
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from .grid import ReadGrid, plan_grid
from .http import compact
from .service import ImageServiceClient

MOSAIC_METHODS = {   # the tool's keyword -> (REST mosaicMethod, the root JSON's allowedMosaicMethods name)
    "NORTH_WEST": ("esriMosaicNorthwest", "NorthWest"), "CLOSEST_TO_CENTER": ("esriMosaicCenter", "Center"),
    "LOCK_RASTER": ("esriMosaicLockRaster", "LockRaster"), "BY_ATTRIBUTE": ("esriMosaicAttribute", "ByAttribute"),
    "CLOSEST_TO_NADIR": ("esriMosaicNadir", "Nadir"), "CLOSEST_TO_VIEWPOINT": ("esriMosaicViewpoint", "Viewpoint"),
    "SEAMLINE": ("esriMosaicSeamline", "Seamline"), "NONE": ("esriMosaicNone", "None"),
}
_SHORT_TO_REST = {short.lower(): rest for rest, short in MOSAIC_METHODS.values()}
GDAL_TYPES = {"uint8": "Byte", "int8": "Int8", "uint16": "UInt16", "int16": "Int16", "uint32": "UInt32",
              "int32": "Int32", "float32": "Float32", "float64": "Float64"}
XML_BLOCK = 512          # GDAL's block (one exportImage each) in the description
COG_BLOCK = 2048         # exportImage blocks when materialising a COG


class LayerError(ValueError):
    """An option the service cannot honour (named in the message)."""


def _split(value, cast=str) -> list:
    """"1;2;3", "1,2", [1, 2] or 1 as a list."""
    if value is None or value == "" or value == "#":
        return []
    if isinstance(value, (list, tuple)):
        return [cast(v) for v in value]
    return [cast(v.strip()) for v in str(value).replace(",", ";").split(";") if v.strip()]


def layer_parameters(client: ImageServiceClient, bands=None, mosaic_method=None, order_field=None,
                     order_base_value=None, lock_rasterid=None, where=None, processing_template=None) -> dict:
    """The tool's options as exportImage parameters (band_ids, mosaic_rule, rendering_rule),
    refused with a clear message where the service does not offer them."""
    info = client.info
    out: dict = {}
    band_list = _split(bands, int)
    if band_list:
        count = client.band_count
        bad = [b for b in band_list if not 1 <= b <= count]
        if bad:
            raise LayerError(f"bands {bad}: the service has bands 1..{count} (bands count from 1)")
        out["band_ids"] = [b - 1 for b in band_list]

    locks = _split(lock_rasterid, int) if lock_rasterid not in (None, "", "#") else []
    method = (mosaic_method or "").strip().upper().replace(" ", "_") or None
    if method == "LOCKRASTER":
        method = "LOCK_RASTER"
    if method is None and locks:
        method = "LOCK_RASTER"
    if method is not None and method not in MOSAIC_METHODS:
        raise LayerError(f"mosaic method {mosaic_method!r}: one of {', '.join(MOSAIC_METHODS)}")
    if locks and method != "LOCK_RASTER":
        raise LayerError("lock raster ids need the LOCK_RASTER mosaic method")
    if method == "LOCK_RASTER" and not locks:
        raise LayerError("LOCK_RASTER needs lock raster ids (--lock-rasterid)")
    wants_rule = method is not None or where or order_field or order_base_value is not None
    if wants_rule:
        allowed = [m.strip() for m in str(info.get("allowedMosaicMethods") or "").split(",") if m.strip()]
        if not allowed:
            raise LayerError("the mosaic options need a service made from a mosaic dataset; this one "
                             "allows no mosaic method")
        if method is not None and MOSAIC_METHODS[method][1] not in allowed:
            raise LayerError(f"mosaic method {method}: the service allows {', '.join(allowed)}")
        if method is not None:
            rest = MOSAIC_METHODS[method][0]
        else:
            rest = _SHORT_TO_REST.get(str(info.get("defaultMosaicMethod") or "").lower(), "esriMosaicNorthwest")
        rule: dict = {"mosaicMethod": rest}
        if locks:
            rule["lockRasterIds"] = locks
        if where:
            rule["where"] = where
        if order_field:
            known = {f.get("name", "").lower() for f in info.get("fields") or ()}
            if known and order_field.lower() not in known:
                raise LayerError(f"order field {order_field!r} is not a field of the service")
            rule["sortField"] = order_field
        if order_base_value is not None and order_base_value != "":
            rule["sortValue"] = order_base_value
        out["mosaic_rule"] = rule

    if processing_template and processing_template.strip().lower() != "none":
        names = [f.get("name") for f in info.get("rasterFunctionInfos") or ()]
        match = next((n for n in names if n and n.lower() == processing_template.strip().lower()), None)
        if match is None:
            raise LayerError(f"processing template {processing_template!r}: the service offers "
                             f"{', '.join(n for n in names if n) or 'none'}")
        out["rendering_rule"] = {"rasterFunction": match}
    return out


def layer_extent(client: ImageServiceClient, extent=None, extent_of=None) -> tuple[float, float, float, float]:
    """The layer's extent in the service's CRS: given, the extent of a raster or vector file, or the
    service's own."""
    if extent is not None and extent_of is not None:
        raise LayerError("give an extent or a file to take it from, not both")
    if extent is not None:
        values = [float(v) for v in (extent.replace(";", ",").replace(" ", ",").split(",")
                                     if isinstance(extent, str) else extent) if str(v).strip() != ""]
        if len(values) != 4:
            raise LayerError(f"extent {extent!r}: expected XMIN,YMIN,XMAX,YMAX")
        return tuple(values)
    if extent_of is not None:
        bounds, crs = _file_extent(Path(extent_of))
        if crs is not None and CRS.from_user_input(crs) != client.crs:
            bounds = transform_bounds(CRS.from_user_input(crs), client.crs, *bounds, densify_pts=21)
        return tuple(float(v) for v in bounds)
    return client.extent


def _file_extent(path: Path):
    if not path.exists():
        raise LayerError(f"{path}: no such file")
    try:
        with rasterio.open(path) as ds:
            return tuple(ds.bounds), ds.crs
    except rasterio.errors.RasterioIOError:
        pass
    try:
        import pyogrio
    except ImportError:  # pragma: no cover - pyogrio is a dependency
        raise LayerError(f"{path}: not a raster, and pyogrio (for vector files) is not installed") from None
    try:
        info = pyogrio.read_info(path)
    except Exception as exc:  # noqa: BLE001 - pyogrio raises its own error family
        raise LayerError(f"{path}: neither a raster nor a vector file GDAL can read ({exc})") from None
    bounds = info.get("total_bounds")
    if bounds is None or not np.all(np.isfinite(bounds)):
        raise LayerError(f"{path}: the vector file has no extent (no features?)")
    return tuple(bounds), info.get("crs")


def make_image_server_layer(in_image_service: str, out_layer, extent=None, bands=None, mosaic_method=None,
                            order_field=None, order_base_value=None, lock_rasterid=None, cell_size=None,
                            where_clause=None, processing_template=None, *, extent_of=None, token=None,
                            gis=None, progress: bool = True, workers: int = 4) -> Path:
    """Make Image Server Layer (the tool's parameters, in its order): write `out_layer` as a GDAL
    description (`.xml`/`.vrt`, streaming) or a cloud-optimised GeoTIFF (`.tif`/`.tiff`). Bands
    count from 1; `extent` (or the extent of the file `extent_of`) and `cell_size` are in the
    service's units. Returns the path written."""
    out = Path(out_layer)
    suffix = out.suffix.lower()
    if suffix not in (".xml", ".vrt", ".tif", ".tiff"):
        raise LayerError(f"{out}: the output must end in .xml or .vrt (a layer) or .tif (a GeoTIFF)")
    client = ImageServiceClient(in_image_service, token=token, gis=gis, workers=workers)
    params = layer_parameters(client, bands, mosaic_method, order_field, order_base_value, lock_rasterid,
                              where_clause, processing_template)
    box = layer_extent(client, extent, extent_of)
    cell = float(cell_size) if cell_size not in (None, "", "#") else None
    grid = plan_grid(client.crs, client.pixel_size, box, client.crs, client.crs, cell_size=cell)
    probe, nodata = client.read_block(grid, Window(0, 0, min(2, grid.width), min(2, grid.height)), **params)
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix in (".xml", ".vrt"):
        out.write_text(wms_description(client, grid, params, probe.shape[0], probe.dtype, nodata))
    else:
        write_cog(client, grid, params, out, progress=progress)
    return out


def wms_description(client: ImageServiceClient, grid: ReadGrid, params: dict, bands: int, dtype, nodata) -> str:
    """The GDAL_WMS document (AGS mini-driver) of a layer."""
    epsg = grid.crs.to_epsg()
    if not epsg:
        raise LayerError("GDAL's AGS mini-driver names the CRS by its EPSG code, and the service's CRS has "
                         "none: write a .tif instead")
    query = {}
    if params.get("band_ids") is not None:
        query["bandIds"] = ",".join(str(b) for b in params["band_ids"])
    if params.get("mosaic_rule") is not None:
        query["mosaicRule"] = compact(params["mosaic_rule"])
    if params.get("rendering_rule") is not None:
        query["renderingRule"] = compact(params["rendering_rule"])
    query["adjustAspectRatio"] = "false"
    token = client.credentials.token()
    if token:
        query["token"] = token
    root = ET.Element("GDAL_WMS")
    service = ET.SubElement(root, "Service", name="AGS")
    ET.SubElement(service, "ServerUrl").text = f"{client.url}/exportImage?{urlencode(query)}&"
    ET.SubElement(service, "BBoxOrder").text = "xyXY"
    ET.SubElement(service, "SRS").text = f"EPSG:{epsg}"
    ET.SubElement(service, "ImageFormat").text = "tiff"
    ET.SubElement(service, "Transparent").text = "FALSE"
    window = ET.SubElement(root, "DataWindow")
    xmin, ymin, xmax, ymax = grid.bounds
    for tag, value in (("UpperLeftX", xmin), ("UpperLeftY", ymax), ("LowerRightX", xmax), ("LowerRightY", ymin)):
        ET.SubElement(window, tag).text = repr(float(value))
    ET.SubElement(window, "SizeX").text = str(grid.width)
    ET.SubElement(window, "SizeY").text = str(grid.height)
    ET.SubElement(root, "Projection").text = f"EPSG:{epsg}"
    ET.SubElement(root, "BandsCount").text = str(bands)
    ET.SubElement(root, "DataType").text = GDAL_TYPES[np.dtype(dtype).name]
    if nodata is not None:
        ET.SubElement(root, "DataValues", NoData=repr(float(nodata)) if np.dtype(dtype).kind == "f"
                      else str(int(nodata)))
    mw, mh = client.max_image_size
    ET.SubElement(root, "BlockSizeX").text = str(min(XML_BLOCK, mw))
    ET.SubElement(root, "BlockSizeY").text = str(min(XML_BLOCK, mh))
    ET.SubElement(root, "MaxConnections").text = str(client.workers)
    headers = client.credentials.headers
    if headers.get("Referer"):
        ET.SubElement(root, "Referer").text = headers["Referer"]
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


def write_cog(client: ImageServiceClient, grid: ReadGrid, params: dict, out: Path, *, progress: bool = True,
              resampling: str = "NEAREST") -> None:
    """Blocks of the layer into a tiled temporary GeoTIFF (progress bar per block), then GDAL's COG
    driver (overviews, tiling) into `out`, atomically."""
    from tqdm import tqdm

    mw, mh = client.max_image_size
    block = (min(COG_BLOCK, mw), min(COG_BLOCK, mh))
    fd, tmp = tempfile.mkstemp(suffix=".tif", prefix=".layer-", dir=out.parent)
    os.close(fd)
    final_tmp = out.with_name(f".{out.name}.part")
    dst = None
    try:
        with tqdm(total=grid.width * grid.height, unit="px", unit_scale=True, disable=not progress,
                  desc=out.name, leave=True) as bar:
            for window, data, nodata in client.iter_blocks(grid, block_size=block, **params):
                if dst is None:
                    dst = rasterio.open(tmp, "w", driver="GTiff", width=grid.width, height=grid.height,
                                        count=data.shape[0], dtype=data.dtype, crs=grid.crs,
                                        transform=grid.transform, nodata=nodata, tiled=True, blockxsize=512,
                                        blockysize=512, compress="deflate", bigtiff="IF_SAFER")
                dst.write(data, window=window)
                bar.update(int(window.width * window.height))
        if dst is None:
            raise LayerError("the layer has no cells")
        dst.close()
        rasterio.shutil.copy(tmp, final_tmp, driver="COG", COMPRESS="DEFLATE", BIGTIFF="IF_SAFER",
                             RESAMPLING=resampling, BLOCKSIZE="512")
        os.replace(final_tmp, out)
    finally:
        if dst is not None and not dst.closed:
            dst.close()
        Path(tmp).unlink(missing_ok=True)
        final_tmp.unlink(missing_ok=True)
