"""Passwords, tokens and API keys never reach a log: every log record's message and arguments are
scrubbed (`token=***`, `Authorization: Bearer ***`, ogt1.… and ogk_… values anywhere), including
gunicorn's access log and werkzeug's request lines, which print query strings."""

from __future__ import annotations

import logging
import re

_PARAM = re.compile(r"(?i)(\b(?:token|password|passwd|pwd|api_?key|key)=)[^&\s\"'#]*")
_HEADER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
_VALUES = re.compile(r"\b(ogt1\.|ogk_)[A-Za-z0-9._~+/=-]+")


def redact(text: str) -> str:
    if not isinstance(text, str) or not text:
        return text
    text = _PARAM.sub(r"\1***", text)
    text = _HEADER.sub(r"\1 ***", text)
    return _VALUES.sub(r"\1***", text)


def _clean(value):
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_clean(v) for v in value)
    return value


def install() -> None:
    """Wrap the process's log record factory once, so every logger (ours, werkzeug's, gunicorn's
    access log) is scrubbed whatever handlers the deployment configures."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_ogc_gateway_redacts", False):
        return

    def factory(*args, **kwargs):
        record = previous(*args, **kwargs)
        try:                        # the finished message: a value may straddle the format and its arguments
            record.msg, record.args = redact(record.getMessage()), None
        except (TypeError, ValueError, KeyError):
            record.msg, record.args = _clean(record.msg), _clean(record.args)
        return record
    factory._ogc_gateway_redacts = True
    logging.setLogRecordFactory(factory)
