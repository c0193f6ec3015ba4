"""Shared fixtures: analytic data sets (tests/synth.py), a Config built for them, the app."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

import synth
from ogc_gateway.app import create_app
from ogc_gateway.config import Config, Limits, ServerConfig, ServiceConfig


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    synth.make_dem(root / "dem")
    synth.make_mosaic(root / "mosaic")
    synth.make_timeseries(root / "ts")
    return root


def make_config(data_dir: Path, cache_dir: Path, **server) -> Config:
    limits = Limits(max_image_width=4100, max_image_height=4100)
    services = {
        "dem": ServiceConfig(name="dem", title="Analytic DEM", sources=(str(data_dir / "dem" / "*.tif"),),
                             default_resampling="nearest", limits=limits),
        "mosaic": ServiceConfig(name="mosaic", title="Analytic mosaic",
                                sources=(str(data_dir / "mosaic" / "*.tif"),),
                                catalog=data_dir / "mosaic" / "catalog.csv", time_field="acquired",
                                default_band_ids=(2, 1, 0), default_resampling="nearest", limits=limits),
        "ts": ServiceConfig(name="ts", title="Monthly series", sources=(str(data_dir / "ts" / "*.tif"),),
                            catalog=data_dir / "ts" / "times.csv", time_field="date",
                            end_time_field="date_end", default_resampling="nearest", limits=limits),
    }
    return Config(server=ServerConfig(cache_dir=cache_dir, limits=limits, **server), services=services)


@pytest.fixture(scope="session")
def config(data_dir, tmp_path_factory) -> Config:
    return make_config(data_dir, tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def app(config):
    return create_app(config)


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def live_url(app):
    """The app on a real socket, for clients (GDAL) that speak HTTP themselves."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
