"""How a service looks as an OGC layer: the CRSs it is offered in, its extent in each (in x/y order;
the documents swap per protocol), its times, its other dimensions, its styles. Built from
ServiceInfo and config, once per service and worker, and shared by the WMS and WCS documents and
requests, which select a layer's time and dimensions through `select` alone."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, replace

from PIL import Image

from ..engine import (
    DimensionSelection,
    ImageService,
    InvalidParameter,
    Legend,
    MosaicRule,
    Multidimensional,
    TimeWindow,
    crs_from_ogc,
    extent_in,
    parse_rendering_rule,
    reproject_bounds,
    rule_distribution,
)
from ..engine import build_legend as legend
from ..engine import draw_legend as draw
from ..facecache import face_cached
from .common import OGCError, iso, parse_instant
from .crs import epsg_code, inverted

WGS84 = crs_from_ogc("EPSG:4326")


@dataclass(frozen=True)
class BBox:
    crs: str                                       # as advertised ("EPSG:4326")
    bounds: tuple[float, float, float, float]      # minx, miny, maxx, maxy in x/y (east, north) order
    inverted: bool                                 # the CRS's own axis order is north, east

    def axis_ordered(self) -> tuple[float, float, float, float]:
        """The bounds as WMS 1.3.0 writes them: in the CRS's own axis order."""
        x0, y0, x1, y1 = self.bounds
        return (y0, x0, y1, x1) if self.inverted else (x0, y0, x1, y1)


@dataclass(frozen=True)
class Style:
    name: str
    title: str
    template: str | None          # the raster-function template behind it (None: default rendering)
    legend_size: tuple[int, int] = (0, 0)     # of its GetLegendGraphic picture

    def rule(self, service: ImageService):
        """The rendering rule behind the style (None: the default rendering)."""
        if self.template is None:
            return None
        return parse_rendering_rule({"rasterFunction": self.template}, service.templates)

    def legend(self, service: ImageService) -> Legend:
        """The style's legend: the default rendering's, or its template's (colour ramp for a
        colormap, grey ramp with the processed output's range for a stretch)."""
        return legend(service.info, rule=self.rule(service),
                      distributions=lambda rule: rule_distribution(service, rule))


@dataclass(frozen=True)
class LayerDimension:
    """A dimension other than time as WMS and WCS name it (ogc.md §8): StdZ is `elevation`, a
    multi-variable service's variables are `variable`, any other dimension keeps its own name."""

    name: str                       # elevation | variable | the dimension's name
    dimension: str | None           # the engine's dimension (StdZ, ...); None for the variables
    units: str                      # the WMS units attribute
    unit_symbol: str
    values: tuple[str, ...]         # as the documents write them
    keys: tuple                     # the engine's values (numbers; names for the variables), in step
    default: str
    is_time: bool = False

    @property
    def parameter(self) -> str:
        """The WMS (and WCS 1.x vendor) parameter: ELEVATION, or DIM_<NAME>."""
        return "ELEVATION" if self.name == "elevation" else f"DIM_{self.name.upper()}"


@dataclass(frozen=True)
class Selection:
    """What an OGC request selects of a layer: its time window, the mosaic rule carrying the items
    or slices, and the dimensions it took the default of ('elevation=0 m', for WMS warnings)."""

    time: TimeWindow | None
    rule: MosaicRule | None
    defaults: tuple[str, ...] = ()


@dataclass(frozen=True)
class Layer:
    service: ImageService
    name: str
    title: str
    abstract: str
    keywords: tuple[str, ...]
    crs: tuple[str, ...]                            # advertised codes (without CRS:84)
    geographic: tuple[float, float, float, float]   # west, south, east, north
    bboxes: tuple[BBox, ...]
    times: tuple[str, ...]                          # ISO 8601 item times, ascending
    time_values: tuple[int, ...]                    # the same in epoch ms
    styles: tuple[Style, ...]
    dimensions: tuple[LayerDimension, ...] = ()      # besides time

    def dimension(self, name: str) -> LayerDimension | None:
        """A dimension by its OGC name (or its engine name, e.g. StdZ), case-insensitively."""
        low = name.lower()
        return next((d for d in self.dimensions if low in (d.name.lower(), (d.dimension or "").lower())), None)

    @property
    def default_time(self) -> str | None:
        return self.times[-1] if self.times else None

    def style(self, name: str) -> Style | None:
        """`default` (or empty) is the default rendering; other names match exactly."""
        if name in ("", "default"):
            return self.styles[0]
        return next((s for s in self.styles if s.name == name), None)


