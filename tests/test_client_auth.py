"""Secured services: a fixed token, and registered GIS connections whose tokens come from
`{url}/tokens/generateToken` and are renewed before they expire (ArcGIS Server's security is
played by client_fixtures.TokenGate in front of the app)."""

from __future__ import annotations

import logging
import os
import stat
import time

import numpy as np
import pytest
import requests

from client_fixtures import TokenGate
from conftest import serving
from ogc_gateway.client import ImageServiceClient, ImageServiceError, register_gis, unregister_gis
from ogc_gateway.client.gis import get_gis, registry_path
from synth import DEM_NODATA

logging.getLogger("werkzeug").setLevel(logging.ERROR)
USERS = {"alice": "p@ssw0rd"}


@pytest.fixture()
def registry(tmp_path, monkeypatch):
    monkeypatch.setenv("OGC_GATEWAY_GIS_FILE", str(tmp_path / "conf" / "gis.json"))
    return tmp_path / "conf" / "gis.json"


@pytest.fixture(scope="module")
def gate(app):
    return TokenGate(app, USERS)


@pytest.fixture(scope="module")
def secured(gate):
    with serving(gate) as url:
        yield url


def dem(url, **kw):
    return ImageServiceClient(f"{url}/arcgis/rest/services/dem/ImageServer", **kw)


def generate(url, **form):
    body = dict(username="alice", password="p@ssw0rd", client="requestip", expiration=5, f="json") | form
    return requests.post(f"{url}/arcgis/tokens/generateToken", data=body, timeout=30).json()


def test_without_a_token_a_secured_service_refuses(secured):
    with pytest.raises(ImageServiceError) as err:
        _ = dem(secured).info
    assert err.value.code == 499


def test_a_token_reads_a_secured_service(secured, client):
    token = generate(secured)["token"]
    data, profile = dem(secured, token=token).export(extent=(500000, 5001000, 500640, 5001500))
    direct = client.get("/arcgis/rest/services/dem/ImageServer/exportImage",
                        query_string=dict(bbox="500000,5001000,500640,5001500", size="64,50", format="tiff",
                                          f="image"))
    import rasterio.io
    with rasterio.io.MemoryFile(direct.data) as mem, mem.open() as ds:
        assert np.array_equal(data, ds.read())
    with pytest.raises(ImageServiceError) as err:
        _ = dem(secured, token="forged").info
    assert err.value.code == 498


def test_register_gis_once_in_a_private_file_and_read_with_it(secured, registry, gate):
    register_gis("myGIS", url=f"{secured}/arcgis", username="alice", password="p@ssw0rd")
    assert stat.S_IMODE(os.stat(registry).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(registry.parent).st_mode) == 0o700
    assert registry_path() == registry and get_gis("myGIS").username == "alice"
    with pytest.raises(ValueError, match="already registered"):
        register_gis("myGIS", url=f"{secured}/arcgis", username="alice", password="p@ssw0rd")
    data, _ = dem(secured, gis="myGIS").export(extent=(500100, 5001800, 500200, 5001900))
    assert np.all(data == DEM_NODATA)                       # the DEM's hole, read through the gate
    unregister_gis("myGIS")
    with pytest.raises(KeyError, match="myGIS"):
        dem(secured, gis="myGIS")
    with pytest.raises(KeyError):
        unregister_gis("myGIS")


def test_wrong_credentials_fail_at_registration(secured, registry):
    with pytest.raises(ImageServiceError, match="Unable to generate token"):
        register_gis("bad", url=f"{secured}/arcgis", username="alice", password="wrong")
    with pytest.raises(KeyError):
        get_gis("bad")


def test_a_token_the_server_rejects_is_renewed_once(secured, registry, gate):
    register_gis("renew", url=f"{secured}/arcgis", username="alice", password="p@ssw0rd")
    client = dem(secured, gis="renew")
    assert client.info["name"] == "dem"
    before = gate.generated
    gate.revoke_all()                                       # as a server restart would
    data, _ = client.export(extent=(500000, 5001000, 500640, 5001500))
    assert data.shape == (1, 50, 64)
    assert gate.generated == before + 1


def test_tokens_are_renewed_before_they_expire(app, registry):
    gate = TokenGate(app, USERS, life_s=1.5)
    with serving(gate) as url:
        register_gis("short", url=f"{url}/arcgis", username="alice", password="p@ssw0rd")
        client = dem(url, gis="short")
        _ = client.info
        first = gate.used[-1]
        time.sleep(1.3)          # within the last fifth of the token's life: renewed before use
        client.get_json("")
        assert gate.used[-1] != first
        assert all(t == gate.used[-1] or t == first for t in gate.used)


def test_referer_tokens_carry_their_referer(secured, registry, gate):
    """client=referer (the default, so executors on other hosts can use a driver's token): the
    referer is sent with every request, and a request without it is refused."""
    reg = register_gis("ref", url=f"{secured}/arcgis", username="alice", password="p@ssw0rd")
    assert reg.client == "referer"
    client = dem(secured, gis="ref")
    assert client.info["name"] == "dem"
    token = client.credentials.token()
    bare = requests.get(f"{secured}/arcgis/rest/services/dem/ImageServer", params={"f": "json", "token": token},
                        timeout=30).json()
    assert bare["error"]["code"] == 498


def test_make_layer_of_a_secured_service_with_a_gis_and_with_a_token(secured, registry, gate, tmp_path,
                                                                     monkeypatch):
    """The layer carries the token (and GDAL sends the GIS's referer, <Referer>), so GDAL reads
    the secured service; the .tif is made through the client with the same credentials."""
    import rasterio

    from ogc_gateway.client import make_image_server_layer

    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    register_gis("layers", url=f"{secured}/arcgis", username="alice", password="p@ssw0rd")
    url = f"{secured}/arcgis/rest/services/dem/ImageServer"
    box = (500000, 5001000, 500640, 5001500)
    truth, _ = dem(secured, gis="layers").export(extent=box)
    token = generate(secured)["token"]
    for name, creds in (("gis.xml", dict(gis="layers")), ("token.xml", dict(token=token)),
                        ("gis.tif", dict(gis="layers"))):
        out = make_image_server_layer(url, tmp_path / name, extent=box, progress=False, **creds)
        with rasterio.Env(GDAL_HTTP_MAX_RETRY="0"), rasterio.open(out) as ds:
            assert np.array_equal(ds.read(), truth), name
    assert "<Referer>" in (tmp_path / "gis.xml").read_text()
