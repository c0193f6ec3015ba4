"""The access matrix on a real socket: every face (REST, WMS, WCS, WMTS) x every way of asking (none,
bad token, expired, wrong referer, wrong role, right role, API key, Basic) x a public and a restricted
service, with requests; then what must not leak (lists, capabilities, hrefs, tiles, legends,
thumbnails, items, KMZ), the ArcGIS token flow, the brute-force limit and the HTTP hygiene headers.
Tokens come from the server's own token service, as a client gets them. Values are checked against
the analytic truth of tests/synth.py."""

from __future__ import annotations

import io
import re
import time
import zipfile

import numpy as np
import pytest
import requests
from lxml import etree
from PIL import Image
from rasterio.io import MemoryFile

from conftest import serving
from ogc_gateway.app import create_app
from secure import PASSWORDS, SECRET, basic, forged_token, make_secure_config
from synth import DEM_NODATA, dem_value, mosaic_value
from test_wmts import merc_range

# Scene 1 alone lies under this box (tests/synth.py), so every mosaic pixel is scene 1's value.
BOX = (500000, 5001800, 500400, 5002000)
W, H = 20, 10
Z = 14
ROW, _, COL, _ = merc_range(BOX, Z)
# A tile within scene 4, the newest: what the tile resources show of the time-enabled mosaic by default
ROW4, _, COL4, _ = merc_range((500700, 5001000, 501300, 5001400), Z)
REFERER = "https://app.example.org/viewer/index.html"


@pytest.fixture(scope="session")
def secure_setup(data_dir, tmp_path_factory):
    config, keys = make_secure_config(data_dir, tmp_path_factory.mktemp("secure"))
    return config, keys


@pytest.fixture(scope="session")
def secure_app(secure_setup):
    return create_app(secure_setup[0])


@pytest.fixture(scope="session")
def secure_url(secure_app):
    with serving(secure_app) as url:
        yield url


@pytest.fixture(scope="session")
def api_keys(secure_setup):
    return secure_setup[1]


@pytest.fixture(scope="session")
def no_proxy_session():
    session = requests.Session()
    session.trust_env = False
    return session


def generate(http, url, user, password=None, **fields):
    resp = http.post(f"{url}/arcgis/tokens/generateToken",
                     data={"username": user, "password": password or PASSWORDS[user], "f": "json", **fields})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) == {"token", "expires", "ssl"}, body
    return body["token"]


@pytest.fixture(scope="session")
def issued(secure_url, no_proxy_session):
    """Tokens from the token service: bound to the request's IP (the default), or to a referer."""
    http = no_proxy_session
    return {"alice": generate(http, secure_url, "alice", client="requestip"),
            "bob": generate(http, secure_url, "bob", client="requestip"),
            "alice_referer": generate(http, secure_url, "alice", client="referer", referer=REFERER)}


# --- the requests of each face ---------------------------------------------------------------------

def face_request(face: str, service: str) -> tuple[str, dict]:
    x0, y0, x1, y1 = BOX
    if face == "rest":
        return (f"/arcgis/rest/services/{service}/ImageServer/exportImage",
                dict(bbox=f"{x0},{y0},{x1},{y1}", bboxSR="32633", imageSR="32633", size=f"{W},{H}", format="tiff",
                     f="image", interpolation="RSP_NearestNeighbor"))
    if face == "wms":
        return (f"/arcgis/services/{service}/ImageServer/WMSServer",
                dict(SERVICE="WMS", VERSION="1.3.0", REQUEST="GetMap", LAYERS=service, STYLES="", CRS="EPSG:32633",
                     BBOX=f"{x0},{y0},{x1},{y1}", WIDTH=str(W), HEIGHT=str(H), FORMAT="image/png"))
    if face == "wcs":
        return (f"/arcgis/services/{service}/ImageServer/WCSServer",
                dict(SERVICE="WCS", VERSION="2.0.1", REQUEST="GetCoverage", COVERAGEID=service, FORMAT="image/tiff",
                     SUBSET=[f"E({x0},{x1})", f"N({y0},{y1})"]
                     + (['time("2024-01-15T10:30:00Z")'] if service == "mosaic" else [])))
    return (f"/arcgis/rest/services/{service}/ImageServer/WMTS",
            dict(SERVICE="WMTS", REQUEST="GetTile", VERSION="1.0.0", LAYER=service, STYLE="default",
                 FORMAT="image/png", TILEMATRIXSET="WebMercatorQuad", TILEMATRIX=str(Z), TILEROW=str(ROW),
                 TILECOL=str(COL)))


