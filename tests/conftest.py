"""Shared fixtures: analytic data sets (tests/synth.py), a Config built for them, the app."""

from __future__ import annotations

import socket
import subprocess
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest
from werkzeug.serving import make_server

import synth
import synth_multidim
from ogc_gateway.app import create_app
from ogc_gateway.config import Config, DimensionConfig, Limits, ServerConfig, ServiceConfig, VariableConfig


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    synth.make_dem(root / "dem")
    synth.make_mosaic(root / "mosaic")
    synth.make_timeseries(root / "ts")
    return root


def stop_processes(processes, timeout: float = 20) -> None:
    """Terminate servers a test started (last started first), killing any that do not stop in time."""
    for process in reversed(processes):
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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


@contextmanager
def serving(app):
    """An app on a real socket (a free port), for clients (GDAL, OWSLib) that speak HTTP themselves."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()


@pytest.fixture(scope="session")
def live_url(app):
    """The app on a real socket, for clients (GDAL) that speak HTTP themselves."""
    with serving(app) as url:
        yield url


# --- multidimensional services (tests/synth_multidim.py) -----------------------------------------

def make_md_config(data_dir: Path, cache_dir: Path) -> Config:
    """`ocean`: dimensions from catalog attributes (one GeoTIFF per slice and half); `cube`: from the
    bands of NetCDF files (NETCDF_DIM_time, NETCDF_DIM_depth). Both hold the same analytic cube."""
    limits = Limits(max_image_width=4100, max_image_height=4100)
    variables = (VariableConfig("temp", unit="degC", description="Sea water temperature"),
                 VariableConfig("salt", unit="psu", description="Sea water salinity"))
    services = {
        "ocean": ServiceConfig(name="ocean", title="Ocean slices", sources=(str(data_dir / "ocean" / "*.tif"),),
                               catalog=data_dir / "ocean" / "catalog.csv", time_field="date",
                               variable_field="variable", variables=variables,
                               dimensions=(DimensionConfig("StdZ", field="depth", unit="m", description="Depth"),),
                               default_resampling="nearest", limits=limits),
        "cube": ServiceConfig(name="cube", title="Ocean cube", sources=(str(data_dir / "cube" / "*.nc"),),
                              dimensions=(DimensionConfig("StdTime", band_metadata="NETCDF_DIM_time"),
                                          DimensionConfig("StdZ", band_metadata="NETCDF_DIM_depth")),
                              default_resampling="nearest", limits=limits),
    }
    return Config(server=ServerConfig(cache_dir=cache_dir, limits=limits), services=services)


@pytest.fixture(scope="session")
def md_data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("md")
    synth_multidim.make_ocean(root / "ocean")
    synth_multidim.make_cube(root / "cube")
    return root


@pytest.fixture(scope="session")
def md_app(md_data_dir, tmp_path_factory):
    return create_app(make_md_config(md_data_dir, tmp_path_factory.mktemp("md_cache")))


@pytest.fixture()
def md_client(md_app):
    return md_app.test_client()


@pytest.fixture(scope="session")
def md_live_url(md_app):
    with serving(md_app) as url:
        yield url


@pytest.fixture()
def local_clients(monkeypatch, tmp_path):
    """GDAL and OWSLib on the local socket: no proxy, failures fast, a private cache folder (the
    value). GDAL_PAM_ENABLED=YES: GDAL 3.10's WCS driver crashes with PAM off, which the engine sets
    for its own reads (engine/read.py) in this same process."""
    import rasterio

    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with rasterio.Env(GDAL_PAM_ENABLED="YES", GDAL_HTTP_TIMEOUT="60", GDAL_HTTP_MAX_RETRY="0"):
        yield tmp_path / "cache"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """A test that drives a client application (QGIS, a browser, Spark) is slow as well, so
    `pytest -m "not slow"` leaves it out; before pytest's -m deselection runs."""
    for item in items:
        if any(item.get_closest_marker(name) for name in ("qgis", "browser", "spark")):
            item.add_marker(pytest.mark.slow)
