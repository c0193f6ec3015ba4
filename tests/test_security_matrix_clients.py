"""The access matrix again, through the clients themselves: OWSLib (WMS, WCS, WMTS) and GDAL through
rasterio (WCS, WMS, WMTS drivers) x every way of asking x a public (dem) and a restricted (mosaic)
service, on a real socket. A refusal must reach the client as a failure (OWSLib's ServiceException,
GDAL's open or read error); an answer must hold the right values where the format carries values.

How each way of asking is sent: tokens as `Authorization: Bearer` (OWSLib `headers=`, GDAL
`GDAL_HTTP_HEADERS`), the right role's token in the capabilities URL (`token=`), Basic as
`username=`/`password=` (OWSLib) or `GDAL_HTTP_AUTH=BASIC` + `GDAL_HTTP_USERPWD`, the API key as the
Basic password under any user name."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import rasterio
from owslib.util import Authentication, ServiceException
from PIL import Image
from rasterio.errors import RasterioIOError
from rasterio.io import MemoryFile

from secure import PASSWORDS, forged_token
from synth import mosaic_value
from test_security_access import (  # noqa: F401
    CASES,
    REFERER,
    api_keys,
    expected,
    issued,
    no_proxy_session,
    secure_app,
    secure_setup,
    secure_url,
)
from test_wcs10 import dem_truth

pytestmark = pytest.mark.slow                    # OWSLib and GDAL x the access matrix, real socket

WMS_PATH = "/arcgis/services/{}/ImageServer/WMSServer"
WCS_PATH = "/arcgis/services/{}/ImageServer/WCSServer"
WMTS_CAPS = "/arcgis/rest/services/{}/ImageServer/WMTS/1.0.0/WMTSCapabilities.xml"
EVIL = "https://evil.example.org/viewer/index.html"


def asking(case: str, issued: dict, keys: dict) -> dict:
    """{token_in_url, headers, user, password} of one way of asking."""
    out = {"token_in_url": None, "headers": {}, "user": None, "password": None}
    if case == "bad_token":
        out["headers"] = {"Authorization": "Bearer " + forged_token("alice", ["analyst"],
                                                                    secret="another secret of enough length 0123456")}
    elif case == "expired":
        out["headers"] = {"Authorization": "Bearer " + forged_token("alice", ["analyst"], minutes=-1)}
    elif case == "wrong_referer":
        out["headers"] = {"Authorization": f"Bearer {issued['alice_referer']}", "Referer": EVIL}
    elif case == "wrong_role":
        out["headers"] = {"Authorization": f"Bearer {issued['bob']}"}
    elif case == "right_role":
        out["token_in_url"] = issued["alice"]
    elif case == "api_key":
        out["user"], out["password"] = "any-name", keys["k-analyst"]
    elif case == "basic":
        out["user"], out["password"] = "alice", PASSWORDS["alice"]
    return out


def with_token(url: str, token: str | None) -> str:
    return url if token is None else f"{url}{'&' if '?' in url else '?'}token={token}"


def in_thread(fn):
    """GDAL keeps some failure state per thread: each read in a fresh one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result()


def check_mosaic_scene1(values: np.ndarray) -> None:
    """Scene 1's value in every band: the box lies within scene 1 alone."""
    for b in range(values.shape[0]):
        assert set(np.unique(values[b]).tolist()) == {mosaic_value(1, b)}


# --- OWSLib -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("service", ["dem", "mosaic"])
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("face", ["wms", "wcs", "wmts"])
def test_owslib_matrix(face, case, service, secure_url, issued, api_keys, local_clients):
    a = asking(case, issued, api_keys)
    code = expected(case, service)

    def run():
        if face == "wms":
            from owslib.wms import WebMapService
            wms = WebMapService(with_token(secure_url + WMS_PATH.format(service), a["token_in_url"]), version="1.3.0",
                                username=a["user"], password=a["password"], headers=a["headers"])
            png = wms.getmap(layers=[service], styles=[""], srs="EPSG:32633", bbox=(500000, 5001800, 500400, 5002000),
                             size=(20, 10), format="image/png", time="2024-01-15T10:30:00Z").read()
            assert Image.open(io.BytesIO(png)).size == (20, 10)
        elif face == "wcs":
            from owslib.wcs import WebCoverageService
            auth = Authentication(username=a["user"], password=a["password"]) if a["user"] else None
            wcs = WebCoverageService(with_token(secure_url + WCS_PATH.format(service), a["token_in_url"]),
                                     version="2.0.1", auth=auth, headers=a["headers"])
            subsets = [("E", 500000, 500400), ("N", 5001800, 5002000)]
            if service == "mosaic":
                subsets.append(("time", "2024-01-15T10:30:00Z"))
            data = wcs.getCoverage(identifier=service, format="image/tiff", subsets=subsets).read()
            with MemoryFile(data) as mem, mem.open() as ds:
                values = ds.read()
                box = tuple(ds.bounds)
            if service == "mosaic":
                check_mosaic_scene1(values)
            else:
                truth, _ = dem_truth(box, values.shape[2], values.shape[1])
                assert np.array_equal(values[0], truth)
        else:
            from owslib.wmts import WebMapTileService
            wmts = WebMapTileService(with_token(secure_url + WMTS_CAPS.format(service), a["token_in_url"]),
                                     username=a["user"], password=a["password"], headers=a["headers"])
            tile = wmts.gettile(layer=service, tilematrixset="WebMercatorQuad", tilematrix="14", row=5882,
                                column=8874, format="image/png", style="default").read()
            assert Image.open(io.BytesIO(tile)).size == (256, 256)

    if code == 200:
        run()
    else:
        with pytest.raises(ServiceException):
            run()


