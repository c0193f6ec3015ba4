"""The pages as a person uses them: headless Chromium (Playwright, Debian's /usr/bin/chromium, no
browser download) against the demo's four services on a real socket.

Every page is watched: a console error, an uncaught exception or a request to any host but
127.0.0.1 fails the test. Map pictures are read back from OpenLayers' canvases.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
import rasterio
import requests
from pyproj import Transformer

from conftest import serving
from ogc_gateway.app import create_app
from ogc_gateway.config import load_config
from ogc_gateway.demo import generate

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = os.environ.get("OGC_GATEWAY_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed (.ci/run installs it)", allow_module_level=True)

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SERVICES = ["elevation", "multispectral", "monthly", "ocean"]
SHOTS = Path(os.environ.get("OGC_GATEWAY_SHOTS", "")) if os.environ.get("OGC_GATEWAY_SHOTS") else None


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("web-demo")
    return folder, generate(folder)


@pytest.fixture(scope="module")
def base(demo):
    _, config_path = demo
    with serving(create_app(load_config(config_path))) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


class Watch:
    """What a page did wrong: console errors, page errors, requests that left 127.0.0.1."""

    def __init__(self):
        self.errors: list[str] = []
        self.foreign: list[str] = []
        self.requests: list[str] = []


def watched_page(context):
    """A page whose every request outside 127.0.0.1 is refused and recorded, as are console errors,
    uncaught exceptions and HTTP errors."""
    watch = Watch()

    def route(r):
        url = r.request.url
        host = urlsplit(url).hostname
        if url.startswith(("data:", "blob:")) or host == "127.0.0.1":
            watch.requests.append(url)
            return r.continue_()
        watch.foreign.append(url)
        return r.abort()

    context.route("**/*", route)
    pg = context.new_page()
    pg.on("console", lambda m: watch.errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    pg.on("pageerror", lambda e: watch.errors.append(f"page error: {e}"))
    pg.on("response", lambda r: watch.errors.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
    pg.watch = watch
    return pg


def check_watch(watch: Watch):
    assert watch.foreign == [], f"requests left 127.0.0.1: {watch.foreign}"
    assert watch.errors == [], watch.errors


@pytest.fixture()
def page(browser, request):
    size = getattr(request, "param", {"width": 1280, "height": 900})
    context = browser.new_context(viewport=size)
    pg = watched_page(context)
    yield pg
    context.close()
    check_watch(pg.watch)


def shot(page, name):
    if SHOTS:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


# --- reading the map back ------------------------------------------------------------------------

PIXELS_JS = """() => {
  let opaque = 0, total = 0, sum = 0;
  const colours = new Set();
  for (const c of document.querySelectorAll('#map canvas')) {
    if (!c.width || !c.height || getComputedStyle(c.parentElement).display === 'none') continue;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 0; i < d.length; i += 4 * 13) {
      total++;
      if (d[i + 3] === 0) continue;
      opaque++;
      colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
      sum = (sum * 31 + d[i] * 7 + d[i + 1] * 3 + d[i + 2]) % 1000000007;
    }
  }
  return {opaque, total, colours: colours.size, hash: sum};
}"""


def settled(page, before: int) -> dict:
    """Waits for a map render after `before` with nothing left loading; the canvases' pixels."""
    page.wait_for_function(
        f"() => Number(document.body.dataset.renders || 0) > {before} && document.body.dataset.loading === '0'",
        timeout=60_000)
    return page.evaluate(PIXELS_JS)


def renders(page) -> int:
    return int(page.evaluate("() => Number(document.body.dataset.renders || 0)"))


def open_viewer(page, base, name) -> dict:
    page.goto(f"{base}/arcgis/rest/services/{name}/ImageServer/viewer")
    return settled(page, 0)


def assert_not_blank(pixels: dict, what: str):
    assert pixels["total"] > 1000, what
    assert pixels["opaque"] > 0.05 * pixels["total"], f"{what}: (almost) transparent {pixels}"
    assert pixels["colours"] > 8, f"{what}: a flat picture {pixels}"


def change(page, action) -> dict:
    before = renders(page)
    action()
    return settled(page, before)


# --- the services directory ----------------------------------------------------------------------

