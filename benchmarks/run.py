"""Load benchmark of the REST face (exportImage, identify, getSamples, query, exportImage through
raster functions), WMS GetMap, WCS GetCoverage and WMTS tiles (cached and cold) under gunicorn, on the
demo data set.

    python benchmarks/run.py [--workers N] [--concurrency C] [--duration S] [--dir DIR]
                             [--groups png,jpg,tiff,identify,samples,query,wms,wcs,hillshade,ndvi,tiles,tiles-cold]

Starts `ogc-gateway demo` (the same Python's package) on a free port, waits for it, requests every URL
of `benchmarks/urls.py` once (warm-up, and a first check of the answers), then drives each group with
C client threads (one `requests.Session` each) for S seconds. Every response must be HTTP 200 with the
group's content type and the format's magic bytes; anything else (an error JSON among them) is a
failure, counted and shown. Meanwhile the resident memory of the gunicorn process tree is sampled every
0.2 s from /proc. Prints one Markdown table and writes the same figures as JSON to
`benchmarks/results/<timestamp>.json`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import urls as url_list  # noqa: E402  (benchmarks/urls.py, beside this file)

MAGIC = {"image/png": (b"\x89PNG\r\n\x1a\n",), "image/jpeg": (b"\xff\xd8\xff",),
         "image/tiff": (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"), "application/json": (b"{",)}
SAMPLE_EVERY = 0.2


# ---- the server ----------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(folder: Path, port: int, workers: int, log_path: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "ogc_gateway.cli", "demo", "--dir", str(folder), "--port", str(port),
           "--workers", str(workers)]
    log = open(log_path, "wb")
    # Own session: at the end the whole tree (master and workers) is stopped by this group's id.
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_ready(proc: subprocess.Popen, base: str, log_path: Path, timeout: float = 300) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with status {proc.returncode}:\n{tail(log_path)}")
        try:
            r = requests.get(f"{base}/arcgis/rest/services?f=json", timeout=2)
            if r.status_code == 200 and "services" in r.json():
                return time.monotonic() - t0
        except (requests.RequestException, ValueError):
            pass
        time.sleep(0.25)
    raise SystemExit(f"the server did not answer within {timeout:.0f} s:\n{tail(log_path)}")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)          # gunicorn master: graceful stop of its workers
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)   # the group started above, by its id
            proc.wait()


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# ---- memory ----------------------------------------------------------------------------------------

def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = defaultdict(list)
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # Field 4 (ppid) follows the ')' that closes the command name, which may itself hold spaces.
        fields = stat[stat.rindex(b")") + 2:].split()
        kids[int(fields[1])].append(int(entry.name))
    return kids


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class RssSampler(threading.Thread):
    """Peak of the summed VmRSS of the master and all its descendants, and of the largest worker."""

    def __init__(self, master: int):
        super().__init__(daemon=True)
        self.master = master
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> dict:
        with self.lock:
            old = getattr(self, "peaks", None)
            self.peaks = {"tree_kib": 0, "worker_kib": 0, "master_kib": 0, "workers_seen": set(),
                          "samples": 0}
        return old

    def run(self) -> None:
        while not self.stop_event.wait(SAMPLE_EVERY):
            kids = _children_map()
            workers = kids.get(self.master, [])
            tree, stack = [self.master], list(workers)
            while stack:
                pid = stack.pop()
                tree.append(pid)
                stack.extend(kids.get(pid, []))
            rss = {pid: _rss_kib(pid) for pid in tree}
            with self.lock:
                p = self.peaks
                p["tree_kib"] = max(p["tree_kib"], sum(rss.values()))
                p["master_kib"] = max(p["master_kib"], rss[self.master])
                p["worker_kib"] = max([p["worker_kib"]] + [rss[w] for w in workers])
                p["workers_seen"].update(workers)
                p["samples"] += 1


def mib(kib: int) -> float:
    return round(kib / 1024, 1)


def peaks_json(p: dict) -> dict:
    return {"peak_tree_rss_mib": mib(p["tree_kib"]), "peak_worker_rss_mib": mib(p["worker_kib"]),
            "peak_master_rss_mib": mib(p["master_kib"]), "worker_pids_seen": len(p["workers_seen"]),
            "samples": p["samples"]}


# ---- requests ------------------------------------------------------------------------------------

def check(resp: requests.Response, ctype: str) -> str | None:
    """None if the answer is the image expected, else a short reason."""
    got = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if resp.status_code != 200 or got != ctype:
        snippet = resp.content[:200].decode("utf-8", "replace").replace("\n", " ")
        return f"HTTP {resp.status_code} {got or '-'}: {snippet}"
    if not resp.content.startswith(MAGIC[ctype]):
        return f"HTTP 200 {got} but the body does not start like one ({resp.content[:8]!r})"
    if resp.content.startswith(b'{"error"'):
        return f"HTTP 200 error body: {resp.content[:200].decode('utf-8', 'replace')}"
    return None


def one(session, base: str, url: str, ctype: str) -> dict:
    t0 = time.perf_counter()
    try:
        resp = session.get(base + url, timeout=120)
        ms = (time.perf_counter() - t0) * 1000
        return {"ms": ms, "status": resp.status_code, "bytes": len(resp.content),
                "error": check(resp, ctype)}
    except (requests.RequestException, OSError, http.client.HTTPException) as exc:
        return {"ms": (time.perf_counter() - t0) * 1000, "status": None, "bytes": 0,
                "error": f"{type(exc).__name__}: {exc}"}


class LeanResponse:
    """What `check` reads of an answer."""

    def __init__(self, status: int, headers: dict[str, str], content: bytes):
        self.status_code, self.headers, self.content = status, headers, content


class LeanSession:
    """GETs over one kept-alive HTTP/1.1 connection (http.client), reopened when the server closes
    it: a third of `requests`' CPU per request, which matters when the client shares two cores
    with the servers it measures (`--client http`)."""

    def __init__(self) -> None:
        self.conn: http.client.HTTPConnection | None = None

    def get(self, url: str, timeout: float) -> LeanResponse:
        parts = urlsplit(url)
        target = parts.path + ("?" + parts.query if parts.query else "")
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
            try:
                self.conn.request("GET", target)
                resp = self.conn.getresponse()
                content = resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()                  # a kept-alive connection the server had closed: once more
                if attempt == 2:
                    raise
                continue
            headers = {k.title(): v for k, v in resp.getheaders()}
            if resp.will_close:
                self.close()
            return LeanResponse(resp.status, headers, content)
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def __enter__(self) -> LeanSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


CLIENTS = {"requests": requests.Session, "http": LeanSession}


def drive(base: str, urls: list[str], ctype: str, concurrency: int, duration: float, once: bool = False,
          library: str = "requests"):
    """C threads, each cycling through the list from its own offset, until the deadline; with `once`,
    the threads share one pass over the list instead (every URL requested exactly once, or until the
    deadline). `library`: the HTTP client, a key of CLIENTS."""
    results: list[list[tuple[int, dict]]] = [[] for _ in range(concurrency)]
    start = threading.Barrier(concurrency + 1)
    deadline = [0.0]
    shared = iter(range(len(urls)))
    shared_lock = threading.Lock()

    def next_index(k: int, i: int) -> int | None:
        if not once:
            return i % len(urls)
        with shared_lock:
            return next(shared, None)

    def client(k: int) -> None:
        try:
            session = CLIENTS[library]()
        except BaseException:
            start.abort()                   # the main thread's wait fails instead of waiting forever
            raise
        with session:
            i = k * len(urls) // concurrency
            start.wait()
            while time.perf_counter() < deadline[0]:
                idx = next_index(k, i)
                if idx is None:
                    break
                results[k].append((idx, one(session, base, urls[idx], ctype)))
                i += 1

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(concurrency)]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    deadline[0] = t0 + duration
    start.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0      # includes the requests still running at the deadline
    return [r for rs in results for r in rs], elapsed


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    pos = (len(sorted_values) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def service_of(url: str) -> str:
    """The service a URL asks: the path segment after /services/, or a WMS request's LAYERS, or a
    WCS request's COVERAGEID."""
    if "/services/" in url:
        return url.split("/services/")[1].split("/")[0]
    query = parse_qs(urlsplit(url).query)
    return (query.get("LAYERS") or query.get("COVERAGEID") or ["?"])[0]


