"""The offline OGC schema validator of tests/ogc_schemas.py against hand-written documents."""

from __future__ import annotations

import socket

import pytest

import ogc_schemas
from ogc_schemas import validate

ONLINE = '<OnlineResource xlink:type="simple" xlink:href="https://maps.example.org/ows?"/>'
DCP = f"<DCPType><HTTP><Get>{ONLINE}</Get></HTTP></DCPType>"
WMS_LOC = "http://www.opengis.net/wms http://schemas.opengis.net/wms/1.3.0/capabilities_1_3_0.xsd"
SLD_LOC = "http://www.opengis.net/sld http://schemas.opengis.net/sld/1.1.0/sld_capabilities.xsd"

GET_FEATURE_INFO = f"""<GetFeatureInfo>
        <Format>text/plain</Format>
        <Format>application/json</Format>
        {DCP}
      </GetFeatureInfo>"""

LEGEND = f"""<sld:GetLegendGraphic>
        <Format>image/png</Format>
        {DCP}
      </sld:GetLegendGraphic>"""


def wms130(extended: str = "", schema_location: str = WMS_LOC, version: str = "1.3.0") -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<WMS_Capabilities version="{version}" updateSequence="42"
    xmlns="http://www.opengis.net/wms" xmlns:xlink="http://www.w3.org/1999/xlink"
    xmlns:sld="http://www.opengis.net/sld"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xsi:schemaLocation="{schema_location}">
  <Service>
    <Name>WMS</Name>
    <Title>Raster mosaic server</Title>
    <Abstract>COG mosaics, DEMs and time series</Abstract>
    <KeywordList><Keyword>raster</Keyword></KeywordList>
    {ONLINE}
    <Fees>none</Fees>
    <AccessConstraints>none</AccessConstraints>
    <MaxWidth>8192</MaxWidth>
    <MaxHeight>8192</MaxHeight>
  </Service>
  <Capability>
    <Request>
      <GetCapabilities>
        <Format>text/xml</Format>
        {DCP}
      </GetCapabilities>
      <GetMap>
        <Format>image/png</Format>
        <Format>image/jpeg</Format>
        {DCP}
      </GetMap>
      {GET_FEATURE_INFO}
      {extended}
    </Request>
    <Exception>
      <Format>XML</Format>
      <Format>INIMAGE</Format>
      <Format>BLANK</Format>
    </Exception>
    <Layer>
      <Title>All layers</Title>
      <CRS>EPSG:4326</CRS>
      <CRS>CRS:84</CRS>
      <EX_GeographicBoundingBox>
        <westBoundLongitude>-180</westBoundLongitude>
        <eastBoundLongitude>180</eastBoundLongitude>
        <southBoundLatitude>-90</southBoundLatitude>
        <northBoundLatitude>90</northBoundLatitude>
      </EX_GeographicBoundingBox>
      <BoundingBox CRS="EPSG:4326" minx="-90" miny="-180" maxx="90" maxy="180"/>
      <Layer queryable="1" opaque="0">
        <Name>dem</Name>
        <Title>Elevation (float32)</Title>
        <BoundingBox CRS="CRS:84" minx="5.5" miny="45.5" maxx="17.5" maxy="55.5"/>
        <Dimension name="time" units="ISO8601" default="2024-06-01T00:00:00Z">2024-01-01/2024-06-01/P1M</Dimension>
        <Style>
          <Name>default</Name>
          <Title>Colour ramp</Title>
          <LegendURL width="120" height="200">
            <Format>image/png</Format>
            {ONLINE}
          </LegendURL>
        </Style>
        <MaxScaleDenominator>559082264.0287178</MaxScaleDenominator>
      </Layer>
    </Layer>
  </Capability>
