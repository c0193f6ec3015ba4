"""Long operations as ArcGIS jobs, recorded in SQLite so any worker answers for any job.

A job runs on a thread of the worker that accepted it; its row holds the status, the messages and
the result, plus the host and process running it. A job whose process is gone (the worker was
killed) is reported failed the next time anyone asks, and its `cleanup` is not needed: every job
here undoes its own partial work when it fails, and what a killed one leaves is invisible (a
published service exists only once its definition is written, last).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..engine import GatewayError, NotFound
from ..rest.responses import rest_error

log = logging.getLogger("ogc_gateway.publish")

SUBMITTED, EXECUTING, SUCCEEDED, FAILED = ("esriJobSubmitted", "esriJobExecuting", "esriJobSucceeded",
                                           "esriJobFailed")
_SCHEMA = """CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, status TEXT NOT NULL, messages TEXT NOT NULL,
    result TEXT, host TEXT NOT NULL, pid INTEGER NOT NULL, created INTEGER NOT NULL, updated INTEGER NOT NULL)"""

Work = Callable[[Callable[[str], None]], Any]     # called with a `message` function; returns the result


class Jobs:
    def __init__(self, db_path: Path):
        self.db_path = Path(db_path)
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        with self._con() as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute(_SCHEMA)

    def _con(self) -> sqlite3.Connection:
        return sqlite3.connect(self.db_path, timeout=30, isolation_level=None)

    def submit(self, kind: str, work: Work, *, wait: bool = False) -> str:
        """Record a job and run `work` on a thread (or here, when `wait`); its id."""
        job_id = "j" + uuid.uuid4().hex
        now = _now()
        with self._con() as con:
            con.execute("INSERT INTO jobs VALUES (?, ?, ?, '[]', NULL, ?, ?, ?, ?)",
                        (job_id, kind, SUBMITTED, socket.gethostname(), os.getpid(), now, now))
        if wait:
            self._run(job_id, work)
        else:
            threading.Thread(target=self._run, args=(job_id, work), name=f"job-{job_id}", daemon=False).start()
        return job_id

    def get(self, job_id: str) -> dict:
        with self._con() as con:
            row = con.execute("SELECT id, kind, status, messages, result, host, pid FROM jobs WHERE id = ?",
                              (job_id,)).fetchone()
        if row is None:
            raise NotFound("Job not found.", details=[f"There is no job {job_id!r}."])
        job_id, kind, status, messages, result, host, pid = row
        messages = json.loads(messages)
        if status in (SUBMITTED, EXECUTING) and host == socket.gethostname() and not _alive(pid):
            status = FAILED
            messages.append(_message("esriJobMessageTypeError", "the worker running the job stopped"))
            self._update(job_id, status, messages, None)
        return {"jobId": job_id, "jobType": kind, "jobStatus": status, "messages": messages,
                "results": json.loads(result) if result else {}}

    def _run(self, job_id: str, work: Work) -> None:
        messages: list[dict] = []

        def message(text: str) -> None:
            messages.append(_message("esriJobMessageTypeInformative", text))
            self._update(job_id, EXECUTING, messages, None)

        self._update(job_id, EXECUTING, messages, None)
        try:
            result = work(message)
        except GatewayError as exc:
            exc = rest_error(exc)
            messages += [_message("esriJobMessageTypeError", m) for m in [exc.message, *exc.details]]
            self._update(job_id, FAILED, messages, None)
        except Exception as exc:          # a job's failure is its record, never a lost thread
            log.exception("job %s failed", job_id)
            messages.append(_message("esriJobMessageTypeError", f"{type(exc).__name__}: {exc}"))
            self._update(job_id, FAILED, messages, None)
        else:
            self._update(job_id, SUCCEEDED, messages, result)

    def _update(self, job_id: str, status: str, messages: list[dict], result: Any) -> None:
        with self._con() as con:
            con.execute("UPDATE jobs SET status = ?, messages = ?, result = ?, updated = ? WHERE id = ?",
                        (status, json.dumps(messages), None if result is None else json.dumps(result),
                         _now(), job_id))


def _message(kind: str, text: str) -> dict:
    return {"type": kind, "description": text}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _now() -> int:
    return time.time_ns() // 1_000_000