def summarise(group: str, urls: list[str], records: list[tuple[int, dict]], elapsed: float) -> dict:
    lat = sorted(r["ms"] for _, r in records)
    ok = [r for _, r in records if r["error"] is None]
    failures = Counter()
    failing_urls = Counter()
    per_url = defaultdict(list)
    for idx, r in records:
        per_url[idx].append(r["ms"])
        if r["error"] is not None:
            failures[r["error"]] += 1
            failing_urls[urls[idx]] += 1
    by_service = defaultdict(list)
    for idx, r in records:
        by_service[service_of(urls[idx])].append(r["ms"])
    medians = sorted(((percentile(sorted(v), 0.5), idx) for idx, v in per_url.items()), reverse=True)
    return {
        "group": group, "urls": len(urls), "requests": len(records),
        "errors": len(records) - len(ok), "elapsed_s": round(elapsed, 2),
        "req_per_s": round(len(records) / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(percentile(lat, 0.50), 1), "p95_ms": round(percentile(lat, 0.95), 1),
        "p99_ms": round(percentile(lat, 0.99), 1), "max_ms": round(lat[-1], 1) if lat else None,
        "mean_bytes": round(sum(r["bytes"] for r in ok) / len(ok)) if ok else 0,
        "by_service": {name: {"requests": len(v), "p50_ms": round(percentile(sorted(v), 0.5), 1),
                              "p95_ms": round(percentile(sorted(v), 0.95), 1)}
                       for name, v in sorted(by_service.items())},
        "failure_reasons": dict(failures.most_common(10)),
        "failing_urls": dict(failing_urls.most_common(10)),
        "slowest_urls_by_median_ms": [{"url": urls[idx], "median_ms": round(m, 1),
                                       "n": len(per_url[idx])} for m, idx in medians[:5]],
    }


# ---- main ----------------------------------------------------------------------------------------

def table(rows: list[dict]) -> str:
    head = ("| group | requests | errors | req/s | p50 ms | p95 ms | p99 ms | mean bytes "
            "| peak RSS tree MiB | peak worker RSS MiB |")
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['group']} | {r['requests']} | {r['errors']} | {r['req_per_s']} "
                     f"| {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | {r['mean_bytes']} "
                     f"| {r['memory']['peak_tree_rss_mib']} | {r['memory']['peak_worker_rss_mib']} |")
    return "\n".join(lines)


