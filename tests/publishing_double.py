"""A test double of issue 16's publishing API (uploads, createService jobs, job status, service
deletion), exactly the contract the Spark writer is written against, keeping what it receives so
tests can check it. The real API replaces it in the round-trip tests once issue 16 is merged."""

from __future__ import annotations

import itertools
import json
import threading

from flask import Flask, jsonify, request


def publishing_double(token: str = "publisher-token") -> tuple[Flask, dict]:
    app = Flask("publishing-double")
    state = {"uploads": {}, "services": {}, "jobs": {}, "deleted_uploads": [], "deleted_services": [],
             "job_polls": 0}
    ids = itertools.count(1)
    lock = threading.Lock()

    def refused():
        if request.values.get("token") != token:
            return jsonify({"error": {"code": 498, "message": "Invalid Token", "details": []}})
        return None

    @app.post("/arcgis/admin/uploads/upload")
    def upload():
        if (r := refused()) is not None:
            return r
        f = request.files.get("file")
        if f is None:
            return jsonify({"error": {"code": 400, "message": "file is required", "details": []}})
        with lock:
            item = f"i{next(ids)}"
            state["uploads"][item] = {"name": f.filename, "data": f.read(),
                                      "description": request.form.get("description", "")}
        return jsonify({"success": True, "item": {"itemID": item, "itemName": f.filename, "committed": True}})

    @app.post("/arcgis/admin/uploads/<item>/delete")
    def delete_upload(item):
        if (r := refused()) is not None:
            return r
        with lock:
            state["uploads"].pop(item, None)
            state["deleted_uploads"].append(item)
        return jsonify({"success": True})

    @app.post("/arcgis/admin/services/createService")
    def create_service():
        if (r := refused()) is not None:
            return r
        service = json.loads(request.form["service"])
        items = request.form["itemIds"].split(",")
        with lock:
            if service["name"] in state["services"]:
                return jsonify({"error": {"code": 400, "message": "service exists", "details": []}})
            missing = [i for i in items if i not in state["uploads"]]
            if missing:
                return jsonify({"error": {"code": 400, "message": f"unknown items {missing}", "details": []}})
            job = f"j{next(ids)}"
            state["services"][service["name"]] = {"service": service, "items": items}
            state["jobs"][job] = 0
        return jsonify({"jobId": job, "jobStatus": "esriJobSubmitted"})

    @app.get("/arcgis/admin/jobs/<job>")
    def job_status(job):
        if (r := refused()) is not None:
            return r
        with lock:
            if job not in state["jobs"]:
                return jsonify({"error": {"code": 404, "message": "no such job", "details": []}})
            state["jobs"][job] += 1
            state["job_polls"] += 1
            polls = state["jobs"][job]
        status = "esriJobExecuting" if polls < 2 else "esriJobSucceeded"
        return jsonify({"jobId": job, "jobStatus": status, "messages": []})

    @app.post("/arcgis/admin/services/<name>.ImageServer/delete")
    def delete_service(name):
        if (r := refused()) is not None:
            return r
        with lock:
            state["services"].pop(name, None)
            state["deleted_services"].append(name)
        return jsonify({"success": True})

    @app.get("/arcgis/rest/services/<name>/ImageServer")
    def root(name):
        if (r := refused()) is not None:
            return r
        if name not in state["services"]:
            return jsonify({"error": {"code": 404, "message": "Service not found", "details": []}})
        return jsonify({"name": name})

    return app, state
