"""Seamlines: the part of its footprint where each item is shown by the seamline mosaic methods,
given by the service's `seamlines` GeoJSON file or cut from the footprints (engine/seams.py)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from rasterio.crs import CRS
from rasterio.errors import CRSError
from shapely.errors import GEOSException
from shapely.geometry import shape as geojson_shape
from shapely.geometry.base import BaseGeometry

from .. import seams, sources
from ..geometry import to_crs
from ..rasterinfo import crs_from_wkt, ring_polygons
from .base import CatalogBase, Gone

log = logging.getLogger("ogc_gateway.catalog")


class Seamlines(CatalogBase):
    """The seamline part of `Catalog` (a mixin: `self.store`, `self.service` come from it)."""

    def _update_seamlines(self, con: Any, crs_wkt: str, touched: set[int] | None,
                          gone: list[Gone]) -> list[str]:
        """Store each item's seamline: the one the service's `seamlines` file gives it, else one cut
        from the footprints (engine/seams.py) - for every item (touched None), or again for the
        items around new, re-read and removed ones."""
        given, problems = self._given_seamlines(con, crs_from_wkt(crs_wkt))
        if touched is None:
            con.execute("DELETE FROM seamlines")
            dirty = {row[0] for row in con.execute("SELECT oid FROM rasters WHERE footprint IS NOT NULL")}
        else:
            boxes = con.execute(f"SELECT minx, miny, maxx, maxy FROM rasters WHERE oid IN ({self.store.ids})",
                                (json.dumps(sorted(touched)),)).fetchall()
            dirty = set(touched)
            for x0, y0, x1, y1 in boxes + [b for b in gone if b and b[0] is not None]:
                dirty.update(row[0] for row in con.execute(
                    f"SELECT id FROM footprints WHERE {self.store.box}", (x0, y0, x1, y1)))
            con.execute(f"DELETE FROM seamlines WHERE oid IN ({self.store.ids})",
                        (json.dumps(sorted(dirty)),))
        ids = json.dumps(sorted(dirty))
        pairs = con.execute("SELECT a.id, b.id FROM footprints AS a JOIN footprints AS b ON b.maxx >= a.minx "
                            "AND b.minx <= a.maxx AND b.maxy >= a.miny AND b.miny <= a.maxy AND b.id != a.id "
                            f"WHERE a.id IN ({self.store.ids})", (ids,)).fetchall()
        needed = json.dumps(sorted(dirty.union(b for _, b in pairs)))
        rows = con.execute('SELECT r.oid, r.footprint, i."CenterX", i."CenterY" FROM rasters AS r JOIN items AS i '
                           f'ON i."OBJECTID" = r.oid WHERE r.oid IN ({self.store.ids}) ORDER BY r.oid',
                           (needed,)).fetchall()
        oids = np.array([r[0] for r in rows], dtype=np.int64)
        at = {oid: k for k, oid in enumerate(oids.tolist())}
        pairs = np.array([(at[a], at[b]) for a, b in pairs if a in at and b in at], dtype=np.int64).reshape(-1, 2)
        shapes = seams.seamlines(oids, shapely.make_valid(ring_polygons([json.loads(r[1]) for r in rows])),
                                 np.array([r[2:] for r in rows], dtype="f8").reshape(-1, 2), pairs[:, 0], pairs[:, 1])
        rows = []
        for oid, shape in zip(oids.tolist(), shapes, strict=True):
            if oid in dirty:
                shape = given.get(oid, shape)
                rows.append((oid, int(oid in given), shapely.to_wkb(shape), *shape.bounds))
        con.executemany("INSERT INTO seamlines (oid, given, shape, minx, miny, maxx, maxy) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        return problems

    def _given_seamlines(self, con: Any, dst: CRS) -> tuple[dict[int, BaseGeometry], list[str]]:
        """The seamlines of the service's `seamlines` GeoJSON file by OBJECTID, in the service CRS:
        each feature names its item by a `name` (the item's Name) or `path` property (relative to
        the file's folder). RFC 7946 coordinates are WGS 84; a `crs` member names another CRS."""
        path = self.service.seamlines
        if path is None:
            return {}, []
        where = f"{self._where}.seamlines: {path}"
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
            crs_name = ((doc.get("crs") or {}).get("properties") or {}).get("name") or "EPSG:4326"
            src = CRS.from_user_input(crs_name)
            features = doc["features"]
        except (OSError, ValueError, KeyError, TypeError, AttributeError, CRSError) as exc:
            return {}, [f"{where}: not a GeoJSON FeatureCollection ({exc})"]
        items = con.execute('SELECT i."OBJECTID", i."Name", r.path FROM items AS i JOIN rasters AS r '
                            'ON r.oid = i."OBJECTID"').fetchall()
        by_name = {name.lower(): oid for oid, name, _ in items}
        by_path = {p: oid for oid, _, p in items}
        base = os.path.dirname(os.path.abspath(path))
        out, problems = {}, []
        for n, feature in enumerate(features):
            try:
                props = {str(k).lower(): v for k, v in (feature.get("properties") or {}).items()}
                geom = geojson_shape(feature["geometry"])
            except (AttributeError, KeyError, TypeError, ValueError, GEOSException) as exc:
                problems.append(f"{where}: feature {n}: not a usable feature ({exc})")
                continue
            oid = (by_path.get(sources.normalize(os.path.join(base, str(props["path"])))
                               if not sources.is_remote(str(props["path"])) else str(props["path"]))
                   if props.get("path") else by_name.get(str(props.get("name", "")).lower()))
            if oid is None:
                log.warning("%s: feature %d names no item; skipped", where, n)
                continue
            if geom.geom_type not in ("Polygon", "MultiPolygon"):
                problems.append(f"{where}: feature {n}: a seamline is a polygon, not a {geom.geom_type}")
                continue
            out[oid] = to_crs(geom, src, dst, name="seamlines")
        return out, problems

    def seamlines(self, oids: Iterable[int]) -> dict[int, BaseGeometry]:
        """The seamlines (service CRS) of several items."""
        rows = self.store.con().execute(f"SELECT oid, shape FROM seamlines WHERE oid IN ({self.store.ids})",
                                        (json.dumps([int(o) for o in oids]),))
        return {oid: shapely.from_wkb(blob) for oid, blob in rows}
