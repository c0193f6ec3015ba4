"""One-band renderings with holes are written as grey+alpha (LA) PNGs, not RGBA (issue 13): the
clients must decode the same RGBA pixels — Pillow (browsers' and OWSLib users' decoder) and GDAL's
WMS driver, which fetches GetMap blocks over a real socket and expands them into four bands."""

from __future__ import annotations

import io

import numpy as np
import pytest
import rasterio
from PIL import Image

from ogc_gateway.engine.pictures import encode_rgba

DEM_BOX = (500000.0, 5000100.0, 501900.0, 5002000.0)   # tests/synth.py's DEM, with its hole


def test_grey_rgba_with_holes_is_la_and_decodes_to_the_same_rgba():
    rng = np.random.default_rng(3)
    grey = rng.integers(0, 256, (37, 53), dtype=np.uint8)
    alpha = np.where(rng.random((37, 53)) < 0.3, 0, 255).astype(np.uint8)
    image = np.stack([grey, grey, grey, alpha], axis=2)
    decoded = Image.open(io.BytesIO(encode_rgba(image, "png").data))
    assert decoded.mode == "LA"
    assert np.array_equal(np.asarray(decoded.convert("RGBA")), image)
    coloured = image.copy()
    coloured[5, 7, 1] ^= 1                        # one pixel not grey: RGBA as before
    decoded = Image.open(io.BytesIO(encode_rgba(coloured, "png").data))
    assert decoded.mode == "RGBA" and np.array_equal(np.asarray(decoded), coloured)


@pytest.mark.slow
def test_gdal_wms_driver_reads_la_getmaps_as_pillow_does(live_url, client, tmp_path, monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    west, south, east, north = DEM_BOX
    xml = tmp_path / "dem.xml"
    xml.write_text(f"""<GDAL_WMS>
  <Service name="WMS">
    <Version>1.1.1</Version>
    <ServerUrl>{live_url}/ogc/wms?</ServerUrl>
    <SRS>EPSG:32633</SRS>
    <ImageFormat>image/png</ImageFormat>
    <Transparent>TRUE</Transparent>
    <Layers>dem</Layers>
  </Service>
  <DataWindow>
    <UpperLeftX>{west}</UpperLeftX><UpperLeftY>{north}</UpperLeftY>
    <LowerRightX>{east}</LowerRightX><LowerRightY>{south}</LowerRightY>
    <SizeX>190</SizeX><SizeY>190</SizeY>
  </DataWindow>
  <BandsCount>4</BandsCount>
  <BlockSizeX>190</BlockSizeX><BlockSizeY>190</BlockSizeY>
</GDAL_WMS>
""")
    with rasterio.Env(GDAL_DEFAULT_WMS_CACHE_PATH=str(tmp_path / "cache"), GDAL_HTTP_MAX_RETRY="0"):
        with rasterio.open(xml) as ds:
            assert ds.count == 4
            bands = ds.read()
    resp = client.get("/ogc/wms", query_string=dict(
        SERVICE="WMS", VERSION="1.1.1", REQUEST="GetMap", LAYERS="dem", STYLES="", SRS="EPSG:32633",
        BBOX=",".join(str(v) for v in DEM_BOX), WIDTH=190, HEIGHT=190, FORMAT="image/png",
        TRANSPARENT="TRUE"))
    picture = Image.open(io.BytesIO(resp.data))
    assert picture.mode == "LA"                                  # the DEM has a hole: grey + alpha
    rgba = np.asarray(picture.convert("RGBA"))
    assert (rgba[..., 3] == 0).any() and (rgba[..., 3] == 255).any()
    assert np.array_equal(np.moveaxis(rgba, 2, 0), bands)