def test_root_leads_to_the_directory_which_lists_every_service(page, base):
    page.goto(base + "/")
    assert urlsplit(page.url).path == "/arcgis/rest/services"
    page.wait_for_load_state("networkidle")
    shot(page, "directory")
    sections = page.locator("section.service")
    assert sections.count() == len(SERVICES)
    for name in SERVICES:
        section = page.locator(f"#service-{name}")
        title = section.locator("h3 a").inner_text()
        assert title.startswith("Demo ")
        # the thumbnail really loaded
        assert section.locator("img").evaluate("img => img.complete && img.naturalWidth > 0")
        links = [a.get_attribute("href") for a in section.locator("a[href]").all()]
        for kind in ("WMSServer?SERVICE=WMS", "WCSServer?SERVICE=WCS", "WMTSCapabilities.xml", "/viewer"):
            assert any(kind in h for h in links), (name, kind, links)
        for href in links:
            resp = page.request.get(href)
            assert resp.status == 200, (href, resp.status)
            if "GetCapabilities" in href or href.endswith(".xml"):
                assert b"Capabilities" in resp.body()[:400], href
        assert "gdal_translate" in section.locator("details").text_content()


def test_directory_copy_button_copies_the_url(browser, base):
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    page = watched_page(context)
    page.goto(f"{base}/arcgis/rest/services")
    page.locator("#service-elevation button.copy").nth(1).click()
    copied = page.evaluate("() => navigator.clipboard.readText()")
    assert copied == page.locator("#url-elevation-wms").inner_text()
    assert requests.get(copied, timeout=30).content.count(b"<Layer") >= 1
    context.close()
    check_watch(page.watch)


@pytest.mark.parametrize("page", [{"width": 390, "height": 844}], indirect=True)
def test_pages_fit_a_phone(page, base):
    for path in ("/arcgis/rest/services", "/arcgis/rest/services/elevation/ImageServer",
                 "/arcgis/rest/services/multispectral/ImageServer/exportImage",
                 "/arcgis/rest/services/elevation/ImageServer/exportImage?bbox=400000,5169760,430240,5200000"
                 "&size=400,400&f=html&format=png&noData=&bandIds=",
                 "/arcgis/rest/services/elevation/ImageServer/identify?geometry=%7B%22x%22:415000,%22y%22:5185000%7D"
                 "&geometryType=esriGeometryPoint&returnCatalogItems=true&f=html",
                 "/arcgis/rest/services/ocean/ImageServer/viewer"):
        page.goto(base + path)
        page.wait_for_load_state("networkidle")
        shot(page, "phone" + path.split("?")[0].replace("/", "_") + ("-result" if "?" in path else ""))
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px on a phone"


# --- the viewer -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", SERVICES)
def test_viewer_draws_the_service_in_both_modes(page, base, name):
    pixels = open_viewer(page, base, name)
    assert_not_blank(pixels, f"{name} exportImage")
    assert any("/exportImage?" in u and "f=image" in u for u in page.watch.requests)
    shot(page, f"viewer-{name}-export")
    tiles = change(page, lambda: page.check("input[name=mode][value=wmts]"))
    assert_not_blank(tiles, f"{name} WMTS")
    assert any("/WMTS/tile/1.0.0/" in u for u in page.watch.requests)
    shot(page, f"viewer-{name}-wmts")
    # the service's own CRS: the map is drawn again, not blank
    native = change(page, lambda: page.select_option("#projection", "native"))
    assert_not_blank(native, f"{name} WMTS in its own CRS")
    native_export = change(page, lambda: page.check("input[name=mode][value=export]"))
    assert_not_blank(native_export, f"{name} exportImage in its own CRS")
    shot(page, f"viewer-{name}-native")


@pytest.mark.parametrize("name, template", [("elevation", "Hillshade"), ("multispectral", "NDVI colorized")])
@pytest.mark.parametrize("mode", ["export", "wmts"])
def test_template_picker_changes_the_picture(page, base, name, template, mode):
    first = open_viewer(page, base, name)
    if mode == "wmts":
        first = change(page, lambda: page.check("input[name=mode][value=wmts]"))
    styled = change(page, lambda: page.select_option("#template", template))
    assert_not_blank(styled, f"{name} {template}")
    assert styled["hash"] != first["hash"]
    rule = json.dumps({"rasterFunction": template}).replace(" ", "")
    if mode == "export":
        assert any("renderingRule=" in u and requests.utils.unquote(u.split("renderingRule=")[1].split("&")[0])
                   .replace("+", "").replace(" ", "") == rule for u in page.watch.requests)
    shot(page, f"viewer-{name}-{template.replace(' ', '-')}-{mode}")
    # the legend follows the template
    page.wait_for_function("() => document.querySelectorAll('#legend .legend-row').length > 0")


