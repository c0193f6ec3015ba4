"""Publishing over HTTP: uploads, raster editing on a service, services created without a restart.

The pieces keep their state in files under `cache_dir` (uploads, job records, published service
definitions) and the rasters in `server.data_dir`, so every worker — and every restart — sees the
same. `uploads` checks and stores files, `jobs` records long operations, `services` owns the
published definitions and their rasters, `routes` is the HTTP face (admin and publisher roles only).
"""

# Paths that take files: their bodies may reach `server.max_upload_bytes`, not `max_request_bytes`
# (the request-reading front, asgi.py, and the routes both ask this).
UPLOAD_PATHS = ("/uploads/upload", "/uploadPart")
