"""The publishing API over HTTP, as ArcGIS Server's: uploads, add/update/delete on an image
service, and the administrator's createService, edit, delete and jobs.

Registered only when security is on; every route needs the role `admin` or `publisher`. Errors are
ArcGIS JSON errors, like the rest of the REST face.
"""

from __future__ import annotations

import json
from pathlib import Path

from flask import Blueprint, Response, request

from ..engine import GatewayError, InvalidParameter, NotFound, build_overviews, check_attributes
from ..gateway import gateway
from ..rest.params import Params
from ..rest.responses import check_callback, error_response, json_response
from ..security.web import refusal, require_role, security, who
from . import UPLOAD_PATHS
from .jobs import Jobs
from .services import PublishedServices, place, sweep
from .uploads import Expect, Uploads, check_raster

bp = Blueprint("publish", __name__)

_SERVICE = "/arcgis/rest/services/<name>/ImageServer"
_ADMIN = "/arcgis/admin"
# `add` with more uploads than this runs as a job unless the caller asks to wait (async=false).
ADD_IN_REQUEST = 20


@bp.before_request
def _upload_size():
    """Files may be as large as `max_upload_bytes`; other bodies keep the server's `max_request_bytes`.
    (Set before anything reads the form: the token may come in it.)"""
    if request.path.endswith(UPLOAD_PATHS):
        request.max_content_length = gateway().config.server.max_upload_bytes + (1 << 20)


@bp.before_request
def _publisher_only():
    """A publisher or an admin; on a service, one that may also use that service."""
    refused = require_role("admin", "publisher")(lambda: None)()
    if refused is not None:
        return refused
    name = (request.view_args or {}).get("name")
    if name is not None and name in gateway().registry:
        decision = security().decide(name, who())
        if not decision.allowed:
            return refusal(decision, "rest")
    return None


@bp.errorhandler(GatewayError)
def _error(exc: GatewayError):
    return error_response(exc, http_errors=gateway().config.server.rest_http_errors,
                          callback=_params().get("callback"))


def _params() -> Params:
    return Params(request.values.items(multi=True))


def _json(body) -> Response:
    p = _params()
    return json_response(body, pretty=(p.get("f") or "").lower() == "pjson", callback=check_callback(p.get("callback")))


def uploads() -> Uploads:
    server = gateway().config.server
    return Uploads(server.cache_dir / "uploads", server.max_upload_bytes, server.upload_ttl_hours * 3600)


def jobs() -> Jobs:
    return Jobs(gateway().config.server.cache_dir / "jobs.sqlite")


def published() -> PublishedServices:
    return PublishedServices(gateway().config)


# ---- uploads (server-wide, and on a service) -------------------------------------------------------

def _expect(name: str | None) -> Expect | None:
    """What an upload on a service must match; server-wide uploads are checked as rasters only."""
    if name is None:
        return None
    info = gateway().service(name).info
    return Expect(info.band_count, info.dtype)


def _upload(name: str | None = None):
    sent = request.files.get("file")
    if sent is None:
        raise InvalidParameter("file", "no file was sent (a multipart field named 'file')")
    item = uploads().upload(sent.stream, sent.filename, _params().get("description") or "", name, _expect(name))
    return _json({"success": True, "item": item.public()})


def _register(name: str | None = None):
    p = _params()
    item = uploads().register(p.get("itemName") or "", p.get("description") or "", name)
    return _json({"success": True, "item": item.public()})


def _upload_part(item_id: str, name: str | None = None):
    sent = request.files.get("file")
    if sent is None:
        raise InvalidParameter("file", "no part was sent (a multipart field named 'file')")
    _own(item_id, name)
    uploads().upload_part(item_id, _params().get("partId") or "", sent.stream)
    return _json({"success": True})


def _commit(item_id: str, name: str | None = None):
    _own(item_id, name)
    raw = _params().get("parts")
    parts = [p.strip() for p in raw.split(",") if p.strip()] if raw else None
    item = uploads().commit(item_id, parts, _expect(name))
    return _json({"success": True, "item": item.public()})


def _get(item_id: str, name: str | None = None):
    return _json({"item": _own(item_id, name).public()})


