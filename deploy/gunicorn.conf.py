"""Example gunicorn settings for ogc-gateway (`ogc-gateway serve` uses the same values built in).

Run it yourself with:

    OGC_GATEWAY_CONFIG=/srv/gis/gateway.yaml \
        gunicorn -c deploy/gunicorn.conf.py ogc_gateway.wsgi:app

Every value below may also be given on gunicorn's command line or in GUNICORN_CMD_ARGS.
"""

import os

# Where to listen. Behind a reverse proxy, keep 127.0.0.1 (or a unix socket: "unix:/run/ogc-gateway.sock")
# and set `proxy_headers: true` in gateway.yaml so X-Forwarded-* headers are honoured.
bind = os.environ.get("OGC_GATEWAY_BIND", "127.0.0.1:8080")

# Raster work is CPU-bound numpy/GDAL code: one synchronous worker process per core. Threads would
# mostly wait on the GIL; async workers gain nothing for CPU-bound requests.
workers = int(os.environ.get("OGC_GATEWAY_WORKERS", os.cpu_count() or 1))
worker_class = "sync"

# A large export may take a while; a request stuck longer than this gets its worker restarted.
timeout = 120
graceful_timeout = 30

# Recycle long-lived workers (GDAL block caches and memory fragmentation grow over time); the jitter
# keeps them from all restarting at once.
max_requests = 2000
max_requests_jitter = 200

# Do NOT preload the app: each worker must open its own GDAL datasets after the fork.
preload_app = False

# Logs to stdout/stderr, which systemd, Docker and Kubernetes collect.
accesslog = "-"
errorlog = "-"
loglevel = "info"
