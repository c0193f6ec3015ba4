"""GetFeatureInfo answers: the pixel values of each queried layer at the clicked point, one feature
per catalog item with data there (the visible one first), in the formats QGIS, OWSLib and the
CITE suites ask for."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace

from ..engine import MosaicRule, TimeWindow, item_values_at
from ..templates import render
from .common import iso
from .layers import Layer

FORMATS = ("text/plain", "text/html", "text/xml", "application/json", "application/vnd.ogc.gml")
_MIME = {"text/plain": "text/plain; charset=utf-8", "text/html": "text/html; charset=utf-8",
         "text/xml": "text/xml; charset=utf-8", "application/json": "application/json",
         "application/vnd.ogc.gml": "application/vnd.ogc.gml; charset=utf-8"}
_NOT_NAME = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class Feature:
    oid: int
    name: str
    time: str | None
    values: tuple[tuple[str, float | None], ...]     # (band name, value or None for nodata)


@dataclass(frozen=True)
class LayerResult:
    layer: str
    features: tuple[Feature, ...]


def query(layer: Layer, crs, x: float, y: float, window: TimeWindow | None,
          oids: tuple[int, ...] | None, count: int, rule: MosaicRule | None = None) -> LayerResult:
    """Up to `count` items with data at (x, y) (in `crs`), in the layer's mosaic order (or that of
    `rule`, which may select slices of a multidimensional layer)."""
    info = layer.service.info
    if rule is None:
        rule = info.default_rule if oids is None else replace(info.default_rule, fids=oids)
    features = []
    for found in item_values_at(layer.service, crs, x, y, rule=rule, time=window, count=count):
        item = found.item
        features.append(Feature(item.oid, item.name, iso(item.time_start) if item.time_start is not None else None,
                                tuple(zip(info.band_names, found.values))))
    return LayerResult(layer.name, tuple(features))


def _number(value: float | None) -> str:
    if value is None:
        return "NoData"
    return str(int(value)) if float(value).is_integer() else f"{value:.9g}"


def element_name(text: str) -> str:
    """An XML element name for a band or layer name (GML feature properties)."""
    name = _NOT_NAME.sub("_", text)
    return name if re.match(r"[A-Za-z_]", name) else f"_{name}"


def render_as(info_format: str, results: list[LayerResult], point: tuple[float, float], crs_code: str
              ) -> tuple[str, str]:
    """(body, Content-Type) of the answer in `info_format` (one of FORMATS)."""
    if info_format == "application/json":
        return json.dumps(_geojson(results, point, crs_code)), _MIME[info_format]
    if info_format == "text/plain":
        return _plain(results), _MIME[info_format]
    if info_format == "text/html":
        return render("wms_featureinfo.html", results=results, number=_number), _MIME[info_format]
    return render("wms_featureinfo_gml.xml", results=results, number=_number, name=element_name,
                  point=point, crs=crs_code), _MIME[info_format]


def _plain(results: list[LayerResult]) -> str:
    lines = []
    for result in results:
        lines.append(f"Layer '{result.layer}'")
        if not result.features:
            lines.append("  no data here")
        for n, f in enumerate(result.features, start=1):
            lines.append(f"  Feature {n}: OBJECTID = {f.oid}, Name = '{f.name}'"
                         + (f", time = {f.time}" if f.time else ""))
            lines += [f"    {band} = {_number(v)}" for band, v in f.values]
    return "\n".join(lines) + "\n"


def _geojson(results: list[LayerResult], point: tuple[float, float], crs_code: str) -> dict:
    features = []
    for result in results:
        for f in result.features:
            props = {"layer": result.layer, "OBJECTID": f.oid, "Name": f.name}
            if f.time:
                props["time"] = f.time
            props |= {band: v for band, v in f.values}
            features.append({"type": "Feature", "id": f"{result.layer}.{f.oid}",
                             "geometry": {"type": "Point", "coordinates": list(point)}, "properties": props})
    return {"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": crs_code}},
            "features": features}
