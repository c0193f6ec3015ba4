"""Admission control (issue 15, item 4): heavy requests bounded per worker and per host; cheap ones
pass; the refused get a clear "busy" error in the face's format. (Latency figures: benchmarks/stayup.py.)"""

from __future__ import annotations

import fcntl
import threading
from dataclasses import replace

import pytest

from conftest import make_config
from ogc_gateway.app import create_app
from ogc_gateway.engine import admission
from ogc_gateway.engine.admission import Admission, Busy

BIG, SMALL = 4000 * 4000, 256 * 256


def hold(adm: Admission, started: threading.Event, release: threading.Event, errors: list):
    try:
        with adm.admit(BIG, 0.0, patience=30):
            started.set()
            release.wait(30)
    except Busy as exc:
        errors.append(exc)
        started.set()


def test_one_heavy_runs_one_waits_the_next_is_refused_cheap_ones_pass(tmp_path):
    adm = Admission(tmp_path / "slots", per_worker=1, per_host=4, heavy_pixels=2048 * 2048, waiting=1)
    release, errors = threading.Event(), []
    first_in = threading.Event()
    first = threading.Thread(target=hold, args=(adm, first_in, release, errors))
    first.start()
    assert first_in.wait(10)
    second_in = threading.Event()
    second = threading.Thread(target=hold, args=(adm, second_in, release, errors))
    second.start()
    for _ in range(200):                      # until the second one waits for its turn
        if adm._queued == 1:
            break
        threading.Event().wait(0.01)
    assert adm._queued == 1
    with pytest.raises(Busy):
        with adm.admit(BIG, 0.0, patience=30):
            pass
    with adm.admit(SMALL, 0.0, patience=30):  # cheap: not counted at all
        pass
    release.set()
    first.join(10)
    second.join(10)
    assert errors == [] and second_in.is_set()


def test_a_rule_estimated_at_a_second_or_more_is_heavy(tmp_path):
    adm = Admission(tmp_path / "slots", heavy_pixels=2048 * 2048)
    assert adm.heavy(SMALL, 1.5) and not adm.heavy(SMALL, 0.1) and adm.heavy(BIG, 0.0)


def test_the_host_bound_holds_across_admissions_sharing_the_slot_folder(tmp_path):
    # two Admission objects stand for two worker processes: fcntl locks of separate opens conflict
    a = Admission(tmp_path / "slots", per_worker=1, per_host=1)
    b = Admission(tmp_path / "slots", per_worker=1, per_host=1)
    errors = []

    def other():                              # another thread: its own context, like another request
        try:
            with b.admit(BIG, 0.0, patience=0.2):
                pass
        except Busy as exc:
            errors.append(exc)

    with a.admit(BIG, 0.0, patience=1):
        t = threading.Thread(target=other)
        t.start()
        t.join(10)
    assert len(errors) == 1
    with b.admit(BIG, 0.0, patience=0.2):     # free again once the first is done
        pass


@pytest.fixture
def busy_host(data_dir, tmp_path):
    """An app whose every host slot is taken (as by other workers), with a 2 s budget."""
    config = make_config(data_dir, tmp_path / "cache", max_heavy_per_host=2, heavy_request_pixels=100 * 100)
    limits = replace(config.server.limits, max_request_seconds=2)
    config = replace(config, services={k: replace(v, limits=limits) for k, v in config.services.items()})
    client = create_app(config).test_client()
    slots = tmp_path / "cache" / "heavy-slots"
    slots.mkdir(parents=True, exist_ok=True)
    handles = [open(slots / f"slot-{n}.lock", "a+b") for n in range(2)]
    for h in handles:
        fcntl.flock(h, fcntl.LOCK_EX | fcntl.LOCK_NB)
    yield client
    for h in handles:
        h.close()
    admission.configure(None, 1, None, 2048 * 2048)


def test_a_heavy_request_on_a_busy_host_gets_a_busy_error_and_a_cheap_one_is_answered(busy_host):
    box = "500000,5000100,501900,5002000"
    heavy = busy_host.get("/arcgis/rest/services/dem/ImageServer/exportImage",
                          query_string={"bbox": box, "size": "400,400", "format": "tiff", "f": "image"})
    error = heavy.get_json()["error"]
    assert error["code"] == 503 and "busy" in error["message"]
    wms = busy_host.get("/ogc/wms", query_string={
        "SERVICE": "WMS", "VERSION": "1.3.0", "REQUEST": "GetMap", "LAYERS": "dem", "STYLES": "",
        "CRS": "EPSG:32633", "BBOX": box, "WIDTH": "400", "HEIGHT": "400", "FORMAT": "image/png"})
    assert b"ServiceException" in wms.data and b"busy" in wms.data
    cheap = busy_host.get("/arcgis/rest/services/dem/ImageServer/exportImage",
                          query_string={"bbox": box, "size": "64,64", "format": "tiff", "f": "image"})
    assert cheap.status_code == 200 and cheap.content_type == "image/tiff"


def test_a_busy_refusal_is_no_applicable_code_in_the_ogc_faces(busy_host):
    """Busy is the server's state, not a bad parameter: its OWS code is NoApplicableCode (issue 20),
    with the 503 status where the face sends real HTTP codes (WCS 2.0)."""
    box = "500000,5000100,501900,5002000"
    wms = busy_host.get("/ogc/wms", query_string={
        "SERVICE": "WMS", "VERSION": "1.3.0", "REQUEST": "GetMap", "LAYERS": "dem", "STYLES": "",
        "CRS": "EPSG:32633", "BBOX": box, "WIDTH": "400", "HEIGHT": "400", "FORMAT": "image/png"})
    assert b'code="NoApplicableCode"' in wms.data and b"busy" in wms.data
    wcs = busy_host.get("/ogc/wcs", query_string={
        "SERVICE": "WCS", "VERSION": "2.0.1", "REQUEST": "GetCoverage", "COVERAGEID": "dem",
        "SUBSET": ["E(500000,501900)", "N(5000100,5002000)"], "SCALESIZE": "i(400),j(400)"})
    assert wcs.status_code == 503
    assert b'exceptionCode="NoApplicableCode"' in wcs.data and b"busy" in wcs.data
