"""Multidimensional services: variables and dimensions (StdTime, StdZ or any name) taken from catalog
attributes or from the bands of each file (band metadata such as NetCDF's NETCDF_DIM_<dim>), the
slices they form, and which items - or bands of items - a multidimensional definition selects.

Everything here is built once when a service opens (band metadata is read from each file then), so a
request only filters the items the catalog found. StdTime is the service's time: the time filter of
every operation selects on it, whichever source it has.

A definition need not name everything (digest §13.3; README "Multidimensional services"): without a
variable it shows the first one; a dimension it does not name takes its default value (StdZ the value
closest to 0, another time dimension its latest, any other its first), except StdTime, which the
time filter narrows and the mosaic rule orders (newest on top by default).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import rasterio
from rasterio.errors import RasterioError

from .catalog import DATE, DOUBLE, INTEGER, Catalog, Field, Item, iso_to_epoch_ms
from .errors import ConfigError, InvalidParameter
from .rasterinfo import BandStats, aggregate_stats
from .read import data_band_indexes
from .requests import DimensionSelection, TimeWindow
from .settings import DimensionConfig, ServiceConfig

Value = float | tuple[float, float]             # a number, or a (lower, upper) range
Partials = dict[int, list[list[float | None]]]  # per item: [count, sum, sumsq, min, max] per band
NETCDF_VARNAME = "NETCDF_VARNAME"
_NETCDF_DIM = "NETCDF_DIM_"
_CF_UNITS_MS = {"d": 86_400_000, "day": 86_400_000, "days": 86_400_000, "h": 3_600_000, "hr": 3_600_000,
                "hour": 3_600_000, "hours": 3_600_000, "min": 60_000, "minute": 60_000, "minutes": 60_000,
                "s": 1000, "sec": 1000, "second": 1000, "seconds": 1000, "ms": 1, "millisecond": 1,
                "milliseconds": 1}
_CF_SINCE = re.compile(r"\s*(\w+)\s+since\s+(\d{1,4})-(\d{1,2})-(\d{1,2})"
                       r"(?:[ T](\d{1,2}):(\d{1,2})(?::(\d{1,2}(?:\.\d*)?))?)?\s*(?:Z|UTC|\+0+:?0*)?\s*$", re.I)
_CF_CALENDARS = ("standard", "gregorian", "proleptic_gregorian")


@dataclass(frozen=True, slots=True)
class Dimension:
    name: str
    description: str
    unit: str                     # ISO8601 for time dimensions
    field: str                    # the attribute it comes from (band metadata: the metadata item)
    is_time: bool                 # values are epoch milliseconds
    has_ranges: bool              # values are (start, end) ranges (StdTime with end_time_field)
    values: tuple[Value, ...]     # distinct, ascending
    default: Value | None         # the value of a request that does not name it (None: every value)


@dataclass(frozen=True, slots=True)
class Variable:
    name: str
    description: str
    unit: str
    dimensions: tuple[Dimension, ...]       # with this variable's own values
    stats: tuple[BandStats, ...]


@dataclass(frozen=True, slots=True)
class Slice:
    id: int
    variable: str
    values: tuple[tuple[str, Value], ...]   # (dimension, value) for every dimension of the variable


@dataclass(frozen=True, slots=True)
class _Source:
    """Where one dimension's values come from: the item's time, an attribute, or band metadata."""

    config: DimensionConfig
    kind: str                     # "time" | "field" | "band"
    key: str                      # the attribute's own spelling, or the band metadata item
    is_time: bool
    has_ranges: bool = False
    unit: str = ""                # from the config, else the file's (NetCDF `<dim>#units`)
    description: str = ""

    def value(self, item: Item, band: _Band | None, index: int) -> Value | None:
        if self.kind == "band":
            return band.values.get(index) if band is not None else None
        if self.kind == "time":
            if item.time_start is None:
                return None
            end = item.time_start if item.time_end is None else item.time_end     # the catalog sets both
            return (item.time_start, end) if self.has_ranges else item.time_start
        return item.attributes.get(self.key)


@dataclass(frozen=True, slots=True)
class _Band:
    """One band of a file whose bands are slices."""

    band: int                     # 1-based GDAL band index
    position: int                 # its place among the file's data bands (statistics)
    variable: str | None          # from NETCDF_VARNAME
    values: dict[int, Value | None]   # dimension index -> value (None: missing, a problem reported)


@dataclass(frozen=True, slots=True)
class _Member:
    item: Item
    band: _Band | None
    variable: str
    values: tuple[Value | None, ...]      # one per dimension of the service

    def partial(self, partials: Partials) -> list[list[float | None]]:
        """Its [count, sum, sumsq, min, max] per band, from the catalog's statistics of its file."""
        stats = partials[self.item.oid]
        return stats if self.band is None else [stats[self.band.position]]


