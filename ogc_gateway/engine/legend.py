"""The legend of a rendering (render.picture of the raw values or of a rule's output): an RGB
composite names the band behind each channel; one stretched band shows its high and low ends on a
grey ramp (a colour ramp for a Colormap or ShadedRelief rule); an explicit colormap lists its
values. Swatches are 20x20 PNGs, as ArcGIS draws them; WMS GetLegendGraphic draws from the same
entries.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .export import service_signature
from .functions import BandDistribution, is_raw, signature
from .functions.colormap import legend_colors
from .functions.ramps import Ramp, named_ramp
from .requests import RenderingRule
from .service import ServiceInfo

SWATCH = 20
_MAX_VALUES = 64          # entries of an explicit colormap's legend
Distributions = Callable[[RenderingRule], "tuple[BandDistribution, ...] | None"]


@dataclass(frozen=True)
class LegendEntry:
    label: str
    color: tuple[int, int, int]

    def png(self) -> bytes:
        out = io.BytesIO()
        Image.new("RGB", (SWATCH, SWATCH), self.color).save(out, format="PNG")
        return out.getvalue()


@dataclass(frozen=True)
class Legend:
    kind: str                      # "RGB Composite" | "Stretched" | "Unique Values"
    entries: tuple[LegendEntry, ...]
    ramp: tuple[tuple[int, int, int], ...] = ((0, 0, 0), (255, 255, 255))   # Stretched: low to high


def _number(value: float) -> str:
    return f"{value:.6g}"


def legend(info: ServiceInfo, band_ids: tuple[int, ...] | None = None, rule: RenderingRule | None = None,
           distributions: Distributions | None = None) -> Legend:
    """What the default rendering of (bands of) the service, or of a rendering rule's output, shows.
    `distributions(rule)` gives a rule's processed statistics (for the High / Low labels)."""
    names, ranges = info.band_names, [(s.min, s.max) for s in info.stats]
    if rule is not None and not is_raw(rule):
        colored = _colored(info, rule, distributions)
        if colored is not None:
            return colored
        sig = signature(rule, service_signature(info))
        names = sig.band_names()
        found = distributions(rule) if distributions else None
        ranges = [(d.min, d.max) for d in found] if found and len(found) == sig.bands else []
    if band_ids:
        idx = [b for b in band_ids if 0 <= b < len(names)]
    elif info.default_band_ids and all(b < len(names) for b in info.default_band_ids):
        idx = list(info.default_band_ids)
    else:
        idx = list(range(len(names)))
    if len(idx) >= 3:
        channels = (("Red", (255, 0, 0)), ("Green", (0, 255, 0)), ("Blue", (0, 0, 255)))
        return Legend("RGB Composite", tuple(LegendEntry(f"{channel}: {names[b]}", color)
                                             for (channel, color), b in zip(channels, idx)))
    band = idx[0] if idx else 0
    return _stretched(ranges[band] if band < len(ranges) else None, Ramp.even(((0, 0, 0), (255, 255, 255))))


def _stretched(value_range: tuple[float, float] | None, ramp: Ramp) -> Legend:
    high, low = "High", "Low"
    if value_range is not None:
        high, low = f"High : {_number(value_range[1])}", f"Low : {_number(value_range[0])}"
    colors = ramp.sample(16)
    return Legend("Stretched", (LegendEntry(high, colors[-1]), LegendEntry(low, colors[0])), colors)


def _colored(info: ServiceInfo, rule: RenderingRule, distributions: Distributions | None) -> Legend | None:
    """The legend of a rule that colours values itself (Colormap, ShadedRelief); None otherwise."""
    def value_range(source: Any) -> tuple[float, float] | None:
        if isinstance(source, RenderingRule):
            sig = signature(source, service_signature(info))
            if sig.pixel_type == "U8":
                return 0.0, 255.0
            found = distributions(source) if distributions else None
            return (found[0].min, found[0].max) if found else None
        return (info.stats[0].min, info.stats[0].max) if info.stats else None

    if rule.function == "ShadedRelief":
        cm = rule.arguments.get("Colormap")
        if cm is not None:
            return _stretched((cm.values[0], cm.values[-1]), Ramp.even(cm.colors))
        ramp = rule.arguments.get("ColorRamp") or named_ramp("Elevation #1")
        return _stretched(value_range(rule.arguments["Raster"]), ramp)
    found = legend_colors(rule)
    if found is None:
        return None
    kind, colors = found
    if kind == "unique":
        return Legend("Unique Values", tuple(LegendEntry(_number(v), c) for v, c in colors[:_MAX_VALUES]))
    if "ColorRamp" in rule.arguments:
        return _stretched(value_range(rule.arguments["Raster"]), colors)
    return _stretched((0.0, 255.0), colors)


def draw(drawn: Legend, width: int | None = None, height: int | None = None, fmt: str = "PNG") -> bytes:
    """A legend picture (WMS GetLegendGraphic): a ramp (grey, or the rule's colours) between the
    High and Low labels for a stretched band, one swatch and label per channel of an RGB composite
    or per value of a colormap. `width`
    and `height` size the ramp or the swatches (default 20 x 100 and 20 x 20)."""
    font = ImageFont.load_default()
    label_width = max(int(font.getlength(e.label)) for e in drawn.entries) + 8
    if drawn.kind == "Stretched":
        w, h = width or SWATCH, height or 100
        image = Image.new("RGB", (w + label_width, h), (255, 255, 255))
        image.paste(_gradient(drawn.ramp, w, h), (0, 0))
        pen = ImageDraw.Draw(image)
        high, low = drawn.entries
        pen.text((w + 4, 0), high.label, fill=(0, 0, 0), font=font)
        pen.text((w + 4, h - 12), low.label, fill=(0, 0, 0), font=font)
    else:
        w, h = width or SWATCH, height or SWATCH
        rows = len(drawn.entries)
        image = Image.new("RGB", (w + label_width, rows * (h + 2)), (255, 255, 255))
        pen = ImageDraw.Draw(image)
        for k, entry in enumerate(drawn.entries):
            top = k * (h + 2)
            pen.rectangle((0, top, w - 1, top + h - 1), fill=entry.color)
            pen.text((w + 4, top + max(0, (h - 11) // 2)), entry.label, fill=(0, 0, 0), font=font)
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def _gradient(colors: tuple[tuple[int, int, int], ...], width: int, height: int) -> Image.Image:
    """A vertical ramp through `colors`, the last at the top."""
    ramp = Ramp.even(colors)
    rows = ramp.at(1.0 - (np.arange(height) + 0.5) / height)           # (3, height)
    pixels = np.repeat(rows.T[:, np.newaxis, :], width, axis=1)
    return Image.fromarray(np.ascontiguousarray(pixels), "RGB")
