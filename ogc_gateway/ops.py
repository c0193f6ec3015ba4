"""Operations endpoints: `/healthz` (the process answers), `/readyz` (it can serve: every catalog
answers and the storage of every source and of the shared cache is reachable) and `/metrics`
(Prometheus text, summed over every worker).

A load balancer or Kubernetes takes an instance out of rotation while /readyz is not 200 and
restarts it only when /healthz fails, so an outage of the catalog database or of object storage
drains traffic without a restart loop.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify

from . import metrics
from .engine import check_sources_reachable
from .gateway import gateway

bp = Blueprint("ops", __name__)
log = logging.getLogger("ogc_gateway")


@bp.route("/healthz", methods=["GET", "HEAD"])
def healthz():
    return Response("ok\n", mimetype="text/plain", headers={"Cache-Control": "no-store"})


def readiness_problems() -> dict[str, str]:
    """Every check by name: "ok" or what is wrong."""
    gw = gateway()
    checks: dict[str, str] = {}
    for name, svc in gw.registry.items():
        try:
            svc.catalog.ping()
            checks[f"catalog:{name}"] = "ok"
        except OSError as exc:
            checks[f"catalog:{name}"] = str(exc)
        for pattern in svc.config.sources:
            try:
                check_sources_reachable(pattern)
                checks[f"sources:{name}:{pattern}"] = "ok"
            except OSError as exc:
                checks[f"sources:{name}:{pattern}"] = str(exc)
    store_check = getattr(gw.tile_store, "check_reachable", None)
    if store_check is not None:
        try:
            store_check()
            checks["tile_cache"] = "ok"
        except OSError as exc:
            checks["tile_cache"] = str(exc)
    return checks


@bp.route("/readyz", methods=["GET", "HEAD"])
def readyz():
    checks = readiness_problems()
    ready = all(v == "ok" for v in checks.values())
    if not ready:
        log.warning("not ready: %s", "; ".join(f"{k}: {v}" for k, v in checks.items() if v != "ok"))
    resp = jsonify({"status": "ready" if ready else "unavailable", "checks": checks})
    resp.status_code = 200 if ready else 503
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.route("/metrics", methods=["GET"])
def prometheus_metrics():
    gw = gateway()
    generations = {}
    for name, svc in gw.services.items():          # .services refreshes changed catalogs first
        try:
            generations[name] = svc.catalog.last_change()
        except Exception:  # noqa: BLE001 - a scrape still answers while a catalog is down
            log.exception("%s: catalog generation unavailable", name)
    metrics.set_generations(generations)
    body, content_type = metrics.exposition()
    return Response(body, content_type=content_type, headers={"Cache-Control": "no-store"})
