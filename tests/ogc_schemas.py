"""Offline validation of OGC XML documents against the official schemas vendored in tests/schemas/.

    from ogc_schemas import validate
    validate(response.data)        # AssertionError listing the schema's messages (with line numbers)

The schema is chosen from the root element (namespace, local name and, where the same root exists in
several versions, the ``version`` attribute) through the ``SCHEMAS`` table below.  XML Schema imports of
``http://schemas.opengis.net/...`` and the W3C xlink/xml schemas are answered from tests/schemas/ by an
lxml resolver; nothing is ever fetched from the network (a location that is not vendored is an error).

A document whose ``xsi:schemaLocation`` names further vendored schemas (a WMS 1.3.0 capabilities document
that declares ``sld:GetLegendGraphic`` and lists the SLD 1.1.0 ``sld_capabilities.xsd``, say) is validated
against an in-memory schema that imports the main schema and each of those, so that substitution-group
members from the extension validate as well.  Schema locations outside the vendored set are ignored (and
named in the error message if the document turns out invalid).

DTD-based documents (WMS 1.1.1) are validated against the vendored DTD whatever system URL their DOCTYPE
names; declarations in the document's internal subset (such as the ``VendorSpecificCapabilities`` that
WMS 1.1.1 asks servers to declare there) are honoured, as an XML validator would.

To add a service (WCS 1.0/1.1.1/2.0, WMTS 1.0, ...): copy its schema files, and everything they import or
include, byte for byte under tests/schemas/ in the schemas.opengis.net layout (``ogc/<path>``), list them in
tests/schemas/README.md, and add a row to ``SCHEMAS``.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from lxml import etree

SCHEMAS_DIR = Path(__file__).resolve().parent / "schemas"

# Published location (prefix) -> place under tests/schemas/.  A key ending in "/" maps a whole tree.
LOCATIONS = {
    "http://schemas.opengis.net/": "ogc/",
    "https://schemas.opengis.net/": "ogc/",
    "http://www.w3.org/1999/xlink.xsd": "w3c/xlink.xsd",
    "http://www.w3.org/2001/xml.xsd": "w3c/xml.xsd",
}

# (root namespace or None, root local name, version attribute or None for any) -> schema under tests/schemas/.
# A ".dtd" entry means DTD validation.  A row with a version wins over a row without one.
SCHEMAS: dict[tuple[str | None, str, str | None], str] = {
    ("http://www.opengis.net/wms", "WMS_Capabilities", None): "ogc/wms/1.3.0/capabilities_1_3_0.xsd",
    ("http://www.opengis.net/ogc", "ServiceExceptionReport", "1.3.0"): "ogc/wms/1.3.0/exceptions_1_3_0.xsd",
    (None, "WMT_MS_Capabilities", None): "ogc/wms/1.1.1/WMS_MS_Capabilities.dtd",
    (None, "ServiceExceptionReport", "1.1.1"): "ogc/wms/1.1.1/exception_1_1_1.dtd",
    ("http://www.opengis.net/wcs", "WCS_Capabilities", None): "ogc/wcs/1.0.0/wcsCapabilities.xsd",
    ("http://www.opengis.net/wcs", "CoverageDescription", None): "ogc/wcs/1.0.0/describeCoverage.xsd",
    ("http://www.opengis.net/ogc", "ServiceExceptionReport", "1.2.0"): "ogc/wcs/1.0.0/OGC-exception.xsd",
    ("http://www.opengis.net/wcs/1.1.1", "Capabilities", None): "ogc/wcs/1.1.1/wcsGetCapabilities.xsd",
    ("http://www.opengis.net/wcs/1.1.1", "CoverageDescriptions", None): "ogc/wcs/1.1.1/wcsDescribeCoverage.xsd",
    ("http://www.opengis.net/wcs/1.1.1", "Coverages", None): "ogc/wcs/1.1.1/wcsCoverages.xsd",
    ("http://www.opengis.net/ows/1.1", "ExceptionReport", None): "ogc/ows/1.1.0/owsExceptionReport.xsd",
    ("http://www.opengis.net/wcs/2.0", "Capabilities", None): "ogc/wcs/2.0/wcsAll.xsd",
    ("http://www.opengis.net/wcs/2.0", "CoverageDescriptions", None): "ogc/wcs/2.0/wcsAll.xsd",
    ("http://www.opengis.net/ows/2.0", "ExceptionReport", None): "ogc/ows/2.0/owsExceptionReport.xsd",
    ("http://www.opengis.net/wmts/1.0", "Capabilities", None): "ogc/wmts/1.0/wmtsGetCapabilities_response.xsd",
}

XSI_SCHEMA_LOCATION = "{http://www.w3.org/2001/XMLSchema-instance}schemaLocation"
_MAX_MESSAGES = 50

_cache: dict[tuple, etree.XMLSchema | etree.DTD] = {}


def local_path(url: str) -> Path | None:
    """The vendored file for a published schema URL, or None when the URL is not in ``LOCATIONS``."""
    for prefix, target in LOCATIONS.items():
        if prefix.endswith("/") and url.startswith(prefix):
            return SCHEMAS_DIR / (target + url[len(prefix):])
        if url == prefix:
            return SCHEMAS_DIR / target
    return None


def published_url(rel: str) -> str:
    """The published URL of a vendored file (inverse of ``local_path``); ``rel`` is relative to tests/schemas/."""
    for prefix, target in LOCATIONS.items():
        if target.endswith("/") and rel.startswith(target):
            return prefix + rel[len(target):]
        if rel == target:
            return prefix
    raise ValueError(f"{rel} has no published location in LOCATIONS")


class _OfflineResolver(etree.Resolver):
    """Answers published schema URLs from tests/schemas/ and refuses every other network URL."""

    def __init__(self):
        super().__init__()
        self.refused: list[str] = []

    def resolve(self, url, pubid, context):
        path = local_path(url or "")
        if path is not None and path.is_file():
            return self.resolve_filename(str(path), context)
        if path is not None or (re.match(r"(?i)[a-z][a-z0-9+.-]*://", url or "") and not url.startswith("file:")):
            self.refused.append(url)
            raise LookupError(f"{url} is not vendored in tests/schemas/")  # lxml turns this into a load failure
        return None  # a local file (relative include inside a vendored schema): default loader


def _parser(resolver: _OfflineResolver | None = None) -> etree.XMLParser:
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    parser.resolvers.add(resolver or _OfflineResolver())
    return parser


def _compile_xsd(key: tuple, source: bytes, base_url: str) -> etree.XMLSchema:
    if key not in _cache:
        resolver = _OfflineResolver()
        try:
            _cache[key] = etree.XMLSchema(etree.parse(io.BytesIO(source), _parser(resolver), base_url=base_url))
        except etree.XMLSchemaParseError as exc:
            missing = "".join(f"\n  not vendored (no network access): {url}" for url in resolver.refused)
            raise RuntimeError(f"cannot compile the schema for {key} from tests/schemas/: {exc}{missing}") from exc
    return _cache[key]


def _schema_for(root: etree._Element) -> str:
    qname = etree.QName(root)
    ns, version = qname.namespace, root.get("version")
    rel = SCHEMAS.get((ns, qname.localname, version)) or SCHEMAS.get((ns, qname.localname, None))
    if rel is None:
        raise AssertionError(f"no schema for {root.tag}" + (f" (version {version})" if version else ""))
    return rel


def _extra_imports(root: etree._Element, main_ns: str | None) -> tuple[list[tuple[str, str]], list[str]]:
    """The (namespace, vendored file) pairs of the document's xsi:schemaLocation beyond the main namespace,
    and the locations that were skipped because they are not vendored."""
    tokens = (root.get(XSI_SCHEMA_LOCATION) or "").split()
    extra, skipped = [], []
    for ns, loc in zip(tokens[0::2], tokens[1::2]):
        if ns == main_ns:
            continue
        path = local_path(loc)
        if path is None or not path.is_file():
            skipped.append(f"{ns} {loc}")
            continue
        extra.append((ns, path.relative_to(SCHEMAS_DIR).as_posix()))
    return sorted(set(extra)), skipped


def _xsd_schema(rel: str, root: etree._Element) -> tuple[etree.XMLSchema, str, list[str]]:
    """The compiled schema, a label naming its files, and the schema locations that were not used."""
    main_ns = etree.QName(root).namespace
    extra, skipped = _extra_imports(root, main_ns)
    if not extra:
        path = SCHEMAS_DIR / rel
        return _compile_xsd((rel,), path.read_bytes(), str(path)), rel, skipped
    imports = [(main_ns, rel)] + extra
    wrapper = ['<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">']
    for ns, file in imports:
        ns_attr = f' namespace="{ns}"' if ns else ""
        wrapper.append(f'<xs:import{ns_attr} schemaLocation="{published_url(file)}"/>')
    wrapper.append("</xs:schema>")
    key = (rel, *extra)
    label = " + ".join([rel] + [file for _, file in extra])
    return _compile_xsd(key, "\n".join(wrapper).encode(), str(SCHEMAS_DIR / "combined.xsd")), label, skipped


_DOCTYPE = re.compile(r"""<!DOCTYPE\s+[^\s\[>]+(?:\s+(?:SYSTEM|PUBLIC)(?:\s+(?:"[^"]*"|'[^']*'))+)?\s*"""
                      r"""\[(?P<subset>(?:[^\]"']|"[^"]*"|'[^']*')*)\]\s*>""")


def _internal_subset(tree: etree._ElementTree) -> str:
    if tree.docinfo.internalDTD is None:
        return ""
    match = _DOCTYPE.search(etree.tostring(tree, encoding="unicode").split("<" + tree.getroot().tag, 1)[0])
    subset = match.group("subset").strip() if match else ""
    if re.search(r"\b(SYSTEM|PUBLIC)\b", subset):
        raise AssertionError("the internal DTD subset refers to external entities, which are not loaded offline")
    return subset


def _dtd(rel: str, subset: str) -> etree.DTD:
    key = (rel, subset)
    if key not in _cache:
        path = SCHEMAS_DIR / rel
        if subset:  # internal subset first: as in XML, its declarations are read before the external subset's
            _cache[key] = etree.DTD(io.BytesIO(subset.encode() + b"\n" + path.read_bytes()))
        else:
            _cache[key] = etree.DTD(str(path))
    return _cache[key]


def _messages(error_log) -> list[str]:
    return [f"line {e.line}: {e.message}" for e in error_log]


def _parse(xml: bytes | str) -> etree._ElementTree:
    if isinstance(xml, str):
        # lxml refuses str input with an encoding declaration; drop the declaration's encoding (same line).
        xml = re.sub(r"""^(\s*<\?xml[^>]*?)\s+encoding\s*=\s*(["'])[^"']*\2""", r"\1", xml, count=1)
    try:
        return etree.fromstring(xml, _parser()).getroottree()
    except etree.XMLSyntaxError as exc:
        raise AssertionError(f"not well-formed XML: {exc}") from None


def validate(xml: bytes | str) -> None:
    """Raise AssertionError with the schema's messages if ``xml`` is not valid; return None if it is."""
    tree = _parse(xml)
    root = tree.getroot()
    rel = label = _schema_for(root)
    skipped: list[str] = []
    if rel.endswith(".dtd"):
        validator = _dtd(rel, _internal_subset(tree))
    else:
        validator, label, skipped = _xsd_schema(rel, root)
    if validator.validate(tree):
        return
    messages = _messages(validator.error_log) or ["(no message from the validator)"]
    if len(messages) > _MAX_MESSAGES:
        messages = messages[:_MAX_MESSAGES] + [f"... and {len(messages) - _MAX_MESSAGES} more"]
    note = [f"(schemaLocation not vendored, not used: {s})" for s in skipped]
    raise AssertionError(f"{root.tag} is invalid against {label}:\n  " + "\n  ".join(messages + note))


def clear_cache() -> None:
    """Forget the compiled schemas (tests use it to prove that compiling needs no network)."""
    _cache.clear()
