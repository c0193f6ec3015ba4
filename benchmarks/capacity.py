"""Server CPU per request, for the capacity model in the README.

`run.py` measures throughput and latency, which on a shared machine say as much about the neighbours
as about the server. This measures what a request costs the server itself: the CPU seconds (user +
system, from /proc) that the gunicorn master and its workers — including workers recycled during the
run — spent on each group of benchmark requests, divided by the requests answered. 1 / that cost is
the requests per second one fully busy core sustains. The load average is logged beside it.

It also reads the server's own /metrics after each group (tile cache hits and misses, engine render
time, items read), so the tile figures split into a hit's cost and a metatile render's cost.

    python benchmarks/capacity.py                      # every group, 2 workers, 4 clients, 10 s each
    python benchmarks/capacity.py --groups tiles,tiles-cold,png --duration 20
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run as bench  # noqa: E402  (benchmarks/run.py: the server, the URL lists, the load driver)
import urls as url_list  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(master: int) -> float:
    """User + system CPU of the master and every live descendant, plus what the master's reaped
    children (recycled workers) used."""
    children = bench._children_map()
    total, stack = 0.0, [master]
    while stack:
        pid = stack.pop()
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
        total += utime + stime + (cutime + cstime if pid == master else 0)
        stack += children.get(pid, [])
    return total / TICK


def scrape(base: str) -> dict[str, float]:
    out = {}
    for family in text_string_to_metric_families(requests.get(base + "/metrics", timeout=30).text):
        for s in family.samples:
            if not s.labels:
                out[s.name] = s.value
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--groups", default=",".join(url_list.CONTENT_TYPES))
    ap.add_argument("--dir", type=Path, help="demo folder (default: a temporary one)")
    ap.add_argument("--out", type=Path, help="write the figures as JSON here too")
    args = ap.parse_args()
    groups = [g for g in args.groups.split(",") if g]
    all_urls = url_list.build()
    tmp = tempfile.TemporaryDirectory(prefix="ogc-gateway-capacity-") if args.dir is None else None
    folder = (Path(tmp.name) / "demo") if tmp else args.dir.resolve()
    log_path = (Path(tmp.name) if tmp else folder.parent) / "capacity-server.log"
    port = bench.free_port()
    base = f"http://127.0.0.1:{port}"
    proc = bench.start_server(folder, port, args.workers, log_path)
    rows = []
    try:
        bench.wait_ready(proc, base, log_path)
        with requests.Session() as session:           # warm-up, as run.py does
            for g in groups:
                if g not in url_list.COLD_GROUPS:
                    for u in all_urls[g]:
                        bench.one(session, base, u, url_list.CONTENT_TYPES[g])
        for g in groups:
            if g in url_list.COLD_GROUPS:
                shutil.rmtree(folder / ".ogc-gateway-cache" / "tiles", ignore_errors=True)
            m0, c0, l0 = scrape(base), cpu_seconds(proc.pid), os.getloadavg()[0]
            records, elapsed = bench.drive(base, all_urls[g], url_list.CONTENT_TYPES[g], args.concurrency,
                                           args.duration, once=g in url_list.COLD_GROUPS)
            c1, l1 = cpu_seconds(proc.pid), os.getloadavg()[0]
            m1 = scrape(base)                          # after the CPU reading: a scrape costs CPU too
            ok = sum(1 for _, r in records if not r["error"])
            cpu_ms = (c1 - c0) * 1000 / max(ok, 1)

            def d(name, m0=m0, m1=m1):
                return m1.get(name, 0.0) - m0.get(name, 0.0)
            rows.append({"group": g, "requests": ok, "errors": len(records) - ok,
                         "wall_req_per_s": round(ok / elapsed, 1), "server_cpu_ms_per_request": round(cpu_ms, 2),
                         "req_per_s_per_core": round(1000 / cpu_ms, 1) if cpu_ms else None,
                         "tile_hits": d("ogc_gateway_tile_cache_hits_total"),
                         "tile_misses": d("ogc_gateway_tile_cache_misses_total"),
                         "renders": d("ogc_gateway_render_seconds_count"),
                         "render_s": round(d("ogc_gateway_render_seconds_sum"), 3),
                         "items_read": d("ogc_gateway_items_read_sum"),
                         "load1_before": round(l0, 2), "load1_after": round(l1, 2)})
            print(json.dumps(rows[-1]), flush=True)
    finally:
        bench.stop_server(proc)
    print()
    print(f"{args.workers} workers, {args.concurrency} clients, {args.duration:g} s per group, "
          f"commit {bench.git_commit()}, nproc {os.cpu_count()}, "
          f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print()
    print("| group | requests | wall req/s | server CPU ms / request | req/s per core | tile hits | misses "
          "| renders | load avg (1 min) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['group']} | {r['requests']} | {r['wall_req_per_s']} | {r['server_cpu_ms_per_request']} | "
              f"{r['req_per_s_per_core']} | {r['tile_hits']:g} | {r['tile_misses']:g} | {r['renders']:g} | "
              f"{r['load1_before']}–{r['load1_after']} |")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2))
    return 1 if any(r["errors"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
