"""Colour ramps and colormaps: the named ramps clients ask for (`ColorRamp: "Elevation #1"`), Esri
colour-ramp JSON (algorithmic and multipart), explicit `[[value, r, g, b], ...]` colormaps and the
named colormaps of the Colormap function (`ColormapName`).

The named ramps are this server's own renderings of the usual cartographic ramps under the names
ArcGIS clients send; colours between stops are interpolated linearly in RGB (for every
`algorithm`, CIELab and HSV included).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .schema import ArgError, Kind, short

RGB = tuple[int, int, int]

# name -> colours evenly spaced from the low end (0) to the high end (1)
NAMED_RAMPS: dict[str, tuple[RGB, ...]] = {
    "Black to White": ((0, 0, 0), (255, 255, 255)),
    "White to Black": ((255, 255, 255), (0, 0, 0)),
    "Elevation #1": ((56, 168, 0), (139, 209, 0), (255, 255, 0), (255, 170, 0), (168, 112, 0),
                     (130, 80, 40), (255, 255, 255)),
    "Elevation #2": ((18, 110, 58), (102, 176, 77), (232, 214, 125), (161, 67, 0), (158, 0, 0),
                     (110, 110, 110), (255, 255, 255)),
    "Slope": ((56, 168, 0), (255, 255, 0), (255, 128, 0), (255, 0, 0)),
    "Aspect": ((255, 0, 0), (255, 165, 0), (255, 255, 0), (0, 255, 0), (0, 255, 255), (0, 0, 255),
               (255, 0, 255), (255, 0, 0)),
    "NDVI": ((160, 82, 45), (210, 180, 140), (255, 255, 190), (120, 200, 90), (0, 100, 0)),
    "Red to Green": ((215, 25, 28), (253, 174, 97), (255, 255, 191), (166, 217, 106), (26, 150, 65)),
    "Green to Red": ((26, 150, 65), (166, 217, 106), (255, 255, 191), (253, 174, 97), (215, 25, 28)),
    "Temperature": ((49, 54, 149), (116, 173, 209), (255, 255, 191), (244, 109, 67), (165, 0, 38)),
    "Precipitation": ((255, 255, 204), (161, 218, 180), (65, 182, 196), (44, 127, 184), (37, 52, 148)),
    "Spectrum-Full Bright": ((0, 0, 255), (0, 255, 255), (0, 255, 0), (255, 255, 0), (255, 0, 0)),
    "Yellow to Red": ((255, 255, 178), (254, 204, 92), (253, 141, 60), (240, 59, 32), (189, 0, 38)),
    "Blue Bright": ((222, 235, 247), (158, 202, 225), (66, 146, 198), (8, 81, 156)),
}
_RAMP_KEYS = {re.sub(r"[\s_-]", "", n).lower(): n for n in NAMED_RAMPS}
_RAMP_KEYS |= {"grayscale": "Black to White", "gray": "Black to White", "grey": "Black to White",
               "surface": "Elevation #1", "elevation": "Elevation #1"}


@dataclass(frozen=True)
class Ramp:
    """Colour stops at positions 0..1 (ascending)."""

    positions: tuple[float, ...]
    colors: tuple[RGB, ...]

    @classmethod
    def even(cls, colors: Iterable[Iterable[float]]) -> Ramp:
        rgb = tuple(_rgb(c) for c in colors)
        return cls(tuple(np.linspace(0.0, 1.0, len(rgb)).tolist()), rgb)

    @property
    def key(self) -> str:
        return repr((self.positions, self.colors))

    def at(self, position: np.ndarray) -> np.ndarray:
        """(3, ...) uint8 colours at positions (clamped to 0..1)."""
        p = np.clip(np.nan_to_num(position, nan=0.0), 0.0, 1.0)
        table = np.array(self.colors, dtype=np.float64)
        return np.stack([np.rint(np.interp(p, self.positions, table[:, k])) for k in range(3)]).astype(np.uint8)

    def sample(self, n: int) -> tuple[RGB, ...]:
        return tuple(_rgb(c) for c in self.at(np.linspace(0, 1, n)).T)


def _rgb(color: Iterable[float]) -> RGB:
    r, g, b = (int(v) for v in color)
    return r, g, b


def named_ramp(name: str) -> Ramp:
    found = _RAMP_KEYS.get(re.sub(r"[\s_-]", "", name).lower())
    if found is None:
        raise ArgError(f"unknown colour ramp {name!r} (named ramps: {', '.join(NAMED_RAMPS)})")
    return Ramp.even(NAMED_RAMPS[found])


def _color(value: Any) -> RGB:
    if not isinstance(value, (list, tuple)) or len(value) not in (3, 4) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 255 for v in value):
        raise ArgError(f"a colour must be [r, g, b] or [r, g, b, a] with values 0..255, not {short(value)}")
    return _rgb(round(v) for v in value[:3])


class RampKind(Kind):
    """A ramp by name ("Elevation #1") or as Esri colour-ramp JSON (algorithmic or multipart)."""

    what = "a colour ramp name or colour-ramp JSON"

    def parse(self, value: Any) -> Ramp:
        if isinstance(value, str):
            return named_ramp(value)
        if not isinstance(value, dict):
            raise ArgError(f"must be {self.what}, not {short(value)}")
        kind = str(value.get("type", "")).lower()
        if kind in ("multipart", "multipartcolorramp"):
            parts = value.get("colorRamps")
            if not isinstance(parts, list) or not 1 <= len(parts) <= 64:
                raise ArgError("a multipart colour ramp needs a list of 1 to 64 \"colorRamps\"")
            ramps = [self.parse(p) for p in parts]
            positions, colors = [], []
            for k, part in enumerate(ramps):
                positions += [(k + p) / len(ramps) for p in part.positions]
                colors += list(part.colors)
            return Ramp(tuple(positions), tuple(colors))
        if kind in ("algorithmic", "algorithmiccolorramp") or ("fromColor" in value and "toColor" in value):
            return Ramp.even((_color(value.get("fromColor")), _color(value.get("toColor"))))
        if isinstance(value.get("name"), str):
            return named_ramp(value["name"])
        raise ArgError(f"unknown colour ramp JSON {short(value)} (type algorithmic or multipart)")


@dataclass(frozen=True)
class Colormap:
    """An explicit colormap: integer values and their colours."""

    values: tuple[int, ...]       # ascending
    colors: tuple[RGB, ...]

    @property
    def key(self) -> str:
        return repr((self.values, self.colors))

    def lookup(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(3, ...) uint8 colours of (rounded) values and where a value has no entry."""
        keys = np.array(self.values, dtype=np.float64)
        v = np.rint(np.nan_to_num(values, nan=np.inf))
        idx = np.clip(np.searchsorted(keys, v), 0, keys.size - 1)
        found = keys[idx] == v
        table = np.array(self.colors, dtype=np.uint8)
        return np.moveaxis(table[idx], -1, 0), ~found

    def interpolate(self, values: np.ndarray) -> np.ndarray:
        """(3, ...) uint8 colours interpolated between entries by value (clamped at the ends)."""
        table = np.array(self.colors, dtype=np.float64)
        return np.stack([np.rint(np.interp(values, self.values, table[:, k])) for k in range(3)]).astype(np.uint8)


