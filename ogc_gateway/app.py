"""create_app(config) -> Flask app: services opened once per process, faces registered, CORS."""

from __future__ import annotations

from flask import Flask, Response, request
from werkzeug.middleware.proxy_fix import ProxyFix

from .config import Config
from .engine.errors import NotFound
from .engine.service import open_services
from .gateway import Gateway
from .rest.responses import error_response
from .ogc.wcs import bp as wcs_bp
from .ogc.wms import bp as wms_bp
from .ogc.wmts import bp as wmts_bp
from .rest.views import bp as rest_bp
from .tilefast import TileShortcut


def create_app(config: Config, *, sync: bool = True) -> Flask:
    """The WSGI app. `sync=False` (gunicorn workers) opens the catalogs the master already synced."""
    app = Flask("ogc_gateway")
    app.extensions["ogc_gateway"] = Gateway(config, open_services(config, sync=sync))
    app.register_blueprint(rest_bp)
    app.register_blueprint(wms_bp)
    app.register_blueprint(wcs_bp)
    app.register_blueprint(wmts_bp)
    app.wsgi_app = TileShortcut(app.wsgi_app, app.extensions["ogc_gateway"])   # cached tiles, before Flask
    if config.server.proxy_headers:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_port=1, x_prefix=1)

    @app.after_request
    def _cors(resp: Response) -> Response:
        # Browser clients read pixels back into canvases: JSON and images both need CORS.
        resp.headers["Access-Control-Allow-Origin"] = "*"
        if request.method == "OPTIONS":
            resp.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            resp.headers["Access-Control-Allow-Headers"] = request.headers.get(
                "Access-Control-Request-Headers", "Content-Type")
        return resp

    @app.errorhandler(404)
    def _not_found(_exc):
        return error_response(NotFound("Not found.", details=[request.path]), http_errors=True)

    @app.errorhandler(405)
    def _not_allowed(_exc):
        return error_response(NotFound("Method not allowed.", details=[request.method]),
                              http_errors=True, force_status=405)

    return app
