"""create_app(config) -> Flask app: services opened once per process, faces registered, CORS."""

from __future__ import annotations

from flask import Flask, Response, request
from werkzeug.middleware.proxy_fix import ProxyFix

from . import metrics
from .access import RequestObserver
from .config import Config
from .engine import NotFound, TooLarge, configure_admission, install_observer, open_services
from .gateway import Gateway
from .memory import fewer_arenas
from .ogc.wcs import bp as wcs_bp
from .ogc.wms import bp as wms_bp
from .ogc.wmts import bp as wmts_bp
from .ops import bp as ops_bp
from .rest.responses import error_response
from .rest.views import bp as rest_bp
from .security.web import EXTENSION as SECURITY
from .security.web import install as install_security
from .security.web import response_headers
from .tilefast import INLINE, TileShortcut
from .web.pages import bp as web_bp


def create_app(config: Config, *, sync: bool = True) -> Flask:
    """The WSGI app. `sync=False` (gunicorn workers) opens the catalogs the master already synced."""
    fewer_arenas()                         # before the request threads start (ogc_gateway/memory.py)
    app = Flask("ogc_gateway")
    # Bodies larger than this are refused (413) before they are parsed; forms count too.
    app.config["MAX_CONTENT_LENGTH"] = config.server.max_request_bytes
    app.config["MAX_FORM_MEMORY_SIZE"] = config.server.max_request_bytes
    app.extensions["ogc_gateway"] = Gateway(config, open_services(config, sync=sync))
    server = config.server
    configure_admission(server.cache_dir / "heavy-slots", server.max_heavy_per_worker, server.max_heavy_per_host,
                        server.heavy_request_pixels)
    app.register_blueprint(rest_bp)
    app.register_blueprint(wms_bp)
    app.register_blueprint(wcs_bp)
    app.register_blueprint(wmts_bp)
    install_security(app, config)          # allowed_hosts; with a `security` section, identity and access
    if config.security is not None:        # publishing needs a signed-in publisher: no security, no routes
        from .publish.routes import bp as publish_bp
        app.register_blueprint(publish_bp)
    app.register_blueprint(web_bp)          # /, the map viewer, static files, the pages' CSP
    app.register_blueprint(ops_bp)           # /healthz, /readyz, /metrics
    # cached tiles, before Flask (with security on: public tiles to callers without credentials)
    app.wsgi_app = app.extensions[INLINE] = TileShortcut(app.wsgi_app, app.extensions["ogc_gateway"],
                                                          app.extensions.get(SECURITY))
    if config.server.proxy_headers:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_port=1, x_prefix=1)
    install_observer(metrics.observe_engine)

    @app.after_request
    def _cors(resp: Response) -> Response:
        # Browser clients read pixels back into canvases: JSON and images both need CORS
        # (`cors_origins`; by default `*` for public services). Every answer says nosniff.
        return response_headers(resp, config)

    @app.errorhandler(404)
    def _not_found(_exc):
        return error_response(NotFound("Not found.", details=[request.path]), http_errors=True)

    @app.errorhandler(413)
    def _too_large(_exc):
        return error_response(TooLarge("body", f"the request body is larger than "
                                               f"{config.server.max_request_bytes} bytes (max_request_bytes)"),
                              http_errors=True, force_status=413)

    @app.errorhandler(405)
    def _not_allowed(_exc):
        return error_response(NotFound("Method not allowed.", details=[request.method]),
                              http_errors=True, force_status=405)

    # Outermost, and kept last: the request id, access log and request metrics see every request,
    # also those a WSGI-level wrapper added above answers before Flask's routing.
    app.wsgi_app = RequestObserver(app.wsgi_app, record=metrics.observe_request,
                                   json_lines=config.server.access_log_format == "json")
    return app
