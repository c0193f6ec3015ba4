"""The publishing API (issue 16's contract) as a client: server-wide uploads, createService jobs,
job status, service deletion. The Spark writer is built on it.

    POST {root}/admin/uploads/upload            multipart `file`            -> {"item": {"itemID": …}}
    POST {root}/admin/uploads/{itemID}/delete
    POST {root}/admin/services/createService    service=<JSON>, itemIds=…   -> {"jobId": …}
    GET  {root}/admin/jobs/{jobId}?f=json                                   -> {"jobStatus": …, "messages": …}
    POST {root}/admin/services/{name}.ImageServer/delete

`root` is the server's `…/arcgis` root (a registered GIS's `url`).
"""

from __future__ import annotations

import json
import time

from .gis import Credentials
from .http import TOKEN_ERRORS, ImageServiceError, ThreadSessions, json_of

JOB_DONE = ("esriJobSucceeded", "esriJobFailed", "esriJobCancelled", "esriJobTimedOut")


class PublishingClient(ThreadSessions):
    session_workers = 2

    def __init__(self, root: str, credentials: Credentials | None = None, timeout: float = 600.0):
        self.root = root.split("?", 1)[0].rstrip("/")
        self.credentials = credentials or Credentials()
        self.timeout = timeout
        self._reset_sessions()

    @classmethod
    def for_options(cls, url: str | None, token: str | None, gis: str | None) -> PublishingClient:
        """From the Spark writer's options: a GIS gives both the root and the credentials; a token
        needs `url`."""
        creds = Credentials(token=token, gis=gis)
        root = url or (creds.gis.url if creds.gis is not None else None)
        if not root:
            raise ValueError("writing an image service needs a registered GIS (option gis), or option url "
                             "(the server's …/arcgis root) with a token")
        return cls(root, creds)

    def _call(self, method: str, path: str, data: dict | None = None, files=None) -> dict:
        url = f"{self.root}/{path}"
        for attempt in (0, 1):
            token = self.credentials.token(force=attempt == 1)
            form = dict(data or {}, f="json")
            if token:
                form["token"] = token
            if method == "GET":
                resp = self.session.get(url, params=form, timeout=self.timeout, verify=self.credentials.verify)
            else:
                resp = self.session.post(url, data=form, files=files, timeout=self.timeout,
                                         verify=self.credentials.verify)
            try:
                return json_of(resp)
            except ImageServiceError as exc:
                if exc.code in TOKEN_ERRORS and attempt == 0 and self.credentials.renewable:
                    if files:      # a stream read by the first attempt is rewound for the second
                        for value in files.values():
                            if hasattr(value[1], "seek"):
                                value[1].seek(0)
                    continue
                raise
        raise AssertionError("unreachable")

    def upload(self, content: bytes, filename: str, description: str = "") -> str:
        body = self._call("POST", "admin/uploads/upload", {"description": description},
                          files={"file": (filename, content, "image/tiff")})
        item = body.get("item") or {}
        if not body.get("success", True) or not item.get("itemID"):
            raise ImageServiceError(500, f"upload of {filename} gave no item", [json.dumps(body)[:200]])
        return str(item["itemID"])

    def delete_upload(self, item_id: str) -> None:
        self._call("POST", f"admin/uploads/{item_id}/delete")

    def service_exists(self, name: str) -> bool:
        try:
            self._call("GET", f"rest/services/{name}/ImageServer")
            return True
        except ImageServiceError as exc:
            if exc.code in (400, 404):
                return False
            raise

    def delete_service(self, name: str) -> None:
        self._call("POST", f"admin/services/{name}.ImageServer/delete")

    def create_service(self, service: dict, item_ids: list[str]) -> str:
        """Submit the createService job; its id."""
        body = self._call("POST", "admin/services/createService",
                          {"service": json.dumps(service), "itemIds": ",".join(item_ids)})
        if not body.get("jobId"):
            raise ImageServiceError(500, "createService gave no jobId", [json.dumps(body)[:200]])
        return str(body["jobId"])

    def job(self, job_id: str) -> dict:
        return self._call("GET", f"admin/jobs/{job_id}")

    def wait(self, job_id: str, timeout: float = 3600.0, poll: float = 0.5) -> dict:
        """Poll a job until it ends; a failed job raises with its messages."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.job(job_id)
            state = status.get("jobStatus")
            if state == "esriJobSucceeded":
                return status
            if state in JOB_DONE:
                messages = [m.get("description", m) if isinstance(m, dict) else m for m in status.get("messages") or ()]
                raise ImageServiceError(500, f"job {job_id} ended {state}", messages)
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {state} after {timeout:.0f} s")
            time.sleep(poll)
            poll = min(poll * 1.5, 5.0)
