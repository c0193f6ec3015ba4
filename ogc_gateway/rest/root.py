"""The ImageServer root resource as ArcGIS clients read it (digest §3, §18.2), from ServiceInfo."""

from __future__ import annotations

import math

import numpy as np

from ..engine import (
    MOSAIC_SHORT,
    RESAMPLING_ARCGIS,
    BandDistribution,
    BandStats,
    ImageService,
    MosaicMethod,
    RenderingRule,
    ServiceInfo,
    is_raw,
    rule_distribution,
    service_signature,
    signature,
    sr_json,
)

CURRENT_VERSION = 11.3
CAPABILITIES = "Image,Metadata,Catalog"
_MOSAIC_OPERATOR_SHORT = {"MT_FIRST": "First", "MT_LAST": "Last", "MT_MIN": "Min", "MT_MAX": "Max",
                          "MT_MEAN": "Mean", "MT_BLEND": "Blend", "MT_SUM": "Sum"}
ALLOWED_METHODS = (MosaicMethod.NORTHWEST, MosaicMethod.CENTER, MosaicMethod.ATTRIBUTE, MosaicMethod.LOCK_RASTER,
                   MosaicMethod.NADIR, MosaicMethod.VIEWPOINT, MosaicMethod.SEAMLINE, MosaicMethod.NONE)


def envelope(bounds, crs) -> dict:
    xmin, ymin, xmax, ymax = bounds
    return {"xmin": xmin, "ymin": ymin, "xmax": xmax, "ymax": ymax, "spatialReference": sr_json(crs)}


def field_json(f) -> dict:
    out = {"name": f.name, "type": f.type, "alias": f.alias, "domain": None}
    if f.length:
        out["length"] = f.length
    return out


def data_type(info: ServiceInfo, bands: int, pixel_type: str) -> str:
    """Elevation for one float band (QGIS flags it), RGB for 3-4 byte bands, else Generic."""
    if bands == 1 and pixel_type in ("F32", "F64"):
        return "esriImageServiceDataTypeElevation"
    if bands in (3, 4) and pixel_type == "U8":
        return "esriImageServiceDataTypeRGB"
    return "esriImageServiceDataTypeGeneric"


def function_infos(info: ServiceInfo) -> list[dict]:
    """The service's raster-function templates (applied after mosaicking: functionType 0)."""
    return [{"name": "None", "description": "Raw pixel values.", "help": "", "functionType": 0}] + [
        {"name": t.name, "description": t.description or f"{t.function} template", "help": "", "functionType": 0}
        for t in info.templates]


def root_of(service: ImageService, rule: RenderingRule | None) -> dict:
    """The root JSON, describing a rendering rule's processed output when one is given: its bands,
    pixel type and statistics (from the rule's low-resolution render, processed.py)."""
    if rule is None or is_raw(rule):
        return root_json(service.info)
    return root_json(service.info, rule, rule_distribution(service, rule))


def root_json(info: ServiceInfo, rule: RenderingRule | None = None,
              processed: tuple[BandDistribution, ...] | None = None) -> dict:
    bands, pixel_type, band_names, nodata = info.band_count, info.pixel_type, list(info.band_names), info.nodata
    stats: tuple[BandStats, ...] | tuple[BandDistribution, ...] = info.stats
    if not is_raw(rule):
        out = signature(rule, service_signature(info))
        bands, pixel_type, band_names, nodata = out.bands, out.pixel_type, list(out.band_names()), out.nodata_value
        stats = processed if processed and len(processed) == bands else ()
    extent = envelope(info.extent, info.crs)
    default = info.default_rule
    body = {
        "currentVersion": CURRENT_VERSION,
        "serviceDescription": info.description,
        "name": info.name,
        "description": info.description,
        "copyrightText": info.copyright_text,
        "extent": extent, "initialExtent": extent, "fullExtent": extent,
        "spatialReference": sr_json(info.crs),
        "hasMultidimensions": info.multidimensional is not None,
        "pixelSizeX": info.cell_size[0], "pixelSizeY": info.cell_size[1],
        "datasetFormat": "AMD",
        "bandCount": bands,
        "bandNames": band_names,
        "pixelType": pixel_type,
        "minPixelSize": 0, "maxPixelSize": 0,
        "serviceDataType": data_type(info, bands, pixel_type),
        "serviceSourceType": "esriImageServiceSourceTypeMosaicDataset",
        "minValues": [s.min for s in stats], "maxValues": [s.max for s in stats],
        "meanValues": [s.mean for s in stats], "stdvValues": [s.stdv for s in stats],
        "objectIdField": "OBJECTID",
        "fields": [field_json(f) for f in info.fields],
        "capabilities": CAPABILITIES,
        "defaultMosaicMethod": MOSAIC_SHORT[default.method],
        "allowedMosaicMethods": ",".join(MOSAIC_SHORT[m] for m in ALLOWED_METHODS),
        "sortField": default.sort_field or "",
        "sortValue": "" if default.sort_value is None else str(default.sort_value),
        "sortAscending": default.ascending,
        "mosaicOperator": _MOSAIC_OPERATOR_SHORT[default.operation],
        "maxDownloadSizeLimit": 0, "maxDownloadImageCount": 0,
        "defaultCompressionQuality": 75,
        "defaultResamplingMethod": RESAMPLING_ARCGIS[info.resampling],
        "maxImageHeight": info.limits.max_image_height,
        "maxImageWidth": info.limits.max_image_width,
        "maxRecordCount": info.limits.max_record_count,
        "maxMosaicImageCount": info.limits.max_mosaic_image_count,
        "allowRasterFunction": True,
        "rasterFunctionInfos": function_infos(info),
        "rasterTypeInfos": [{"name": "Raster Dataset", "description": "Supports GDAL raster datasets",
                             "help": ""}],
        "mensurationCapabilities": "",
        "hasHistograms": True, "hasColormap": False, "hasRasterAttributeTable": False,
        "minScale": 0, "maxScale": 0,
        "exportTilesAllowed": False,
        "supportsStatistics": False, "supportsAdvancedQueries": True,
        "editFieldsInfo": None, "ownershipBasedAccessControlForRasters": None,
        "allowComputeTiePoints": False, "useStandardizedQueries": True,
        "singleFusedMapCache": False,
    }
    if nodata is not None:
        shown = json_nodata(nodata, pixel_type)
        body["noDataValue"] = shown
        body["noDataValues"] = [shown] * bands
    if info.time_field and info.time_extent:
        body["timeInfo"] = {"startTimeField": info.time_field,
                            "endTimeField": info.end_time_field or info.time_field,
                            "timeExtent": list(info.time_extent), "timeReference": None}
    return body


def json_nodata(nodata: float, pixel_type: str) -> float:
    """A nodata value JSON can carry: NaN (which JSON has no number for, and which serialisers
    write as null or as the invalid token NaN) is shown as the lowest value of the float type,
    Esri's own NoData for float rasters; output files keep NaN."""
    if isinstance(nodata, float) and math.isnan(nodata):
        return float(np.finfo(np.float64 if pixel_type == "F64" else np.float32).min)
    return nodata
