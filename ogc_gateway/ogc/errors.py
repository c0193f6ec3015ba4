"""The engine's errors as OGC exceptions: each face (each WCS version) names its own parameter for
the engine's field (engine/errors.py FIELDS) and reports the error's own OWS exception code."""

from __future__ import annotations

from collections.abc import Mapping

from ..engine import GatewayError, InvalidParameter
from .common import OGCError

# engine field -> the face's parameter (the locator of its exception); a field a face does not
# know keeps the engine's name.
WMS = {"bands": "LAYERS", "bbox": "BBOX", "crs": "CRS", "format": "FORMAT", "mosaic": "LAYERS",
       "nodata": "LAYERS", "pixel_size": "WIDTH/HEIGHT", "rendering": "STYLES", "size": "WIDTH/HEIGHT",
       "slice": "LAYERS", "time": "TIME", "geometry": "I/J", "sample_count": "I/J", "sample_distance": "I/J",
       "tile_set": "CRS", "compression": "FORMAT"}
WMS_111 = WMS | {"crs": "SRS", "tile_set": "SRS", "geometry": "X/Y", "sample_count": "X/Y", "sample_distance": "X/Y"}
WMTS = {"bands": "layer", "bbox": "tilematrix", "crs": "tilematrixset", "format": "format", "mosaic": "layer",
        "nodata": "layer", "pixel_size": "tilematrix", "rendering": "style", "size": "tilematrix",
        "slice": "layer", "tile_set": "tilematrixset", "time": "time", "compression": "format",
        "geometry": "I/J", "sample_count": "I/J", "sample_distance": "I/J"}
WCS10 = {"bands": "BAND", "bbox": "BBOX", "crs": "RESPONSE_CRS", "format": "FORMAT", "mosaic": "COVERAGE",
         "nodata": "COVERAGE", "pixel_size": "RESX/RESY", "rendering": "COVERAGE", "size": "WIDTH/HEIGHT",
         "slice": "COVERAGE", "time": "TIME", "compression": "FORMAT", "tile_set": "COVERAGE"}
WCS11 = {"bands": "rangesubset", "bbox": "boundingbox", "crs": "gridbasecrs", "format": "format",
         "mosaic": "identifier", "nodata": "identifier", "pixel_size": "gridoffsets", "rendering": "identifier",
         "size": "boundingbox", "slice": "identifier", "time": "timesequence", "compression": "format",
         "tile_set": "identifier"}
WCS20 = {"bands": "rangesubset", "bbox": "subset", "crs": "outputCrs", "format": "format", "mosaic": "coverageId",
         "nodata": "coverageId", "pixel_size": "scaling", "rendering": "coverageId", "size": "subset",
         "slice": "coverageId", "time": "subset", "compression": "geotiff:compression", "tile_set": "coverageId"}
WCS = {"1.0.0": WCS10, "1.1.0": WCS11, "1.1.1": WCS11, "1.1.2": WCS11, "2.0.0": WCS20, "2.0.1": WCS20}


def ogc_error(exc: GatewayError, names: Mapping[str, str], status: int | None = None) -> OGCError:
    """The exception a face reports for an engine error: its OWS code, and for a bad parameter the
    face's name for it (as locator and at the head of the message). `status`: the HTTP status the
    face gives it (None: the face's own rule for the code)."""
    if isinstance(exc, InvalidParameter):
        exc = exc.renamed(names)
    message = "; ".join(exc.details) or exc.message
    return OGCError(exc.ows_code, message, exc.locator, **({} if status is None else {"status": status}))