CASES = ("none", "bad_token", "expired", "wrong_referer", "wrong_role", "right_role", "api_key", "basic")


def credentials_for(case: str, face: str, issued: dict, keys: dict) -> tuple[dict, dict]:
    """(extra query parameters, headers) of one way of asking."""
    if case == "none":
        return {}, {}
    if case == "bad_token":
        return {"token": forged_token("alice", ["analyst"], secret="another secret of enough length 0123456")}, {}
    if case == "expired":
        return {"token": forged_token("alice", ["analyst"], minutes=-1, binding="ip:127.0.0.1")}, {}
    if case == "wrong_referer":
        return {"token": issued["alice_referer"]}, {"Referer": "https://evil.example.org/viewer/index.html"}
    if case == "wrong_role":
        return {"token": issued["bob"]}, {}
    if case == "right_role":            # the ArcGIS header on REST, a bearer header on the OGC faces
        header = "X-Esri-Authorization" if face == "rest" else "Authorization"
        return {}, {header: f"Bearer {issued['alice']}"}
    if case == "api_key":               # the `token` parameter on REST, Basic with any name on OGC
        if face == "rest":
            return {"token": keys["k-analyst"]}, {}
        return {}, basic("any-name", keys["k-analyst"])
    return {}, basic("alice", PASSWORDS["alice"])


def expected(case: str, service: str) -> int:
    """200, or the ArcGIS code (499 / 498 / 403) the refusal carries."""
    if case in ("bad_token", "expired", "wrong_referer"):
        return 498
    if service == "dem":
        return 200
    return {"none": 499, "wrong_role": 403}.get(case, 200)


def check_pixels(face: str, service: str, resp) -> None:
    """The answer holds the truth: raw values for REST and WCS, a picture of the right size else."""
    assert resp.status_code == 200, resp.text[:300]
    if face in ("rest", "wcs"):
        assert resp.headers["Content-Type"].startswith("image/tiff"), resp.text[:300]
        with MemoryFile(resp.content) as mem, mem.open() as ds:
            values = ds.read()
            transform = ds.transform
        if service == "dem":
            cols, rows = np.meshgrid(np.arange(values.shape[2]) + 0.5, np.arange(values.shape[1]) + 0.5)
            xs, ys = transform * (cols, rows)
            hole = (xs > 500100) & (xs < 500200) & (ys > 5001800) & (ys < 5001900)   # the tile's nodata hole
            assert hole.any() and (values[0][hole] == DEM_NODATA).all()
            assert np.array_equal(values[0][~hole], dem_value(xs, ys)[~hole])
        else:
            for b in range(3):
                assert (values[b] == mosaic_value(1, b)).all()
        return
    assert resp.headers["Content-Type"] == "image/png", resp.text[:300]
    size = Image.open(io.BytesIO(resp.content)).size
    assert size == ((W, H) if face == "wms" else (256, 256))


def check_refusal(face: str, code: int, resp) -> None:
    if face == "rest":          # ArcGIS's habit: HTTP 200 and the code in the JSON body
        assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("application/json")
        message = {499: "Token Required", 498: "Invalid Token"}.get(code)
        error = resp.json()["error"]
        assert error["code"] == code and (message is None or error["message"] == message)
        return
    assert resp.status_code == (403 if code == 403 else 401), resp.text[:300]
    if code != 403:
        assert resp.headers["WWW-Authenticate"] == 'Basic realm="ogc-gateway"'
    else:
        assert "WWW-Authenticate" not in resp.headers
    root = etree.fromstring(resp.content)
    assert root.tag.endswith("ExceptionReport") or root.tag.endswith("ServiceExceptionReport")


