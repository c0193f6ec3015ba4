"""The fixed list of exportImage requests the load benchmark sends.

Every URL is computed from the numbers in this file (the demo data set's extents, copied from
`ogc_gateway/demo.py`, and a fixed seed), never from the server, so the list is the same on every
machine and every run. `python benchmarks/urls.py` rewrites `benchmarks/urls.txt`, the committed copy
that lets a reviewer see exactly what is requested; `python benchmarks/urls.py --check` fails if the
committed copy is stale.

URLs are relative (path and query only): `run.py` prefixes them with the server it started.

Groups:
  png   256x256 PNG   (elevation, multispectral, monthly with a time instant)
  jpg   256x256 JPEG  (the same mix)
  tiff  512x512 float32 TIFF, pixelType=F32 (elevation, multispectral)
  identify    identify at a point (elevation, multispectral, monthly with a time instant)
  samples     getSamples along a two-point polyline, 50 samples (elevation, multispectral)
  query       catalog query: a where clause and an envelope, features with footprints (multispectral)
  wms         WMS 1.3.0 GetMap, 256x256 PNG in the service's CRS (CRS:84 for monthly, whose default time applies)
  wcs         WCS 2.0.1 GetCoverage, a SUBSET trim scaled to 256x256, GeoTIFF of the raw values (elevation, multispectral)
  tiles       WMTS RESTful PNG tiles (WebMercatorQuad) drawn at random from the levels around each service's
              native one: served from the tile cache (the warm-up renders them)
  tiles-cold  one WMTS tile per 4x4 metatile of those levels, each requested once after the tile cache is
              emptied: every request renders a metatile (COLD_GROUPS: no warm-up, no repeats)
  hillshade   256x256 PNG of a Hillshade rendering rule (elevation)
  ndvi        256x256 PNG of an NDVI rendering rule, scientific output stretched for the picture (multispectral)

Each bbox is a square whose side is drawn log-uniformly between "native resolution at this image size"
and "the whole extent" (so scales range from full-resolution reads to overview reads), placed uniformly
inside the service's extent.
"""

from __future__ import annotations

import calendar
import json
import math
import random
import sys
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

from pyproj import Transformer

SEED = 20240601
HERE = Path(__file__).resolve().parent
URLS_TXT = HERE / "urls.txt"

# Extents of the demo services (xmin, ymin, xmax, ymax in the service CRS) and native cell size.
# elevation: 2x2 tiles of 512 px at 30 m overlapping by 16 px from (400000, 5200000), EPSG:32633.
#   width = (512 - 16 + 512) * 30 m = 30240 m.
# multispectral: six 400 px scenes at 10 m (4000 m), upper-left offsets 1500..6500 m east and
#   1500..5500 m south of (400000, 5200000); their union is 401500..410500 x 5190500..5198500.
#   Parts of that box hold no scene (transparent in PNG, nodata in TIFF) - as in a real mosaic.
# monthly: a 1 degree global grid, EPSG:4326.
SERVICES = {
    "elevation": {"extent": (400_000.0, 5_169_760.0, 430_240.0, 5_200_000.0), "res": 30.0,
                  "wkid": 32633, "decimals": 1},
    "multispectral": {"extent": (401_500.0, 5_190_500.0, 410_500.0, 5_198_500.0), "res": 10.0,
                      "wkid": 32633, "decimals": 1},
    "monthly": {"extent": (-180.0, -90.0, 180.0, 90.0), "res": 1.0, "wkid": 4326, "decimals": 4},
}

# name: (image size, format parameters, expected content type, [(service, count), ...])
GROUPS = {
    "png": (256, {"format": "png"}, "image/png",
            [("elevation", 18), ("multispectral", 16), ("monthly", 16)]),
    "jpg": (256, {"format": "jpg"}, "image/jpeg",
            [("elevation", 18), ("multispectral", 16), ("monthly", 16)]),
    "tiff": (512, {"format": "tiff", "pixelType": "F32"}, "image/tiff",
             [("elevation", 25), ("multispectral", 25)]),
}
# name: (operation, [(service, count), ...]) - JSON answers
JSON_GROUPS = {
    "identify": ("identify", [("elevation", 20), ("multispectral", 20), ("monthly", 10)]),
    "samples": ("getSamples", [("elevation", 25), ("multispectral", 25)]),
    "query": ("query", [("multispectral", 50)]),
}
WHERE = ["cloud_cover < {n}", "sensor = 'DemoSat-A' AND cloud_cover < {n}", "acquired > DATE '2024-0{m}-01'",
         "UPPER(sensor) LIKE 'DEMOSAT-B%' OR cloud_cover BETWEEN 0 AND {n}"]
