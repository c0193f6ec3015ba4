"""ImageServer resources about the source files and metadata (digest of the reference documents,
issue 14 item 11): `download` and `file` (the files of chosen items, only where the service's
`allow_download` is true), `info/metadata` and `{rasterId}/info/metadata`, and the root resource as
`f=kmz` (a KML network link Google Earth refreshes with exportImage as the view moves).

Files are named by item, never by path: a `file` request names a raster id and the id `download`
gave it, and only that item's own file is sent."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from urllib.parse import urlencode

from lxml import etree
from rasterio.crs import CRS

from ..engine import GatewayError, ImageService, InvalidParameter, Item, NotFound, reproject_bounds, where_of
from .params import Params

MAX_DOWNLOAD_ITEMS = 1000


class DownloadNotAllowed(GatewayError):
    http_status = 403

    def __init__(self, name: str):
        super().__init__("Download is not allowed on this service.",
                         details=[f"services.{name}.allow_download is false"])


def _check_allowed(service: ImageService) -> None:
    if not service.config.allow_download:
        raise DownloadNotAllowed(service.info.name)


def _file_id(item: Item) -> str:
    return f"{item.oid}/{os.path.basename(item.path)}"


def download(p: Params, service: ImageService) -> dict:
    """`download`: the files of the items chosen by rasterIds and/or a where clause."""
    _check_allowed(service)
    ids = p.get("rasterIds") or p.get("rasterId")
    oids = None
    if ids:
        try:
            oids = tuple(int(v) for v in ids.replace(";", ",").split(",") if v.strip())
        except ValueError:
            raise InvalidParameter("rasterIds", "a list of raster ids such as 1,2,3")
    where = where_of(service, p.get("where"), "where")
    if oids is None and where is None:
        raise InvalidParameter("rasterIds", "give rasterIds or a where clause")
    items = service.catalog.items(oids=oids, where=where, limit=MAX_DOWNLOAD_ITEMS)
    files = []
    for item in items:
        files.append({"id": _file_id(item), "size": os.path.getsize(item.path), "rasterIds": [item.oid]})
    return {"rasterFiles": files}


def file_of(p: Params, service: ImageService) -> tuple[Path, str]:
    """`file?id=...&rasterId=...`: the path of the one file an id from `download` names."""
    _check_allowed(service)
    file_id, raster_id = p.get("id"), p.get("rasterId")
    if not file_id or not raster_id:
        raise InvalidParameter("id", "give the id and rasterId that download returned")
    try:
        item = service.catalog.item(int(raster_id))
    except ValueError:
        raise InvalidParameter("rasterId", f"{raster_id!r} is not a raster id")
    if item is None or _file_id(item) != file_id.strip():
        raise NotFound("File not found.", details=[f"id {file_id!r} of raster {raster_id}"])
    return Path(item.path), os.path.basename(item.path)


def _element(parent, tag: str, text=None, **attrs):
    node = etree.SubElement(parent, tag, {k: str(v) for k, v in attrs.items()})
    if text is not None:
        node.text = str(text)
    return node


def metadata_xml(service: ImageService, item: Item | None = None) -> bytes:
    """What is known about the service (or one item and its file), as an ArcGIS-style metadata
    document: title, abstract, extent, spatial reference, bands, and for an item its file and tags."""
    info = service.info
    root = etree.Element("metadata", {"{http://www.w3.org/XML/1998/namespace}lang": "en"})
    ident = _element(root, "dataIdInfo")
    cit = _element(ident, "idCitation")
    _element(cit, "resTitle", item.attributes.get("Name") if item else info.title)
    _element(ident, "idAbs", info.description)
    _element(ident, "idCredit", info.copyright_text)
    if item is not None:
        rec = service.catalog.record(item.oid)
        crs = CRS.from_wkt(rec["crs_wkt"])
        a, b, c, d, e, f = rec["transform"]
        w, h = rec["width"], rec["height"]
        bounds = (c, f + e * h, c + a * w, f)
        bands, dtype, nodata, tags = rec["band_count"], rec["dtype"], rec["nodata"], rec["tags"] or {}
        dist = _element(root, "distInfo")
        fmt = _element(dist, "distFormat")
        _element(fmt, "formatName", "GeoTIFF" if item.path.lower().endswith((".tif", ".tiff")) else
                 os.path.splitext(item.path)[1].lstrip(".").upper())
        _element(dist, "fileName", os.path.basename(item.path))
        _element(dist, "transSize", os.path.getsize(item.path), units="bytes")
    else:
        crs, bounds, bands, dtype, nodata, tags = info.crs, info.extent, info.band_count, info.dtype, info.nodata, {}
    try:
        west, south, east, north = reproject_bounds(bounds, crs, CRS.from_epsg(4326))
        ext = _element(_element(ident, "dataExt"), "geoEle")
        box = _element(ext, "GeoBndBox")
        for tag, value in (("westBL", west), ("eastBL", east), ("southBL", south), ("northBL", north)):
            _element(box, tag, repr(float(value)))
    except InvalidParameter:
        pass
    ref = _element(_element(root, "refSysInfo"), "RefSystem")
    epsg = crs.to_epsg()
    _element(ref, "refSysID", f"EPSG:{epsg}" if epsg else "")
    _element(ref, "wkt", crs.to_wkt())
    content = _element(root, "contInfo")
    _element(content, "bandCount", bands)
    _element(content, "pixelType", dtype)
    if nodata is not None:
        _element(content, "noData", nodata)
    if tags:
        tag_list = _element(root, "tags")
        for key, value in tags.items():
            _element(tag_list, "tag", value, name=key)
    if item is not None:
        attrs = _element(root, "attributes")
        for key, value in item.attributes.items():
            if value is not None:
                _element(attrs, "attribute", value, name=key)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def kmz_network_link(service: ImageService, service_url: str) -> bytes:
    """The root resource as KMZ: a network link Google Earth opens and refreshes, as the view
    stops, with exportImage (f=kmz) over the view's box in lon/lat."""
    info = service.info
    query = urlencode({"f": "kmz", "bboxSR": 4326, "imageSR": 4326, "format": "png32", "size": "1024,1024"})
    kml = etree.Element("kml", nsmap={None: "http://www.opengis.net/kml/2.2"})
    doc = _element(kml, "Document")
    _element(doc, "name", info.title)
    link_node = _element(doc, "NetworkLink")
    _element(link_node, "name", info.title)
    _element(link_node, "open", 1)
    try:
        west, south, east, north = reproject_bounds(info.extent, info.crs, CRS.from_epsg(4326))
        region = _element(_element(link_node, "Region"), "LatLonAltBox")
        for tag, value in (("north", north), ("south", south), ("east", east), ("west", west)):
            _element(region, tag, repr(float(value)))
    except InvalidParameter:
        pass
    link = _element(link_node, "Link")
    _element(link, "href", f"{service_url}/exportImage?{query}")
    _element(link, "viewRefreshMode", "onStop")
    _element(link, "viewRefreshTime", 1)
    _element(link, "viewFormat", "bbox=[bboxWest],[bboxSouth],[bboxEast],[bboxNorth]")
    text = etree.tostring(kml, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("doc.kml", text)
    return buf.getvalue()