def _legend_size(service: ImageService, style: Style) -> tuple[int, int]:
    with Image.open(io.BytesIO(draw(style.legend(service)))) as picture:
        return picture.size


def layer_of(service: ImageService) -> Layer:
    """The layer of a service, built once per service object: a service rebuilt on a changed
    catalog (gateway.py) builds its own."""
    return face_cached(service, "ogc:layer", lambda: _layer(service))


def _layer(service: ImageService) -> Layer:
    """The layer of a service, offered in its native CRS plus its `ogc_crs` (the config fills in
    the server's list when the service has none); CRS:84 gets a bounding box too, for WMS 1.3.0."""
    info, cfg = service.info, service.config
    codes = []
    for code in [epsg_code(info.crs), *cfg.ogc_crs]:
        if code and code not in codes:
            codes.append(code)
    geographic = reproject_bounds(info.extent, info.crs, WGS84)
    md = info.multidimensional
    times = md.times() if md is not None else service.catalog.times()
    bboxes = []
    for code in codes + ["CRS:84"]:
        try:
            bounds = extent_in(info.extent, info.crs, crs_from_ogc(code))
        except InvalidParameter:
            continue
        bboxes.append(BBox(code, bounds, inverted(code)))
    styles = [Style("default", "Default rendering", None)]
    styles += [Style(t.name, t.description or f"{t.function} template", t.name) for t in info.templates]
    styles = [replace(s, legend_size=_legend_size(service, s)) for s in styles]
    return Layer(service=service, name=info.name, title=info.title, abstract=info.description,
                 keywords=cfg.keywords, crs=tuple(codes), geographic=geographic,
                 bboxes=tuple(bboxes), times=tuple(iso(t) for t in times), time_values=tuple(times),
                 styles=tuple(styles), dimensions=layer_dimensions(md) if md is not None else ())


def _text(value: float, is_time: bool) -> str:
    if is_time:
        return iso(int(value))
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def layer_dimensions(md: Multidimensional) -> tuple[LayerDimension, ...]:
    """The variables (when there are several) and every dimension but StdTime (which is TIME)."""
    out = []
    if len(md.variables) > 1:
        names = tuple(v.name for v in md.variables)
        out.append(LayerDimension("variable", None, "", "", names, names, names[0]))
    for d in md.dimensions:
        if d.name == "StdTime" or not d.values:
            continue
        keys = tuple(v[0] if isinstance(v, tuple) else v for v in d.values)
        values = tuple(_text(v, d.is_time) for v in keys)
        default = _text(d.default, d.is_time) if d.default is not None else values[0]
        if d.name == "StdZ":
            out.append(LayerDimension("elevation", d.name, "EPSG:5030", d.unit, values, keys, default))
        else:
            out.append(LayerDimension(d.name, d.name, "ISO8601" if d.is_time else d.unit, "" if d.is_time else d.unit,
                                      values, keys, default, d.is_time))
    return tuple(out)


def _point(dim: LayerDimension, text: str, locator: str):
    """One value of a dimension as the engine knows it; InvalidDimensionValue if it has no such value."""
    text = text.strip()
    if dim.dimension is None:                       # the variables
        if text in dim.keys:
            return text
        found = [k for k in dim.keys if k.lower() == text.lower()]
        if found:
            return found[0]
        raise OGCError("InvalidDimensionValue", f"{locator}: there is no variable {text!r} (variables: "
                       f"{', '.join(dim.values)})", locator)
    if dim.is_time:
        value = float(parse_instant(text, locator))
    else:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise OGCError("InvalidDimensionValue", f"{locator}: {text!r} is not a number", locator)
    return value


def _one_of(dim: LayerDimension, value: float, text: str, locator: str) -> float:
    for key in dim.keys:
        if math.isclose(key, value, rel_tol=1e-13, abs_tol=1e-12):
            return key
    raise OGCError("InvalidDimensionValue", f"{locator}: {text.strip()!r} is not one of the values of "
                   f"{dim.name} ({', '.join(dim.values)})", locator)


def _in_range(dim: LayerDimension, low: float | None, high: float | None, locator: str) -> tuple[float, float]:
    lo = min(dim.keys) if low is None else low
    hi = max(dim.keys) if high is None else high
    if lo > hi:
        raise OGCError("InvalidDimensionValue", f"{locator}: the interval's start is above its end", locator)
    if not any(lo - 1e-9 <= k <= hi + 1e-9 for k in dim.keys):
        raise OGCError("InvalidDimensionValue", f"{locator}: no value of {dim.name} lies in "
                       f"{_text(lo, dim.is_time)}/{_text(hi, dim.is_time)} ({', '.join(dim.values)})", locator)
    return lo, hi