@pytest.mark.parametrize("service", ["dem", "mosaic"])
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("face", ["rest", "wms", "wcs", "wmts"])
def test_the_access_matrix(face, case, service, secure_url, issued, api_keys, no_proxy_session):
    path, params = face_request(face, service)
    extra, headers = credentials_for(case, face, issued, api_keys)
    resp = no_proxy_session.get(secure_url + path, params={**params, **extra}, headers=headers)
    code = expected(case, service)
    if code == 200:
        check_pixels(face, service, resp)
    else:
        check_refusal(face, code, resp)


def test_rest_http_errors_gives_the_codes_as_statuses(data_dir, tmp_path):
    config, _ = make_secure_config(data_dir, tmp_path)
    from dataclasses import replace
    config = replace(config, server=replace(config.server, rest_http_errors=True))
    client = create_app(config).test_client()
    assert client.get("/arcgis/rest/services/mosaic/ImageServer?f=json").status_code == 499
    token = forged_token("bob", ["viewer"])
    assert client.get(f"/arcgis/rest/services/mosaic/ImageServer?f=json&token={token}").status_code == 403
    assert client.get("/arcgis/rest/services/mosaic/ImageServer?f=json&token=nonsense").status_code == 498


# --- nothing leaks ----------------------------------------------------------------------------------

def names_in_directory(http, url, params=None, **kw):
    return [s["name"] for s in http.get(f"{url}/arcgis/rest/services", params=params or {"f": "json"},
                                        **kw).json()["services"]]


def test_the_services_directory_lists_what_the_caller_may_see(secure_url, issued, no_proxy_session):
    http = no_proxy_session
    assert names_in_directory(http, secure_url) == ["dem"]
    assert names_in_directory(http, secure_url, params={"f": "json", "token": issued["bob"]}) == ["dem", "ts"]
    assert names_in_directory(http, secure_url, params={"f": "json", "token": issued["alice"]}) == \
        ["dem", "mosaic", "ts"]
    assert names_in_directory(http, secure_url, headers=basic("root", PASSWORDS["root"])) == ["dem", "mosaic", "ts"]
    html = http.get(f"{secure_url}/arcgis/rest/services").text
    assert "dem" in html and "mosaic" not in html and "Monthly series" not in html
    html = http.get(f"{secure_url}/arcgis/rest/services", headers=basic("alice", PASSWORDS["alice"])).text
    assert "mosaic" in html


def layer_names(xml: bytes, tag: str) -> set[str]:
    root = etree.fromstring(xml)
    return {e.text for e in root.iter() if isinstance(e.tag, str) and e.tag.endswith(tag) and e.text}


@pytest.mark.parametrize("path,tag", [("/ogc/wms?SERVICE=WMS&REQUEST=GetCapabilities", "}Name"),
                                      ("/ogc/wcs?SERVICE=WCS&REQUEST=GetCapabilities&VERSION=2.0.1", "CoverageId"),
                                      ("/ogc/wmts/1.0.0/WMTSCapabilities.xml", "}Identifier")])
def test_combined_capabilities_list_only_what_the_caller_may_see(path, tag, secure_url, issued, no_proxy_session):
    http = no_proxy_session
    anonymous = layer_names(http.get(secure_url + path).content, tag)
    assert "dem" in anonymous and not {"mosaic", "ts"} & anonymous
    bob = layer_names(http.get(secure_url + path, headers=basic("bob", PASSWORDS["bob"])).content, tag)
    assert {"dem", "ts"} <= bob and "mosaic" not in bob
    alice = layer_names(http.get(secure_url + path, headers={"Authorization": f"Bearer {issued['alice']}"}).content, tag)
    assert {"dem", "mosaic", "ts"} <= alice
    wrong = http.get(secure_url + path, headers=basic("alice", "not her password"))
    assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"] == 'Basic realm="ogc-gateway"'