@pytest.mark.parametrize("name", ["monthly", "multispectral"])
def test_time_slider_changes_the_picture(page, base, name):
    latest = open_viewer(page, base, name)
    label = page.locator("#time-label").inner_text()

    def slide():
        page.locator("#time").fill("0")          # an input event and a change event, as a drag ends
    first = change(page, slide)
    assert page.locator("#time-label").inner_text() != label
    assert_not_blank(first, f"{name} first time")
    assert first["hash"] != latest["hash"]
    shot(page, f"viewer-{name}-time0")
    tiles = change(page, lambda: page.check("input[name=mode][value=wmts]"))
    first_time = page.locator("#time-label").inner_text()
    assert any(f"/{first_time}/WebMercatorQuad/" in requests.utils.unquote(u) for u in page.watch.requests)
    assert_not_blank(tiles, f"{name} WMTS first time")


def test_band_combination_changes_the_picture(page, base):
    natural = open_viewer(page, base, "multispectral")
    assert [page.input_value(f"#band-{c}") for c in ("red", "green", "blue")] == ["2", "1", "0"]
    false_colour = change(page, lambda: page.select_option("#band-red", "3"))
    assert_not_blank(false_colour, "bands 3,1,0")
    assert false_colour["hash"] != natural["hash"]
    assert "bandIds=3%2C1%2C0" in [u for u in page.watch.requests if "/exportImage?" in u][-1]
    shot(page, "viewer-multispectral-bands-310")


def test_every_time_at_once_shows_the_whole_mosaic(page, base):
    latest = open_viewer(page, base, "multispectral")
    mosaic = change(page, lambda: page.check("#time-all"))
    assert mosaic["opaque"] > 1.5 * latest["opaque"]         # six scenes cover more than the last one
    last = [u for u in page.watch.requests if "/exportImage?" in u][-1]
    assert "time=" not in last
    assert page.locator("#time").is_disabled()
    shot(page, "viewer-multispectral-all-times")


def test_dimension_picker_changes_the_picture(page, base):
    surface = open_viewer(page, base, "ocean")
    page.wait_for_selector("#dim-StdZ")
    assert page.locator("#dim-StdZ option").all_inner_texts() == ["0", "50", "200", "1000"]
    deep = change(page, lambda: page.select_option("#dim-StdZ", "200"))
    assert_not_blank(deep, "ocean at 200 m")
    assert deep["hash"] != surface["hash"]
    assert any("StdZ" in requests.utils.unquote(u) and "[200]" in requests.utils.unquote(u)
               for u in page.watch.requests if "/exportImage?" in u)
    wms = page.get_attribute("#url-wms", "href")
    assert "ELEVATION=200" in wms
    assert requests.get(wms, timeout=60).headers["Content-Type"] == "image/png"
    shot(page, "viewer-ocean-200m")


def _dem_truth(folder: Path, x: float, y: float) -> float:
    """The DEM's value at a point (EPSG:32633) read from the first source tile that has data there."""
    for path in sorted((folder / "elevation").glob("*.tif")):
        with rasterio.open(path) as src:
            left, bottom, right, top = src.bounds
            if left <= x < right and bottom <= y < top:
                value = next(src.sample([(x, y)], masked=True))[0]
                if not np.ma.is_masked(value):
                    return float(value)
    raise AssertionError("no source tile has data there")