WMS_MIX = [("elevation", 18), ("multispectral", 16), ("monthly", 16)]
CONTENT_TYPES = {name: group[2] for name, group in GROUPS.items()}
CONTENT_TYPES |= {name: "application/json" for name in JSON_GROUPS}
CONTENT_TYPES["wms"] = "image/png"
WCS_MIX = [("elevation", 25), ("multispectral", 25)]
CONTENT_TYPES["wcs"] = "image/tiff"
# name: (service, count, rendering rule) - exportImage 256x256 PNG through a raster function
RULE_GROUPS = {
    "hillshade": ("elevation", 50, {"rasterFunction": "Hillshade",
                                    "rasterFunctionArguments": {"Azimuth": 315, "Altitude": 45, "ZFactor": 1}}),
    "ndvi": ("multispectral", 50, {"rasterFunction": "NDVI",
                                   "rasterFunctionArguments": {"VisibleBandID": 2, "InfraredBandID": 3,
                                                               "ScientificOutput": True}}),
}
CONTENT_TYPES |= {name: "image/png" for name in RULE_GROUPS}

CONTENT_TYPES["tiles"] = "image/png"
CONTENT_TYPES["tiles-cold"] = "image/png"
COLD_GROUPS = {"tiles-cold"}          # run.py empties the tile cache first and requests each URL once
# Web Mercator levels tiled per service (the native one is 12 for elevation's 30 m, 14 for 10 m), and
# the metatile size of the server's default configuration.
TILE_LEVELS = {"elevation": (10, 11, 12, 13, 14), "multispectral": (12, 13, 14, 15, 16)}
METATILE = 4
TIME_ENABLED = {"multispectral", "monthly"}
WORLD = math.pi * 6378137.0

MONTHLY_YEAR = 2024


def _mid_month_ms(month: int) -> int:
    """Epoch milliseconds of the 15th of `month` 2024, 12:00 UTC (inside that month's time extent)."""
    assert 1 <= month <= 12 and calendar.monthrange(MONTHLY_YEAR, month)[1] >= 15
    return int(datetime(MONTHLY_YEAR, month, 15, 12, tzinfo=UTC).timestamp() * 1000)


def _bbox(rng: random.Random, service: str, size: int) -> tuple[float, float, float, float]:
    info = SERVICES[service]
    xmin, ymin, xmax, ymax = info["extent"]
    span = min(xmax - xmin, ymax - ymin)
    # Finest: one source cell per output pixel (capped so a square still fits several times).
    lo = min(info["res"] * size, span / 4)
    side = math.exp(rng.uniform(math.log(lo), math.log(span)))
    x0 = rng.uniform(xmin, xmax - side)
    y0 = rng.uniform(ymin, ymax - side)
    d = info["decimals"]
    return (round(x0, d), round(y0, d), round(min(x0 + side, xmax), d), round(min(y0 + side, ymax), d))


def build() -> dict[str, list[str]]:
    """{group: [relative URL, ...]} - deterministic: same seed, same arithmetic, same strings."""
    rng = random.Random(SEED)
    out: dict[str, list[str]] = {}
    for group, (size, fmt, _ctype, mix) in GROUPS.items():
        urls = []
        for service, count in mix:
            info = SERVICES[service]
            for _ in range(count):
                box = _bbox(rng, service, size)
                params = {"bbox": ",".join(f"{v:.{info['decimals']}f}" for v in box),
                          "bboxSR": info["wkid"], "size": f"{size},{size}", **fmt}
                if service == "monthly":
                    params["time"] = _mid_month_ms(rng.randint(1, 12))
                params["f"] = "image"
                urls.append(f"/arcgis/rest/services/{service}/ImageServer/exportImage?"
                            f"{urlencode(params, safe=',')}")
        # Interleave services so any slice of the list (one client's share) mixes them.
        rng.shuffle(urls)
        out[group] = urls
    for group, (operation, mix) in JSON_GROUPS.items():
        urls = []
        for service, count in mix:
            for _ in range(count):
                params = _json_params(rng, operation, service)
                params["f"] = "json"
                urls.append(f"/arcgis/rest/services/{service}/ImageServer/{operation}?"
                            f"{urlencode(params, safe=',')}")
        rng.shuffle(urls)
        out[group] = urls
    urls = []
    for service, count in WMS_MIX:
        info = SERVICES[service]
        for _ in range(count):
            box = _bbox(rng, service, 256)
            crs = "CRS:84" if service == "monthly" else f"EPSG:{info['wkid']}"
            params = {"SERVICE": "WMS", "VERSION": "1.3.0", "REQUEST": "GetMap", "LAYERS": service,
                      "STYLES": "", "CRS": crs, "BBOX": ",".join(f"{v:.{info['decimals']}f}" for v in box),
                      "WIDTH": 256, "HEIGHT": 256, "FORMAT": "image/png", "TRANSPARENT": "TRUE"}
            urls.append(f"/ogc/wms?{urlencode(params, safe=',:')}")
    rng.shuffle(urls)
    out["wms"] = urls
    urls = []
    for service, count in WCS_MIX:
        for _ in range(count):
            x0, y0, x1, y1 = _bbox(rng, service, 256)
            params = [("SERVICE", "WCS"), ("VERSION", "2.0.1"), ("REQUEST", "GetCoverage"), ("COVERAGEID", service),
                      ("SUBSET", f"E({x0},{x1})"), ("SUBSET", f"N({y0},{y1})"), ("SCALESIZE", "i(256),j(256)"),
                      ("FORMAT", "image/tiff")]
            urls.append(f"/ogc/wcs?{urlencode(params, safe=',:()')}")
    rng.shuffle(urls)
    out["wcs"] = urls
    every = {s: {z: list(_tiles(s, z)) for z in levels} for s, levels in TILE_LEVELS.items()}
    urls = [_tile_url(s, z, *rng.choice(every[s][z])) for s in every for z in every[s] for _ in range(20)]
    rng.shuffle(urls)
    out["tiles"] = urls
    urls = [_tile_url(s, z, r, c) for s in every for z in every[s] for r, c in _block_corners(s, z)]
    rng.shuffle(urls)
    out["tiles-cold"] = urls
    rng = random.Random(SEED + 8)            # its own sequence: the groups above keep their URLs
    for group, (service, count, rule) in RULE_GROUPS.items():
        info = SERVICES[service]
        urls = []
        for _ in range(count):
            box = _bbox(rng, service, 256)
            params = {"bbox": ",".join(f"{v:.{info['decimals']}f}" for v in box), "bboxSR": info["wkid"],
                      "size": "256,256", "format": "png", "renderingRule": json.dumps(rule, separators=(",", ":")),
                      "f": "image"}
            urls.append(f"/arcgis/rest/services/{service}/ImageServer/exportImage?{urlencode(params, safe=',')}")
        out[group] = urls
    return out


