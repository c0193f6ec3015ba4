"""Example gunicorn settings for ogc-gateway (`ogc-gateway serve` uses the same values built in).

Run it yourself with:

    OGC_GATEWAY_CONFIG=/srv/gis/gateway.yaml \
        gunicorn -c deploy/gunicorn.conf.py ogc_gateway.asgi:app

In production put nginx in front anyway (TLS, and it buffers whole requests and responses so that slow
clients never reach gunicorn): `proxy_request_buffering on; proxy_buffering on;` (nginx's defaults),
`client_max_body_size 10m;` (= max_request_bytes), `client_header_timeout 10s; client_body_timeout 10s;`,
and `proxy_read_timeout` above max_request_seconds.

Every value below may also be given on gunicorn's command line or in GUNICORN_CMD_ARGS.
"""

import os

# Where to listen. Behind a reverse proxy, keep 127.0.0.1 (or a unix socket: "unix:/run/ogc-gateway.sock")
# and set `proxy_headers: true` in gateway.yaml so X-Forwarded-* headers are honoured.
bind = os.environ.get("OGC_GATEWAY_BIND", "127.0.0.1:8080")

# One worker process per core. Each runs an asyncio loop that reads every request whole (headers and
# body, capped at max_request_bytes) before a small thread pool runs it (ogc_gateway/asgi.py): a client
# that sends half a request line and waits holds a coroutine, not the worker. With "sync" workers, two
# such clients stopped a 2-worker server for 120 s.
workers = int(os.environ.get("OGC_GATEWAY_WORKERS", os.cpu_count() or 1))
worker_class = "asgi"
worker_connections = 1000
keepalive = 5

# Requests stop themselves at max_request_seconds (default 60) with an error in their own format; this
# is only the last resort for a worker that stopped answering, so keep it above every budget.
timeout = 120
graceful_timeout = 30

# No recycling after N requests (max_requests = 0): a recycled worker stops accepting, then waits up to
# graceful_timeout for every open connection, idle ones included; with 100 slow clients each recycle was a
# 24 s stall (benchmarks/stayup.py). Memory stays bounded by GDAL_CACHEMAX, the per-thread dataset pool
# and max_output_bytes; restart the service (`systemctl reload` sends HUP) to recycle on purpose.
max_requests = 0

# Do NOT preload the app: each worker must open its own GDAL datasets after the fork.
preload_app = False

# Logs to stdout/stderr, which systemd, Docker and Kubernetes collect.
# No gunicorn access log: the app writes one line per request itself (ogc_gateway/access.py),
# with tokens redacted and a request id.
errorlog = "-"
loglevel = "info"

# Prometheus in multiprocess mode: a per-run metrics folder, dead workers marked (every worker counts).
from ogc_gateway.gunicorn_hooks import child_exit, on_exit, on_starting  # noqa: E402,F401