def dimension_values(dim: LayerDimension, raw: str, locator: str) -> tuple:
    """A WMS / WCS 1.x dimension value: one value, a comma list, or start/end[/resolution]
    intervals (numbers, ISO 8601 for time dimensions; variable names for the variables)."""
    out = []
    for part in raw.split(","):
        if "/" in part and dim.dimension is not None:
            pieces = part.split("/")
            if len(pieces) not in (2, 3):
                raise OGCError("InvalidDimensionValue", f"{locator}: an interval is start/end[/resolution]",
                               locator)
            out.append(_in_range(dim, _point(dim, pieces[0], locator), _point(dim, pieces[1], locator), locator))
        elif not part.strip():
            raise OGCError("InvalidDimensionValue", f"{locator}: {raw!r} holds an empty value", locator)
        else:
            point = _point(dim, part, locator)
            out.append(point if dim.dimension is None else _one_of(dim, point, part, locator))
    return tuple(out)


def subset_values(dim: LayerDimension, low: str | None, high: str | None, is_slice: bool, locator: str) -> tuple:
    """A WCS 2.0 slice (one value) or trim (low, high; None: open) of a dimension."""
    if is_slice:
        point = _point(dim, low, locator)
        return (point if dim.dimension is None else _one_of(dim, point, low, locator),)
    if dim.dimension is None:
        raise OGCError("InvalidDimensionValue", f"{locator}: the variables are sliced, not trimmed", locator)
    return (_in_range(dim, None if low is None else _point(dim, low, locator),
                      None if high is None else _point(dim, high, locator), locator),)


def select(layer: Layer, time: TimeWindow | None, chosen: dict[str, tuple], time_locator: str = "TIME"
           ) -> Selection:
    """The time window and mosaic rule of a request: `time` as select_time reads it, and for each
    other dimension the values `chosen` (by its OGC name, from dimension_values or subset_values) or
    its default. A multidimensional layer gets one definition for all of them."""
    window, oids = select_time(layer, time, time_locator)
    info = layer.service.info
    if not layer.dimensions and info.multidimensional is None:
        return Selection(window, None if oids is None else replace(info.default_rule, fids=oids))
    definition, defaults = [], []
    if oids is not None:                  # a list of instants: exactly those slice times
        definition.append(DimensionSelection(None, "StdTime", tuple(float(t) for t in time.instants)))
    for dim in layer.dimensions:
        values = chosen.get(dim.name)
        if values is None:
            values = dimension_values(dim, dim.default, dim.name)
            defaults.append(f"{dim.name}={dim.default}" + (f" {dim.units}" if dim.units else ""))
        if dim.dimension is None:
            definition += [DimensionSelection(name, None) for name in values]
        else:
            definition.append(DimensionSelection(None, dim.dimension, values))
    return Selection(window, replace(info.default_rule, multidimensional_definition=tuple(definition)),
                     tuple(defaults))


def select_time(layer: Layer, asked: TimeWindow | None, locator: str
                ) -> tuple[TimeWindow | None, tuple[int, ...] | None]:
    """The time window a request selects on a layer (and, for a list of instants, exactly the
    items they select); None asked means the latest time. OGC faces show one time by default
    (DESIGN.md, Time); a layer without time ignores the request's."""
    if not layer.times:
        return None, None
    if asked is None:
        latest = layer.time_values[-1]
        return TimeWindow(latest, latest), None
    extent = layer.service.info.time_extent
    if extent is None:                    # a catalog with times has their extent; say so if not
        raise OGCError("InvalidDimensionValue", f"{locator}: the layer has no time extent", locator)
    lo, hi = extent
    if not asked.instants:                # an interval; an open end is the extent's
        start = lo if asked.start is None else asked.start
        end = hi if asked.end is None else asked.end
        if end < lo or start > hi:
            raise OGCError("InvalidDimensionValue", f"{locator}: the interval lies outside the time extent "
                           f"{iso(lo)}/{iso(hi)}", locator)
        return TimeWindow(start, end), None
    if any(not lo <= t <= hi for t in asked.instants):
        raise OGCError("InvalidDimensionValue", f"{locator}: a time lies outside the time extent "
                       f"{iso(lo)}/{iso(hi)}", locator)
    if len(asked.instants) == 1:
        t = asked.instants[0]
        return TimeWindow(t, t), None
    oids = {i.oid for t in asked.instants for i in layer.service.catalog.items(time=(t, t))}
    return TimeWindow(min(asked.instants), max(asked.instants)), tuple(sorted(oids))