class Multidimensional:
    """The variables, dimensions and slices of one service, and the selection of its items."""

    def __init__(self, sources: list[_Source], variable_of: Callable[[Item, _Band | None], str | None],
                 bands: dict[int, tuple[_Band, ...]], members: list[_Member], variables: list[tuple[str, str, str]],
                 partials: Partials):
        """`variables`: (name, unit, description) of every variable of the members, in order."""
        self._sources = sources
        self._variable_of = variable_of
        self._bands = bands
        self.from_bands = bool(bands)
        self._index = {s.config.name.lower(): i for i, s in enumerate(sources)}
        self._time = self._index.get("stdtime")
        self.dimensions = tuple(self._dimension(i, members) for i in range(len(sources)))
        self.variables = tuple(self._variable(name, unit, description, [m for m in members if m.variable == name],
                                              partials) for name, unit, description in variables)
        self.slices = self._slices(members)
        self.stats = _stats([m.partial(partials) for m in members])

    # --- description -----------------------------------------------------------------------------

    def _dimension(self, i: int, members: list[_Member]) -> Dimension:
        s = self._sources[i]
        distinct = sorted({v for m in members if (v := m.values[i]) is not None}, key=_sort_key)
        default: Value | None = None
        if distinct and s.config.name != "StdTime":
            if s.config.name == "StdZ":
                default = min(distinct, key=lambda v: (abs(_start(v)), _start(v)))
            else:
                default = distinct[-1] if s.is_time else distinct[0]
        fallback = "Time" if s.config.name == "StdTime" else s.config.name
        return Dimension(name=s.config.name, description=s.description or fallback,
                         unit="ISO8601" if s.is_time else s.unit, field=s.key, is_time=s.is_time,
                         has_ranges=s.has_ranges, values=tuple(distinct), default=default)

    def _variable(self, name: str, unit: str, description: str, own: list[_Member], partials: Partials) -> Variable:
        dims = tuple(self._dimension(i, own) for i in range(len(self._sources))
                     if any(m.values[i] is not None for m in own))
        return Variable(name, description or name, unit, dims, _stats([m.partial(partials) for m in own]))

    def _slices(self, members: list[_Member]) -> tuple[Slice, ...]:
        rank = {v.name: n for n, v in enumerate(self.variables)}
        dims_of = {v.name: [self._index[d.name.lower()] for d in v.dimensions] for v in self.variables}
        keys: set[tuple[str, tuple[Value, ...]]] = set()
        for m in members:
            picked = tuple(v for i in dims_of[m.variable] if (v := m.values[i]) is not None)
            if len(picked) == len(dims_of[m.variable]):
                keys.add((m.variable, picked))
        ordered = sorted(keys, key=lambda k: (rank[k[0]], tuple(_sort_key(v) for v in k[1])))
        return tuple(Slice(n, variable, tuple((self._sources[i].config.name, v)
                                               for i, v in zip(dims_of[variable], values)))
                     for n, (variable, values) in enumerate(ordered))

    def dimension(self, name: str) -> Dimension | None:
        i = self._index.get(name.lower())
        return None if i is None else self.dimensions[i]

    @property
    def time(self) -> Dimension | None:
        """StdTime, when the service has it."""
        return None if self._time is None else self.dimensions[self._time]

    def times(self) -> list[int]:
        """The distinct slice times (starts, epoch ms), ascending."""
        return sorted({int(_start(v)) for v in self.time.values}) if self.time else []

    @property
    def time_extent(self) -> tuple[int, int] | None:
        values = self.time.values if self.time else ()
        return (int(min(_start(v) for v in values)), int(max(_end(v) for v in values))) if values else None

    # --- selection --------------------------------------------------------------------------------

    def slice_definition(self, slice_id: int) -> tuple[DimensionSelection, ...]:
        """The definition that selects exactly one slice (InvalidParameter sliceId if there is none)."""
        if not 0 <= slice_id < len(self.slices):
            raise InvalidParameter("slice", f"there is no slice {slice_id} (slices 0..{len(self.slices) - 1}; "
                                              "see the slices resource)")
        s = self.slices[slice_id]
        return (DimensionSelection(s.variable, None),) + tuple(
            DimensionSelection(s.variable, name, (value,)) for name, value in s.values)

    def check(self, definition: Iterable[DimensionSelection], param: str) -> None:
        """Refuse unknown variables and dimensions, and empty ranges, naming `param`."""
        self._filters(tuple(definition), param, defaults=False)

    def matching_slices(self, definition: tuple[DimensionSelection, ...], param: str) -> list[Slice]:
        """The slices a definition selects, as a filter: what it does not name, it does not narrow."""
        wanted = self._filters(definition, param, defaults=False)
        out = []
        for s in self.slices:
            values = {name.lower(): v for name, v in s.values}
            filters = wanted.get(s.variable)
            if filters is not None and all(_matches(values.get(self._sources[i].config.name.lower()), allowed)
                                           for i, allowed in filters):
                out.append(s)
        return out

    def select(self, items: Iterable[Item], definition: tuple[DimensionSelection, ...],
               window: TimeWindow | None, param: str = "mosaic", defaults: bool = True) -> list[Item]:
        """The items (band members as items of their own, reading one band) that the definition
        (with the defaults of what it leaves out, unless not `defaults`) and the time window
        select, in the given order."""
        wanted = self._filters(definition, param, defaults=defaults)
        out = []
        for item, band, variable, values in self._members(items):
            filters = wanted.get(variable)
            if filters is None:
                continue
            if window is not None and not _in_window(None if self._time is None else values[self._time], window):
                continue
            if all(_matches(values[i], allowed) for i, allowed in filters):
                out.append(item if band is None else self._band_item(item, band, values))
        return out

    def expand(self, items: Iterable[Item]) -> list[Item]:
        """Every slice member of the items (each band of a file whose bands are slices)."""
        return [item if band is None else self._band_item(item, band, values)
                for item, band, _, values in self._members(items)]

    def _members(self, items: Iterable[Item]) -> Iterator[tuple[Item, _Band | None, str, tuple[Value | None, ...]]]:
        for item in items:
            for band in self._bands.get(item.oid, ()) if self._bands else (None,):
                variable = self._variable_of(item, band)
                if variable is not None:
                    yield item, band, variable, tuple(s.value(item, band, i) for i, s in enumerate(self._sources))

    def _band_item(self, item: Item, band: _Band, values: tuple[Value | None, ...]) -> Item:
        """A band member as an item: its file read through GDAL's vrt:// with that one band, its
        time and dimension values among its attributes (the mosaic rule orders by them)."""
        named = {s.config.name: _start(v) for s, v in zip(self._sources, values) if v is not None}
        t = None if self._time is None else values[self._time]
        return replace(item, path=f"vrt://{item.path}?bands={band.band}",
                       time_start=None if t is None else int(_start(t)),
                       time_end=None if t is None else int(_end(t)),
                       attributes={**item.attributes, **named})

    def _filters(self, definition: tuple[DimensionSelection, ...], param: str, defaults: bool
                 ) -> dict[str, list[tuple[int, tuple[Value, ...]]]]:
        """variable -> [(dimension index, allowed values)] for every variable selected; with
        `defaults`, no variable named means the first, and a dimension not named its default."""
        known = {v.name: v for v in self.variables}
        for d in definition:
            self._check_one(d, known, param)
        named = list(dict.fromkeys(d.variable for d in definition if d.variable))
        chosen = named or ([self.variables[0].name] if defaults else list(known))
        out = {}
        for name in chosen:
            # an entry without a variable applies to each variable that has its dimension
            own = {dim.name.lower() for dim in known[name].dimensions}
            filters = [(self._index[d.dimension.lower()], d.values) for d in definition if d.dimension
                       and (d.variable == name or (d.variable is None and d.dimension.lower() in own))]
            mentioned = {i for i, _ in filters}
            if defaults:
                for dim in known[name].dimensions:
                    i = self._index[dim.name.lower()]
                    if i not in mentioned and dim.default is not None:
                        filters.append((i, (dim.default,)))
            out[name] = [(i, allowed) for i, allowed in filters if allowed]
        return out

    def _check_one(self, d: DimensionSelection, known: dict[str, Variable], param: str) -> None:
        where = "multidimensionalDefinition"
        if d.variable and d.variable not in known:
            raise InvalidParameter(param, f"{where}: there is no variable {d.variable!r} (variables: "
                                          f"{', '.join(known)})")
        if d.dimension is None:
            return
        dim = self.dimension(d.dimension)
        if dim is None:
            raise InvalidParameter(param, f"{where}: there is no dimension {d.dimension!r} (dimensions: "
                                          f"{', '.join(x.name for x in self.dimensions)})")
        own = known[d.variable].dimensions if d.variable else self.dimensions
        if all(x.name != dim.name for x in own):
            raise InvalidParameter(param, f"{where}: variable {d.variable!r} has no dimension {dim.name!r} "
                                          f"(its dimensions: {', '.join(x.name for x in own)})")
        for v in d.values:
            if isinstance(v, tuple) and v[0] > v[1]:
                raise InvalidParameter(param, f"{where}: the range [{v[0]:g}, {v[1]:g}] of {dim.name} has its "
                                              "lower bound above its upper bound")


