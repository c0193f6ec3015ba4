"""Publishing through the HTTP API as a client does it (requests, a token from the token service),
against two app instances on one configuration — two workers: what one changes the other serves at
its next request. Values are checked against what the uploaded files hold (rasterio), and through
exportImage, WMS, WCS and a tile."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
import rasterio
import requests
from PIL import Image
from rasterio.io import MemoryFile

from conftest import serving
from ogc_gateway.app import create_app
from secure import PASSWORDS, make_secure_config
from synth import DEM_NODATA, from_origin

NEW_BOX = (502000, 5001000, 503000, 5002000)       # east of the analytic DEM's tiles (tests/synth.py)
CONSTANT = 1234.5


def dem_like(path, value=CONSTANT, box=NEW_BOX, res=10.0, dtype="float32", bands=1, tags=None):
    width, height = int((box[2] - box[0]) / res), int((box[3] - box[1]) / res)
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=bands, dtype=dtype,
                       crs="EPSG:32633", transform=from_origin(box[0], box[3], res, res),
                       nodata=DEM_NODATA if dtype == "float32" else None) as ds:
        ds.write(np.full((bands, height, width), value, dtype))
        if tags:
            ds.update_tags(**tags)
    return path


@pytest.fixture(scope="module")
def setup(data_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("publish")
    config, _ = make_secure_config(data_dir, folder)
    one, two = create_app(config), create_app(config)
    with serving(one) as url_one, serving(two) as url_two:
        yield config, url_one, url_two, folder


@pytest.fixture(scope="module")
def http():
    session = requests.Session()
    session.trust_env = False
    return session


def token(http, url, user):
    resp = http.post(f"{url}/arcgis/tokens/generateToken",
                     data={"username": user, "password": PASSWORDS[user], "f": "json"})
    return resp.json()["token"]


@pytest.fixture(scope="module")
def admin(setup, http):
    return token(http, setup[1], "root")


def upload(http, url, path, tok, where="/arcgis/admin/uploads", name=None):
    with open(path, "rb") as f:
        resp = http.post(f"{url}{where}/upload", data={"f": "json", "token": tok, "description": "test"},
                         files={"file": (name or path.name, f)})
    assert resp.status_code == 200
    return resp.json()


def export(http, url, service, tok, box, size, **extra):
    resp = http.get(f"{url}/arcgis/rest/services/{service}/ImageServer/exportImage",
                    params={"bbox": ",".join(map(str, box)), "bboxSR": 32633, "size": f"{size[0]},{size[1]}",
                            "format": "tiff", "pixelType": "F32", "f": "image", "token": tok,
                            "interpolation": "RSP_NearestNeighbor", **extra})
    assert resp.headers["Content-Type"].startswith("image/tiff"), resp.text[:300]
    with MemoryFile(resp.content) as mem, mem.open() as ds:
        return ds.read(1)


def tile_over(box, zoom=15):
    """The WebMercatorQuad tile (level, row, col) at the centre of a box in EPSG:32633."""
    import morecantile
    from pyproj import Transformer

    lon, lat = Transformer.from_crs(32633, 4326, always_xy=True).transform((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    t = morecantile.tms.get("WebMercatorQuad").tile(lon, lat, zoom)
    return t.z, t.y, t.x


def tile_alpha(http, url, service, tok, zyx):
    resp = http.get(f"{url}/arcgis/rest/services/{service}/ImageServer/tile/{zyx[0]}/{zyx[1]}/{zyx[2]}",
                    params={"token": tok})
    if resp.status_code == 404 or not resp.headers["Content-Type"].startswith("image/"):
        return None
    return np.asarray(Image.open(io.BytesIO(resp.content)).convert("RGBA"))[..., 3]


def test_upload_add_shows_at_once_in_every_face_of_the_other_worker(setup, http, admin, tmp_path):
    _, one, two, _ = setup
    before = export(http, two, "dem", admin, NEW_BOX, (100, 100))
    assert not np.any(before == CONSTANT)
    zyx = tile_over(NEW_BOX)
    old_tile = tile_alpha(http, two, "dem", admin, zyx)           # rendered and cached before the add
    assert old_tile is None or old_tile[128, 128] == 0
    item = upload(http, one, dem_like(tmp_path / "east.tif"), admin,
                  where="/arcgis/rest/services/dem/ImageServer/uploads")["item"]
    assert item["committed"] and item["itemName"] == "east.tif"
    resp = http.post(f"{one}/arcgis/rest/services/dem/ImageServer/add",
                     data={"itemIds": item["itemID"], "f": "json", "token": admin}).json()
    assert resp["addResults"][0]["success"], resp
    raster_id = resp["addResults"][0]["rasterId"]
    # the other worker: exportImage (values), WCS 1.0 (values), WMS (a picture with data), a tile
    assert np.all(export(http, two, "dem", admin, NEW_BOX, (100, 100)) == CONSTANT)
    wcs = http.get(f"{two}/arcgis/services/dem/ImageServer/WCSServer",
                   params={"SERVICE": "WCS", "VERSION": "1.0.0", "REQUEST": "GetCoverage", "COVERAGE": "dem",
                           "CRS": "EPSG:32633", "BBOX": ",".join(map(str, NEW_BOX)), "WIDTH": 50, "HEIGHT": 50,
                           "FORMAT": "GeoTIFF", "token": admin})
    with MemoryFile(wcs.content) as mem, mem.open() as ds:
        assert np.all(ds.read(1) == CONSTANT)
    wms = http.get(f"{two}/arcgis/services/dem/ImageServer/WMSServer",
                   params={"SERVICE": "WMS", "VERSION": "1.3.0", "REQUEST": "GetMap", "LAYERS": "dem", "STYLES": "",
                           "CRS": "EPSG:32633", "BBOX": ",".join(map(str, NEW_BOX)), "WIDTH": 64, "HEIGHT": 64,
                           "FORMAT": "image/png", "TRANSPARENT": "TRUE", "token": admin})
    alpha = np.asarray(Image.open(io.BytesIO(wms.content)).convert("RGBA"))[..., 3]
    assert alpha.min() == 255
    assert tile_alpha(http, two, "dem", admin, zyx)[128, 128] == 255      # no stale tile
    info = http.get(f"{two}/arcgis/rest/services/dem/ImageServer/{raster_id}", params={"f": "json", "token": admin})
    assert info.json()["attributes"]["Name"] == "east"
    root = http.get(f"{two}/arcgis/rest/services/dem/ImageServer", params={"f": "json", "token": admin}).json()
    assert root["extent"]["xmax"] >= NEW_BOX[2]
    # the upload is consumed
    gone = http.get(f"{one}/arcgis/rest/services/dem/ImageServer/uploads/{item['itemID']}",
                    params={"f": "json", "token": admin}).json()
    assert gone["error"]["code"] == 404
    # delete: gone everywhere
    resp = http.post(f"{two}/arcgis/rest/services/dem/ImageServer/delete",
                     data={"rasterIds": str(raster_id), "f": "json", "token": admin}).json()
    assert resp["deleteResults"] == [{"rasterId": raster_id, "success": True}]
    assert not np.any(export(http, one, "dem", admin, NEW_BOX, (100, 100)) == CONSTANT)
    missing = http.get(f"{one}/arcgis/rest/services/dem/ImageServer/{raster_id}", params={"f": "json", "token": admin})
    assert missing.json()["error"]["code"] == 404


def test_update_attributes_then_a_where_clause_finds_them(setup, http, admin):
    _, one, two, _ = setup
    q = http.get(f"{two}/arcgis/rest/services/mosaic/ImageServer/query",
                 params={"where": "1=1", "outFields": "OBJECTID,acquired", "f": "json", "token": admin}).json()
    oid = q["features"][0]["attributes"]["OBJECTID"]
    resp = http.post(f"{one}/arcgis/rest/services/mosaic/ImageServer/update",
                     data={"rasterIds": str(oid), "attributes": json.dumps({"acquired": "2030-01-01"}),
                           "f": "json", "token": admin}).json()
    assert resp == {"updateResults": [{"rasterId": oid, "success": True}]}
    found = http.get(f"{two}/arcgis/rest/services/mosaic/ImageServer/query",
                     params={"where": "acquired > DATE '2029-12-31'", "outFields": "OBJECTID", "f": "json",
                             "token": admin}).json()
    assert [f["attributes"]["OBJECTID"] for f in found["features"]] == [oid]
    for attributes, what in (({"nosuch": 1}, "no attribute field"), ({"acquired": 12.5e99}, "not a valid"),
                             ({"Name": "x"}, "built-in")):
        bad = http.post(f"{one}/arcgis/rest/services/mosaic/ImageServer/update",
                        data={"rasterIds": str(oid), "attributes": json.dumps(attributes), "f": "json",
                              "token": admin}).json()
        assert bad["error"]["code"] == 400 and what in json.dumps(bad), bad


def test_create_service_from_three_uploads_serves_survives_a_restart_and_refuses_viewers(setup, http, admin, tmp_path):
    config, one, two, _ = setup
    items = []
    for i in range(3):
        box = (600000 + i * 1000, 5000000, 601000 + i * 1000, 5001000)
        path = dem_like(tmp_path / f"part{i}.tif", value=float(i + 1), box=box, bands=1, dtype="float32",
                        tags={"flight": str(i)})
        items.append(upload(http, one, path, admin)["item"]["itemID"])
    service = {"name": "fresh", "title": "Made over HTTP", "default_resampling": "Nearest", "access": "public"}
    submitted = http.post(f"{one}/arcgis/admin/services/createService",
                          data={"service": json.dumps(service), "itemIds": ",".join(items), "f": "json",
                                "token": admin}).json()
    assert submitted["jobStatus"] in ("esriJobSubmitted", "esriJobExecuting", "esriJobSucceeded"), submitted
    state = wait_job(http, two, submitted["jobId"], admin)          # the other worker answers for the job
    assert state["jobStatus"] == "esriJobSucceeded", state
    # every face of the other worker, without a restart
    names = [s["name"] for s in http.get(f"{two}/arcgis/rest/services", params={"f": "json"}).json()["services"]]
    assert "fresh" in names
    values = export(http, two, "fresh", None, (600000, 5000000, 603000, 5001000), (30, 10))
    assert np.array_equal(values, np.repeat([[1.0] * 10 + [2.0] * 10 + [3.0] * 10], 10, axis=0))
    for path in ("/ogc/wms?SERVICE=WMS&REQUEST=GetCapabilities", "/ogc/wcs?SERVICE=WCS&REQUEST=GetCapabilities",
                 "/ogc/wmts?SERVICE=WMTS&REQUEST=GetCapabilities"):
        assert b"fresh" in http.get(f"{two}{path}").content
    # a restart (a new app on the same configuration) serves it too
    with serving(create_app(config)) as three:
        assert np.array_equal(export(http, three, "fresh", None, (600000, 5000000, 601000, 5001000), (10, 10)),
                              np.ones((10, 10), "float32"))
        listed = http.get(f"{three}/arcgis/admin/services", params={"f": "json", "token": admin}).json()
        assert {"serviceName": "fresh", "type": "ImageServer", "origin": "published", "status": "STARTED"} \
            in listed["services"]
    # a viewer can read it but not change it
    viewer = token(http, one, "bob")
    for op, data in (("/arcgis/admin/services/fresh.ImageServer/delete", {}),
                     ("/arcgis/rest/services/fresh/ImageServer/delete", {"rasterIds": "1"}),
                     ("/arcgis/admin/services/createService", {"service": json.dumps({"name": "x"}), "itemIds": "i"}),
                     ("/arcgis/admin/uploads/upload", {})):
        refused = http.post(f"{one}{op}", data={**data, "f": "json", "token": viewer}).json()
        assert refused["error"]["code"] == 403, (op, refused)
    anonymous = http.post(f"{one}/arcgis/admin/services/fresh.ImageServer/delete", data={"f": "json"}).json()
    assert anonymous["error"]["code"] == 499
    # delete: gone from every worker and every document
    assert http.post(f"{two}/arcgis/admin/services/fresh.ImageServer/delete",
                     data={"f": "json", "token": admin}).json() == {"status": "success"}
    names = [s["name"] for s in http.get(f"{one}/arcgis/rest/services", params={"f": "json"}).json()["services"]]
    assert "fresh" not in names
    assert b"fresh" not in http.get(f"{one}/ogc/wms?SERVICE=WMS&REQUEST=GetCapabilities").content


def wait_job(http, url, job_id, tok, tries=600):
    import time
    for _ in range(tries):
        state = http.get(f"{url}/arcgis/admin/jobs/{job_id}", params={"f": "json", "token": tok}).json()
        if state["jobStatus"] in ("esriJobSucceeded", "esriJobFailed"):
            return state
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {state}")


def test_a_failed_job_leaves_nothing_half_made(setup, http, admin, tmp_path):
    config, one, _, _ = setup
    a = upload(http, one, dem_like(tmp_path / "a.tif"), admin)["item"]["itemID"]
    b = upload(http, one, dem_like(tmp_path / "b.tif", bands=3, dtype="uint8"), admin)["item"]["itemID"]
    state = http.post(f"{one}/arcgis/admin/services/createService",
                      data={"service": json.dumps({"name": "halfmade"}), "itemIds": f"{a},{b}", "f": "json",
                            "token": admin, "async": "false"}).json()
    assert state["jobStatus"] == "esriJobFailed" and "band" in json.dumps(state["messages"]), state
    assert not (config.server.published_data_dir / "halfmade").exists()
    assert not (config.server.cache_dir / "catalogs" / "halfmade.sqlite").exists()
    names = [s["name"] for s in http.get(f"{one}/arcgis/rest/services", params={"f": "json"}).json()["services"]]
    assert "halfmade" not in names
    # the uploads are still there for another try
    assert http.get(f"{one}/arcgis/admin/uploads/{a}", params={"f": "json", "token": admin}).json()["item"]["committed"]


def test_an_upload_in_parts_larger_than_one_part(setup, http, admin, tmp_path):
    _, one, two, _ = setup
    path = dem_like(tmp_path / "big.tif", value=5.0, box=(700000, 5000000, 704000, 5004000))
    data = path.read_bytes()
    part = 200_000
    assert len(data) > 2 * part
    reg = http.post(f"{one}/arcgis/admin/uploads/register",
                    data={"itemName": "big.tif", "f": "json", "token": admin}).json()["item"]
    chunks = [data[i:i + part] for i in range(0, len(data), part)]
    for n, chunk in enumerate(chunks):
        r = http.post(f"{two if n % 2 else one}/arcgis/admin/uploads/{reg['itemID']}/uploadPart",
                      data={"partId": str(n), "f": "json", "token": admin}, files={"file": ("blob", chunk)}).json()
        assert r == {"success": True}, r
    done = http.post(f"{one}/arcgis/admin/uploads/{reg['itemID']}/commit",
                     data={"parts": ",".join(map(str, range(len(chunks)))), "f": "json", "token": admin}).json()
    assert done["item"]["committed"] and done["item"]["size"] == len(data)
    state = http.post(f"{one}/arcgis/admin/services/createService",
                      data={"service": json.dumps({"name": "big"}), "itemIds": reg["itemID"], "f": "json",
                            "token": admin, "async": "false"}).json()
    assert state["jobStatus"] == "esriJobSucceeded", state
    values = export(http, two, "big", admin, (700000, 5000000, 704000, 5004000), (40, 40))
    assert np.all(values == 5.0)


@pytest.mark.parametrize("payload, what", [
    ("text", "is not a raster GDAL can read"),
    ("zip", "is not a raster GDAL can read"),
    ("name", "not a plain file name"),
])
def test_bad_uploads_are_refused_clearly(setup, http, admin, payload, what):
    _, one, _, _ = setup
    body, name = {"text": (b"just text", "notes.tif"), "name": (b"x", "../../etc/passwd")}.get(payload, (None, "z.zip"))
    if payload == "zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("zeros.tif", b"\0" * 10_000_000)
        body = buf.getvalue()
    resp = http.post(f"{one}/arcgis/admin/uploads/upload", data={"f": "json", "token": admin},
                     files={"file": (name, body)}).json()
    assert resp["error"]["code"] == 400 and what in json.dumps(resp), resp


def test_bad_service_objects_are_refused_with_the_validators_words(setup, http, admin, tmp_path):
    _, one, _, _ = setup
    item = upload(http, one, dem_like(tmp_path / "s.tif"), admin)["item"]["itemID"]
    for service, what in (({"name": "dem"}, "exists already"),
                          ({"name": "ok", "titel": "x"}, "services.ok.titel: unknown key (did you mean 'title'?)"),
                          ({"name": "ok", "sources": "/etc/*"}, "services.ok.sources: not available"),
                          ({"name": "bad/name"}, "service name must start"),
                          ({"name": "ok", "default_resampling": "Sharpest"}, "default_resampling")):
        resp = http.post(f"{one}/arcgis/admin/services/createService",
                         data={"service": json.dumps(service), "itemIds": item, "f": "json", "token": admin}).json()
        assert resp["error"]["code"] == 400 and what in json.dumps(resp), (service, resp)
    refused = http.post(f"{one}/arcgis/admin/services/dem.ImageServer/delete", data={"f": "json", "token": admin}).json()
    assert refused["error"]["code"] == 400 and "configuration file" in json.dumps(refused)


def test_wrong_band_count_for_a_service_is_refused(setup, http, admin, tmp_path):
    _, one, _, _ = setup
    resp = upload(http, one, dem_like(tmp_path / "rgb.tif", bands=3, dtype="uint8"), admin,
                  where="/arcgis/rest/services/dem/ImageServer/uploads")
    assert resp["error"]["code"] == 400 and "3 band(s) of uint8" in json.dumps(resp)


def test_without_security_the_routes_do_not_exist(client):
    resp = client.post("/arcgis/admin/services/createService", data={"f": "json"})
    assert resp.status_code == 404


def test_an_upload_larger_than_max_request_bytes_is_accepted_up_to_max_upload_bytes(setup, http, admin, tmp_path):
    """Forms and other bodies stop at max_request_bytes (10 MiB); files may reach max_upload_bytes."""
    _, one, _, _ = setup
    big = dem_like(tmp_path / "wide.tif", value=3.0, box=(800000, 5000000, 818000, 5018000))    # 1800² float32
    assert big.stat().st_size > 12 * 2**20
    resp = upload(http, one, big, admin)
    assert resp["item"]["committed"] and resp["item"]["size"] == big.stat().st_size
    form = http.post(f"{one}/arcgis/rest/services/dem/ImageServer/exportImage",
                     data={"f": "json", "token": admin, "bbox": "1,2,3,4", "padding": "x" * (11 * 2**20)})
    assert form.status_code == 413 or form.json()["error"]["code"] == 413