class ColormapKind(Kind):
    what = "a colormap [[value, r, g, b], ...]"

    def parse(self, value: Any) -> Colormap:
        if not isinstance(value, list) or not 1 <= len(value) <= 65536:
            raise ArgError(f"must be {self.what} with 1 to 65536 entries, not {short(value)}")
        entries = {}
        for k, row in enumerate(value):
            if not isinstance(row, (list, tuple)) or len(row) not in (4, 5):
                raise ArgError(f"entry {k} must be [value, r, g, b], not {short(row)}")
            v = row[0]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not float(v).is_integer():
                raise ArgError(f"entry {k}: the value must be an integer, not {short(v)}")
            try:
                entries[int(v)] = _color(list(row[1:4]))
            except ArgError as exc:
                raise ArgError(f"entry {k}: {exc}")
        keys = sorted(entries)
        return Colormap(tuple(keys), tuple(entries[v] for v in keys))


# --- named colormaps (ColormapName): a colour for each value 0..255 ---------------------------------

def _ndvi_palette(ramp: Ramp, low: RGB) -> np.ndarray:
    """NDVI function output (0..200 = NDVI -1..1): below 100 (no vegetation) a flat colour, the
    vegetation half along the ramp, above 200 the ramp's end."""
    v = np.arange(256)
    out = ramp.at((v - 100) / 100.0).T.copy()
    out[v < 100] = low
    return out


NAMED_COLORMAPS: dict[str, np.ndarray] = {
    "Gray": np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1),
    "Elevation": named_ramp("Elevation #1").at(np.linspace(0, 1, 256)).T.copy(),
    "NDVI": named_ramp("NDVI").at(np.arange(256) / 200.0).T.copy(),
    "NDVI2": _ndvi_palette(Ramp.even(((255, 255, 204), (194, 230, 153), (120, 198, 121), (49, 163, 84),
                                      (0, 104, 55))), (191, 191, 191)),
    "NDVI3": _ndvi_palette(named_ramp("Red to Green"), (0, 0, 128)),
    "Hillshade": np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1),
}
_COLORMAP_KEYS = {n.lower(): n for n in NAMED_COLORMAPS} | {"grey": "Gray", "random": "Random"}
COLORMAP_NAMES = tuple(NAMED_COLORMAPS) + ("Random",)


def colormap_name(name: str) -> str:
    found = _COLORMAP_KEYS.get(name.strip().lower())
    if found is None:
        raise ArgError(f"unknown colormap {name!r} (named colormaps: {', '.join(COLORMAP_NAMES)})")
    return found


def random_colors(values: np.ndarray) -> np.ndarray:
    """(3, ...) uint8: a fixed colour for each integer value (a hash, the same on every request)."""
    v = np.rint(np.nan_to_num(values)).astype(np.int64) & 0xFFFFFFFF
    h = (v * 2654435761) & 0xFFFFFFFF
    return np.stack([(h >> s) & 0xFF for s in (0, 8, 16)]).astype(np.uint8) | np.uint8(0x20)