# --- values ----------------------------------------------------------------------------------------

def _start(v: Value) -> float:
    return v[0] if isinstance(v, tuple) else v


def _end(v: Value) -> float:
    return v[1] if isinstance(v, tuple) else v


def _sort_key(v: Value) -> tuple[float, float]:
    return (_start(v), _end(v))


def _close(a: float, b: float) -> bool:
    """Equal but for the last bits of a double (numbers that went through text and back); tight
    enough that epoch milliseconds one apart differ."""
    return math.isclose(a, b, rel_tol=1e-13, abs_tol=1e-12)


def _le(a: float, b: float) -> bool:
    return a <= b or _close(a, b)


def _matches(value: Value | None, allowed: tuple[Value, ...]) -> bool:
    """Whether a member's value is one of the allowed numbers or meets one of the allowed ranges
    (a range value: contains the number, or overlaps the range)."""
    if value is None:
        return False
    lo, hi = _start(value), _end(value)
    for a in allowed:
        if isinstance(a, tuple):
            if _le(lo, a[1]) and _le(a[0], hi):
                return True
        elif (_le(lo, a) and _le(a, hi)) if isinstance(value, tuple) else _close(lo, a):
            return True
    return False


def _in_window(value: Value | None, window: TimeWindow) -> bool:
    """Whether a time (or time range) meets the window; a member without time never does."""
    if value is None:
        return False
    return ((window.end is None or _start(value) <= window.end)
            and (window.start is None or _end(value) >= window.start))


