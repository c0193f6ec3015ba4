"""The cached-tile lean path (ogc_gateway/tilefast.py): the second request for a cached tile is answered
before Flask, with the normal path's status, body and headers (WMTS RESTful and KVP, the ImageServer
tile resource, through the test client and through `requests` on a socket); tiles without data, missing
files, conditional requests and a catalog changed by `ogc-gateway catalog` in another process all go
the normal way, so nothing stale or different is ever served. No timings here (benchmarks/peers.py)."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
import requests
from PIL import Image

from conftest import make_config, serving
from ogc_gateway.app import create_app
from ogc_gateway.config import load_config
from ogc_gateway.tilefast import TileShortcut, tile_address
from test_catalog_cli import cli, write_tile
from test_tiles import calls  # noqa: F401  (fixture: engine exports counted)
from test_wmts import COL0, ROW0, Z, merc_range

WMTS_REST = f"/ogc/wmts/tile/1.0.0/dem/default/WebMercatorQuad/{Z}/{ROW0}/{COL0}.png"
WMTS_KVP = (f"/arcgis/rest/services/dem/ImageServer/WMTS?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=dem"
            f"&STYLE=default&FORMAT=image/png&TILEMATRIXSET=WebMercatorQuad&TILEMATRIX={Z}&TILEROW={ROW0}"
            f"&TILECOL={COL0}")
IMAGESERVER = f"/arcgis/rest/services/dem/ImageServer/tile/{Z}/{ROW0}/{COL0}"
MOSAIC_FULL = merc_range((500995.0, 5001195.0, 501005.0, 5001205.0), 18)      # a full (JPEG) mosaic tile
MOSAIC_EMPTY = merc_range((500000.0, 5000400.0, 500100.0, 5000500.0), 17)     # inside the scheme, no data
VARIABLE = {"date", "x-request-id"}       # headers whose value differs answer to answer


def fresh_app(data_dir, tmp_path):
    return create_app(make_config(data_dir, tmp_path / "cache"))


def shortcut(app) -> TileShortcut:
    """The lean path: the layer just inside the request observer (access log, metrics), before Flask."""
    layer = app.wsgi_app
    while not isinstance(layer, TileShortcut):
        layer = layer.app
    return layer


def same_answer(first, second) -> None:
    assert second.status_code == first.status_code and second.data == first.data
    fixed = {k: v for k, v in first.headers.items() if k.lower() not in VARIABLE}
    assert {k: v for k, v in second.headers.items() if k.lower() not in VARIABLE} == fixed
    assert ("Date" in first.headers) == ("Date" in second.headers)


@pytest.mark.parametrize("url", [WMTS_REST, WMTS_KVP, IMAGESERVER,
                                 f"/arcgis/rest/services/mosaic/ImageServer/tile/18/{MOSAIC_FULL[0]}/{MOSAIC_FULL[2]}",
                                 (f"/ogc/wmts/tile/1.0.0/mosaic/default/default/WebMercatorQuad/18/{MOSAIC_FULL[0]}/"
                                  f"{MOSAIC_FULL[2]}.jpg")])
def test_a_cached_tile_is_answered_before_flask_with_the_normal_answer(data_dir, tmp_path, calls, url):
    app = fresh_app(data_dir, tmp_path)
    client, fast = app.test_client(), shortcut(app)
    normal = client.get(url)                        # rendered with its metatile, read back from the cache
    assert normal.status_code == 200 and len(calls) == 1 and fast.served == 0
    again = client.get(url)
    assert fast.served == 1 and len(calls) == 1
    same_answer(normal, again)
    assert again.headers["Content-Type"] in ("image/png", "image/jpeg")
    assert again.headers["Access-Control-Allow-Origin"] == "*"
    assert again.headers["Cache-Control"].startswith("public, max-age=")


def test_neighbouring_tiles_of_a_known_address_are_served_and_equal_the_normal_path(data_dir, tmp_path):
    app = fresh_app(data_dir, tmp_path)
    client = app.test_client()
    first = client.get(WMTS_REST)                   # learns the address; renders the metatile
    assert first.status_code == 200
    neighbour = WMTS_REST.replace(f"/{COL0}.png", f"/{COL0 + 1}.png")
    fast_answer = client.get(neighbour)
    assert shortcut(app).served == 1
    other = fresh_app(data_dir, tmp_path)           # same cache, a worker that knows nothing yet
    same_answer(other.test_client().get(neighbour), fast_answer)
    assert shortcut(other).served == 0


def test_a_real_client_gets_the_same_headers_both_ways(data_dir, tmp_path):
    app = fresh_app(data_dir, tmp_path)
    with serving(app) as base, requests.Session() as http:
        normal = [http.get(base + url) for url in (WMTS_REST, IMAGESERVER)]
        fast = [http.get(base + url) for url in (WMTS_REST, IMAGESERVER)]
    assert shortcut(app).served == 2
    for a, b in zip(normal, fast, strict=True):
        assert b.status_code == a.status_code == 200 and b.content == a.content
        drop = VARIABLE | {"server", "connection"}          # the HTTP server's own, not the app's
        assert ({k.lower(): v for k, v in b.headers.items() if k.lower() not in drop}
                == {k.lower(): v for k, v in a.headers.items() if k.lower() not in drop})
        assert Image.open(io.BytesIO(b.content)).size == (256, 256)


def test_tiles_without_data_keep_their_answers(data_dir, tmp_path):
    app = fresh_app(data_dir, tmp_path)
    client, fast = app.test_client(), shortcut(app)
    rest = f"/arcgis/rest/services/mosaic/ImageServer/tile/17/{MOSAIC_EMPTY[1]}/{MOSAIC_EMPTY[2]}"
    wmts = f"/ogc/wmts/tile/1.0.0/mosaic/default/default/WebMercatorQuad/17/{MOSAIC_EMPTY[1]}/{MOSAIC_EMPTY[2]}.png"
    for _ in range(3):                              # ImageServer: 404, or a marked blank tile on request
        missing = client.get(rest)
        assert missing.status_code == 404 and missing.get_json()["error"]["code"] == 404
        blank = client.get(rest, query_string={"blankTile": "true"})
        assert blank.status_code == 200 and blank.headers["blank-tile"] == "true"
    assert fast.served == 0
    normal = [client.get(wmts) for _ in range(2)]   # WMTS: a transparent tile, with validators
    assert fast.served == 1
    same_answer(normal[0], normal[1])
    assert normal[1].headers["ETag"] and normal[1].content_type == "image/png"
    assert not np.asarray(Image.open(io.BytesIO(normal[1].data)).convert("RGBA"))[..., 3].any()


def test_a_missing_file_or_a_conditional_request_goes_the_normal_way(data_dir, tmp_path, calls):
    app = fresh_app(data_dir, tmp_path)
    client, fast = app.test_client(), shortcut(app)
    first = client.get(WMTS_REST)
    assert len(calls) == 1
    assert client.get(WMTS_REST, headers={"If-None-Match": first.headers["ETag"]}).status_code == 304
    assert client.head(WMTS_REST).status_code == 200
    assert fast.served == 0
    folder = next(iter(fast.folders.values()))
    os.remove(f"{folder.path}/{ROW0}/{COL0}{folder.suffix}")         # e.g. removed by `seed --clean`
    again = client.get(WMTS_REST)
    assert fast.served == 0 and len(calls) == 2                      # rendered again by the normal path
    assert again.status_code == 200 and again.data == first.data
    assert client.get(WMTS_REST).data == first.data and fast.served == 1


def test_a_catalog_change_by_another_process_is_seen_at_the_next_request(tmp_path):
    for name, west, value in (("a", 500000, 10), ("b", 506000, 20), ("c", 512000, 30)):   # 6 km wide each
        write_tile(tmp_path / "tiles" / f"{name}.tif", west, value)
    setup = tmp_path / "gateway.yaml"
    setup.write_text("server:\n  cache_dir: cache\nservices:\n  tiles:\n    sources: tiles/*.tif\n")
    app = create_app(load_config(setup))
    client, fast = app.test_client(), shortcut(app)
    row, _, col, _ = merc_range((509000.0, 5003000.0, 509100.0, 5003100.0), 15)    # inside b.tif
    url = f"/ogc/wmts/tile/1.0.0/tiles/default/WebMercatorQuad/15/{row}/{col}.png"

    def alpha(resp) -> np.ndarray:
        return np.asarray(Image.open(io.BytesIO(resp.data)).convert("RGBA"))[..., 3]
    before = [client.get(url) for _ in range(2)]
    assert fast.served == 1 and alpha(before[1]).all()
    removed = cli(setup, "remove", "tiles", "--where", "Name = 'b'")
    assert removed.returncode == 0, removed.stderr
    after = client.get(url)              # the next request: a new generation, a hole in the middle
    assert fast.served == 1
    assert after.status_code == 200 and not alpha(after).any()
    assert after.headers["ETag"] != before[1].headers["ETag"]
    assert client.get(url).data == after.data and fast.served == 2      # learnt again, in the new generation
    catalog = app.extensions["ogc_gateway"].registry["tiles"].catalog
    assert [f.generation for f in fast.folders.values()] == [catalog.last_change()]

def test_tile_addresses():
    assert tile_address("/ogc/wmts/tile/1.0.0/dem/default/WebMercatorQuad/14/5/7.png", "") == (
        ("rest", "/ogc/wmts/tile/1.0.0/dem/default/WebMercatorQuad/14", "png", ""), 5, 7)
    assert tile_address("/arcgis/rest/services/dem/ImageServer/tile/3/05/7", "blankTile=true") == (
        ("rest", "/arcgis/rest/services/dem/ImageServer/tile/3", "", "blankTile=true"), 5, 7)
    assert tile_address("/ogc/wmts", "SERVICE=WMTS&TileRow=4&LAYER=dem&tilecol=9") == (
        ("kvp", "/ogc/wmts", (("SERVICE", "WMTS"), ("LAYER", "dem"))), 4, 9)
    for path, query in (("/ogc/wmts/tile/1.0.0/dem/default/WebMercatorQuad/14/-5/7.png", ""),
                        ("/ogc/wmts/tile/1.0.0/dem/default/WebMercatorQuad/14/5/7.", ""),
                        ("/ogc/wmts/tile/1.0.0/dem/default/WebMercatorQuad/14/5/%37.png", ""),
                        ("/ogc/wmts", "TILEROW=4&TILECOL=9&TILEROW=5"), ("/ogc/wmts", "TILEROW=+4&TILECOL=9"),
                        ("/ogc/wmts", "TILEROW=4"), ("/arcgis/rest/services", "f=json")):
        assert tile_address(path, query) is None, (path, query)


def test_with_security_only_public_tiles_to_callers_without_credentials_take_the_lean_path(data_dir, tmp_path):
    """A restricted service's cached tile always goes the normal way (which checks access), and so
    does any request with credentials; a public tile to an anonymous caller takes the lean path."""
    from secure import PASSWORDS, make_secure_config

    config, _ = make_secure_config(data_dir, tmp_path / "secure")
    app = create_app(config)
    client, fast = app.test_client(), shortcut(app)
    public = IMAGESERVER                                                   # dem: access public
    restricted = f"/arcgis/rest/services/mosaic/ImageServer/tile/18/{MOSAIC_FULL[0]}/{MOSAIC_FULL[2]}"
    token = client.post("/arcgis/tokens/generateToken", data={"username": "alice", "password": PASSWORDS["alice"],
                                                             "client": "requestip", "f": "json"}).get_json()["token"]
    assert client.get(public).status_code == 200 and client.get(public).status_code == 200
    assert fast.served == 1
    assert client.get(public, query_string={"token": token}).status_code == 200 and fast.served == 1
    for _ in range(2):
        assert client.get(restricted, query_string={"token": token}).status_code == 200
    assert fast.served == 1
    refused = client.get(restricted)
    assert refused.status_code == 499 and fast.served == 1
