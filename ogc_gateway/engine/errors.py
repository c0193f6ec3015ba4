"""Typed errors raised by the engine and by the parsers; each face renders them in its own format.

An engine error names the engine's field (below), not a protocol's parameter, and carries the OWS
exception code that fits it; each face maps the field to its own parameter name (`renamed`) and
reports the code. Errors a face raises itself name the face's parameter already.
"""

from __future__ import annotations

from collections.abc import Mapping

# The engine's field names: what an engine error's `name` is. Faces map these (and leave any other
# name, which a face or a caller passed in, as it is).
FIELDS = frozenset({
    "bands",            # band selection (REST bandIds, WCS band subsets)
    "bbox",             # the area asked for
    "compression",      # GeoTIFF compression
    "crs",              # a spatial reference
    "format",           # output format
    "geometry",         # a geometry (sample locations, a zone)
    "mosaic",           # the mosaic rule: method, operation, items, dimensions
    "nodata",           # nodata values of the output
    "pixel_size",       # the cell size to work at
    "rendering",        # the rendering rule (raster functions, templates, styles)
    "sample_count",     # how many samples along a geometry
    "sample_distance",  # the spacing of samples along a geometry
    "size",             # output width and height
    "slice",            # one slice of a multidimensional service
    "tile_set",         # a tile matrix set
    "time",             # a time, window or the request's time budget
})


class GatewayError(Exception):
    """Base class. `http_status` is the status a face uses when it reports real HTTP codes;
    `ows_code` the exceptionCode an OGC face reports."""

    http_status = 500
    ows_code = "NoApplicableCode"

    def __init__(self, message: str = "An error occurred.", *, details: list[str] | None = None,
                 locator: str | None = None, ows_code: str | None = None):
        super().__init__(message)
        self.message = message
        self.details = list(details or [])
        self.locator = locator
        if ows_code is not None:
            self.ows_code = ows_code


class InvalidParameter(GatewayError):
    """A request parameter is missing, malformed or out of range; `name` is an engine field (FIELDS)
    when the engine raises it."""

    http_status = 400
    ows_code = "InvalidParameterValue"

    def __init__(self, name: str, why: str, *, ows_code: str | None = None):
        super().__init__(f"Invalid or missing input parameters: {name}: {why}",
                         details=[f"{name}: {why}"], locator=name, ows_code=ows_code)
        self.name = name
        self.why = why

    def renamed(self, names: Mapping[str, str]) -> InvalidParameter:
        """This error (same class and code) naming the face's parameter for its field, as `names`
        maps it; itself when the face has no other name for it."""
        face = names.get(self.name, self.name)
        if face == self.name:
            return self
        other = type(self).__new__(type(self))
        other.__dict__.update(self.__dict__)
        InvalidParameter.__init__(other, face, self.why, ows_code=self.ows_code)
        return other


class TooLarge(InvalidParameter):
    """The request exceeds a configured limit; refused before any pixel is read."""


class NotFound(GatewayError):
    """A service, item, operation or output file that does not exist."""

    http_status = 404
    ows_code = "InvalidParameterValue"      # a parameter names something that is not there


class ConfigError(Exception):
    """A configuration with problems: one line per problem (file, key, what is wrong, suggestion)."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = list(problems)
