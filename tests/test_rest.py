"""The REST face's contract: root JSON fields, request mechanics (case, POST, blanks, JSONP, CORS),
errors in ArcGIS JSON, limits refused before any read, and no 5xx for any malformed input."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from conftest import make_config
from ogc_gateway.app import create_app
from ogc_gateway.config import Limits

ROOT = "/arcgis/rest/services/{}/ImageServer"
EXPORT = ROOT + "/exportImage"
MINIMUM_FIELDS = """currentVersion name serviceDescription description copyrightText extent initialExtent
fullExtent spatialReference pixelSizeX pixelSizeY bandCount bandNames pixelType minValues maxValues meanValues
stdvValues serviceDataType capabilities objectIdField fields defaultMosaicMethod allowedMosaicMethods
mosaicOperator sortField sortValue maxImageWidth maxImageHeight maxRecordCount maxMosaicImageCount
maxDownloadImageCount maxDownloadSizeLimit defaultCompressionQuality defaultResamplingMethod allowRasterFunction
rasterFunctionInfos rasterTypeInfos mensurationCapabilities hasHistograms hasColormap hasRasterAttributeTable
hasMultidimensions minScale maxScale minPixelSize maxPixelSize singleFusedMapCache""".split()


def error(resp):
    body = resp.get_json()
    assert resp.content_type.startswith("application/json")
    assert set(body) == {"error"} and isinstance(body["error"]["details"], list)
    return body["error"]


def test_root_has_every_field_clients_read(client):
    body = client.get(ROOT.format("mosaic"), query_string={"f": "json"}).get_json()
    assert not [f for f in MINIMUM_FIELDS if f not in body]
    assert isinstance(body["currentVersion"], float) and body["currentVersion"] >= 10.5
    assert body["serviceDataType"].startswith("esriImageService")
    assert body["bandCount"] == 4 and body["pixelType"] == "U16"
    assert body["bandNames"] == ["Blue", "Green", "Red", "NearInfrared"]
    assert body["spatialReference"] == {"wkid": 32633, "latestWkid": 32633}
    assert body["extent"]["spatialReference"]["latestWkid"] == 32633
    assert body["extent"] == body["initialExtent"] == body["fullExtent"]
    assert all(len(body[k]) == 4 for k in ("minValues", "maxValues", "meanValues", "stdvValues"))
    assert body["noDataValues"] == [0, 0, 0, 0]
    assert isinstance(body["allowedMosaicMethods"], str) and isinstance(body["capabilities"], str)
    assert "Image" in body["capabilities"]
    assert body["rasterFunctionInfos"][0]["name"] == "None"
    assert body["defaultMosaicMethod"] == "ByAttribute" and body["sortField"] == "acquired"
    assert body["sortAscending"] is False
    assert body["timeInfo"]["startTimeField"] == "acquired"
    assert body["timeInfo"]["timeExtent"] == [1705314600000, 1721039400000]   # 15 Jan / 15 Jul 2024, 10:30Z
    names = [f["name"] for f in body["fields"]]
    assert names[:2] == ["OBJECTID", "Shape"] and "cloud_cover" in names and names[-1] == "Shape_Area"


def test_root_of_a_dem_and_a_rendering_rule(client):
    body = client.get(ROOT.format("dem") + "/", query_string={"f": "pjson"}).get_json()
    assert body["pixelType"] == "F32" and body["serviceDataType"] == "esriImageServiceDataTypeElevation"
    assert body["defaultMosaicMethod"] == "NorthWest" and "timeInfo" not in body
    assert body["extent"]["xmin"] == 500000 and body["extent"]["ymax"] == 5002000
    assert body["pixelSizeX"] == 10 and body["noDataValue"] == -9999
    rule = json.dumps({"rasterFunction": "Stretch", "rasterFunctionArguments": {"StretchType": 5}})
    stretched = client.get(ROOT.format("dem"), query_string={"f": "json", "renderingRule": rule}).get_json()
    assert stretched["pixelType"] == "U8" and stretched["bandCount"] == 1


def test_directory_and_info(client):
    services = client.get("/arcgis/rest/services?f=json").get_json()
    assert {"name": "dem", "type": "ImageServer"} in services["services"]
    assert isinstance(services["currentVersion"], float)
    info = client.get("/arcgis/rest/info", query_string={"f": "json"}).get_json()
    assert info["authInfo"] == {"isTokenBasedSecurity": False}
    html = client.get("/arcgis/rest/services")
    assert html.content_type.startswith("text/html") and b"ImageServer" in html.data
    root_html = client.get(ROOT.format("dem"))
    assert root_html.content_type.startswith("text/html") and b"Export Image" in root_html.data
    form = client.get(EXPORT.format("dem"), query_string={"bbox": "500000,5000100,501900,5002000"})
    assert b"<form" in form.data and b"f=image" in form.data


def test_post_uppercase_blank_and_plus(client):
    """OpenLayers' upper-case names, classic clients' blanks, a stray '+', and POST bodies."""
    resp = client.get(EXPORT.format("dem"), query_string={
        "F": "image", "FORMAT": "PNG32", "TRANSPARENT": "true", "SIZE": "64,64",
        "BBOX": "500000,5000100,501900,5002000", "BBOXSR": "32633", "IMAGESR": "32633", "DPI": "90",
        "time": "", "noData": "", "pixelType": "", "interpolation": "+RSP_BilinearInterpolation"})
    assert resp.content_type == "image/png"
    post = client.post(EXPORT.format("dem"), data={"f": "image", "format": "jpg", "size": "32,32",
                                                   "bbox": "500000,5000100,501900,5002000"})
    assert post.content_type == "image/jpeg"
    assert client.post(ROOT.format("dem"), data={"f": "json"}).get_json()["name"] == "dem"


def test_bbox_as_envelope_json_and_sr_as_json(client):
    env = json.dumps({"xmin": 500000, "ymin": 5000100, "xmax": 501900, "ymax": 5002000,
                      "spatialReference": {"wkid": 32633}})
    body = client.get(EXPORT.format("dem"), query_string={
        "bbox": env, "imageSR": json.dumps({"wkid": 102100, "latestWkid": 3857}), "size": "50,50",
        "f": "json", "format": "png"}).get_json()
    assert body["extent"]["spatialReference"] == {"wkid": 102100, "latestWkid": 3857}
    assert 1669000 < body["extent"]["xmin"] < 1670000        # 15° E in Web Mercator metres


def test_jsonp_and_cors(client):
    resp = client.get(ROOT.format("dem"), query_string={"f": "json", "callback": "cb.done_1"})
    assert resp.data.startswith(b"cb.done_1({") and resp.data.endswith(b"});")
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    img = client.get(EXPORT.format("dem"), query_string={"f": "image", "size": "8,8"})
    assert img.headers["Access-Control-Allow-Origin"] == "*"
    bad = error(client.get(ROOT.format("dem"), query_string={"f": "json", "callback": "alert(1)//"}))
    assert bad["code"] == 400 and "callback" in bad["message"]
    pre = client.open(EXPORT.format("dem"), method="OPTIONS", headers={"Access-Control-Request-Method": "POST"})
    assert pre.headers["Access-Control-Allow-Origin"] == "*" and "POST" in pre.headers["Access-Control-Allow-Methods"]


@pytest.mark.parametrize("params, code, words", [
    ({"bbox": "1,2,3"}, 400, "bbox"),
    ({"bbox": "a,b,c,d"}, 400, "bbox"),
    ({"bbox": "5,5,5,1"}, 400, "xmin"),
    ({"format": "webm"}, 400, "format"),
    ({"size": "100000,100000"}, 400, "limit"),
    ({"size": "0,10"}, 400, "size"),
    ({"mosaicRule": "{bad json"}, 400, "mosaicRule"),
    ({"mosaicRule": '{"mosaicMethod": "esriMosaicSideways"}'}, 400, "mosaicMethod"),
    ({"renderingRule": '{"rasterFunction": "Teleport"}'}, 400, "Teleport"),
    ({"renderingRule": '[1]'}, 400, "renderingRule"),
    ({"bandIds": "7"}, 400, "band 7"),
    ({"bboxSR": "999999"}, 400, "bboxSR"),
    ({"pixelType": "U64"}, 400, "pixelType"),
    ({"time": "5,1"}, 400, "time"),
    ({"interpolation": "RSP_Fancy"}, 400, "interpolation"),
    ({"compressionQuality": "120"}, 400, "compressionQuality"),
    ({"lercVersion": "3", "format": "lerc"}, 400, "lercVersion"),
    ({"noData": "1,2", "bandIds": "0"}, 400, "noData"),
])
def test_bad_input_gets_a_clear_400(client, params, code, words):
    query = {"f": "image", "bbox": "500000,5000100,501900,5002000", "size": "16,16"} | params
    err = error(client.get(EXPORT.format("dem"), query_string=query))
    assert err["code"] == code
    assert words.lower() in (err["message"] + " ".join(err["details"])).lower()


def test_unknown_service_and_operation(client):
    assert error(client.get(ROOT.format("nope"), query_string={"f": "json"}))["code"] == 404
    assert error(client.get(ROOT.format("dem") + "/teleport", query_string={"f": "json"}))["code"] == 400


def test_real_http_codes_when_configured(data_dir, tmp_path):
    app = create_app(make_config(data_dir, tmp_path, rest_http_errors=True), sync=True)
    resp = app.test_client().get(EXPORT.format("dem"), query_string={"f": "image", "bbox": "x"})
    assert resp.status_code == 400 and error(resp)["code"] == 400
    assert app.test_client().get(ROOT.format("nope") + "?f=json").status_code == 404


def test_limits_refuse_before_reading(data_dir, tmp_path, monkeypatch):
    config = make_config(data_dir, tmp_path)
    tight = Limits(max_image_width=4100, max_image_height=4100, max_mosaic_image_count=2, max_source_pixels=5000)
    config.services["dem"] = replace(config.services["dem"], limits=tight)
    client = create_app(config).test_client()
    from ogc_gateway.engine import read
    real_read, read_paths = read.read, []
    monkeypatch.setattr(read, "read", lambda p, *a, **k: read_paths.append(p.path) or real_read(p, *a, **k))
    # four tiles meet the box: the first two in mosaic order (Northwest: r0_c0, r0_c1) are read
    many = client.get(EXPORT.format("dem"), query_string={
        "f": "image", "format": "tiff", "bbox": "500000,5000100,501900,5002000", "size": "10,10"})
    assert many.content_type == "image/tiff"
    assert [p.rsplit("/", 1)[1] for p in read_paths] == ["dem_r0_c0.tif", "dem_r0_c1.tif"]
    read_paths.clear()
    big = error(client.get(EXPORT.format("dem"), query_string={
        "f": "image", "format": "tiff", "bbox": "500000,5001100,500900,5002000", "size": "90,90"}))
    assert big["code"] == 400 and "source pixels" in big["message"] and read_paths == []


GARBAGE = ["", " ", "+", "null", "{}", "[]", "{", "]", "-1", "0", "1e309", "nan", "NaN,1,2,3", "1,2,3,4,5",
           "\x00", "'; DROP TABLE items; --", '{"wkid": "x"}', '{"rasterFunction": {"a": 1}}', "9" * 400,
           '{"mosaicMethod": 5, "lockRasterIds": "x"}', '{"xmin": "a"}', "%s%s", "true",
           '{"wkt": "PROJCS[broken"}', '{"wkid": 5514.5}', "EPSG:0", "104999", '{"latestWkid": 1}',
           '{"rasterFunction": "Stretch", "rasterFunctionArguments": {"StretchType": "x"}}',
           '{"rasterFunction": "Stretch", "rasterFunctionArguments": {"Raster": "$999"}}']
PARAMS = ["bbox", "bboxSR", "imageSR", "size", "time", "format", "pixelType", "noData", "noDataInterpretation",
          "interpolation", "compression", "compressionQuality", "compressionTolerance", "bandIds", "mosaicRule",
          "renderingRule", "adjustAspectRatio", "lercVersion", "sliceId", "validateExtent", "f", "callback"]


@pytest.mark.parametrize("name", PARAMS)
def test_no_malformed_value_gives_a_server_error(client, name):
    for value in GARBAGE:
        query = {"f": "image", "format": "tiff", "bbox": "500000,5000100,501900,5002000", "size": "16,16",
                 name: value}
        resp = client.get(EXPORT.format("dem"), query_string=query)
        assert resp.status_code < 500, (name, value)
        if resp.content_type.startswith("application/json"):
            body = resp.get_json(silent=True) or {}
            assert body.get("error", {}).get("code", 200) < 500, (name, value, body)
