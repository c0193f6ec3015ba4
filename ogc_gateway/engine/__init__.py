"""The one raster engine: catalog, mosaic, read, raster functions, encoders. Never imports Flask."""
