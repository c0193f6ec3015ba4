"""Served fixtures for the client tests: the analytic services of tests/synth.py with small
maxImageWidth/Height (so reads span several exportImage blocks), a raster-function template, and
ArcGIS Server's token security played by a WSGI middleware (TokenGate), since the client must work
against ArcGIS Server as well as against ours."""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
from dataclasses import replace

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from werkzeug.wrappers import Request, Response

from ogc_gateway.config import FunctionTemplate, Limits

SMALL = Limits(max_image_width=64, max_image_height=48)
SUM12 = FunctionTemplate("Sum12", "BandArithmetic", {"Method": 0, "BandIndexes": "B1+B2"})


def client_config(base_config):
    """The conftest services with small image limits; `mosaic` offers the Sum12 template."""
    services = {name: replace(svc, limits=SMALL) for name, svc in base_config.services.items()}
    services["mosaic"] = replace(services["mosaic"], raster_functions=(SUM12,))
    return replace(base_config, server=replace(base_config.server, limits=SMALL), services=services)


def warped_truth(paths, crs, transform, width, height, band_indexes=None, nodata=0):
    """Values of the first file (in `paths` order) with data at each cell of a grid, each file
    warped by GDAL with nearest resampling: the truth a mosaic read should equal."""
    out = None
    filled = np.zeros((height, width), bool)
    for path in paths:
        with rasterio.open(path) as src, WarpedVRT(src, crs=crs, transform=transform, width=width, height=height,
                                                    resampling=Resampling.nearest) as vrt:
            idx = band_indexes or list(range(1, src.count + 1))
            data = vrt.read(idx, masked=True)
        if out is None:
            out = np.full((len(idx), height, width), nodata, data.dtype)
        take = ~np.ma.getmaskarray(data).any(axis=0) & ~filled
        out[:, take] = data.data[:, take]
        filled |= take
    return out, filled


class TokenGate:
    """ArcGIS Server token security in front of a WSGI app: `POST /arcgis/tokens/generateToken`
    (username, password, client=referer|requestip, referer, expiration, f=json → {token, expires});
    every `/arcgis/rest/services/…` request needs a valid token (ArcGIS's 499 without one, 498 for
    an invalid or expired one), and a referer-bound token the same Referer header."""

    def __init__(self, app, users: dict[str, str], life_s: float | None = None):
        self.app, self.users, self.life_s = app, users, life_s
        self.tokens: dict[str, tuple[float, str | None]] = {}
        self.generated = 0
        self.used: list[str] = []
        self.lock = threading.Lock()

    def revoke_all(self) -> None:
        with self.lock:
            self.tokens.clear()

    @staticmethod
    def _error(code: int, message: str) -> Response:
        return Response(json.dumps({"error": {"code": code, "message": message, "details": []}}),
                        content_type="application/json")

    def __call__(self, environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0) or 0) \
            if environ.get("REQUEST_METHOD") == "POST" else b""
        environ["wsgi.input"] = io.BytesIO(body)
        req = Request(environ)
        path = req.path
        if path == "/arcgis/tokens/generateToken":
            resp = self._generate(req)
            return resp(environ, start_response)
        if path.startswith("/arcgis/rest/services/") or path.startswith("/arcgis/admin/"):
            token = req.values.get("token")
            environ["wsgi.input"] = io.BytesIO(body)
            if not token:
                return self._error(499, "Token Required")(environ, start_response)
            with self.lock:
                held = self.tokens.get(token)
            if held is None or held[0] < time.time():
                return self._error(498, "Invalid Token")(environ, start_response)
            if held[1] is not None and req.headers.get("Referer") != held[1]:
                return self._error(498, "Invalid Token (referer)")(environ, start_response)
            with self.lock:
                self.used.append(token)
        return self.app(environ, start_response)

    def _generate(self, req: Request) -> Response:
        if req.method != "POST":
            return self._error(405, "generateToken takes POST")
        form = req.form
        if self.users.get(form.get("username")) != form.get("password") or not form.get("username"):
            return self._error(400, "Unable to generate token.")
        life = self.life_s if self.life_s is not None else 60.0 * float(form.get("expiration") or 60)
        referer = form.get("referer") if form.get("client") == "referer" else None
        if form.get("client") == "referer" and not referer:
            return self._error(400, "referer required")
        token = uuid.uuid4().hex
        expires = time.time() + life
        with self.lock:
            self.tokens[token] = (expires, referer)
            self.generated += 1
        return Response(json.dumps({"token": token, "expires": int(expires * 1000), "ssl": False}),
                        content_type="application/json")