@pytest.mark.parametrize("name", SERVICES)
def test_click_shows_the_identify_value_of_that_point(page, base, demo, name):
    open_viewer(page, base, name)
    box = page.locator("#map").bounding_box()
    px, py = box["width"] * 0.45, box["height"] * 0.55
    if name == "multispectral":     # the latest scene alone is shown: click inside it
        latest = requests.get(f"{base}/arcgis/rest/services/multispectral/ImageServer/query", timeout=30, params={
            "where": "1=1", "outSR": "3857", "f": "json", "returnGeometry": "true",
            "orderByFields": "acquired DESC", "resultRecordCount": "1"}).json()["features"][0]
        ring = np.array(latest["geometry"]["rings"][0])
        centre = [float(ring[:, 0].mean()), float(ring[:, 1].mean())]
        px, py = page.evaluate("c => window.ogcGatewayViewer.map.getPixelFromCoordinate(c)", centre)
    page.mouse.click(box["x"] + px, box["y"] + py)
    page.wait_for_selector("#identify[data-done]")
    shown = page.locator(".identify-value").inner_text()
    x, y = float(page.get_attribute("#identify", "data-x")), float(page.get_attribute("#identify", "data-y"))
    sr = json.loads(page.get_attribute("#identify", "data-sr"))
    assert sr == {"wkid": 3857}
    params = {"geometry": json.dumps({"x": x, "y": y, "spatialReference": sr}),
              "geometryType": "esriGeometryPoint", "f": "json"}
    time_ms = page.evaluate("() => window.ogcGatewayViewer.state.timeIndex === null ? null : "
                            "JSON.parse(document.getElementById('viewer-config').textContent)"
                            ".times[window.ogcGatewayViewer.state.timeIndex]")
    if time_ms is not None:
        params["time"] = str(time_ms)
    if name == "ocean":
        params["mosaicRule"] = json.dumps({"multidimensionalDefinition": [
            {"variableName": "sea_temperature", "dimensionName": "StdZ", "values": [0], "isSlice": True}]})
    rest = requests.get(f"{base}/arcgis/rest/services/{name}/ImageServer/identify", params=params, timeout=60).json()
    assert shown == str(rest["value"])
    assert shown not in ("NoData", "")
    if name == "elevation":     # and the value is the source's own, read by rasterio
        ux, uy = Transformer.from_crs(3857, 32633, always_xy=True).transform(x, y)
        assert float(shown) == pytest.approx(_dem_truth(demo[0], ux, uy), abs=0.01)
        items = page.locator("#identify .items li").all_inner_texts()
        assert items and all("dem_" in t for t in items)
    shot(page, f"viewer-{name}-identify")


def test_footprints_overlay_and_request_urls(page, base):
    open_viewer(page, base, "multispectral")
    page.check("#footprints")
    page.wait_for_function("() => /footprint/.test(document.getElementById('status').textContent)")
    count = requests.get(f"{base}/arcgis/rest/services/multispectral/ImageServer/query",
                         params={"where": "1=1", "returnCountOnly": "true", "f": "json",
                                 "time": page.evaluate("() => JSON.parse(document.getElementById('viewer-config')"
                                                       ".textContent).times.at(-1)")}, timeout=30).json()["count"]
    assert page.locator("#status").inner_text().startswith(f"{count} footprint")
    shot(page, "viewer-multispectral-footprints")
    # the current map as exportImage, WMS GetMap and WCS GetCoverage: each answers with data
    width, height = page.evaluate("() => window.ogcGatewayViewer.map.getSize()")
    export = requests.get(page.get_attribute("#url-export", "href"), timeout=60)
    assert export.headers["Content-Type"] == "image/png", export.text[:300]
    wms = requests.get(page.get_attribute("#url-wms", "href"), timeout=60)
    assert wms.headers["Content-Type"] == "image/png", wms.text[:300]
    wcs = requests.get(page.get_attribute("#url-wcs", "href"), timeout=60)
    assert wcs.headers["Content-Type"].startswith("image/tiff"), wcs.text[:300]
    with rasterio.MemoryFile(wcs.content) as mem, mem.open() as ds:
        assert (ds.width, ds.height) == (round(width), round(height)) and ds.count == 4
        assert ds.crs.to_epsg() == 3857


# --- operation pages ----------------------------------------------------------------------------------

def test_export_page_first_click_shows_the_picture(page, base):
    page.goto(f"{base}/arcgis/rest/services/elevation/ImageServer/exportImage")
    assert page.input_value("#size") == "400,400"
    page.click("main button[type=submit]")
    page.wait_for_selector("img.result")
    page.wait_for_function("() => document.querySelector('img.result').complete")
    assert page.evaluate("() => document.querySelector('img.result').naturalWidth") == 400
    shot(page, "export-form")


def test_export_page_shows_the_error_of_a_failing_request(page, base):
    page.goto(f"{base}/arcgis/rest/services/elevation/ImageServer/exportImage")
    page.fill("#size", "99999,5")
    page.click("main button[type=submit]")
    error = page.locator("p.error").inner_text()
    assert "size" in error.lower()


@pytest.mark.parametrize("operation, expect", [("identify", '"value"'), ("query", '"features"'),
                                                ("getSamples", '"samples"'),
                                                ("computeHistograms", '"histograms"')])
def test_operation_pages_work_on_the_first_click(page, base, operation, expect):
    page.goto(f"{base}/arcgis/rest/services/elevation/ImageServer/{operation}")
    page.click("main button[type=submit]")
    assert expect in page.locator("pre").inner_text()