</WMS_Capabilities>
"""


XLINK_ONLINE = ('<OnlineResource xmlns:xlink="http://www.w3.org/1999/xlink" xlink:type="simple" '
                'xlink:href="https://maps.example.org/ows?"/>')
DCP_111 = f"<DCPType><HTTP><Get>{XLINK_ONLINE}</Get></HTTP></DCPType>"
DOCTYPE_111 = '<!DOCTYPE WMT_MS_Capabilities SYSTEM "http://schemas.opengis.net/wms/1.1.1/WMS_MS_Capabilities.dtd">'


def wms111(doctype: str = DOCTYPE_111, vendor: str = "", version: str = "1.1.1") -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
{doctype}
<WMT_MS_Capabilities version="{version}" updateSequence="42">
  <Service>
    <Name>OGC:WMS</Name>
    <Title>Raster mosaic server</Title>
    {XLINK_ONLINE}
    <Fees>none</Fees>
    <AccessConstraints>none</AccessConstraints>
  </Service>
  <Capability>
    <Request>
      <GetCapabilities>
        <Format>application/vnd.ogc.wms_xml</Format>
        {DCP_111}
      </GetCapabilities>
      <GetMap>
        <Format>image/png</Format>
        {DCP_111}
      </GetMap>
      <GetFeatureInfo>
        <Format>text/plain</Format>
        {DCP_111}
      </GetFeatureInfo>
    </Request>
    <Exception>
      <Format>application/vnd.ogc.se_xml</Format>
      <Format>application/vnd.ogc.se_inimage</Format>
    </Exception>
    {vendor}
    <Layer>
      <Title>All layers</Title>
      <SRS>EPSG:4326</SRS>
      <LatLonBoundingBox minx="-180" miny="-90" maxx="180" maxy="90"/>
      <BoundingBox SRS="EPSG:4326" minx="-180" miny="-90" maxx="180" maxy="90"/>
      <Dimension name="time" units="ISO8601"/>
      <Layer queryable="1">
        <Name>dem</Name>
        <Title>Elevation (float32)</Title>
        <LatLonBoundingBox minx="5.5" miny="45.5" maxx="17.5" maxy="55.5"/>
        <Extent name="time" default="2024-06-01T00:00:00Z" nearestValue="0">2024-01-01/2024-06-01/P1M</Extent>
        <Style><Name>default</Name><Title>Colour ramp</Title></Style>
      </Layer>
    </Layer>
  </Capability>
</WMT_MS_Capabilities>
"""


EXC_130 = """<?xml version="1.0" encoding="UTF-8"?>
<ServiceExceptionReport version="1.3.0" xmlns="http://www.opengis.net/ogc"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xsi:schemaLocation="http://www.opengis.net/ogc http://schemas.opengis.net/wms/1.3.0/exceptions_1_3_0.xsd">
  <ServiceException code="LayerNotDefined" locator="LAYERS">Layer 'foo' is not defined</ServiceException>
</ServiceExceptionReport>
"""

EXC_111 = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE ServiceExceptionReport SYSTEM "http://schemas.opengis.net/wms/1.1.1/exception_1_1_1.dtd">
<ServiceExceptionReport version="1.1.1">
  <ServiceException code="InvalidSRS">SRS EPSG:9999 is not supported by layer dem</ServiceException>
