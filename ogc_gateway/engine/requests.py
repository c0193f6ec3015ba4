"""The engine's vocabulary: small frozen values that every face builds and the engine consumes.

A face parses its protocol into these before any raster work, so the engine only ever sees numbers,
CRS objects and enumerations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from affine import Affine
from rasterio.crs import CRS

from .names import MosaicMethod, Resampling

# ArcGIS pixel-type codes and the numpy dtype that holds each (U1/U2/U4 live in uint8, clamped).
PIXEL_TYPES: dict[str, str] = {
    "U1": "uint8", "U2": "uint8", "U4": "uint8", "U8": "uint8", "S8": "int8",
    "U16": "uint16", "S16": "int16", "U32": "uint32", "S32": "int32",
    "F32": "float32", "F64": "float64",
}
# Value range of the sub-byte types (the others take the range of their dtype).
SUB_BYTE_MAX = {"U1": 1, "U2": 3, "U4": 15}


def round_into(values: np.ndarray, dtype: Any) -> np.ndarray:
    """Float results (resampled, averaged) as `dtype`: integers rounded and clamped to its range."""
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        values = np.clip(np.rint(values), info.min, info.max)
    return values.astype(dtype, copy=False)


def representable(value: float, dtype: Any, pixel_type: str | None = None) -> bool:
    """Whether a nodata value can be stored exactly in `dtype` (and the sub-byte type's range)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return True
    info = np.iinfo(dtype)
    hi = SUB_BYTE_MAX.get(pixel_type, info.max) if pixel_type else info.max
    return float(value).is_integer() and info.min <= value <= hi


def pixel_type_of(dtype: Any) -> str:
    """The ArcGIS code of a numpy dtype (uint8 -> U8, float32 -> F32 ...)."""
    name = np.dtype(dtype).name
    for code, dt in PIXEL_TYPES.items():
        if dt == name and code not in SUB_BYTE_MAX:
            return code
    raise ValueError(f"no ArcGIS pixel type for dtype {name}")


@dataclass(frozen=True, slots=True)
class Grid:
    """A target grid: CRS, bounds (xmin, ymin, xmax, ymax, in x/y order) and size in pixels."""

    crs: CRS
    bounds: tuple[float, float, float, float]
    width: int
    height: int

    @property
    def transform(self) -> Affine:
        xmin, ymin, xmax, ymax = self.bounds
        return Affine((xmax - xmin) / self.width, 0.0, xmin, 0.0, -(ymax - ymin) / self.height, ymax)

    @property
    def res(self) -> tuple[float, float]:
        xmin, ymin, xmax, ymax = self.bounds
        return (xmax - xmin) / self.width, (ymax - ymin) / self.height


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """A time instant or window in epoch milliseconds (UTC); None is an open end. `instants`, when
    given, are the exact times asked (an OGC TIME list; start and end are their least and greatest)."""

    start: int | None
    end: int | None
    instants: tuple[int, ...] = ()

    @classmethod
    def of_instants(cls, instants: tuple[int, ...]) -> TimeWindow:
        return cls(min(instants), max(instants), tuple(instants))


@dataclass(frozen=True, slots=True)
class RenderingRule:
    """One parsed raster-function node. `arguments` keys are as sent; look them up case-insensitively.

    An argument value may itself be a RenderingRule (a nested chain), the string "$$" (the mosaic),
    "$<oid>" (one catalog item), a scalar or a list.
    """

    function: str
    arguments: dict[str, Any] = field(default_factory=dict)
    output_pixel_type: str | None = None
    variable_name: str = "Raster"
    template: str | None = None          # the service template this node came from, if any

    def arg(self, name: str, default: Any = None) -> Any:
        low = name.lower()
        for key, value in self.arguments.items():
            if key.lower() == low:
                return value
        return default


@dataclass(frozen=True, slots=True)
class DimensionSelection:
    """One dimensional definition of a multidimensional request: slices of `variable` (None: of
    every variable) whose `dimension` value is among `values` - numbers (StdTime: epoch ms) or
    (lower, upper) ranges; no values: any. A selection without a dimension chooses the variable."""

    variable: str | None
    dimension: str | None
    values: tuple[float | tuple[float, float], ...] = ()


@dataclass(frozen=True, slots=True)
class MosaicRule:
    """Which items take part and in which order (method), and how overlaps merge (operation)."""

    method: MosaicMethod = MosaicMethod.NORTHWEST
    where: str | None = None
    sort_field: str | None = None
    sort_value: Any = None
    ascending: bool = True
    lock_raster_ids: tuple[int, ...] = ()
    fids: tuple[int, ...] | None = None
    operation: str = "MT_FIRST"
    viewpoint: tuple[float, float] | None = None   # in the service CRS
    item_rendering_rule: RenderingRule | None = None
    multidimensional_definition: tuple[DimensionSelection, ...] = ()


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """exportImage, GetMap, GetCoverage, tiles: a grid to fill and how to fill it."""

    grid: Grid
    band_ids: tuple[int, ...] | None = None
    mosaic_rule: MosaicRule | None = None
    rendering_rule: RenderingRule | None = None
    time: TimeWindow | None = None
    pixel_type: str | None = None               # ArcGIS code; None = the processing result's own
    nodata: tuple[float, ...] | None = None      # values that become nodata in the output
    nodata_match_all: bool = False              # esriNoDataMatchAll
    resampling: Resampling = Resampling.BILINEAR


@dataclass(frozen=True, slots=True)
class TileRequest:
    """WMTS GetTile and the ImageServer tile resource: one tile of a tile matrix set, drawn with a
    style (the default rendering, or a template's rule) at one time, in one picture format."""

    tile_set: str                               # tile matrix set identifier
    level: int                                  # index of the tile matrix, coarse to fine
    row: int
    col: int
    style: str = "default"                      # cache key of the rendering
    rendering_rule: RenderingRule | None = None
    time: TimeWindow | None = None
    format: str = "png"                         # png | jpg | webp | mixed (JPEG if opaque, else PNG)

    @property
    def time_key(self) -> str:
        if self.time is None:
            return "all"
        return f"{self.time.start}_{self.time.end}"


@dataclass(frozen=True, slots=True)
class CatalogQuery:
    """query (and the catalog CLI): which items, in which order, which page."""

    where: str | None = None
    oids: tuple[int, ...] | None = None          # when given, every other filter is ignored
    geometry: Any = None                        # shapely geometry in the service CRS
    spatial_rel: str = "intersects"             # a key of engine.geometry.SPATIAL_RELATIONS
    time: TimeWindow | None = None
    pixel_size: float | None = None             # only items visible at it (MinPS <= ps <= MaxPS)
    mosaic_rule: MosaicRule | None = None       # only the rule's items (where, fids, lockRasterIds)
    order_by: tuple[tuple[str, bool], ...] = ()  # (field, ascending)
    offset: int = 0
    count: int | None = None                    # page size (capped by max_record_count)


@dataclass(frozen=True, slots=True)
class SampleRequest:
    """identify, getSamples, GetFeatureInfo: values at points (in the service CRS)."""

    points: tuple[tuple[float, float], ...]
    mosaic_rule: MosaicRule | None = None
    rendering_rule: RenderingRule | None = None
    time: TimeWindow | None = None
    pixel_size: float | None = None             # None: the service's native cell size
    resampling: Resampling = Resampling.NEAREST
    max_items: int | None = None                # catalog items reported per point


@dataclass(frozen=True, slots=True)
class Raster:
    """The one value that flows through the engine: a masked (bands, rows, cols) array on a grid.

    `nodata` is the value written where formats carry one (GeoTIFF); `stretch` holds per-band
    (min, max) to stretch from when an 8-bit picture is made of non-8-bit values (None: use the
    raster's own pixels); `processed` says a rendering rule made the values (so the service's
    default_band_ids do not apply to them).
    """

    data: np.ma.MaskedArray
    grid: Grid
    band_names: tuple[str, ...]
    pixel_type: str
    nodata: float | None = None
    stretch: tuple[tuple[float, float], ...] | None = None
    processed: bool = False
    match_any: bool = False          # a pixel is nodata when any band is (noDataInterpretation MatchAny)

    def __post_init__(self) -> None:
        arr = np.ma.asarray(self.data)
        if arr.ndim == 2:
            arr = arr[np.newaxis]
        arr = np.ma.MaskedArray(arr, mask=np.ma.getmaskarray(arr))
        object.__setattr__(self, "data", arr)
        if len(self.band_names) != arr.shape[0]:
            raise ValueError(f"{len(self.band_names)} band names for {arr.shape[0]} bands")

    @property
    def valid(self) -> np.ndarray:
        """(rows, cols) bool: True where at least one band holds data (every band, with
        `match_any`). Masks are per band: a band's mask never hides another band's value."""
        mask = np.ma.getmaskarray(self.data)
        return np.logical_not(mask.any(axis=0) if self.match_any else mask.all(axis=0))
