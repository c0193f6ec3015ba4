"""The Spark `image-service` data source in a local[2] session: reads with extent, bands, small
tiles and sr match direct exportImage reads tile for tile and stitch to the truth; the writer
uploads promoted rasters and creates the service through issue 16's publishing contract — checked in
detail against tests/publishing_double.py (what exactly is uploaded), and end to end against the real
server with security on (read -> write -> read gives the same values)."""

from __future__ import annotations

import logging
import os
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import rasterio
import requests
from rasterio.io import MemoryFile
from rasterio.merge import merge

import ogc_gateway
from client_fixtures import TokenGate, client_config
from conftest import serving
from ogc_gateway.app import create_app
from ogc_gateway.spark import SCHEMA_DDL, register, register_gis, to_dataset, to_numpy
from publishing_double import publishing_double
from synth import DEM_NODATA

pytestmark = pytest.mark.slow
logging.getLogger("werkzeug").setLevel(logging.ERROR)


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    pytest.importorskip("pyspark")
    pytest.importorskip("pyarrow")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("no Java runtime (bash .ci/run installs default-jre-headless)")
    from pyspark.sql import SparkSession

    saved = {k: os.environ.get(k) for k in ("PYSPARK_PYTHON", "OGC_GATEWAY_GIS_FILE", "PYTHONPATH")}
    # Python workers: this interpreter, this checkout, and a GIS registry they share with the driver
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["OGC_GATEWAY_GIS_FILE"] = str(tmp_path_factory.mktemp("spark-gis") / "gis.json")
    package_root = str(Path(ogc_gateway.__file__).resolve().parent.parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, saved["PYTHONPATH"]) if p)
    session = (SparkSession.builder.master("local[2]").appName("ogc-gateway-tests")
               .config("spark.ui.enabled", "false").config("spark.driver.host", "127.0.0.1")
               .config("spark.driver.bindAddress", "127.0.0.1").config("spark.sql.shuffle.partitions", "2")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    register(session)
    yield session
    session.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def small_url(config, tmp_path_factory):
    cfg = client_config(config)
    cfg = replace(cfg, server=replace(cfg.server, cache_dir=tmp_path_factory.mktemp("spark-cache")))
    with serving(create_app(cfg)) as url:
        yield url


def direct(url, row, band_ids=None, sr=None):
    """The same tile read straight from exportImage with requests, decoded by rasterio."""
    r = row.raster
    params = dict(bbox=",".join(repr(v) for v in (row.extent.xmin, row.extent.ymin, row.extent.xmax, row.extent.ymax)),
                  size=f"{r.width},{r.height}", format="tiff", f="image", adjustAspectRatio="false")
    if sr:
        params.update(bboxSR=sr, imageSR=sr)
    if band_ids:
        params["bandIds"] = ",".join(map(str, band_ids))
    resp = requests.get(url + "/exportImage", params=params, timeout=60)
    with MemoryFile(resp.content) as mem, mem.open() as ds:
        return ds.read(), ds.nodata


def test_read_with_extent_bands_small_tiles_and_sr_matches_direct_reads(spark, small_url):
    url = f"{small_url}/arcgis/rest/services/mosaic/ImageServer"
    df = (spark.read.format("image-service").option("extent", "500100, 5000500, 501900, 5001900")
          .option("bands", "1,3").option("tileColumns", 40).option("tileRows", 30).option("sr", 4326).load(url))
    assert df.rdd.getNumPartitions() > 1
    rows = df.collect()
    cols = max(r.tile_col for r in rows) + 1
    nrows = max(r.tile_row for r in rows) + 1
    assert len(rows) == cols * nrows > 4
    by_pos = {(r.tile_col, r.tile_row): r for r in rows}
    for row in rows:
        raster = row.raster
        assert raster.bands == 2 and raster.pixel_type == "U16" and raster.nodata == 0
        assert rasterio.crs.CRS.from_wkt(raster.crs).to_epsg() == 4326
        assert raster.width <= 40 and raster.height <= 30
        gt = raster.transform
        assert gt[0] == pytest.approx(row.extent.xmin) and gt[3] == pytest.approx(row.extent.ymax)
        values = to_numpy(raster)
        truth, nodata = direct(url, row, band_ids=[0, 2], sr=4326)
        assert nodata == 0 and np.array_equal(values, truth), (row.tile_col, row.tile_row)
        right = by_pos.get((row.tile_col + 1, row.tile_row))
        if right is not None:                              # tiles meet without gaps
            assert right.extent.xmin == row.extent.xmax and right.extent.ymax == row.extent.ymax
    assert any(np.any(to_numpy(r.raster) == 1010) for r in rows)        # scene 1, band 1
    assert any(np.any(to_numpy(r.raster)[1] == 3030) for r in rows)     # scene 3, band 3


def test_read_stitches_to_the_truth_and_rasters_open_in_rasterio(spark, small_url, data_dir):
    url = f"{small_url}/arcgis/rest/services/dem/ImageServer"
    rows = spark.read.format("image-service").option("tileColumns", 64).option("tileRows", 48).load(url).collect()
    assert len(rows) == 3 * 4
    mosaic = np.full((190, 190), np.nan, "float32")
    for row in rows:
        values = to_numpy(row.raster)[0]
        c0, r0 = round((row.extent.xmin - 500000) / 10), round((5002000 - row.extent.ymax) / 10)
        assert (c0, r0) == (row.tile_col * 64, row.tile_row * 48)
        mosaic[r0:r0 + values.shape[0], c0:c0 + values.shape[1]] = values
    truth, _ = merge(sorted((data_dir / "dem").glob("*.tif")), bounds=(500000, 5000100, 501900, 5002000), res=10,
                     nodata=DEM_NODATA)
    assert np.array_equal(mosaic, truth[0])
    with to_dataset(rows[0].raster) as ds:
        assert ds.crs.to_epsg() == 32633 and ds.nodata == DEM_NODATA
        assert tuple(ds.transform)[:6] == (10.0, 0.0, 500000.0, 0.0, -10.0, 5002000.0)
        assert np.array_equal(ds.read(), to_numpy(rows[0].raster))


def test_secured_services_read_with_a_registered_gis_and_with_a_token(spark, app):
    gate = TokenGate(app, {"alice": "p@ssw0rd"})
    with serving(gate) as url:
        register_gis("sparkGIS", url=f"{url}/arcgis", username="alice", password="p@ssw0rd")
        service = f"{url}/arcgis/rest/services/dem/ImageServer"
        reader = spark.read.format("image-service").option("tileColumns", 100).option("tileRows", 100)
        with_gis = reader.option("gis", "sparkGIS").load(service).collect()
        assert len(with_gis) == 4 and gate.used
        token = requests.post(f"{url}/arcgis/tokens/generateToken", data=dict(
            username="alice", password="p@ssw0rd", client="requestip", f="json"), timeout=30).json()["token"]
        with_token = (spark.read.format("image-service").option("tileColumns", 100).option("tileRows", 100)
                      .option("token", token).load(service).collect())
        key = lambda r: (r.tile_row, r.tile_col)  # noqa: E731
        assert [to_numpy(r.raster).tobytes() for r in sorted(with_gis, key=key)] == \
               [to_numpy(r.raster).tobytes() for r in sorted(with_token, key=key)]
        with pytest.raises(Exception, match="Token Required"):
            spark.read.format("image-service").load(service).collect()


def test_bad_read_options_are_clear_errors(spark, small_url):
    url = f"{small_url}/arcgis/rest/services/dem/ImageServer"
    with pytest.raises(Exception, match="xmin, ymin, xmax, ymax"):
        spark.read.format("image-service").option("extent", "1, 2, 3").load(url).collect()
    with pytest.raises(Exception, match="bands count from 1"):
        spark.read.format("image-service").option("bands", "0").load(url).collect()
    with pytest.raises(Exception, match="not an ImageServer URL"):
        spark.read.format("image-service").load(f"{small_url}/arcgis/rest/services").collect()


def test_tiles_larger_than_the_service_allows_are_read_in_blocks(spark, small_url, data_dir):
    """The default 1024 x 1024 tile exceeds this service's 64 x 48 limit: the one tile is stitched
    from exportImage blocks and equals the truth."""
    url = f"{small_url}/arcgis/rest/services/dem/ImageServer"
    rows = spark.read.format("image-service").load(url).collect()
    assert len(rows) == 1 and (rows[0].raster.width, rows[0].raster.height) == (190, 190)
    truth, _ = merge(sorted((data_dir / "dem").glob("*.tif")), bounds=(500000, 5000100, 501900, 5002000), res=10,
                     nodata=DEM_NODATA)
    assert np.array_equal(to_numpy(rows[0].raster), truth)


@pytest.fixture()
def publisher():
    app, state = publishing_double()
    with serving(app) as url:
        yield f"{url}/arcgis", state


def test_write_uploads_promoted_rasters_and_creates_the_service(spark, small_url, publisher):
    root, state = publisher
    url = f"{small_url}/arcgis/rest/services/dem/ImageServer"
    df = spark.read.format("image-service").option("tileColumns", 100).option("tileRows", 100).load(url)
    originals = {(r.tile_col, r.tile_row): r.raster for r in df.collect()}
    (df.write.format("image-service").option("url", root).option("token", "publisher-token")
     .option("serviceName", "dem_copy").mode("append").save())
    created = state["services"]["dem_copy"]
    assert created["service"] == {"name": "dem_copy"} and len(created["items"]) == 4
    assert state["job_polls"] >= 2                              # waitForCompletion: polled until it succeeded
    seen = set()
    for item in created["items"]:
        with MemoryFile(state["uploads"][item]["data"]) as mem, mem.open() as ds:
            assert ds.dtypes == ("float64",) and ds.nodata == np.finfo("float64").max
            values = ds.read(1)
            key = (round((ds.bounds.left - 500000) / 1000), round((5002000 - ds.bounds.top) / 1000))
            original = to_numpy(originals[key])[0]
            hole = original == DEM_NODATA
            assert np.array_equal(values[~hole], original[~hole].astype("float64"))
            assert np.all(values[hole] == np.finfo("float64").max)
            assert ds.crs.to_epsg() == 32633
            seen.add(key)
    assert len(seen) == 4

    with pytest.raises(Exception, match="exists"):               # append to an existing name
        (df.write.format("image-service").option("url", root).option("token", "publisher-token")
         .option("serviceName", "dem_copy").mode("append").save())
    (df.limit(1).write.format("image-service").option("url", root).option("token", "publisher-token")
     .option("path", "dem_copy").option("waitForCompletion", "false").mode("overwrite").save())
    assert state["deleted_services"] == ["dem_copy"] and len(state["services"]["dem_copy"]["items"]) == 1


def test_rows_without_a_spatial_reference_are_skipped_and_a_frame_of_none_is_an_error(spark, publisher):
    root, state = publisher
    values = np.arange(12, dtype="uint8").reshape(1, 3, 4)
    wkt = rasterio.crs.CRS.from_epsg(32633).to_wkt()

    def row(crs, col):
        return ((4, 3, 1, "U8", 255.0, crs, [500000.0 + col * 40, 10.0, 0.0, 5000000.0, 0.0, -10.0],
                 bytearray(values.tobytes())), col, 0, (0.0, 0.0, 1.0, 1.0))

    mixed = spark.createDataFrame([row(wkt, 0), row(None, 1), row("", 2), row(wkt, 3)], SCHEMA_DDL)
    (mixed.write.format("image-service").option("url", root).option("token", "publisher-token")
     .option("serviceName", "mixed").mode("append").save())
    items = state["services"]["mixed"]["items"]
    assert len(items) == 2
    for item in items:
        with MemoryFile(state["uploads"][item]["data"]) as mem, mem.open() as ds:
            assert ds.dtypes == ("uint16",) and ds.nodata == 65535
            assert np.array_equal(ds.read(), values.astype("uint16"))

    none = spark.createDataFrame([row(None, 0), row("not a crs", 1)], SCHEMA_DDL)
    with pytest.raises(Exception, match="none of the 2 row"):
        (none.write.format("image-service").option("url", root).option("token", "publisher-token")
         .option("serviceName", "empty").mode("append").save())
    assert "empty" not in state["services"]


# --- against the real server: security (issue 15) and the publishing API (issue 16) ----------------

@pytest.fixture(scope="module")
def secured(data_dir, tmp_path_factory):
    """A server with a security section: dem public, mosaic for [analyst]; root is an admin."""
    from secure import make_secure_config

    config, _ = make_secure_config(data_dir, tmp_path_factory.mktemp("spark-secure"))
    with serving(create_app(config)) as url:
        yield url


def tiles_by_key(rows):
    return {(r.tile_col, r.tile_row): r for r in rows}


def test_round_trip_read_write_new_service_read_gives_the_same_values(spark, secured):
    """read -> write (a new service, through the real uploads and createService) -> read: every
    value comes back (promoted F32 -> F64, nodata as the largest F64), on the same tiles."""
    from secure import PASSWORDS

    register_gis("roundTrip", url=f"{secured}/arcgis", username="root", password=PASSWORDS["root"])
    source = f"{secured}/arcgis/rest/services/dem/ImageServer"
    first = spark.read.format("image-service").option("tileColumns", 100).option("tileRows", 100).load(source)
    (first.write.format("image-service").option("gis", "roundTrip").option("serviceName", "dem_round")
     .mode("append").save())
    made = f"{secured}/arcgis/rest/services/dem_round/ImageServer"
    again = (spark.read.format("image-service").option("gis", "roundTrip").option("tileColumns", 100)
             .option("tileRows", 100).load(made).collect())
    before, after = tiles_by_key(first.collect()), tiles_by_key(again)
    assert before.keys() == after.keys() and len(before) == 4
    biggest = np.finfo("float64").max
    for key, row in before.items():
        old, new = to_numpy(row.raster)[0], to_numpy(after[key].raster)[0]
        assert after[key].raster.pixel_type == "F64" and after[key].raster.nodata == biggest
        hole = old == DEM_NODATA
        assert np.array_equal(new[~hole], old[~hole].astype("float64"))
        assert np.all(new[hole] == biggest)
    with pytest.raises(Exception, match="exists"):              # append to an existing name
        (first.write.format("image-service").option("gis", "roundTrip").option("serviceName", "dem_round")
         .mode("append").save())


def test_restricted_services_read_with_a_gis_and_a_token_of_the_real_token_service(spark, secured):
    from secure import PASSWORDS

    register_gis("realGIS", url=f"{secured}/arcgis", username="alice", password=PASSWORDS["alice"])
    service = f"{secured}/arcgis/rest/services/mosaic/ImageServer"           # access: [analyst]
    reader = lambda: spark.read.format("image-service").option("tileColumns", 200).option("tileRows", 200)  # noqa: E731
    with_gis = reader().option("gis", "realGIS").load(service).collect()
    token = requests.post(f"{secured}/arcgis/tokens/generateToken", data=dict(
        username="alice", password=PASSWORDS["alice"], client="requestip", f="json"), timeout=30).json()["token"]
    with_token = reader().option("token", token).load(service).collect()
    key = lambda r: (r.tile_row, r.tile_col)  # noqa: E731
    assert len(with_gis) > 0
    assert [to_numpy(r.raster).tobytes() for r in sorted(with_gis, key=key)] == \
           [to_numpy(r.raster).tobytes() for r in sorted(with_token, key=key)]
    with pytest.raises(Exception, match="Token Required"):
        spark.read.format("image-service").load(service).collect()
