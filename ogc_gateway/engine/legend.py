"""The legend of the default rendering (render.picture): an RGB composite names the band behind
each channel; one stretched band shows its high and low ends. Swatches are 20x20 PNGs, as ArcGIS
draws them; WMS GetLegendGraphic draws from the same entries.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

from .functions import describe
from .requests import RenderingRule
from .service import ServiceInfo

SWATCH = 20


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
    kind: str                      # "RGB Composite" | "Stretched"
    entries: tuple[LegendEntry, ...]


def _number(value: float) -> str:
    return f"{value:.6g}"


def legend(info: ServiceInfo, band_ids: tuple[int, ...] | None = None,
           rule: RenderingRule | None = None) -> Legend:
    """What the default rendering of (bands of) the service, or of a rendering rule's output, shows."""
    names, stats = info.band_names, info.stats
    if rule is not None and not (rule.function == "None" and not rule.arguments):
        bands, _ = describe(rule, info.band_count, info.pixel_type)
        if bands != info.band_count:
            names = tuple(f"Band_{i + 1}" for i in range(bands))
        stats = ()                          # a processed output has no precomputed statistics
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
    high, low = "High", "Low"
    if band < len(stats):
        high, low = f"High : {_number(stats[band].max)}", f"Low : {_number(stats[band].min)}"
    return Legend("Stretched", (LegendEntry(high, (255, 255, 255)), LegendEntry(low, (0, 0, 0))))


def draw(drawn: Legend, width: int | None = None, height: int | None = None, fmt: str = "PNG") -> bytes:
    """A legend picture (WMS GetLegendGraphic): a white-to-black ramp between the High and Low
    labels for a stretched band, one swatch and label per channel for an RGB composite. `width`
    and `height` size the ramp or the swatches (default 20 x 100 and 20 x 20)."""
    font = ImageFont.load_default()
    label_width = max(int(font.getlength(e.label)) for e in drawn.entries) + 8
    if drawn.kind == "Stretched":
        w, h = width or SWATCH, height or 100
        image = Image.new("RGB", (w + label_width, h), (255, 255, 255))
        ramp = Image.linear_gradient("L").resize((w, h)).point(lambda v: 255 - v)
        image.paste(ramp.convert("RGB"), (0, 0))
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
