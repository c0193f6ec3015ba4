"""A client for any ArcGIS-compatible ImageServer (ours or ArcGIS Server's), using only its REST API.

No Flask and no engine import: HTTP (requests), rasterio and numpy. `ImageServiceClient` reads
values; `register_gis` / `unregister_gis` name servers whose tokens are generated and renewed;
`make_image_server_layer` writes a GDAL layer description or a cloud-optimised GeoTIFF.
"""

from .gis import register_gis, registered_gis, unregister_gis
from .http import ImageServiceError
from .service import ImageServiceClient

__all__ = ["ImageServiceClient", "ImageServiceError", "register_gis", "unregister_gis", "registered_gis",
           "make_image_server_layer"]


def make_image_server_layer(*args, **kwargs):
    """See ogc_gateway.client.layer.make_image_server_layer."""
    from .layer import make_image_server_layer as make

    return make(*args, **kwargs)