def _stats(partials: list[list[list[float | None]]]) -> tuple[BandStats, ...]:
    """Statistics of a set of members from their per-band partial sums."""
    return aggregate_stats(partials, max(len(p) for p in partials)) if partials else ()


def cf_time(raw: str, units: str | None, calendar: str | None) -> int | None:
    """A NetCDF (CF) time value 'N <unit> since <date>' in epoch ms, else an ISO 8601 text; None if
    it is neither."""
    if units:
        m = _CF_SINCE.fullmatch(units)
        if m is None or m.group(1).lower() not in _CF_UNITS_MS:
            return None
        if calendar and calendar.lower() not in _CF_CALENDARS:
            return None
        y, mo, d, hh, mm, ss = m.group(2, 3, 4, 5, 6, 7)
        seconds = float(ss or 0)
        origin = datetime(int(y), int(mo), int(d), int(hh or 0), int(mm or 0), int(seconds), tzinfo=UTC)
        try:
            number = float(raw)
        except ValueError:
            return None
        ms = origin.timestamp() * 1000 + (seconds % 1) * 1000 + number * _CF_UNITS_MS[m.group(1).lower()]
        return round(ms) if math.isfinite(ms) else None
    return iso_to_epoch_ms(raw)


# --- building ----------------------------------------------------------------------------------------

