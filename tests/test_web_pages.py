"""The HTML pages without a browser: what they are sent with (a strict Content-Security-Policy), that
nothing in them needs an inline script or style, readable spatial references, operation pages
opened with working defaults, errors told on the page, and the viewer's bundled files."""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import pytest
from lxml import html as lxml_html

PAGES = ["/arcgis/rest/services", "/arcgis/rest/services/dem/ImageServer",
         "/arcgis/rest/services/dem/ImageServer/viewer", "/arcgis/rest/services/ts/ImageServer/viewer",
         "/arcgis/rest/services/mosaic/ImageServer/exportImage",
         "/arcgis/rest/services/mosaic/ImageServer/exportImage?bbox=500000,5000400,502000,5002000&f=html",
         "/arcgis/rest/services/dem/ImageServer/identify", "/arcgis/rest/services/dem/ImageServer/query",
         "/arcgis/rest/services/dem/ImageServer/legend", "/arcgis/rest/services/mosaic/ImageServer/1/info"]


def directives(header: str) -> dict[str, list[str]]:
    out = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def test_root_redirects_to_the_services_directory(client):
    resp = client.get("/")
    assert resp.status_code == 302
    assert urlsplit(resp.headers["Location"]).path == "/arcgis/rest/services"


@pytest.mark.parametrize("path", PAGES)
def test_pages_forbid_and_need_no_inline_script_or_style(client, path):
    resp = client.get(path)
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    csp = directives(resp.headers["Content-Security-Policy"])
    assert csp["script-src"] == ["'self'"] and csp["style-src"] == ["'self'"]
    assert csp["default-src"] == ["'self'"] and csp["object-src"] == ["'none'"]
    doc = lxml_html.fromstring(resp.data)
    for script in doc.iter("script"):
        # a script is a file of this server, or a JSON data block (never executed)
        assert script.get("src", "").startswith("/arcgis/rest/static/") or script.get("type") == "application/json"
        if script.get("src"):
            assert not (script.text or "").strip()
    assert not list(doc.iter("style")), "an inline <style> element"
    for el in doc.iter():
        if not isinstance(el.tag, str):
            continue
        assert "style" not in el.attrib, f"inline style on <{el.tag}>"
        assert not [a for a in el.attrib if a.lower().startswith("on")], f"inline handler on <{el.tag}>"
        for attr in ("href", "src", "action"):
            assert not el.get(attr, "").lower().startswith("javascript:")
    # every script and stylesheet it names is served
    for ref in doc.xpath("//script/@src | //link[@rel='stylesheet']/@href"):
        assert client.get(ref).status_code == 200, ref


def test_json_answers_are_unchanged(client):
    """The REST face's JSON gains no header or field from the pages."""
    resp = client.get("/arcgis/rest/services?f=json")
    assert "Content-Security-Policy" not in resp.headers
    assert resp.get_json() == {"currentVersion": 11.3, "folders": [],
                               "services": [{"name": n, "type": "ImageServer"} for n in ("dem", "mosaic", "ts")]}


def test_readable_spatial_reference_and_folded_wkt(client):
    page = client.get("/arcgis/rest/services/dem/ImageServer").get_data(as_text=True)
    assert "WGS 84 / UTM zone 33N (EPSG:32633)" in page
    assert "{'wkid'" not in page and "latestWkid" not in page
    doc = lxml_html.fromstring(page)
    wkt = doc.xpath("//details/pre[@class='wkt']")[0].text
    assert wkt.startswith("PROJCRS[") and "UTM zone 33N" in wkt
    assert doc.xpath("//a[@class='button view']/@href") == ["http://localhost/arcgis/rest/services/dem/ImageServer/viewer"]
    ts = client.get("/arcgis/rest/services/ts/ImageServer").get_data(as_text=True)
    assert "WGS 84 (EPSG:4326)" in ts and "2024-01-01" in ts


def test_directory_names_every_way_to_reach_each_service(client):
    doc = lxml_html.fromstring(client.get("/arcgis/rest/services").data)
    for name in ("dem", "mosaic", "ts"):
        section = doc.get_element_by_id(f"service-{name}")
        hrefs = section.xpath(".//a/@href")
        assert f"http://localhost/arcgis/rest/services/{name}/ImageServer/viewer" in hrefs
        base = f"http://localhost/arcgis/services/{name}/ImageServer"
        assert f"{base}/WMSServer?SERVICE=WMS&REQUEST=GetCapabilities" in hrefs
        assert f"{base}/WCSServer?SERVICE=WCS&REQUEST=GetCapabilities" in hrefs
        assert f"http://localhost/arcgis/rest/services/{name}/ImageServer/WMTS/1.0.0/WMTSCapabilities.xml" in hrefs
        assert len(section.xpath(".//button[@class='copy']")) == 4
        for href in hrefs:
            assert client.get(href).status_code == 200, href
        assert client.get(section.xpath(".//img/@src")[0]).mimetype == "image/png"
    mosaic = doc.get_element_by_id("service-mosaic").text_content()
    assert "time 2024-01-15" in mosaic            # the time extent, readable


