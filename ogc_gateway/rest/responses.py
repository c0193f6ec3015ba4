"""ArcGIS-style responses: JSON / pretty JSON / JSONP, and errors as {"error": {...}} bodies."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from flask import Response

from ..engine import GatewayError, InvalidParameter

_CALLBACK = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$.]{0,127}$")

# The engine's fields (engine/errors.py FIELDS) as the ImageServer's parameters.
PARAMETERS = {
    "bands": "bandIds", "mosaic": "mosaicRule", "nodata": "noData", "pixel_size": "pixelSize",
    "rendering": "renderingRule", "sample_count": "sampleCount", "sample_distance": "sampleDistance",
    "slice": "sliceId", "tile_set": "tileMatrixSet",
}


def rest_error(exc: GatewayError) -> GatewayError:
    """An engine error naming the REST parameter of its field (other errors as they are)."""
    return exc.renamed(PARAMETERS) if isinstance(exc, InvalidParameter) else exc


def _clean(value: Any) -> Any:
    """JSON has no NaN or infinity; ArcGIS clients expect null there."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def check_callback(callback: str | None) -> str | None:
    if callback is not None and not _CALLBACK.match(callback):
        raise InvalidParameter("callback", "a JSONP callback holds identifier characters only")
    return callback


def json_response(body: Any, *, pretty: bool = False, callback: str | None = None,
                  status: int = 200) -> Response:
    text = json.dumps(_clean(body), indent=2 if pretty else None, ensure_ascii=False,
                      separators=None if pretty else (",", ":"))
    if callback:
        return Response(f"{callback}({text});", status=status, mimetype="application/javascript")
    return Response(text, status=status, content_type="application/json; charset=utf-8")


def error_body(exc: GatewayError) -> dict:
    exc = rest_error(exc)
    code = 400 if isinstance(exc, InvalidParameter) else exc.http_status
    return {"error": {"code": code, "message": exc.message, "details": exc.details}}


def error_response(exc: GatewayError, *, http_errors: bool, callback: str | None = None,
                   force_status: int | None = None) -> Response:
    """The error JSON; HTTP 200 (the ArcGIS habit) unless real codes are configured or forced."""
    status = force_status or (exc.http_status if http_errors else 200)
    if callback and not _CALLBACK.match(callback):
        callback = None
    return json_response(error_body(exc), callback=callback, status=status)
