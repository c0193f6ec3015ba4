"""Publishing over HTTP: uploads, raster editing on a service, services created without a restart.

The pieces keep their state in files under `cache_dir` (uploads, job records, published service
definitions) and the rasters in `server.data_dir`, so every worker — and every restart — sees the
same. `uploads` checks and stores files, `jobs` records long operations, `services` owns the
published definitions and their rasters, `routes` is the HTTP face (admin and publisher roles only).
"""
