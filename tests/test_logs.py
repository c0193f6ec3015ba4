"""Logging configured once (issue 20): the CLI and the gunicorn of `ogc-gateway serve` write the
operator's lines (a file gone from the sources, a file that went bad) at the chosen level and
format, and the security section's redaction still scrubs every line."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time

import pytest
import requests
from click.testing import CliRunner

from ogc_gateway import logs
from ogc_gateway.cli import cli
from ogc_gateway.security import redact
from test_cli import free_port, good_config, write_tif  # noqa: F401  (fixture)


@pytest.fixture(autouse=True)
def restore_logging():
    """configure() changes process-wide state; put it back for the tests that follow."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), logging.getLogger("ogc_gateway").level
    yield
    root.handlers[:] = handlers
    logging.getLogger("ogc_gateway").setLevel(level)
    logs._current.update(level=logs.DEFAULT_LEVEL, json=False)


def ours() -> list[logging.Handler]:
    return [h for h in logging.getLogger().handlers if getattr(h, "_ogc_gateway", False)]


def test_levels_apply_to_ogc_gateway_and_warnings_of_others(capsys):
    logs.configure("info")
    logging.getLogger("ogc_gateway.catalog").info("kept %s", "info")
    logging.getLogger("ogc_gateway.catalog").debug("dropped debug")
    logging.getLogger("some.library").info("dropped library info")
    logging.getLogger("some.library").warning("kept library warning")
    err = capsys.readouterr().err
    assert "[INFO] ogc_gateway.catalog: kept info" in err
    assert f"[{os.getpid()}]" in err
    assert "dropped" not in err
    assert "[WARNING] some.library: kept library warning" in err


def test_default_is_warnings_and_errors(capsys):
    logs.configure()
    log = logging.getLogger("ogc_gateway.tiles")
    log.info("housekeeping")
    log.warning("a file went bad")
    err = capsys.readouterr().err
    assert "housekeeping" not in err and "[WARNING] ogc_gateway.tiles: a file went bad" in err


def test_configure_again_replaces_the_handler(capsys):
    logs.configure("warning")
    logs.configure("error", json=True)
    assert len(ours()) == 1
    logging.getLogger("ogc_gateway").warning("below error")
    logging.getLogger("ogc_gateway").error("an error")
    lines = capsys.readouterr().err.splitlines()
    assert [json.loads(line)["message"] for line in lines] == ["an error"]


def test_json_lines_carry_level_logger_pid_and_traceback(capsys):
    logs.configure("info", json=True)
    try:
        raise ValueError("broken file")
    except ValueError:
        logging.getLogger("ogc_gateway.rest").exception("unexpected error on %s", "/x")
    entry = json.loads(capsys.readouterr().err.strip())
    assert entry["level"] == "ERROR" and entry["logger"] == "ogc_gateway.rest" and entry["pid"] == os.getpid()
    assert entry["message"] == "unexpected error on /x"
    assert "ValueError: broken file" in entry["exception"]
    assert entry["time"].endswith("+00:00")


@pytest.mark.parametrize("as_json", [False, True])
def test_redaction_stays_effective(capsys, as_json):
    redact.install()                      # what a security section does in create_app
    logs.configure("info", json=as_json)
    log = logging.getLogger("ogc_gateway.security")
    log.warning("GET /arcgis/rest/services?token=%s&f=json", "ogt1.secretvalue")
    try:
        raise RuntimeError("upstream said token=hunter2 is wrong")
    except RuntimeError:
        log.exception("failed")
    err = capsys.readouterr().err
    assert "secretvalue" not in err and "hunter2" not in err
    assert "token=***" in err


def test_unknown_level():
    with pytest.raises(ValueError):
        logs.level_name("loud")
    result = CliRunner().invoke(cli, ["--log-level", "loud", "check-config"])
    assert result.exit_code == 2 and "loud" in result.output


def test_cli_shows_the_file_gone_line_by_default_and_env_silences_it(good_config):  # noqa: F811
    runner = CliRunner()
    assert runner.invoke(cli, ["catalog", "sync", "--config", str(good_config)]).exit_code == 0
    (good_config.parent / "terrain" / "b.tif").unlink()
    result = runner.invoke(cli, ["catalog", "sync", "--config", str(good_config)])
    assert result.exit_code == 0, result.output
    assert "[WARNING] ogc_gateway.catalog: terrain:" in result.stderr and "b.tif is gone" in result.stderr
    write_tif(good_config.parent / "terrain" / "c.tif", 30)
    assert runner.invoke(cli, ["catalog", "sync", "--config", str(good_config)]).exit_code == 0
    (good_config.parent / "terrain" / "c.tif").unlink()
    quiet = runner.invoke(cli, ["catalog", "sync", "--config", str(good_config)],
                          env={"OGC_GATEWAY_LOG_LEVEL": "error"})
    assert quiet.exit_code == 0 and "is gone" not in quiet.stderr


def test_gunicorn_options_follow_configure():
    logs.configure("debug", json=True)
    options = logs.gunicorn_options()
    assert options["loglevel"] == "debug"
    config = options["logconfig_dict"]
    assert config["handlers"]["ogc_gateway"] == {"()": "ogc_gateway.logs.handler", "json": True}
    assert config["loggers"]["gunicorn.error"]["handlers"] == ["ogc_gateway"]


@pytest.mark.slow          # `ogc-gateway serve` in a subprocess
def test_serve_logs_master_and_workers_through_one_handler(good_config):  # noqa: F811
    """`ogc-gateway --log-level info --log-format json serve`: gunicorn's own lines, the master's
    catalog sync (a file gone) and a worker's warning (a file gone bad) are all JSON lines."""
    runner = CliRunner()
    assert runner.invoke(cli, ["catalog", "sync", "--config", str(good_config)]).exit_code == 0
    (good_config.parent / "terrain" / "b.tif").unlink()
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "ogc_gateway.cli", "--log-level", "info", "--log-format", "json", "serve",
         "--config", str(good_config), "--port", str(port), "--workers", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.communicate()
            try:
                requests.get(f"http://127.0.0.1:{port}/arcgis/rest/services", params={"f": "json"}, timeout=5)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "the server did not answer within 60 s"
                time.sleep(0.2)
        (good_config.parent / "terrain" / "a.tif").write_bytes(b"not a GeoTIFF any more")
        answer = requests.get(f"http://127.0.0.1:{port}/arcgis/rest/services/terrain/ImageServer/exportImage",
                              params={"f": "image", "format": "png", "bbox": "500000,4999840,500160,5000000",
                                      "size": "16,16"}, timeout=30)
        assert answer.status_code == 200
    finally:
        process.terminate()
        try:
            out, err = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
    entries = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert "Services directory:" in out
    master = next(e for e in entries if e["logger"] == "ogc_gateway.catalog" and "b.tif is gone" in e["message"])
    assert master["level"] == "WARNING"
    assert any(e["logger"] == "gunicorn.error" and e["message"].startswith("Booting worker") for e in entries), err
    worker = [e for e in entries if e["logger"] == "ogc_gateway.sources" and "a.tif" in e["message"]]
    assert worker and worker[0]["level"] == "WARNING" and worker[0]["pid"] != master["pid"], err