def build(config: ServiceConfig, catalog: Catalog) -> Multidimensional | None:
    """The multidimensional model of a service (None when it declares no variables or dimensions);
    ConfigError lists every problem (an unknown attribute, a band without the metadata item ...)."""
    if not config.multidimensional:
        return None
    where = f"services.{config.name}"
    fields = {f.name.lower(): f for f in catalog.attribute_fields()}
    problems: list[str] = []
    sources = _sources(config, fields, where, problems)
    variable_key = None
    if config.variable_field:
        found = fields.get(config.variable_field.lower())
        if found is None:
            problems.append(f"{where}.variable_field: no attribute {config.variable_field!r}; attributes: "
                            f"{', '.join(f.name for f in fields.values()) or '(none)'}")
        else:
            variable_key = found.name
    if problems:
        raise ConfigError(problems)
    items = catalog.items()
    described = {v.name: (v.unit, v.description) for v in config.variables}
    sources, bands = _read_bands(items, sources, described, where, problems)
    single = config.variables[0].name if len(config.variables) == 1 else None

    def variable_of(item: Item, band: _Band | None) -> str | None:
        if variable_key is not None:
            value = item.attributes.get(variable_key)
            return None if value is None else str(value)
        return single or (band.variable if band is not None else None)

    members = []
    for item in items:
        for band in bands.get(item.oid, ()) if bands else (None,):
            variable = variable_of(item, band)
            if variable is None and variable_key is None and band is None:
                problems.append(f"{where}.variables: {item.path} has no variable; name the service's one "
                                "variable in `variables` (or give `variable_field`)")
            elif variable is None and variable_key is None and band is not None:
                problems.append(f"{where}.variables: {item.path} band {band.band} has no {NETCDF_VARNAME}; "
                                "name the service's one variable in `variables`")
            elif variable is not None:
                members.append(_Member(item, band, variable,
                                       tuple(s.value(item, band, i) for i, s in enumerate(sources))))
    of_members = {m.variable for m in members}
    configured = [v.name for v in config.variables]
    problems += [f"{where}.variables.{name}: no item (or band) is of this variable; the variables found: "
                 f"{', '.join(sorted(of_members)) or '(none)'}" for name in configured if name not in of_members]
    if not members and not problems:
        problems.append(f"{where}.variable_field: no item has a variable (attribute {config.variable_field!r} "
                        "is empty everywhere)")
    if problems:
        more = [f"... and {len(problems) - 20} more"] if len(problems) > 20 else []
        raise ConfigError(problems[:20] + more)
    order = configured + sorted(of_members - set(configured))      # configured first, the others by name
    partials = {item.oid: catalog.record(item.oid)["stats"] for item in items}
    return Multidimensional(sources, variable_of, bands, members,
                            [(name, *described.get(name, ("", ""))) for name in order], partials)


def _sources(config: ServiceConfig, fields: dict[str, Field], where: str, problems: list[str]) -> list[_Source]:
    """Each dimension's source, StdTime first unless declared (from time_field, or band metadata)."""
    dims = list(config.dimensions)
    if config.time_field and not any(d.name == "StdTime" for d in dims):
        dims.insert(0, DimensionConfig("StdTime"))
    out = []
    for d in dims:
        if d.band_metadata:
            out.append(_Source(d, "band", d.band_metadata, is_time=d.name == "StdTime", unit=d.unit,
                               description=d.description))
            continue
        if d.name == "StdTime":
            spelled = fields.get((config.time_field or "").lower())
            out.append(_Source(d, "time", spelled.name if spelled else config.time_field or "", True,
                               has_ranges=bool(config.end_time_field), unit=d.unit, description=d.description))
            continue
        found = fields.get((d.field or "").lower())
        if found is None:
            problems.append(f"{where}.dimensions.{d.name}.field: no attribute {d.field!r}; attributes: "
                            f"{', '.join(f.name for f in fields.values()) or '(none)'}")
        elif found.type not in (INTEGER, DOUBLE, DATE):
            problems.append(f"{where}.dimensions.{d.name}.field: {found.name!r} holds text; a dimension's "
                            "values are numbers or dates")
        else:
            out.append(_Source(d, "field", found.name, is_time=found.type == DATE, unit=d.unit,
                               description=d.description))
    return out


