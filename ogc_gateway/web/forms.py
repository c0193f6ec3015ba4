"""Working defaults for the operation pages: a page opened with no parameters is filled so that its
first submission shows a result (the service's extent, its centre, 400 x 400 PNG, every field)."""

from __future__ import annotations

import json

from ..engine import sr_json

# Resources whose parameters are all optional: their page shows the answer at once.
_AT_ONCE = {"histograms", "statistics", "legend", "rasterFunctionInfos", "multidimensionalInfo", "slices",
            "keyProperties"}


def shows_at_once(operation: str | None, form: list[str]) -> bool:
    return not form or operation in _AT_ONCE


def _sr(info) -> str:
    sr = sr_json(info.crs)
    return str(sr["wkid"]) if "wkid" in sr else json.dumps(sr)


def _centre(info) -> str:
    xmin, ymin, xmax, ymax = info.extent
    return json.dumps({"x": (xmin + xmax) / 2, "y": (ymin + ymax) / 2, "spatialReference": sr_json(info.crs)})


def _envelope(info) -> str:
    xmin, ymin, xmax, ymax = info.extent
    return json.dumps({"xmin": xmin, "ymin": ymin, "xmax": xmax, "ymax": ymax, "spatialReference": sr_json(info.crs)})


def export_defaults(info) -> dict[str, str]:
    return {"bbox": ",".join(repr(v) for v in info.extent), "bboxSR": _sr(info), "imageSR": _sr(info),
            "size": "400,400", "format": "png"}


def operation_defaults(operation: str | None, info) -> dict[str, str]:
    point = {"geometry": _centre(info), "geometryType": "esriGeometryPoint"}
    envelope = {"geometry": _envelope(info), "geometryType": "esriGeometryEnvelope"}
    return {
        "query": {"where": "1=1", "outFields": "*", "returnGeometry": "false"},
        "identify": point | {"returnCatalogItems": "true"},
        "getSamples": point | {"returnFirstValueOnly": "false"},
        "computeHistograms": envelope,
        "computeStatisticsHistograms": envelope,
        "multidimensionalInfo": {"returnDimensionValues": "true"} if info.multidimensional else {},
    }.get(operation or "", {})
