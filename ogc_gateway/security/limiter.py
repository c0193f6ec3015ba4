"""Failed sign-ins, counted per user name and per client address in a small SQLite file in
cache_dir, so every gunicorn worker (and every process on one host) sees the same counts.

A subject that failed `limit` times within the window is refused until the oldest of those
failures leaves the window; the caller answers HTTP 429 with that many seconds in Retry-After.
"""

from __future__ import annotations

import math
import sqlite3
import time
from pathlib import Path


class Limiter:
    def __init__(self, path: Path, per_user: int, window_seconds: int, per_address: int | None = None):
        self.path = path
        self.per_user = per_user
        self.per_address = per_address or per_user * 4
        self.window = window_seconds
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.execute("CREATE TABLE IF NOT EXISTS failures (subject TEXT NOT NULL, at REAL NOT NULL)")
            db.execute("CREATE INDEX IF NOT EXISTS failures_subject ON failures (subject, at)")

    def _db(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        return _Closing(db)

    def _subjects(self, user: str | None, address: str | None) -> list[tuple[str, int]]:
        out = []
        if user:
            out.append((f"user:{user}", self.per_user))
        if address:
            out.append((f"addr:{address}", self.per_address))
        return out

    def retry_after(self, user: str | None, address: str | None, now: float | None = None) -> int:
        """Seconds until a sign-in by this user from this address is allowed again (0: now)."""
        now = time.time() if now is None else now
        wait = 0.0
        with self._db() as db:
            for subject, limit in self._subjects(user, address):
                rows = db.execute("SELECT at FROM failures WHERE subject = ? AND at > ? ORDER BY at DESC LIMIT ?",
                                  (subject, now - self.window, limit)).fetchall()
                if len(rows) >= limit:
                    wait = max(wait, rows[-1][0] + self.window - now)
        return int(math.ceil(wait)) if wait > 0 else 0

    def failed(self, user: str | None, address: str | None, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self._db() as db:
            db.executemany("INSERT INTO failures (subject, at) VALUES (?, ?)",
                           [(s, now) for s, _ in self._subjects(user, address)])
            db.execute("DELETE FROM failures WHERE at < ?", (now - self.window,))

    def succeeded(self, user: str) -> None:
        """A correct password clears the user's count (not the address's)."""
        with self._db() as db:
            db.execute("DELETE FROM failures WHERE subject = ?", (f"user:{user}",))


class _Closing:
    """sqlite3's context manager commits but does not close; this one closes."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        return self.db

    def __exit__(self, *exc) -> None:
        self.db.close()
