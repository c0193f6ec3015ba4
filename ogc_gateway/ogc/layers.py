"""How a service looks as an OGC layer: the CRSs it is offered in, its extent in each (in x/y order;
the documents swap per protocol), its times, its styles. Built from ServiceInfo and config, once
per service and worker, and shared by the WMS capabilities and requests."""

from __future__ import annotations

import io
from dataclasses import dataclass, replace

from PIL import Image

from ..engine.errors import InvalidParameter
from ..engine.functions import parse_rendering_rule
from ..engine.grid import axis_inverted, crs_from_ogc, extent_in, reproject_bounds
from ..engine.legend import draw, legend
from ..engine.service import ImageService
from ..engine.requests import TimeWindow
from .common import OGCError, TimeRequest, iso

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

    @property
    def default_time(self) -> str | None:
        return self.times[-1] if self.times else None

    def style(self, name: str) -> Style | None:
        """`default` (or empty) is the default rendering; other names match exactly."""
        if name in ("", "default"):
            return self.styles[0]
        return next((s for s in self.styles if s.name == name), None)


def _legend_size(service: ImageService, style: Style) -> tuple[int, int]:
    with Image.open(io.BytesIO(draw(legend(service.info, rule=style.rule(service))))) as picture:
        return picture.size


def _code_of(crs) -> str | None:
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else None


def layer_of(service: ImageService) -> Layer:
    """The layer of a service, built once per service object: a service rebuilt on a changed
    catalog (gateway.py) builds its own."""
    return service.cached("ogc:layer", lambda: _layer(service))


def _layer(service: ImageService) -> Layer:
    """The layer of a service, offered in its native CRS plus its `ogc_crs` (the config fills in
    the server's list when the service has none); CRS:84 gets a bounding box too, for WMS 1.3.0."""
    info, cfg = service.info, service.config
    codes = []
    for code in [_code_of(info.crs), *cfg.ogc_crs]:
        if code and code not in codes:
            codes.append(code)
    geographic = reproject_bounds(info.extent, info.crs, WGS84)
    times = service.catalog.times()
    bboxes = []
    for code in codes + ["CRS:84"]:
        try:
            bounds = extent_in(info.extent, info.crs, crs_from_ogc(code))
        except InvalidParameter:
            continue
        bboxes.append(BBox(code, bounds, axis_inverted(code)))
    styles = [Style("default", "Default rendering", None)]
    styles += [Style(t.name, t.description or f"{t.function} template", t.name) for t in info.templates]
    styles = [replace(s, legend_size=_legend_size(service, s)) for s in styles]
    return Layer(service=service, name=info.name, title=info.title, abstract=info.description,
                 keywords=cfg.keywords, crs=tuple(codes), geographic=geographic,
                 bboxes=tuple(bboxes), times=tuple(iso(t) for t in times), time_values=tuple(times),
                 styles=tuple(styles))


def select_time(layer: Layer, asked: TimeRequest | None, locator: str
                ) -> tuple[TimeWindow | None, tuple[int, ...] | None]:
    """The time window a request selects on a layer (and, for a list of instants, exactly the
    items they select); None asked means the latest time. OGC faces show one time by default
    (DESIGN.md, Time); a layer without time ignores the request's."""
    if not layer.times:
        return None, None
    if asked is None:
        latest = layer.time_values[-1]
        return TimeWindow(latest, latest), None
    lo, hi = layer.service.info.time_extent
    if asked.interval is not None:
        start, end = asked.interval
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