def test_sign_in_keeps_the_token_and_passes_it_on(page, base):
    """Security on (the generateToken contract): the pages sign in, keep the token in
    sessionStorage and add `token=` to every request they make. The token service is answered
    here by the browser's route, as the server's own is built elsewhere."""
    context = page.context
    context.route(re.compile(r".*/arcgis/rest/info/?\?f=json$"), lambda r: r.fulfill(
        content_type="application/json",
        body=json.dumps({"currentVersion": 11.3, "authInfo": {"isTokenBasedSecurity": True}})))
    posted = []

    def token_service(r):
        posted.append(r.request.post_data)
        r.fulfill(content_type="application/json", body=json.dumps({"token": "tok3n", "expires": 4102444800000}))
    context.route(f"{base}/arcgis/tokens/generateToken", token_service)
    page.goto(f"{base}/arcgis/rest/services/elevation/ImageServer/viewer")
    page.click("#show-sign-in")
    page.fill("#sign-in-user", "ana")
    page.fill("#sign-in-password", "secret")
    shot(page, "sign-in")
    page.click("#sign-in button[type=submit]")
    page.wait_for_function("() => document.body.dataset.loading === '0' && Number(document.body.dataset.renders) > 0"
                           " && location.search.includes('token=tok3n')")
    assert "username=ana" in posted[0] and "client=referer" in posted[0]
    assert page.evaluate("() => JSON.parse(sessionStorage.getItem('ogc-gateway-token')).token") == "tok3n"
    assert page.locator("#signed-user").inner_text() == "ana"
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_selector("#identify[data-done]")
    ours = [u for u in page.watch.requests
            if "/ImageServer/" in u and "/arcgis/rest/static/" not in u and u.startswith(base)]
    later = ours[ours.index(next(u for u in ours if "token=tok3n" in u)):]
    assert any("/exportImage?" in u for u in later) and any("/identify?" in u for u in later)
    assert all("token=tok3n" in u for u in later), [u for u in later if "token=tok3n" not in u]
    assert "token=tok3n" in page.get_attribute("#url-export", "href")


# --- a CRS without an authority code ------------------------------------------------------------------

LCC = ("+proj=lcc +lat_1=44 +lat_2=49 +lat_0=46.5 +lon_0=13.3 +x_0=400000 +y_0=200000 +ellps=GRS80 "
       "+units=m +no_defs")


@pytest.fixture(scope="module")
def custom_crs(tmp_path_factory):
    """One service in a Lambert conformal conic with no EPSG code: its WKT is its only name."""
    from rasterio.crs import CRS
    from rasterio.transform import from_origin

    from ogc_gateway.config import Config, ServerConfig, ServiceConfig

    folder = tmp_path_factory.mktemp("lcc")
    y, x = np.mgrid[0:200, 0:300]
    data = (np.sin(x / 20) * np.cos(y / 15) * 100 + 200).astype("float32")
    path = folder / "lcc.tif"
    with rasterio.open(path, "w", driver="GTiff", width=300, height=200, count=1, dtype="float32",
                       crs=CRS.from_proj4(LCC), transform=from_origin(380000, 230000, 100, 100)) as dst:
        dst.write(data, 1)
    config = Config(server=ServerConfig(cache_dir=folder / "cache"),
                    services={"lcc": ServiceConfig(name="lcc", title="Lambert", sources=(str(path),))})
    with serving(create_app(config)) as url:
        yield url, path


def test_viewer_in_a_crs_without_a_code(page, custom_crs):
    base, path = custom_crs
    open_viewer(page, base, "lcc")
    assert "Lambert Conic Conformal" in page.locator("#projection option[value=native]").inner_text()
    native = change(page, lambda: page.select_option("#projection", "native"))
    assert_not_blank(native, "lcc in its own CRS")
    last = [u for u in page.watch.requests if "/exportImage?" in u][-1]
    assert "Lambert_Conformal_Conic" in requests.utils.unquote(last)       # bboxSR given as WKT
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.6)
    page.wait_for_selector("#identify[data-done]")
    x, y = float(page.get_attribute("#identify", "data-x")), float(page.get_attribute("#identify", "data-y"))
    with rasterio.open(path) as src:
        truth = float(next(src.sample([(x, y)]))[0])
    assert float(page.locator(".identify-value").inner_text()) == pytest.approx(truth, abs=1e-3)
    shot(page, "viewer-lcc-native")
