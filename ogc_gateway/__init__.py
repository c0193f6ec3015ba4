"""ogc-gateway: one raster engine behind the ArcGIS ImageServer REST API and OGC WMS/WCS/WMTS."""

__version__ = "0.1.0"
