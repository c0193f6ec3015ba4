"""What checking a caller costs per request, in-process (no sockets, one thread).

Generates the demo data set (no download) in a temporary folder, then builds two apps from its
configuration: as shipped (no `security` section) and with one (elevation: access [analyst],
monthly: public; a user, an API key and a token). For each way of asking it times the same cheap
requests through Flask's test client, in interleaved rounds so drift hits every variant alike:

- the elevation root JSON (`?f=json`, about a millisecond of work),
- a cached tile (the ImageServer tile resource: a file read),

and, beneath the HTTP layer, `Security.identify` alone for a token, an API key, a Basic password
remembered by the worker and one verified with argon2 (what a first Basic request or a sign-in pays).

    python benchmarks/token_check.py [--rounds 20] [--per-round 100]
"""

from __future__ import annotations

import argparse
import base64
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ogc_gateway.app import create_app  # noqa: E402
from ogc_gateway.config import config_from_dict  # noqa: E402
from ogc_gateway.demo import generate  # noqa: E402
from ogc_gateway.security import store  # noqa: E402
from ogc_gateway.security.passwords import hash_password  # noqa: E402
from ogc_gateway.security.web import EXTENSION  # noqa: E402

PASSWORD = "benchmark-password"


def apps(folder: Path):
    config_path = generate(folder)
    raw = yaml.safe_load(config_path.read_text())
    plain = config_from_dict(raw, config_path)
    (folder / "secret.key").write_text("b" * 48)
    raw["security"] = {"secret_file": "secret.key", "users_file": "users.yaml"}
    raw["services"]["elevation"]["access"] = ["analyst"]
    for name in raw["services"]:
        if name != "elevation":
            raw["services"][name]["access"] = "public"
    key = store.new_key()
    with store.editing(folder / "users.yaml") as ids:
        ids.users["alice"] = store.User("alice", hash_password(PASSWORD), ("analyst",))
        ids.keys["bench"] = store.ApiKey("bench", store.key_digest(key), ("analyst",), 0)
    secured = config_from_dict(raw, config_path)
    return create_app(plain), create_app(secured), key


def tile_url(client, service: str, z: int) -> str:
    """The ImageServer tile resource's URL of the level-z Web Mercator tile under the middle of the
    service's extent."""
    import math

    from pyproj import Transformer

    ext = client.get(f"/arcgis/rest/services/{service}/ImageServer?f=json").json["extent"]
    x, y = Transformer.from_crs(f"EPSG:{ext['spatialReference']['wkid']}", "EPSG:3857", always_xy=True).transform(
        (ext["xmin"] + ext["xmax"]) / 2, (ext["ymin"] + ext["ymax"]) / 2)
    world = math.pi * 6378137.0
    span = 2 * world / 2 ** z
    row, col = int((world - y) // span), int((x + world) // span)
    return f"/arcgis/rest/services/{service}/ImageServer/tile/{z}/{row}/{col}"


def timed(client, url: str, headers: dict, n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        resp = client.get(url, headers=headers)
        out.append(time.perf_counter() - start)
        if resp.status_code != 200 or b'"error"' in resp.data[:100]:
            raise SystemExit(f"{url} {headers}: {resp.status_code} {resp.data[:200]!r}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--per-round", type=int, default=100)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        plain_app, secure_app, key = apps(Path(tmp))
        plain, secure = plain_app.test_client(), secure_app.test_client()
        basic = "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
        token = secure.post("/arcgis/tokens/generateToken",
                            data={"username": "alice", "password": PASSWORD, "f": "json"}).json["token"]
        root = "/arcgis/rest/services/{}/ImageServer?f=json"
        tiles = {"elevation": tile_url(plain, "elevation", 12), "monthly": tile_url(plain, "monthly", 3)}
        variants = {   # label: (client, URL template, service, query suffix, headers)
            "no security section": (plain, "elevation", "", {}),
            "security on, public service, anonymous": (secure, "monthly", "", {}),
            "restricted, token parameter": (secure, "elevation", f"token={token}", {}),
            "restricted, X-Esri-Authorization token": (secure, "elevation", "", {"X-Esri-Authorization": f"Bearer {token}"}),
            "restricted, API key": (secure, "elevation", f"token={key}", {}),
            "restricted, Basic (remembered)": (secure, "elevation", "", {"Authorization": basic}),
        }
        results = {}
        for what, template in (("root JSON", root), ("cached tile", "{}")):
            times = {label: [] for label in variants}
            for _label, (client, service, query, headers) in variants.items():    # warm-up (fills the tile cache)
                url = tiles[service] if template == "{}" else template.format(service)
                timed(client, url + (("&" if "?" in url else "?") + query if query else ""), headers, 3)
            for _ in range(args.rounds):
                for label, (client, service, query, headers) in variants.items():
                    url = tiles[service] if template == "{}" else template.format(service)
                    url += ("&" if "?" in url else "?") + query if query else ""
                    times[label] += timed(client, url, headers, args.per_round)
            results[what] = times
        sec = secure_app.extensions[EXTENSION]
        env = {"QUERY_STRING": "", "REMOTE_ADDR": "127.0.0.1"}
        micro = {
            "identify: token": {**env, "QUERY_STRING": f"token={token}"},
            "identify: API key": {**env, "QUERY_STRING": f"token={key}"},
            "identify: Basic, remembered": {**env, "HTTP_AUTHORIZATION": basic},
        }
        micro_times = {}
        for label, environ in micro.items():
            sec.identify(environ)
            n = args.rounds * args.per_round
            start = time.perf_counter()
            for _ in range(n):
                sec.identify(environ)
            micro_times[label] = (time.perf_counter() - start) / n
        cold = []
        for _ in range(10):
            sec._verified.clear()
            start = time.perf_counter()
            sec.identify({**env, "HTTP_AUTHORIZATION": basic})
            cold.append(time.perf_counter() - start)
        micro_times["identify: Basic, argon2 verification"] = statistics.median(cold)

    n = args.rounds * args.per_round
    print(f"{n} requests per variant ({args.rounds} interleaved rounds of {args.per_round}); Flask test client, "
          "one thread\n")
    for what, times in results.items():
        base = statistics.median(times["no security section"])
        print(f"### {what}\n\n| variant | median µs | mean µs | p95 µs | median − no security µs |\n|---|---:|---:|---:|---:|")
        for label, values in times.items():
            values = sorted(values)
            med = statistics.median(values)
            print(f"| {label} | {med * 1e6:.0f} | {statistics.fmean(values) * 1e6:.0f} | "
                  f"{values[int(len(values) * 0.95)] * 1e6:.0f} | {(med - base) * 1e6:+.0f} |")
        print()
    print("### Security.identify alone\n\n| credentials | µs per call |\n|---|---:|")
    for label, value in micro_times.items():
        print(f"| {label} | {value * 1e6:.1f} |")


if __name__ == "__main__":
    main()
