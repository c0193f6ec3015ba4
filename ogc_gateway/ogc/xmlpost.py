"""XML request bodies (HTTP POST) for every OGC face that takes them: parsed safely, then read
by local element names, since clients differ in the namespace versions they send.

Safe means: no DTD loaded, no entity expanded, no network access, at most MAX_BODY bytes and
MAX_DEPTH levels of elements (no OGC request nests anywhere near that), no huge-tree mode.
"""

from __future__ import annotations

from lxml import etree

from .common import OGCError

MAX_BODY = 1_000_000          # bytes of an XML request body
MAX_DEPTH = 64                # element nesting


def parse(body: bytes) -> etree._Element:
    """An XML request body as its root element; a body that is too large, too deep, empty or not
    well-formed is an OGCError (InvalidEncodingSyntax for broken XML)."""
    if len(body) > MAX_BODY:
        raise OGCError("InvalidParameterValue", "the request body is too large", "request")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                             huge_tree=False)
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as exc:
        raise OGCError("InvalidEncodingSyntax", f"the request body is not well-formed XML ({exc})", "request",
                       status=400) from None
    if root is None:
        raise OGCError("InvalidParameterValue", "the request body is empty", "request")
    if _depth(root) > MAX_DEPTH:
        raise OGCError("InvalidParameterValue", f"the request body nests elements more than {MAX_DEPTH} deep",
                       "request")
    return root


def _depth(root) -> int:
    deepest, stack = 0, [(root, 1)]
    while stack:
        el, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
        stack.extend((child, depth + 1) for child in el)
    return deepest


def has_doctype(root) -> bool:
    """Whether the document declared a DOCTYPE (never loaded; a face may refuse it outright)."""
    docinfo = root.getroottree().docinfo
    return bool(docinfo.doctype) or docinfo.internalDTD is not None


def local(el) -> str:
    """An element's name without its namespace ('' for comments and processing instructions)."""
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def namespace(el) -> str:
    """An element's namespace URI ('' for none)."""
    return (etree.QName(el).namespace or "") if isinstance(el.tag, str) else ""


def text(el) -> str:
    """An element's own text, stripped ('' for a missing element)."""
    return (el.text or "").strip() if el is not None else ""


def children(el, name: str) -> list:
    """The child elements with local name `name`, in order."""
    return [c for c in el if local(c) == name]


def child(el, name: str):
    """The first child element with local name `name`, or None."""
    found = children(el, name)
    return found[0] if found else None


def child_text(el, name: str) -> str:
    """The text of the first child named `name` ('' when there is none)."""
    return text(child(el, name))