def git_commit() -> str | None:
    """Read-only: the commit, with '-dirty' when ogc_gateway/ has uncommitted changes."""
    def run(*cmd: str) -> str:
        return subprocess.run(["git", "-C", str(HERE.parent), *cmd], capture_output=True, text=True,
                              timeout=10).stdout.strip()
    try:
        commit = run("rev-parse", "--short", "HEAD")
        dirty = run("status", "--porcelain", "--", "ogc_gateway")
        return (commit + ("-dirty" if dirty else "")) or None
    except (OSError, subprocess.SubprocessError):
        return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                    help="gunicorn workers (default: CPU count, %(default)s here)")
    ap.add_argument("--concurrency", type=int, default=4, help="client threads (default: 4)")
    ap.add_argument("--duration", type=float, default=15.0, help="seconds per group (default: 15)")
    ap.add_argument("--dir", type=Path, help="demo data folder (default: a temporary folder; an "
                    "existing demo there is reused)")
    ap.add_argument("--groups", default=",".join(url_list.CONTENT_TYPES),
                    help="comma-separated groups (default: %(default)s)")
    ap.add_argument("--results", type=Path, default=HERE / "results", help="where the JSON goes")
    args = ap.parse_args()

    groups = [g.strip() for g in args.groups.split(",") if g.strip()]
    unknown = [g for g in groups if g not in url_list.CONTENT_TYPES]
    if unknown or not groups:
        ap.error(f"unknown group(s) {unknown}; choose from {', '.join(url_list.CONTENT_TYPES)}")
    all_urls = url_list.build()

    tmp = None
    if args.dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="ogc-gateway-bench-")
        folder = Path(tmp.name) / "demo"
    else:
        folder = args.dir.expanduser().resolve()
    args.results.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    log_path = (Path(tmp.name) if tmp else args.results) / f"server-{stamp}.log"
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    print(f"starting ogc-gateway demo --dir {folder} --port {port} --workers {args.workers}", flush=True)
    proc = start_server(folder, port, args.workers, log_path)
    sampler = RssSampler(proc.pid)
    rows: list[dict] = []
    warmup: dict = {}
    try:
        ready_s = wait_ready(proc, base, log_path)
        print(f"ready after {ready_s:.1f} s (includes generating the demo data on a first run)", flush=True)
        sampler.start()

        # Warm-up: every URL once, one client; also the first check of every answer. Cold groups
        # are not warmed: their point is that nothing is cached yet.
        with requests.Session() as session:
            for g in (g for g in groups if g not in url_list.COLD_GROUPS):
                ctype = url_list.CONTENT_TYPES[g]
                t0 = time.perf_counter()
                res = [one(session, base, u, ctype) for u in all_urls[g]]
                bad = {u: r["error"] for u, r in zip(all_urls[g], res) if r["error"]}
                warmup[g] = {"seconds": round(time.perf_counter() - t0, 2), "errors": len(bad),
                             "failing": dict(list(bad.items())[:10]),
                             "median_ms": round(percentile(sorted(r["ms"] for r in res), 0.5), 1)}
                print(f"warm-up {g}: {len(res)} URLs in {warmup[g]['seconds']} s, "
                      f"{len(bad)} failed", flush=True)
                for u, e in list(bad.items())[:5]:
                    print(f"  FAIL {u}\n       {e}", flush=True)
        warmup["memory"] = peaks_json(sampler.reset())

        for g in groups:
            cold = g in url_list.COLD_GROUPS
            if cold:                              # the demo's cache_dir is beside its gateway.yaml
                shutil.rmtree(folder / ".ogc-gateway-cache" / "tiles", ignore_errors=True)
            sampler.reset()
            records, elapsed = drive(base, all_urls[g], url_list.CONTENT_TYPES[g], args.concurrency,
                                     args.duration, once=cold)
            row = summarise(g, all_urls[g], records, elapsed)
            time.sleep(SAMPLE_EVERY * 2)
            row["memory"] = peaks_json(sampler.reset())
            rows.append(row)
            print(f"{g}: {row['requests']} requests, {row['errors']} errors, {row['req_per_s']} req/s, "
                  f"p50 {row['p50_ms']} ms", flush=True)
            for reason, n in row["failure_reasons"].items():
                print(f"  {n} x {reason}", flush=True)
    finally:
        sampler.stop_event.set()
        stop_server(proc)

    server_log = log_path.read_text(errors="replace") if log_path.exists() else ""
    log_problems = [line for line in server_log.splitlines()
                    if "Traceback" in line or " ERROR" in line or "[CRITICAL]" in line
                    or "WORKER TIMEOUT" in line]
    overall_tree = max(r["memory"]["peak_tree_rss_mib"] for r in rows) if rows else None
    overall_worker = max(r["memory"]["peak_worker_rss_mib"] for r in rows) if rows else None
    meta = {
        "timestamp": stamp, "commit": git_commit(), "nproc": os.cpu_count(),
        "python": platform.python_version(), "platform": platform.platform(),
        "machine": platform.machine(), "workers": args.workers, "concurrency": args.concurrency,
        "duration_s": args.duration, "groups": groups, "demo_dir": None if tmp else str(folder),
        "client": "python threads + requests.Session (same machine as the server)",
    }
    try:
        import gunicorn
        meta["gunicorn"] = gunicorn.__version__
    except ImportError:
        pass

    md = table(rows)
    print()
    print(f"REST face under gunicorn: {args.workers} workers, {args.concurrency} clients, "
          f"{args.duration:g} s per group; nproc {meta['nproc']}, Python {meta['python']}, "
          f"commit {meta['commit']}")
    print()
    print(md)
    print()
    print(f"peak RSS over the run: process tree {overall_tree} MiB, largest single worker "
          f"{overall_worker} MiB (warm-up: tree {warmup['memory']['peak_tree_rss_mib']} MiB)")
    for r in rows:
        print(f"{r['group']} by service: " + ", ".join(
            f"{name} p50 {v['p50_ms']} / p95 {v['p95_ms']} ms ({v['requests']})"
            for name, v in r["by_service"].items()))
    for r in rows:
        slow = r["slowest_urls_by_median_ms"][0] if r["slowest_urls_by_median_ms"] else None
        if slow:
            print(f"slowest {r['group']} URL (median {slow['median_ms']} ms over {slow['n']}): {slow['url']}")
    if log_problems:
        print(f"\nserver log: {len(log_problems)} problem line(s), first: {log_problems[0]}")

    out = args.results / f"{stamp}.json"
    out.write_text(json.dumps({"meta": meta, "warmup": warmup, "groups": rows,
                               "peak_tree_rss_mib": overall_tree, "peak_worker_rss_mib": overall_worker,
                               "server_log_problems": log_problems[:50], "markdown": md},
                              indent=2), encoding="utf-8")
    print(f"\nwrote {out}")
    if tmp:
        tmp.cleanup()
    failed = sum(r["errors"] for r in rows) + sum(w["errors"] for k, w in warmup.items() if k != "memory")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
