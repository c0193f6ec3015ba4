"""WCS 1.1.1 XML requests (POST) as the KVP they are equivalent to: GetCoverage, DescribeCoverage
and GetCapabilities."""

from __future__ import annotations

from .common import KVP, OGCError
from .crs import CRS84_URN as CRS84
from .xmlpost import child, children, has_doctype, local, text


def kvp_from_xml(root) -> KVP:
    """A WCS 1.1.1 XML request (GetCoverage, DescribeCoverage, GetCapabilities) as the equivalent KVP.
    Documents with a DTD are refused: nothing in a request needs one."""
    if has_doctype(root):
        raise OGCError("InvalidParameterValue", "XML requests with a DOCTYPE are not accepted", "request")
    name = local(root)
    pairs = [("SERVICE", root.get("service") or "WCS"), ("REQUEST", name)]
    if root.get("version"):
        pairs.append(("VERSION", root.get("version")))
    if name == "GetCoverage":
        pairs += _get_coverage_pairs(root)
    elif name == "DescribeCoverage":
        pairs.append(("IDENTIFIERS", ",".join(text(i) for i in children(root, "Identifier"))))
    elif name == "GetCapabilities":
        if root.get("updateSequence"):
            pairs.append(("UPDATESEQUENCE", root.get("updateSequence")))
        for group, item, key in (("AcceptVersions", "Version", "ACCEPTVERSIONS"),
                                 ("Sections", "Section", "SECTIONS"),
                                 ("AcceptFormats", "OutputFormat", "ACCEPTFORMATS")):
            node = child(root, group)
            if node is not None:
                pairs.append((key, ",".join(text(v) for v in children(node, item))))
    else:
        raise OGCError("OperationNotSupported", f"{name!r} is not a WCS 1.1.1 request", "request", status=501)
    return KVP(pairs)


def _get_coverage_pairs(root) -> list[tuple[str, str]]:
    pairs = [("IDENTIFIER", text(child(root, "Identifier")))]
    subset = child(root, "DomainSubset")
    if subset is not None:
        box = child(subset, "BoundingBox")
        if box is None:
            box = child(subset, "WGS84BoundingBox")
        if box is not None:
            lower, upper = text(child(box, "LowerCorner")).split(), text(child(box, "UpperCorner")).split()
            crs = box.get("crs") or (CRS84 if local(box) == "WGS84BoundingBox" else "")
            pairs.append(("BOUNDINGBOX", ",".join(lower + upper + ([crs] if crs else []))))
        temporal = child(subset, "TemporalSubset")
        if temporal is not None:
            times = []
            for item in temporal:
                if local(item) == "timePosition":
                    times.append(text(item))
                elif local(item) == "TimePeriod":
                    period = [text(child(item, "BeginPosition")), text(child(item, "EndPosition"))]
                    if child(item, "TimeResolution") is not None:
                        period.append(text(child(item, "TimeResolution")))
                    times.append("/".join(period))
            pairs.append(("TIMESEQUENCE", ",".join(times)))
    ranges = child(root, "RangeSubset")
    if ranges is not None:
        fields = []
        for field in children(ranges, "FieldSubset"):
            item = text(child(field, "Identifier"))
            method = text(child(field, "InterpolationType"))
            if method:
                item += ":" + method
            axes = [f"{text(child(a, 'Identifier'))}[{','.join(text(k) for k in children(a, 'Key'))}]"
                    for a in children(field, "AxisSubset")]
            if axes:
                item += "[" + ",".join(axes) + "]"
            fields.append(item)
        pairs.append(("RANGESUBSET", ";".join(fields)))
    output = child(root, "Output")
    if output is not None:
        pairs.append(("FORMAT", output.get("format") or ""))
        if output.get("store") is not None:
            pairs.append(("STORE", output.get("store")))
        grid = child(output, "GridCRS")
        if grid is not None:
            for tag, key in (("GridBaseCRS", "GRIDBASECRS"), ("GridType", "GRIDTYPE"), ("GridCS", "GRIDCS"),
                             ("GridOrigin", "GRIDORIGIN"), ("GridOffsets", "GRIDOFFSETS")):
                node = child(grid, tag)
                if node is not None:
                    pairs.append((key, ",".join(text(node).split())))
    return pairs