def test_a_hidden_layer_is_not_defined_on_the_combined_wms(secure_url, no_proxy_session):
    path, params = face_request("wms", "mosaic")
    resp = no_proxy_session.get(f"{secure_url}/ogc/wms", params=params)
    assert resp.status_code == 200 and b'code="LayerNotDefined"' in resp.content


def restricted_urls(url: str, token_href: str) -> list[str]:
    base = f"{url}/arcgis/rest/services/mosaic/ImageServer"
    x0, y0, x1, y1 = BOX
    return [
        f"{base}?f=json", f"{base}/legend?f=json", f"{base}/info/thumbnail", f"{base}/1?f=json",
        f"{base}/1/info?f=json", f"{base}/1/thumbnail", f"{base}/query?where=1%3D1&f=json",
        f"{base}/exportImage?bbox={x0},{y0},{x1},{y1}&bboxSR=32633&size=20,10&f=kmz",
        f"{base}/tile/{Z}/{ROW4}/{COL4}",
        f"{base}/WMTS/tile/1.0.0/mosaic/default/2024-07-15T10:30:00Z/WebMercatorQuad/{Z}/{ROW4}/{COL4}.png",
        f"{base}/WMTS/1.0.0/WMTSCapabilities.xml",
        f"{url}/arcgis/services/mosaic/ImageServer/WMSServer?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetLegendGraphic"
        "&LAYER=mosaic&FORMAT=image/png",
        f"{url}/arcgis/services/mosaic/ImageServer/WCSServer?SERVICE=WCS&REQUEST=GetCapabilities",
        token_href,
    ]


def test_every_resource_of_a_restricted_service_checks_access(secure_url, issued, no_proxy_session):
    """Legends, thumbnails, items, KMZ, tiles (also once cached), WMTS RESTful tiles, capabilities and
    the output files that f=json hrefs point at: refused without credentials, served with them."""
    http = no_proxy_session
    x0, y0, x1, y1 = BOX
    alice = {"Authorization": f"Bearer {issued['alice']}"}
    made = http.get(f"{secure_url}/arcgis/rest/services/mosaic/ImageServer/exportImage",
                    params=dict(bbox=f"{x0},{y0},{x1},{y1}", bboxSR="32633", size="20,10", f="json",
                                token=issued["alice"])).json()
    href = made["href"]
    assert "/arcgis/rest/directories/arcgisoutput/mosaic/" in href
    for url in restricted_urls(secure_url, href):
        served = http.get(url, headers=alice)
        assert served.status_code == 200, (url, served.text[:300])
        assert b'"error"' not in served.content[:200], (url, served.text[:300])
        refused = http.get(url)
        if "/WMTS" in url or "/arcgis/services/" in url:
            assert refused.status_code == 401 and refused.headers["WWW-Authenticate"], url
        elif "/tile/" in url or "arcgisoutput" in url:      # binary resources: the code as the status
            assert refused.status_code == 499 and refused.json()["error"]["code"] == 499, url
        else:
            assert refused.status_code == 200 and refused.json()["error"]["code"] == 499, url
        wrong = http.get(url, headers={"Authorization": f"Bearer {issued['bob']}"})
        assert wrong.status_code in (200, 403) and (wrong.status_code == 403 or wrong.json()["error"]["code"] == 403)
    kmz = http.get(f"{secure_url}/arcgis/rest/services/mosaic/ImageServer/exportImage",
                   params=dict(bbox=f"{x0},{y0},{x1},{y1}", bboxSR="32633", size="20,10", f="kmz"), headers=alice)
    assert zipfile.ZipFile(io.BytesIO(kmz.content)).namelist()