def _range(service: str, z: int) -> tuple[int, int, int, int]:
    """(row0, row1, col0, col1) of the level-z Web Mercator tiles under a service's extent (pyproj)."""
    xmin, ymin, xmax, ymax = SERVICES[service]["extent"]
    to_merc = Transformer.from_crs(SERVICES[service]["wkid"], 3857, always_xy=True)
    xs, ys = to_merc.transform([xmin, xmax, xmin, xmax], [ymin, ymin, ymax, ymax])
    span = 2 * WORLD / 2 ** z
    return (math.floor((WORLD - max(ys)) / span), math.floor((WORLD - min(ys)) / span),
            math.floor((min(xs) + WORLD) / span), math.floor((max(xs) + WORLD) / span))


def _tiles(service: str, z: int):
    r0, r1, c0, c1 = _range(service, z)
    return ((r, c) for r in range(r0, r1 + 1) for c in range(c0, c1 + 1))


def _block_corners(service: str, z: int):
    """The first tile of every metatile (aligned on multiples of METATILE, clipped to the service's
    tiles, as the server aligns them)."""
    r0, r1, c0, c1 = _range(service, z)
    for top in range(r0 - r0 % METATILE, r1 + 1, METATILE):
        for left in range(c0 - c0 % METATILE, c1 + 1, METATILE):
            yield max(r0, top), max(c0, left)


def _tile_url(service: str, z: int, row: int, col: int) -> str:
    time = "/default" if service in TIME_ENABLED else ""          # the {Time} of a time-enabled layer
    return (f"/arcgis/rest/services/{service}/ImageServer/WMTS/tile/1.0.0/{service}/default{time}/WebMercatorQuad/"
            f"{z}/{row}/{col}.png")


def _point(rng: random.Random, service: str) -> tuple[float, float]:
    xmin, ymin, xmax, ymax = SERVICES[service]["extent"]
    d = SERVICES[service]["decimals"]
    return round(rng.uniform(xmin, xmax), d), round(rng.uniform(ymin, ymax), d)


def _json_params(rng: random.Random, operation: str, service: str) -> dict:
    if operation == "identify":
        x, y = _point(rng, service)
        params = {"geometry": f"{x},{y}", "geometryType": "esriGeometryPoint", "returnCatalogItems": "true"}
        if service == "monthly":
            params["time"] = _mid_month_ms(rng.randint(1, 12))
        return params
    if operation == "getSamples":
        (x0, y0), (x1, y1) = _point(rng, service), _point(rng, service)
        return {"geometry": f'{{"paths":[[[{x0},{y0}],[{x1},{y1}]]]}}', "geometryType": "esriGeometryPolyline",
                "sampleCount": 50, "returnFirstValueOnly": "true"}
    box = _bbox(rng, service, 64)
    where = rng.choice(WHERE).format(n=rng.randint(1, 40), m=rng.randint(1, 9))
    return {"where": where, "geometry": ",".join(str(v) for v in box),
            "geometryType": "esriGeometryEnvelope", "outFields": "*", "returnGeometry": "true"}


def render() -> str:
    lines = ["# Generated by benchmarks/urls.py - do not edit; regenerate with `python benchmarks/urls.py`.",
             "# <group>\t<expected content type>\t<relative URL>"]
    for group, urls in build().items():
        lines += [f"{group}\t{CONTENT_TYPES[group]}\t{url}" for url in urls]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not URLS_TXT.exists() or URLS_TXT.read_text(encoding="utf-8") != text:
            print(f"{URLS_TXT} is stale: run `python benchmarks/urls.py`", file=sys.stderr)
            return 1
        print(f"{URLS_TXT} is up to date")
        return 0
    URLS_TXT.write_text(text, encoding="utf-8")
    counts = ", ".join(f"{g}: {len(u)}" for g, u in build().items())
    print(f"wrote {URLS_TXT} ({counts})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
