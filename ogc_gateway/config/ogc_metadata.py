"""What the OGC capabilities say about the server and each service: keywords, the CRS list, the
contact, attribution, metadata URLs and scale denominators."""

from __future__ import annotations

import re
from dataclasses import fields
from typing import Any

from ..engine import Attribution, MetadataUrl
from .model import Contact
from .values import Checker, is_int

CONTACT_KEYS = tuple(f.name for f in fields(Contact))
ATTRIBUTION_KEYS = tuple(f.name for f in fields(Attribution))
METADATA_URL_KEYS = ("type", "format", "url")

_EPSG = re.compile(r"^epsg:(\d+)$", re.IGNORECASE)


def keywords(check: Checker, value: Any, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if (not isinstance(value, list)
            or not all(isinstance(v, (str, int, float)) and not isinstance(v, bool)
                       and str(v).strip() for v in value)):
        check.problem(key, f"must be a list of non-empty strings, not {value!r}")
        return ()
    return tuple(str(v).strip() for v in value)


def ogc_crs(check: Checker, value: Any, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """A list of `EPSG:<code>` identifiers pyproj knows, normalised to upper-case `EPSG:`."""
    if value is None:
        return default
    if not isinstance(value, list):
        check.problem(key,
                      f"must be a list of CRS identifiers such as 'EPSG:4326', not {value!r}")
        return default
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    built: list[str] = []
    for i, entry in enumerate(value):
        where = f"{key}[{i}]"
        if is_int(entry):
            check.problem(where, f"must be a string 'EPSG:<code>' (e.g. 'EPSG:{entry}'), "
                                 f"not {entry!r}")
            continue
        if not isinstance(entry, str):
            check.problem(where, f"must be a string 'EPSG:<code>', not {entry!r}")
            continue
        match = _EPSG.match(entry.strip())
        if match is None:
            why = (" (CRS:84 is added by the WMS 1.3.0 face itself)"
                   if entry.strip().upper() == "CRS:84" else "")
            check.problem(where, f"{entry!r} is not of the form 'EPSG:<code>'{why}")
            continue
        code = f"EPSG:{int(match.group(1))}"
        try:
            CRS.from_user_input(code)
        except (CRSError, TypeError, ValueError):
            check.problem(where, f"{entry!r} is not a CRS known to PROJ")
            continue
        if code in built:
            check.problem(where, f"duplicate CRS {code!r}")
            continue
        built.append(code)
    return tuple(built)


def contact(check: Checker, value: Any, key: str) -> Contact | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        check.problem(key, f"must be a mapping ({', '.join(CONTACT_KEYS)}), not {value!r}")
        return None
    d = check.mapping(value, key, CONTACT_KEYS)
    return Contact(**{k: check.text(d, k, key) or "" for k in CONTACT_KEYS})


def attribution(check: Checker, value: Any, key: str) -> Attribution | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        check.problem(key, f"must be a mapping with 'title' and/or 'url', not {value!r}")
        return None
    d = check.mapping(value, key, ATTRIBUTION_KEYS)
    if d.get("title") is None and d.get("url") is None:
        check.problem(key, "needs at least 'title' or 'url'")
    attribution = Attribution(
        title=check.text(d, "title", key) or "",
        url=check.url(d, "url", key),
        logo_url=check.url(d, "logo_url", key),
        logo_format=check.mime_type(d, "logo_format", key, "image/png"),
        logo_width=check.positive_int(d, "logo_width", key),
        logo_height=check.positive_int(d, "logo_height", key),
    )
    if d.get("logo_url") is None:
        for k in ("logo_format", "logo_width", "logo_height"):
            if d.get(k) is not None:
                check.problem(f"{key}.{k}", "needs logo_url")
    return attribution


def metadata_urls(check: Checker, value: Any, key: str) -> tuple[MetadataUrl, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        check.problem(key, f"must be a list of mappings {{type, format, url}}, not {value!r}")
        return ()
    built: list[MetadataUrl] = []
    for i, entry in enumerate(value):
        where = f"{key}[{i}]"
        if not isinstance(entry, dict):
            check.problem(where, f"must be a mapping {{type, format, url}}, not {entry!r}")
            continue
        d = check.mapping(entry, where, METADATA_URL_KEYS)
        kind = check.text(d, "type", where)
        if d.get("type") is None or (kind is not None and not kind.strip()):
            check.problem(f"{where}.type", "required: ISO19115:2003, FGDC, TC211, ISO19139 or "
                                           "another non-empty name")
            kind = None
        url = check.url(d, "url", where)
        if d.get("url") is None:
            check.problem(f"{where}.url",
                          "required: the http:// or https:// URL of the metadata")
        format_ = check.mime_type(d, "format", where, "text/xml")
        if kind is not None and url is not None:
            built.append(MetadataUrl(type=kind.strip(), url=url, format=format_))
    return tuple(built)


def scale_denominators(check: Checker, d: dict, where: str) -> dict[str, float | None]:
    scales: dict[str, float | None] = {}
    for key in ("min_scale_denominator", "max_scale_denominator"):
        value = d.get(key)
        number = None
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            try:                # a string too: YAML 1.1 reads 2.5e6 (no exponent sign) as one
                number = float(value)
            except ValueError:
                pass
        if value is not None and not (number is not None and 0 < number < float("inf")):
            check.problem(f"{where}.{key}", f"must be a positive number, not {value!r}")
            number = None
        scales[key] = number
    low, high = scales["min_scale_denominator"], scales["max_scale_denominator"]
    if low is not None and high is not None and low >= high:
        check.problem(f"{where}.min_scale_denominator",
                      f"must be less than max_scale_denominator "
                      f"({d['max_scale_denominator']!r}), not {d['min_scale_denominator']!r}")
    return scales