def test_a_cached_tile_of_a_restricted_service_is_refused(secure_app, secure_setup):
    """The tile is in the cache after a signed-in request; an anonymous request for the same tile is
    still refused, through Flask and through `may_access` (what a path in front of Flask calls)."""
    from ogc_gateway.security.web import EXTENSION

    client = secure_app.test_client()
    row, _, col, _ = merc_range((501000, 5001200, 501000, 5001200), Z + 1)       # scene 4's middle
    url = f"/arcgis/rest/services/mosaic/ImageServer/tile/{Z + 1}/{row}/{col}"
    token = forged_token("alice", ["analyst"])
    first = client.get(url, headers={"Authorization": f"Bearer {token}"})
    assert first.status_code == 200 and first.content_type.startswith("image/")
    tiles = secure_setup[0].server.cache_dir / "tiles"
    assert any(tiles.rglob("*")), "the tile was not cached"
    assert first.headers["Cache-Control"].startswith("private")      # no shared cache may keep it for others
    assert "Authorization" in first.headers["Vary"]
    again = client.get(url)
    assert again.status_code == 499 and again.json["error"]["code"] == 499
    public = client.get(f"/arcgis/rest/services/dem/ImageServer/tile/{Z}/{ROW}/{COL}")
    assert public.status_code == 200 and public.headers["Cache-Control"].startswith("public")
    assert "Vary" not in public.headers or "Authorization" not in public.headers["Vary"]
    assert "Authorization" in client.get("/arcgis/rest/services?f=json").headers["Vary"]
    security = secure_app.extensions[EXTENSION]
    environ = {"PATH_INFO": url, "QUERY_STRING": "", "REMOTE_ADDR": "127.0.0.1"}
    assert security.may_access("mosaic", environ).status == 499
    assert security.may_access("mosaic", {**environ, "QUERY_STRING": f"token={token}"}).allowed
    assert security.may_access("mosaic", {**environ, "HTTP_AUTHORIZATION": basic("bob", PASSWORDS["bob"])[
        "Authorization"]}).status == 403
    assert security.may_access("dem", environ).allowed


def test_capabilities_fetched_with_a_token_carry_it_in_their_urls(secure_url, issued, no_proxy_session):
    http = no_proxy_session
    token = issued["alice"]
    for path in ("/arcgis/services/mosaic/ImageServer/WMSServer?SERVICE=WMS&REQUEST=GetCapabilities",
                 "/arcgis/services/mosaic/ImageServer/WCSServer?SERVICE=WCS&REQUEST=GetCapabilities",
                 "/arcgis/rest/services/mosaic/ImageServer/WMTS/1.0.0/WMTSCapabilities.xml",
                 "/ogc/wms?SERVICE=WMS&REQUEST=GetCapabilities"):
        sep = "&" if "?" in path else "?"
        xml = http.get(f"{secure_url}{path}{sep}token={token}").text
        urls = re.findall(r'(?:href|template)="([^"]+)"', xml)
        own = [u for u in urls if u.startswith(secure_url)]
        assert own and all(f"token={token}" in u for u in own), (path, own)
        plain = http.get(f"{secure_url}{path}", headers=basic("alice", PASSWORDS["alice"])).text
        assert "token=" not in plain


# --- the token service ------------------------------------------------------------------------------

def test_the_token_flow_as_an_arcgis_client_runs_it(secure_url, no_proxy_session):
    http = no_proxy_session
    info = http.get(f"{secure_url}/arcgis/rest/info", params={"f": "json"}).json()
    assert info["authInfo"] == {"isTokenBasedSecurity": True, "tokenServicesUrl": f"{secure_url}/arcgis/tokens/",
                                "shortLivedTokenValidity": 60}
    before = int(time.time() * 1000)
    resp = http.post(info["authInfo"]["tokenServicesUrl"] + "generateToken",
                     data={"username": "alice", "password": PASSWORDS["alice"], "client": "referer",
                           "referer": "http://localhost:3000/app", "expiration": "30", "f": "pjson"})
    body = resp.json()
    assert resp.text.startswith("{\n") and body["ssl"] is False
    assert before + 30 * 60_000 - 5000 <= body["expires"] <= int(time.time() * 1000) + 30 * 60_000
    root = f"{secure_url}/arcgis/rest/services/mosaic/ImageServer"
    ok = http.get(root, params={"f": "json", "token": body["token"]}, headers={"Referer": "http://localhost:3000/x"})
    assert ok.json()["name"] == "mosaic"
    posted = http.post(root, data={"f": "json", "token": body["token"]}, headers={"Referer": "http://localhost:3000/"})
    assert posted.json()["name"] == "mosaic"
    for referer in (None, "https://localhost:3000/app", "http://localhost:3001/app"):
        headers = {"Referer": referer} if referer else {}
        assert http.get(root, params={"f": "json", "token": body["token"]}, headers=headers).json()["error"][
            "code"] == 498
    also = http.post(f"{secure_url}/arcgis/rest/generateToken",
                     data={"username": "bob", "password": PASSWORDS["bob"], "expiration": "999999", "f": "json"})
    assert also.json()["expires"] <= int(time.time() * 1000) + 1440 * 60_000       # capped at max_token_minutes