def _delete_upload(item_id: str, name: str | None = None):
    _own(item_id, name)
    uploads().delete(item_id)
    return _json({"success": True})


def _own(item_id: str, name: str | None):
    """An upload is reached through the service it was made on (or server-wide when it was)."""
    item = uploads().get(item_id)
    if item.service != name:
        raise NotFound("Upload not found.", details=[f"There is no upload {item_id!r} here."])
    return item


for prefix, endpoint in ((f"{_ADMIN}/uploads", "admin"), (f"{_SERVICE}/uploads", "service")):
    bp.add_url_rule(f"{prefix}/upload", f"{endpoint}_upload", _upload, methods=["POST"])
    bp.add_url_rule(f"{prefix}/register", f"{endpoint}_register", _register, methods=["POST"])
    bp.add_url_rule(f"{prefix}/<item_id>/uploadPart", f"{endpoint}_part", _upload_part, methods=["POST"])
    bp.add_url_rule(f"{prefix}/<item_id>/commit", f"{endpoint}_commit", _commit, methods=["POST"])
    bp.add_url_rule(f"{prefix}/<item_id>", f"{endpoint}_get", _get, methods=["GET", "POST"])
    bp.add_url_rule(f"{prefix}/<item_id>/delete", f"{endpoint}_delete", _delete_upload, methods=["POST"])


# ---- raster editing on a service -------------------------------------------------------------------

def _json_param(p: Params, name: str, default=None):
    raw = p.get(name)
    if raw is None:
        return default
    if len(raw) > 1_000_000:
        raise InvalidParameter(name, "is longer than 1,000,000 characters")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidParameter(name, "is not valid JSON") from None


def _ids(p: Params, name: str) -> list[int]:
    raw = p.get(name)
    if raw is None:
        raise InvalidParameter(name, "required: a comma-separated list of raster ids")
    try:
        ids = [int(v) for v in raw.split(",") if v.strip()]
    except ValueError:
        raise InvalidParameter(name, f"{raw!r} is not a comma-separated list of whole numbers") from None
    if not ids:
        raise InvalidParameter(name, "required: a comma-separated list of raster ids")
    return ids


def _item_ids(p: Params) -> list[str]:
    raw = p.get("itemIds") or p.get("itemId")
    ids = [v.strip() for v in (raw or "").split(",") if v.strip()]
    if not ids:
        raise InvalidParameter("itemIds", "required: a comma-separated list of upload item ids")
    return ids


@bp.route(f"{_SERVICE}/add", methods=["POST"])
def add(name: str):
    """New items from uploads (made on this service or server-wide), each checked against the
    service, placed in the data folder and added to the catalog in one change."""
    p = _params()
    gw, up = gateway(), uploads()
    svc = gw.service(name)
    item_ids = _item_ids(p)
    files = [up.file(i, name)[1] for i in item_ids]
    expect = Expect(svc.info.band_count, svc.info.dtype)
    for f in files:           # server-wide uploads were checked as rasters only
        check_raster(f, expect, up.max_bytes)
    attributes = check_attributes(svc.catalog.attribute_fields(), _json_param(p, "attributes", {}))
    build = p.bool("buildPyramids", False)
    folder = gw.config.server.published_data_dir / name

    def work(message):
        folder.mkdir(parents=True, exist_ok=True)
        sweep(folder, svc.catalog, up.ttl_seconds)
        placed = []
        try:
            for f in files:
                placed.append(place(f, folder))
                if build:
                    build_overviews(str(placed[-1]))
            paths = [str(x) for x in placed]
            svc.catalog.add(paths)
            oids = svc.catalog.oids_of(paths)
            if attributes:
                svc.catalog.set_attributes(oids, attributes)
        except BaseException:
            for x in placed:
                x.unlink(missing_ok=True)
            raise
        for i in item_ids:
            up.delete(i)
        message(f"{name}: {len(oids)} raster(s) added")
        return {"addResults": [{"rasterId": oid, "success": True} for oid in oids]}

    return _run("add", work, p, default_wait=len(files) <= ADD_IN_REQUEST, plain=True)


