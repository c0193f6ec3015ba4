"""GDAL/OGR as a client of the catalog: its ESRIJSON driver (what QGIS and ogr2ogr use for ArcGIS
JSON) reads the query endpoint over HTTP, through pyogrio's own GDAL build."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow                    # OGR against a server on a real socket

pyogrio = pytest.importorskip("pyogrio")


def test_ogr_reads_query_features(live_url):
    url = (f"{live_url}/arcgis/rest/services/mosaic/ImageServer/query?f=json&where=sensor%3D%27S2A%27"
           "&outFields=Name,cloud_cover,acquired&outSR=4326")
    info = pyogrio.read_info(url)
    assert info["features"] == 2
    assert info["crs"] == "EPSG:4326"
    assert info["geometry_type"] == "Polygon"
    meta, fids, geometry, fields = pyogrio.raw.read(url)
    names = list(meta["fields"])
    assert names[:2] == ["OBJECTID", "Name"]
    assert list(fields[names.index("Name")]) == ["scene_1", "scene_3"]
    assert list(fields[names.index("cloud_cover")]) == [0.1, 0.3]
    assert len(geometry) == 2


def test_ogr_reads_footprints_in_the_service_crs(live_url):
    url = f"{live_url}/arcgis/rest/services/dem/ImageServer/query?f=json&where=1%3D1&outFields=*"
    info = pyogrio.read_info(url)
    assert info["features"] == 4
    assert info["crs"] == "EPSG:32633"
    assert pyogrio.read_bounds(url)[1].T.tolist()[0] == pytest.approx([500000, 5001000, 501000, 5002000])