def test_credentials_in_a_get_query_are_refused(secure_url, no_proxy_session):
    resp = no_proxy_session.get(f"{secure_url}/arcgis/tokens/generateToken",
                                params={"username": "alice", "password": PASSWORDS["alice"], "f": "json"})
    error = resp.json()["error"]
    assert error["code"] == 400 and "POST" in error["details"][0] and "token" not in resp.json()
    posted = no_proxy_session.post(f"{secure_url}/arcgis/tokens/generateToken?username=alice&password="
                                   f"{PASSWORDS['alice']}", data={"f": "json"})
    assert "query string" in posted.json()["error"]["details"][0] and "token" not in posted.json()


def test_the_tokens_endpoint_answers_as_arcgis_does(secure_url, no_proxy_session):
    http = no_proxy_session
    asked = http.get(f"{secure_url}/arcgis/tokens/", params={"f": "json"}).json()
    assert asked == {"error": {"code": 400, "message": "Unable to generate token.",
                               "details": ["'username' must be specified.", "'password' must be specified."]}}
    page = http.get(f"{secure_url}/arcgis/tokens/")
    assert page.headers["Content-Type"].startswith("text/html") and 'name="password"' in page.text
    posted = http.post(f"{secure_url}/arcgis/tokens/", data={"username": "bob", "password": PASSWORDS["bob"],
                                                               "f": "json"}).json()
    assert posted["token"].startswith("ogt1.")
    wrong = http.post(f"{secure_url}/arcgis/tokens/generateToken", data={"username": "bob", "password": "nope!",
                                                                          "f": "json"}).json()
    assert wrong["error"]["code"] == 400 and wrong["error"]["details"] == ["Invalid username or password."]
    unbound = http.post(f"{secure_url}/arcgis/tokens/generateToken",
                        data={"username": "bob", "password": PASSWORDS["bob"], "client": "referer", "f": "json"}).json()
    assert "'referer' must be specified" in unbound["error"]["details"][0]


def test_a_removed_user_and_a_revoked_key_stop_working_at_once(data_dir, tmp_path):
    from ogc_gateway.security import store
    config, keys = make_secure_config(data_dir, tmp_path)
    client = create_app(config).test_client()
    token = client.post("/arcgis/tokens/generateToken", data={"username": "alice", "password": PASSWORDS["alice"],
                                                               "f": "json"}).json["token"]
    url = "/arcgis/rest/services/mosaic/ImageServer?f=json"
    assert client.get(f"{url}&token={token}").json["name"] == "mosaic"
    assert client.get(f"{url}&token={keys['k-analyst']}").json["name"] == "mosaic"
    with store.editing(config.security.users_file) as ids:
        del ids.users["alice"]
        del ids.keys["k-analyst"]
    assert client.get(f"{url}&token={token}").json["error"]["code"] == 498
    assert client.get(f"{url}&token={keys['k-analyst']}").json["error"]["code"] == 498