def test_viewer_settings(client):
    doc = lxml_html.fromstring(client.get("/arcgis/rest/services/mosaic/ImageServer/viewer").data)
    config = json.loads(doc.get_element_by_id("viewer-config").text)
    assert config["extent"] == [500000.0, 5000400.0, 502000.0, 5002000.0]
    projection = config["projection"]
    assert projection["code"] == "EPSG:32633"
    assert "+proj=utm" in projection["proj4"] and "+zone=33" in projection["proj4"]
    assert projection["northFirst"] is False
    caps = client.get("/arcgis/rest/services/mosaic/ImageServer/WMTS/1.0.0/WMTSCapabilities.xml").get_data(as_text=True)
    for label in config["timeLabels"]:          # the slider's times are those the WMTS offers
        assert f"<Value>{label}</Value>" in caps
    assert len(config["times"]) == len(config["timeLabels"]) > 1
    ts = json.loads(lxml_html.fromstring(client.get("/arcgis/rest/services/ts/ImageServer/viewer").data)
                    .get_element_by_id("viewer-config").text)
    assert ts["projection"]["northFirst"] is True and ts["projection"]["code"] == "EPSG:4326"


def test_viewer_of_a_missing_service_is_a_rest_error(client):
    body = client.get("/arcgis/rest/services/nope/ImageServer/viewer").get_json()
    assert body["error"]["code"] == 404


def form_values(doc) -> dict[str, str]:
    return {i.get("name"): i.get("value") or "" for i in doc.xpath("//main//form//input")}


def test_export_form_opens_with_a_working_request(client):
    doc = lxml_html.fromstring(client.get("/arcgis/rest/services/dem/ImageServer/exportImage").data)
    values = form_values(doc)
    assert values["bbox"] == "500000.0,5000100.0,501900.0,5002000.0" and values["bboxSR"] == "32633"
    assert values["size"] == "400,400" and values["format"] == "png"
    # submitted as it is: the page shows the picture, which is a 400 x 400 PNG
    query = {k: v for k, v in values.items() if v} | {"f": "html"}
    page = lxml_html.fromstring(client.get("/arcgis/rest/services/dem/ImageServer/exportImage",
                                           query_string=query).data)
    src = page.xpath("//img[@class='result']/@src")[0]
    image = client.get(src)
    assert image.mimetype == "image/png"
    import io

    from PIL import Image
    assert Image.open(io.BytesIO(image.data)).size == (400, 400)


def test_export_form_tells_the_error(client):
    page = client.get("/arcgis/rest/services/dem/ImageServer/exportImage",
                      query_string={"bbox": "1,2,3", "f": "html"})
    assert page.status_code == 200
    doc = lxml_html.fromstring(page.data)
    assert "bbox" in doc.xpath("//p[@class='error']")[0].text_content()
    assert not doc.xpath("//img[@class='result']")


@pytest.mark.parametrize("operation, key", [("identify", "value"), ("query", "features"), ("getSamples", "samples"),
                                            ("computeHistograms", "histograms"),
                                            ("computeStatisticsHistograms", "statistics")])
def test_operation_forms_open_with_working_defaults(client, operation, key):
    url = f"/arcgis/rest/services/dem/ImageServer/{operation}"
    doc = lxml_html.fromstring(client.get(url).data)
    values = {k: v for k, v in form_values(doc).items() if v}
    assert not doc.xpath("//pre"), "a form with required parameters waits for its submission"
    result = lxml_html.fromstring(client.get(url, query_string=values).data).xpath("//pre")[0].text
    assert key in json.loads(result)
    # the same request as JSON answers the same
    assert json.loads(result) == client.get(url, query_string=values | {"f": "json"}).get_json()


def test_identify_default_is_the_centre_of_the_service(client):
    doc = lxml_html.fromstring(client.get("/arcgis/rest/services/dem/ImageServer/identify").data)
    geometry = json.loads(form_values(doc)["geometry"])
    assert (geometry["x"], geometry["y"]) == (500950.0, 5001050.0)
    assert geometry["spatialReference"]["wkid"] == 32633


def test_operation_error_shown_on_the_page(client):
    resp = client.get("/arcgis/rest/services/dem/ImageServer/identify",
                      query_string={"geometry": "{not json", "geometryType": "esriGeometryPoint", "f": "html"})
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    doc = lxml_html.fromstring(resp.data)
    assert "geometry" in doc.xpath("//p[@class='error']")[0].text_content()


def test_resources_show_their_answer_at_once(client):
    doc = lxml_html.fromstring(client.get("/arcgis/rest/services/dem/ImageServer/legend").data)
    assert "legend" in json.loads(doc.xpath("//pre")[0].text)["layers"][0]


def test_bundle_and_its_licences_are_served(client):
    js = client.get("/arcgis/rest/static/viewer.js")
    assert js.status_code == 200 and js.mimetype in ("text/javascript", "application/javascript")
    licences = client.get("/arcgis/rest/static/LICENSES.txt").get_data(as_text=True)
    assert re.search(r"^ol \d+\.\d+\.\d+ \(BSD-2-Clause\)", licences, re.M)
    assert re.search(r"^proj4 \d+\.\d+\.\d+ \(MIT\)", licences, re.M)
    assert "Redistribution and use in source and binary forms" in licences


def test_bundle_loads_nothing_from_another_host(client):
    """No CDN: no script, style sheet, font or image of another host is named in the bundle (the
    browser tests also fail any request that leaves 127.0.0.1)."""
    for path in ("/arcgis/rest/static/viewer.js", "/arcgis/rest/static/viewer.css", "/arcgis/rest/static/pages.js"):
        text = client.get(path).get_data(as_text=True)
        for url in re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}[^\s\"'`)]*", text):
            assert not re.search(r"\.(js|css|woff2?|ttf|png|jpg|svg)(\?|$)", url), f"{path} names {url}"
