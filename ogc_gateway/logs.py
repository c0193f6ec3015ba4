"""Logging, configured once for every process of ogc-gateway: the CLI (all commands), the gunicorn
that `ogc-gateway serve` runs (its own lines and its workers'), and a gunicorn started by hand on
`ogc_gateway.wsgi:app` / `ogc_gateway.asgi:app`.

What an operator needs by default is warnings and errors: a source file that went bad or is gone,
a catalog that cannot be served, a failed sign-in, an unexpected error with its traceback. INFO adds
housekeeping (tile cache generations removed, output files trimmed) and gunicorn's start-up lines;
DEBUG is for developers. `ogc-gateway --log-level info …` or OGC_GATEWAY_LOG_LEVEL sets it;
`--log-format json` or OGC_GATEWAY_LOG_FORMAT=json writes one JSON object per line for collectors.

The level applies to the `ogc_gateway` loggers (and gunicorn's error log); other libraries log
their warnings and errors only. One handler on the root logger writes to stderr. Nothing here
replaces the log record factory, so the security section's redaction (security/redact.py, which
wraps that factory) keeps scrubbing every record; the formatters also scrub a traceback's text
while redaction is on, since the factory sees only the message and its arguments.
"""

from __future__ import annotations

import json as _json
import logging
import os
import sys
from datetime import UTC, datetime

from .security.redact import redact

ENV_LEVEL = "OGC_GATEWAY_LOG_LEVEL"
ENV_FORMAT = "OGC_GATEWAY_LOG_FORMAT"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FORMATS = ("text", "json")
DEFAULT_LEVEL = "WARNING"
LOGGER = "ogc_gateway"
_TEXT = "%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s"
_DATE = "[%Y-%m-%d %H:%M:%S %z]"          # gunicorn's own date format, so its lines and ours line up

_current = {"level": DEFAULT_LEVEL, "json": False}


def _redacting() -> bool:
    return bool(getattr(logging.getLogRecordFactory(), "_ogc_gateway_redacts", False))


class TextFormatter(logging.Formatter):
    """`[time] [pid] [LEVEL] logger: message`, then the traceback if any."""

    def __init__(self) -> None:
        super().__init__(_TEXT, _DATE)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return redact(text) if _redacting() else text


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (ISO 8601, UTC), level, logger, pid, message, and exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                 "level": record.levelname, "logger": record.name, "pid": record.process,
                 "message": record.getMessage()}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        if _redacting():
            entry = {k: redact(v) if isinstance(v, str) else v for k, v in entry.items()}
        return _json.dumps(entry, ensure_ascii=False)


class _Stderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a record comes (click's test runner and pytest swap it)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self):
        return sys.stderr


def handler(json: bool = False) -> logging.Handler:
    """The one handler: stderr, text or JSON lines (also built by gunicorn from its logconfig_dict)."""
    out = _Stderr()
    out.setFormatter(JsonFormatter() if json else TextFormatter())
    out._ogc_gateway = True
    return out


def level_name(level: str | int | None) -> str:
    """A level's name from a name (any case) or a number; ValueError for anything else."""
    if isinstance(level, int):
        return logging.getLevelName(level)
    name = (level or DEFAULT_LEVEL).strip().upper()
    if name not in LEVELS:
        raise ValueError(f"log level {level!r} is not one of {', '.join(LEVELS)}")
    return name


def configure(level: str | int = DEFAULT_LEVEL, json: bool = False) -> None:
    """Send log records to stderr, `ogc_gateway`'s from `level` up, other libraries' from WARNING.
    Calling it again replaces the configuration (never a second handler)."""
    name = level_name(level)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_ogc_gateway", False)]:
        root.removeHandler(old)
    root.addHandler(handler(json))
    logging.getLogger(LOGGER).setLevel(name)
    _current.update(level=name, json=json)


def configure_from_env() -> None:
    """configure() from OGC_GATEWAY_LOG_LEVEL and OGC_GATEWAY_LOG_FORMAT (a gunicorn run by hand);
    an unknown value falls back to the default rather than stopping the server."""
    try:
        name = level_name(os.environ.get(ENV_LEVEL))
    except ValueError:
        name = DEFAULT_LEVEL
    configure(name, json=os.environ.get(ENV_FORMAT, "").strip().lower() == "json")


def gunicorn_options() -> dict:
    """gunicorn settings that give its error log and its workers the configuration set by
    configure(): the same level, handler and format (gunicorn applies `logconfig_dict` itself)."""
    level, json = _current["level"], _current["json"]
    return {
        "loglevel": level.lower(),
        "logconfig_dict": {
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {"ogc_gateway": {"()": f"{__name__}.handler", "json": json}},
            "root": {"level": "WARNING", "handlers": ["ogc_gateway"]},
            "loggers": {LOGGER: {"level": level},
                        "gunicorn.error": {"level": level, "handlers": ["ogc_gateway"], "propagate": False}},
        },
    }