def test_rotating_the_secret_revokes_every_token(data_dir, tmp_path):
    config, _ = make_secure_config(data_dir, tmp_path)
    client = create_app(config).test_client()
    token = client.post("/arcgis/tokens/generateToken", data={"username": "alice", "password": PASSWORDS["alice"],
                                                               "f": "json"}).json["token"]
    url = f"/arcgis/rest/services/mosaic/ImageServer?f=json&token={token}"
    assert client.get(url).json["name"] == "mosaic"
    (tmp_path / "secret.key").write_text(SECRET[::-1] + "-rotated")
    assert client.get(url).json["error"]["code"] == 498


def test_failed_sign_ins_get_429_with_retry_after(data_dir, tmp_path):
    config, _ = make_secure_config(data_dir, tmp_path, max_failed_logins=3)
    client = create_app(config).test_client()
    wms = "/arcgis/services/mosaic/ImageServer/WMSServer?SERVICE=WMS&REQUEST=GetCapabilities"
    for _ in range(3):
        resp = client.post("/arcgis/tokens/generateToken", data={"username": "alice", "password": "guess",
                                                                  "f": "json"})
        assert resp.json["error"]["code"] == 400
    blocked = client.post("/arcgis/tokens/generateToken", data={"username": "alice", "password": PASSWORDS["alice"],
                                                                 "f": "json"})
    assert blocked.status_code == 429 and 800 < int(blocked.headers["Retry-After"]) <= 900
    assert blocked.json["error"]["code"] == 429 and "token" not in blocked.json
    basic_blocked = client.get(wms, headers=basic("alice", PASSWORDS["alice"]))
    assert basic_blocked.status_code == 429 and basic_blocked.headers["Retry-After"]
    assert b"ServiceExceptionReport" in basic_blocked.data
    # other users from the same address still sign in (the address allows more failures)
    assert client.get(wms, headers=basic("root", PASSWORDS["root"])).status_code == 200


# --- HTTP hygiene (issue 15, Staying up, item 10) -------------------------------------------------------

def test_every_answer_says_nosniff(secure_app, app):
    for a in (secure_app, app):
        client = a.test_client()
        for url in ("/arcgis/rest/services?f=json", "/ogc/wms?SERVICE=WMS&REQUEST=GetCapabilities",
                    "/arcgis/rest/services/dem/ImageServer/nope", "/no/such/path"):
            assert client.get(url).headers["X-Content-Type-Options"] == "nosniff", url


def test_cors_defaults_to_any_origin_for_public_services_only(secure_app, app):
    client = secure_app.test_client()
    origin = {"Origin": "https://elsewhere.example"}
    assert client.get("/arcgis/rest/services/dem/ImageServer?f=json", headers=origin).headers[
        "Access-Control-Allow-Origin"] == "*"
    token = forged_token("alice", ["analyst"])
    restricted = client.get(f"/arcgis/rest/services/mosaic/ImageServer?f=json&token={token}", headers=origin)
    assert restricted.json["name"] == "mosaic" and "Access-Control-Allow-Origin" not in restricted.headers
    assert app.test_client().get("/arcgis/rest/services/dem/ImageServer?f=json").headers[
        "Access-Control-Allow-Origin"] == "*"          # without security: as before


def test_configured_cors_origins_are_echoed_and_others_get_none(data_dir, tmp_path):
    from dataclasses import replace
    config, _ = make_secure_config(data_dir, tmp_path)
    config = replace(config, server=replace(config.server, cors_origins=("https://app.example.org",)))
    client = create_app(config).test_client()
    token = forged_token("alice", ["analyst"])
    for url in ("/arcgis/rest/services/dem/ImageServer?f=json", f"/arcgis/rest/services/mosaic/ImageServer?f=json&token={token}"):
        good = client.get(url, headers={"Origin": "https://app.example.org"})
        assert good.headers["Access-Control-Allow-Origin"] == "https://app.example.org"
        assert "Origin" in good.headers["Vary"]
        assert "Access-Control-Allow-Origin" not in client.get(url, headers={"Origin": "https://evil.example"}).headers
    preflight = client.options("/arcgis/rest/services/mosaic/ImageServer/exportImage",
                               headers={"Origin": "https://app.example.org", "Access-Control-Request-Method": "GET",
                                        "Access-Control-Request-Headers": "X-Esri-Authorization"})
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Headers"] == "X-Esri-Authorization"