# --- GDAL ---------------------------------------------------------------------------------------------

def gdal_env(a: dict) -> dict:
    options = {}
    if a["user"]:
        options.update(GDAL_HTTP_AUTH="BASIC", GDAL_HTTP_USERPWD=f"{a['user']}:{a['password']}")
    if a["headers"]:
        options["GDAL_HTTP_HEADERS"] = "\r\n".join(f"{k}: {v}" for k, v in a["headers"].items())
    return options


@pytest.mark.parametrize("service", ["dem", "mosaic"])
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("face", ["wcs", "wms", "wmts"])
def test_gdal_matrix(face, case, service, secure_url, issued, api_keys, local_clients, tmp_path):
    a = asking(case, issued, api_keys)
    code = expected(case, service)

    def read():
        with rasterio.Env(**gdal_env(a)):
            if face == "wcs":
                url = with_token(f"{secure_url}{WCS_PATH.format(service)}?version=2.0.1&coverage={service}",
                                 a["token_in_url"])
                subset = ";time(2024-01-15T10:30:00Z)" if service == "mosaic" else ""
                with rasterio.open(f"WCS:{url}", CACHE=str(tmp_path / "wcs"),
                                   SUBSET=f"E(500000,500400);N(5001800,5002000){subset}") as ds:
                    return ds.read(), ds.transform
            if face == "wms":          # scene 4's box: the latest time, which WMS shows by default
                url = with_token(f"{secure_url}{WMS_PATH.format(service)}?SERVICE=WMS&VERSION=1.1.1&REQUEST=GetMap"
                                 f"&LAYERS={service}&SRS=EPSG:32633&BBOX=500700,5001000,501300,5001400",
                                 a["token_in_url"])
                with rasterio.open(f"WMS:{url}") as ds:
                    return ds.read(out_shape=(ds.count, 64, 64)), None
            url = with_token(secure_url + WMTS_CAPS.format(service), a["token_in_url"])
            with rasterio.open(f"WMTS:{url},layer={service},tilematrixset=WebMercatorQuad", TILEMATRIX="14") as ds:
                return ds.read(), None

    if code != 200:
        with pytest.raises(RasterioIOError):
            in_thread(read)
        return
    values, transform = in_thread(read)
    if face == "wcs":
        cols, rows = np.meshgrid(np.arange(values.shape[2]) + 0.5, np.arange(values.shape[1]) + 0.5)
        xs, ys = transform * (cols, rows)
        if service == "mosaic":     # January: scene 1 alone (x 500000..501200, y 5000800..5002000), else nodata
            res = abs(transform.a)
            inside = (xs > 500000 + res) & (xs < 501200 - res) & (ys > 5000800 + res) & (ys < 5002000 - res)
            outside = (xs < 500000 - res) | (xs > 501200 + res) | (ys < 5000800 - res) | (ys > 5002000 + res)
            for b in range(4):
                assert inside.any() and (values[b][inside] == mosaic_value(1, b)).all()
                assert (values[b][outside] == 0).all()
                assert set(np.unique(values[b]).tolist()) <= {0, mosaic_value(1, b)}
        else:
            half = abs(transform.a) / 2          # dem_truth takes the box whose pixel centres these are
            truth, _ = dem_truth((xs.min() - half, ys.min() - half, xs.max() + half, ys.max() + half),
                                 values.shape[2], values.shape[1])
            assert np.array_equal(values[0], truth)
    else:                       # a picture: opaque pixels where the data is
        assert values.shape[0] in (3, 4) and values[-1].any()
