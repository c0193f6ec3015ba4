"""The `ogc-gateway` command line: problems are plain lines with exit 1, and `serve` really serves."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import rasterio
import requests
from affine import Affine
from click.testing import CliRunner

from ogc_gateway.cli import cli, service_urls


def write_tif(path, value: int = 1):
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", width=16, height=16, count=1, dtype="uint8",
                       nodata=0, crs="EPSG:32633",
                       transform=Affine(10, 0, 500000, 0, -10, 5000000)) as dst:
        dst.write(np.full((1, 16, 16), value, dtype="uint8"))


@pytest.fixture
def good_config(tmp_path):
    write_tif(tmp_path / "terrain" / "a.tif", 10)
    write_tif(tmp_path / "terrain" / "b.tif", 20)
    path = tmp_path / "gateway.yaml"
    path.write_text("server:\n  title: Test\nservices:\n  terrain:\n    sources: terrain/*.tif\n")
    return path


def test_help_and_version():
    runner = CliRunner()
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "demo", "check-config"):
        assert command in result.output
    assert runner.invoke(cli, ["serve", "--help"]).exit_code == 0
    assert "0.1.0" in runner.invoke(cli, ["--version"]).output


def test_check_config_good(good_config):
    result = CliRunner().invoke(cli, ["check-config", "--config", str(good_config)])
    assert result.exit_code == 0, result.output
    assert "OK: 1 services" in result.output
    assert "terrain: 2 files" in result.output


def test_check_config_reads_the_environment(good_config, monkeypatch):
    monkeypatch.setenv("OGC_GATEWAY_CONFIG", str(good_config))
    result = CliRunner().invoke(cli, ["check-config"])
    assert result.exit_code == 0, result.output


def test_check_config_bad(tmp_path):
    path = tmp_path / "gateway.yaml"
    path.write_text("server:\n  max_image_width: 0\nservices:\n  terrain:\n    sourcs: x\n")
    result = CliRunner().invoke(cli, ["check-config", "--config", str(path)])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "gateway.yaml: server.max_image_width: must be a positive integer, not 0",
        "gateway.yaml: services.terrain.sourcs: unknown key (did you mean 'sources'?)",
        "gateway.yaml: services.terrain.sources: required: a glob or a list of globs of raster files",
    ]
    assert "Traceback" not in result.output


def test_missing_default_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OGC_GATEWAY_CONFIG", raising=False)
    result = CliRunner().invoke(cli, ["check-config"])
    assert result.exit_code == 1
    assert "gateway.yaml does not exist" in result.output
    assert "Traceback" not in result.output


def test_serve_folder_and_config_exclude_each_other(good_config):
    result = CliRunner().invoke(cli, ["serve", str(good_config.parent), "--config", str(good_config)])
    assert result.exit_code == 2
    assert "either FOLDER or --config" in result.output


def test_service_urls():
    assert service_urls("http://h:1", "dem") == [
        ("ImageServer", "http://h:1/arcgis/rest/services/dem/ImageServer"),
        ("WMS", "http://h:1/arcgis/services/dem/ImageServer/WMSServer?SERVICE=WMS&REQUEST=GetCapabilities"),
        ("WCS", "http://h:1/arcgis/services/dem/ImageServer/WCSServer?SERVICE=WCS&REQUEST=GetCapabilities"),
        ("WMTS", "http://h:1/arcgis/rest/services/dem/ImageServer/WMTS/1.0.0/WMTSCapabilities.xml")]


def test_service_urls_of_a_multidimensional_service():
    assert service_urls("http://h:1", "ocean", multidimensional=True)[4:] == [
        ("multidimensionalInfo", "http://h:1/arcgis/rest/services/ocean/ImageServer/multidimensionalInfo?f=pjson"),
        ("slices", "http://h:1/arcgis/rest/services/ocean/ImageServer/slices?f=pjson")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow          # `ogc-gateway serve` in a subprocess
def test_serve_end_to_end(good_config):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "ogc_gateway.cli", "serve", "--config", str(good_config),
         "--port", str(port), "--workers", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.stdout.read()
            try:
                answer = requests.get(f"http://127.0.0.1:{port}/arcgis/rest/services",
                                      params={"f": "json"}, timeout=2)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "the server did not answer within 30 s"
                time.sleep(0.2)
        assert answer.status_code == 200
        names = [s["name"] for s in answer.json()["services"]]
        assert "terrain" in names
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