</ServiceExceptionReport>
"""

VALID = {
    "wms130": wms130(),
    "wms130-sld": wms130(LEGEND, f"{WMS_LOC} {SLD_LOC}"),
    "wms111": wms111(),
    "exc130": EXC_130,
    "exc111": EXC_111,
}


def invalid(xml: str | bytes, *fragments: str) -> str:
    with pytest.raises(AssertionError) as info:
        validate(xml)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


# --- valid documents ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_documents(name):
    assert validate(VALID[name]) is None


@pytest.mark.parametrize("name", sorted(VALID))
def test_bytes_and_str_input(name):
    validate(VALID[name].encode("utf-8"))
    validate(VALID[name].replace('encoding="UTF-8"', "encoding='iso-8859-1'"))  # str: declaration ignored


def test_sld_extended_operations_all_validate():
    describe = LEGEND.replace("GetLegendGraphic", "DescribeLayer").replace("image/png", "text/xml")
    validate(wms130(LEGEND + describe, f"{WMS_LOC} {SLD_LOC}"))
    validate(wms130("", f"{WMS_LOC} {SLD_LOC}"))  # the SLD schema may be listed without being used


def test_111_doctype_url_is_ignored_and_optional():
    validate(wms111(doctype=DOCTYPE_111.replace("http://schemas.opengis.net", "http://unreachable.invalid")))
    validate(wms111(doctype=""))
    validate(EXC_111.replace("http://schemas.opengis.net/wms/1.1.1/exception_1_1_1.dtd", "exception_1_1_1.dtd"))


def test_111_internal_subset_is_honoured():
    subset = "<!ELEMENT VendorSpecificCapabilities (TileSet*)>\n<!ELEMENT TileSet (#PCDATA)>"
    doctype = DOCTYPE_111[:-1] + f" [\n{subset}\n]>"
    vendor = "<VendorSpecificCapabilities><TileSet>x</TileSet></VendorSpecificCapabilities>"
    validate(wms111(doctype=doctype, vendor=vendor))
    invalid(wms111(vendor=vendor), "VendorSpecificCapabilities")


# --- broken documents -----------------------------------------------------------------------------------

def test_130_elements_out_of_order():
    doc = wms130().replace("<Name>WMS</Name>\n    <Title>Raster mosaic server</Title>",
                           "<Title>Raster mosaic server</Title>\n    <Name>WMS</Name>")
    invalid(doc, "line 8", "Title")


def test_130_required_element_missing():
    doc = wms130()
    start, end = doc.index("<Exception>"), doc.index("</Exception>") + len("</Exception>")
    invalid(doc[:start] + doc[end:], "Exception")
    invalid(doc.replace("<Title>Elevation (float32)</Title>", ""), "Title")


def test_130_wrong_version():
    invalid(wms130(version="1.1.1"), "version", "1.3.0")


def test_sld_getlegendgraphic_needs_the_sld_schema_location():
    invalid(wms130(LEGEND), "GetLegendGraphic")


def test_sld_getlegendgraphic_structure_is_checked():
    loc = f"{WMS_LOC} {SLD_LOC}"
    # children are WMS elements (wms:OperationType), not sld:Format / sld:DCPType
    invalid(wms130(LEGEND.replace("<Format>", "<sld:Format>").replace("</Format>", "</sld:Format>"), loc), "Format")
    # Format+ then DCPType+
    invalid(wms130(LEGEND.replace("<Format>image/png</Format>", ""), loc), "DCPType")
    invalid(wms130(LEGEND.replace(DCP, ""), loc), "DCPType")
    # extended operations come after GetFeatureInfo
    doc = wms130(LEGEND, loc)
    doc = doc.replace(GET_FEATURE_INFO, "@@").replace(LEGEND, GET_FEATURE_INFO).replace("@@", LEGEND)
    invalid(doc, "GetFeatureInfo")


def test_unvendored_schema_location_is_ignored_and_reported():
    ext = ("http://inspire.ec.europa.eu/schemas/inspire_vs/1.0"
           " http://inspire.ec.europa.eu/schemas/inspire_vs/1.0/inspire_vs.xsd")
    validate(wms130("", f"{WMS_LOC} {ext}"))
    invalid(wms130(LEGEND, f"{WMS_LOC} {ext}"), "GetLegendGraphic", "not vendored, not used: " + ext)


def test_111_errors():
    invalid(wms111(version="1.3.0"), "version")
    doc = wms111().replace("<Name>OGC:WMS</Name>\n    <Title>Raster mosaic server</Title>",
                           "<Title>Raster mosaic server</Title>\n    <Name>OGC:WMS</Name>")
    invalid(doc, "line 4", "Service")
    invalid(wms111().replace("<Title>All layers</Title>", ""), "Layer")


def test_111_exception_has_no_locator():
    doc = EXC_111.replace('code="InvalidSRS"', 'code="InvalidSRS" locator="SRS"')
    invalid(doc, "line 4", "locator")


def test_130_exception_errors():
    invalid(EXC_130.replace("<ServiceException ", "<Exception ").replace("</ServiceException>", "</Exception>"),
            "Exception")
    invalid(EXC_130.replace('version="1.3.0"', 'version="1.3.1"'), "no schema for")


def test_unknown_root_and_malformed():
    message = invalid('<Capabilities xmlns="urn:x" version="1.0.0"/>', "no schema for {urn:x}Capabilities")
    assert message.startswith("no schema for {urn:x}Capabilities")
    invalid(EXC_130.replace('version="1.3.0"', 'version="1.1.0"'),
            "no schema for {http://www.opengis.net/ogc}ServiceExceptionReport")
    invalid("<WMS_Capabilities", "not well-formed")


def test_no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("validation tried to use the network")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    ogc_schemas.clear_cache()  # compile every schema again while the network is unavailable
    for xml in VALID.values():
        validate(xml)
    invalid(wms130().replace("<Name>WMS</Name>", ""), "Name")


def test_schema_imports_outside_the_vendored_set_are_refused():
    source = (b'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">'
              b'<xs:import namespace="urn:x" schemaLocation="http://example.org/x.xsd"/></xs:schema>')
    with pytest.raises(RuntimeError, match="not vendored .*http://example.org/x.xsd"):
        ogc_schemas._compile_xsd(("test-refusal",), source, str(ogc_schemas.SCHEMAS_DIR / "t.xsd"))


def test_every_table_entry_is_vendored():
    for rel in ogc_schemas.SCHEMAS.values():
        assert (ogc_schemas.SCHEMAS_DIR / rel).is_file(), rel
        assert ogc_schemas.local_path(ogc_schemas.published_url(rel)) == ogc_schemas.SCHEMAS_DIR / rel