def _read_bands(items: list[Item], sources: list[_Source], described: dict[str, tuple[str, str]],
                where: str, problems: list[str]) -> tuple[list[_Source], dict[int, tuple[_Band, ...]]]:
    """For services whose bands are slices: every file's bands with their variable and values. The
    first file's NetCDF attributes fill in what the config leaves out: a dimension's units (CF time
    units make it a time dimension), long names, and the variables' units and long names."""
    band_dims = [i for i, s in enumerate(sources) if s.kind == "band"]
    if not band_dims or not items:
        return sources, {}
    sources = list(sources)
    bands: dict[int, tuple[_Band, ...]] = {}
    for n, item in enumerate(items):
        try:
            with rasterio.open(item.path) as ds:
                tags = {k.lower(): v for k, v in ds.tags().items()}
                if n == 0:
                    for i in band_dims:
                        sources[i] = _described(sources[i], tags)
                read = []
                for position, b in enumerate(data_band_indexes(ds)):
                    band_tags = {k.lower(): v for k, v in ds.tags(b).items()}
                    values = {i: _band_value(sources[i], band_tags, tags, f"{item.path} band {b}",
                                             f"{where}.dimensions.{sources[i].config.name}.band_metadata",
                                             problems) for i in band_dims}
                    variable = band_tags.get(NETCDF_VARNAME.lower())
                    read.append(_Band(b, position, variable, values))
                    if variable and not all(described.get(variable, ("", ""))):
                        unit, description = described.get(variable, ("", ""))
                        described[variable] = (unit or tags.get(f"{variable.lower()}#units", ""),
                                               description or tags.get(f"{variable.lower()}#long_name", ""))
                bands[item.oid] = tuple(read)
        except (RasterioError, OSError) as exc:
            problems.append(f"{where}.sources: {item.path}: cannot read its band metadata ({exc})")
    return sources, bands


def _netcdf_dim(item: str) -> str:
    """The NetCDF dimension behind a NETCDF_DIM_<dim> band metadata item (lower case)."""
    return item[len(_NETCDF_DIM):].lower() if item.upper().startswith(_NETCDF_DIM) else item.lower()


def _described(s: _Source, tags: dict[str, str]) -> _Source:
    """A band dimension with the NetCDF attributes of its dimension variable: units, long name."""
    dim = _netcdf_dim(s.key)
    units = tags.get(f"{dim}#units", "")
    is_time = s.is_time or bool(_CF_SINCE.fullmatch(units))
    return replace(s, is_time=is_time, unit=s.unit or ("" if is_time else units),
                   description=s.description or tags.get(f"{dim}#long_name", "")
                   or tags.get(f"{dim}#standard_name", ""))


def _band_value(s: _Source, band_tags: dict[str, str], tags: dict[str, str], what: str, key: str,
                problems: list[str]) -> Value | None:
    raw = band_tags.get(s.key.lower())
    if raw is None:
        problems.append(f"{key}: {what} has no metadata item {s.key!r}")
        return None
    if s.is_time:
        dim = _netcdf_dim(s.key)
        units = tags.get(f"{dim}#units")
        value = cf_time(raw, units if units and _CF_SINCE.fullmatch(units) else None, tags.get(f"{dim}#calendar"))
        if value is None:
            problems.append(f"{key}: {what}: {raw!r} is not a time (ISO 8601 text, or a number with CF units "
                            f"'<unit> since <date>' in a standard calendar; the file's units: {units!r})")
        return value
    try:
        number = float(raw)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        problems.append(f"{key}: {what}: {raw!r} is not a number")
        return None
    return number