def test_allowed_hosts_refuse_other_host_headers(data_dir, tmp_path):
    """Without public_url the Host header is written into capabilities: a shared cache could be fed
    a document pointing elsewhere. allowed_hosts refuses other hosts before any view runs."""
    from dataclasses import replace

    from conftest import make_config
    config = make_config(data_dir, tmp_path / "cache", allowed_hosts=("maps.example.org", "*.example.net"))
    client = create_app(config).test_client()
    caps = "/ogc/wms?SERVICE=WMS&REQUEST=GetCapabilities"
    evil = client.get(caps, headers={"Host": "evil.example.com"})
    assert evil.status_code == 400 and b"evil" not in evil.data.split(b"\n", 1)[1]
    ok = client.get(caps, headers={"Host": "maps.example.org:8080"})
    assert ok.status_code == 200 and b"http://maps.example.org:8080/ogc/wms?" in ok.data
    assert client.get(caps, headers={"Host": "tiles.example.net"}).status_code == 200
    assert client.get(caps, headers={"Host": "example.net.evil.com"}).status_code == 400
    open_config = replace(config, server=replace(config.server, allowed_hosts=()))
    assert create_app(open_config).test_client().get(caps, headers={"Host": "anything.example"}).status_code == 200


# --- the helper the publishing API builds on -----------------------------------------------------------

def test_require_role_protects_a_view(data_dir, tmp_path, config):
    from ogc_gateway.security.web import require_role

    secured, keys = make_secure_config(data_dir, tmp_path / "on")
    app = create_app(secured)

    @require_role("admin", "publisher")
    def publish():
        return {"published": True}
    app.add_url_rule("/arcgis/admin/ping", "ping", publish, methods=["GET", "POST"])
    client = app.test_client()
    assert client.get("/arcgis/admin/ping").json["error"]["code"] == 499
    assert client.get("/arcgis/admin/ping?token=nonsense").json["error"]["code"] == 498
    assert client.get("/arcgis/admin/ping", headers=basic("bob", PASSWORDS["bob"])).json["error"]["code"] == 403
    assert client.get("/arcgis/admin/ping", headers=basic("root", PASSWORDS["root"])).json == {"published": True}
    assert client.post("/arcgis/admin/ping", data={"token": forged_token("pat", ["publisher"])}).json[
        "error"]["code"] == 498                        # pat is not in the users file
    assert client.post("/arcgis/admin/ping", data={"token": forged_token("bob", ["publisher"])}).json == \
        {"published": True}
    open_app = create_app(config)                      # no security section: nobody holds a role
    open_app.add_url_rule("/arcgis/admin/ping", "ping", require_role("admin")(lambda: "ok"))
    assert open_app.test_client().get("/arcgis/admin/ping").json["error"]["code"] == 499


def test_a_wcs_xml_post_keeps_its_body_and_checks_access(secure_app):
    """The identity check reads form bodies only; an XML request body reaches the WCS parser intact."""
    from test_wcs20 import POST_GETCOVERAGE

    client = secure_app.test_client()
    public = client.post("/arcgis/services/dem/ImageServer/WCSServer", data=POST_GETCOVERAGE,
                         content_type="application/xml")
    assert public.status_code == 200 and public.content_type.startswith("image/tiff"), public.data[:300]
    body = POST_GETCOVERAGE.replace(">dem<", ">mosaic<")
    assert body != POST_GETCOVERAGE
    refused = client.post("/arcgis/services/mosaic/ImageServer/WCSServer", data=body, content_type="application/xml")
    assert refused.status_code == 401 and b"ExceptionReport" in refused.data
    allowed = client.post("/arcgis/services/mosaic/ImageServer/WCSServer", data=body, content_type="application/xml",
                          headers=basic("alice", PASSWORDS["alice"]))
    assert allowed.status_code == 200, allowed.data[:300]