@bp.route(f"{_SERVICE}/update", methods=["POST"])
def update(name: str):
    p = _params()
    svc = gateway().service(name)
    ids = _ids(p, "rasterIds")
    attributes = check_attributes(svc.catalog.attribute_fields(), _json_param(p, "attributes"))
    if not attributes:
        raise InvalidParameter("attributes", "required: a JSON object of field names and values")
    svc.catalog.set_attributes(ids, attributes)
    return _json({"updateResults": [{"rasterId": oid, "success": True} for oid in ids]})


@bp.route(f"{_SERVICE}/delete", methods=["POST"])
def delete(name: str):
    p = _params()
    svc = gateway().service(name)
    removed = svc.catalog.remove_ids(_ids(p, "rasterIds"))
    ours = gateway().config.server.published_data_dir.resolve()
    for path in map(Path, removed):
        if ours in path.resolve().parents:          # our copies go; a configured source file stays
            path.unlink(missing_ok=True)
    return _json({"deleteResults": [{"rasterId": oid, "success": True} for oid in _ids(p, "rasterIds")]})


# ---- services and jobs -----------------------------------------------------------------------------

@bp.route(f"{_ADMIN}/services", methods=["GET", "POST"])
@bp.route(f"{_ADMIN}/services/", methods=["GET", "POST"])
def services_list():
    gw = gateway()
    live = gw.services
    listing = [{"serviceName": n, "type": "ImageServer", "origin": "config", "status": "STARTED"}
               for n in gw.config.services]
    listing += [{"serviceName": n, "type": "ImageServer", "origin": "published",
                 "status": "STARTED" if n in live else "STOPPED"} for n in published().names()]
    return _json({"folderName": "/", "services": listing})


@bp.route(f"{_ADMIN}/services/createService", methods=["POST"])
def create_service():
    p = _params()
    raw = _json_param(p, "service")
    if not isinstance(raw, dict):
        raise InvalidParameter("service", "required: a JSON object with a 'name' and the keys of a service")
    body = dict(raw)
    name = body.pop("name", None) or body.pop("serviceName", None)
    item_ids = _item_ids(p)
    up = uploads()
    files = [up.file(i)[1] for i in item_ids]
    store = published()
    store.check_new(name, body, files)
    build = p.bool("buildPyramids", False)

    def work(message):
        result = store.create(name, body, files, build, message)
        for i in item_ids:
            up.delete(i)
        return result

    return _run("createService", work, p, default_wait=False)


@bp.route(f"{_ADMIN}/services/<name>.ImageServer/edit", methods=["POST"])
def edit_service(name: str):
    p = _params()
    raw = _json_param(p, "service")
    if not isinstance(raw, dict):
        raise InvalidParameter("service", "required: a JSON object of the service's keys")
    body = {k: v for k, v in raw.items() if k not in ("name", "serviceName")}
    _published_only(name)
    store = published()
    return _run("editService", lambda message: store.edit(name, body, message), p, default_wait=False)


@bp.route(f"{_ADMIN}/services/<name>.ImageServer/delete", methods=["POST"])
def delete_service(name: str):
    _published_only(name)
    published().delete(name)
    return _json({"status": "success"})


@bp.route(f"{_ADMIN}/jobs/<job_id>", methods=["GET", "POST"])
def job(job_id: str):
    return _json(jobs().get(job_id))


def _published_only(name: str) -> None:
    if name in gateway().config.services:
        raise InvalidParameter("service", f"{name!r} comes from the configuration file; change it there")
    published().definition(name)


def _run(kind: str, work, p: Params, *, default_wait: bool, plain: bool = False) -> Response:
    """Run `work` as a job. Waited for (`async=false`, or by default for small work) its result is
    the answer — the operation's own body when `plain` — else the job's id and status."""
    wait = not p.bool("async", not default_wait)
    store = jobs()
    job_id = store.submit(kind, work, wait=wait)
    state = store.get(job_id)
    if wait and plain:
        if state["jobStatus"] != "esriJobSucceeded":
            raise InvalidParameter(kind, "; ".join(m["description"] for m in state["messages"]))
        return _json(state["results"])
    if wait:
        return _json(state)
    return _json({"jobId": job_id, "jobStatus": state["jobStatus"]})
