"""WCS 2.0.1 XML requests (the XML/POST binding, 09-148r1) as the KVP they are equivalent to:
GetCapabilities, DescribeCoverage and GetCoverage with the extensions' elements inside
wcs:Extension."""

from __future__ import annotations

from lxml import etree

from .common import KVP, OGCError
from .xmlpost import child_text, children, local, namespace, text

WCS_NS = "http://www.opengis.net/wcs/2.0"
OWS_NS = "http://www.opengis.net/ows/2.0"


def kvp_from_xml(root) -> KVP:
    """The KVP of a WCS 2.0 XML request (GetCapabilities, DescribeCoverage, GetCoverage with the
    extensions' elements inside wcs:Extension)."""
    qname = etree.QName(root)
    if qname.namespace != WCS_NS:
        raise OGCError("InvalidEncodingSyntax", f"{qname.localname} is not a WCS 2.0 request element "
                       f"(namespace {WCS_NS})", "request", status=400)
    name = qname.localname
    pairs = [("SERVICE", root.get("service") or "WCS"), ("REQUEST", name)]
    if root.get("version"):
        pairs.append(("VERSION", root.get("version")))
    if name == "GetCapabilities":
        versions = [text(v) for v in root.iter(f"{{{OWS_NS}}}Version")]
        if versions:
            pairs.append(("ACCEPTVERSIONS", ",".join(versions)))
        sections = [text(s) for s in root.iter(f"{{{OWS_NS}}}Section")]
        if sections:
            pairs.append(("SECTIONS", ",".join(sections)))
        if root.get("updateSequence"):
            pairs.append(("UPDATESEQUENCE", root.get("updateSequence")))
        return KVP(pairs)
    ids = [text(c) for c in children(root, "CoverageId")]
    if ids:
        pairs.append(("COVERAGEID", ",".join(ids)))
    if name != "GetCoverage":
        return KVP(pairs)
    for el in root:
        tag = local(el)
        if tag == "DimensionTrim":
            dim = child_text(el, "Dimension")
            low = child_text(el, "TrimLow") or "*"
            high = child_text(el, "TrimHigh") or "*"
            pairs.append(("SUBSET", f"{dim}({low},{high})"))
        elif tag == "DimensionSlice":
            dim = child_text(el, "Dimension")
            pairs.append(("SUBSET", f"{dim}({child_text(el, 'SlicePoint')})"))
        elif tag == "format":
            pairs.append(("FORMAT", text(el)))
        elif tag == "mediaType":
            pairs.append(("MEDIATYPE", text(el)))
        elif tag == "Extension":
            pairs.extend(_extension_pairs(el))
    return KVP(pairs)


def _extension_pairs(ext) -> list[tuple[str, str]]:
    pairs = []
    for el in ext.iter():
        tag = local(el)
        if tag in ("subsettingCrs", "outputCrs"):
            pairs.append((tag.upper(), text(el)))
        elif tag == "ScaleByFactor":
            pairs.append(("SCALEFACTOR", child_text(el, "scaleFactor")))
        elif tag in ("ScaleAxesByFactor", "ScaleToSize", "ScaleToExtent"):
            items = []
            for axis in el:
                label = child_text(axis, "axis")
                if tag == "ScaleAxesByFactor":
                    value = child_text(axis, "scaleFactor")
                elif tag == "ScaleToSize":
                    value = child_text(axis, "targetSize")
                else:
                    value = (f"{child_text(axis, 'low')}:"
                             f"{child_text(axis, 'high')}")
                items.append(f"{label}({value})")
            key = {"ScaleAxesByFactor": "SCALEAXES", "ScaleToSize": "SCALESIZE", "ScaleToExtent": "SCALEEXTENT"}
            pairs.append((key[tag], ",".join(items)))
        elif tag == "RangeSubset":
            items = []
            for item in children(el, "RangeItem"):
                for part in item:
                    if local(part) == "RangeComponent":
                        items.append(text(part))
                    elif local(part) == "RangeInterval":
                        items.append(f"{child_text(part, 'startComponent')}:"
                                     f"{child_text(part, 'endComponent')}")
            pairs.append(("RANGESUBSET", ",".join(items)))
        elif tag == "Interpolation":
            glob = children(el, "globalInterpolation")
            if glob:
                pairs.append(("INTERPOLATION", text(glob[0])))
            per_axis = [f"{child_text(p, 'axis')},"
                        f"{child_text(p, 'interpolationMethod')}"
                        for p in children(el, "InterpolationPerAxis")]
            if per_axis:
                pairs.append(("INTERPOLATIONPERAXIS", ";".join(per_axis)))
        elif tag.lower() in ("compression", "jpeg_quality", "predictor", "interleave", "tiling",
                               "tileheight", "tilewidth") and "geotiff" in namespace(el):
            pairs.append((f"GEOTIFF:{tag.upper()}", text(el)))
    return pairs
