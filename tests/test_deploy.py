"""The deployment files in deploy/: each checked as far as this machine allows, with the tools that
will read it (the Compose schema, the Kubernetes schemas, nginx, systemd), never by eye."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from conftest import stop_processes

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
COMPOSE_SCHEMA = Path(__file__).parent / "schemas" / "compose" / "compose-spec.json"
YAML_FILES = sorted([*DEPLOY.glob("*.yaml"), *DEPLOY.glob("*.yml"), *KUBERNETES.glob("*.yaml")])


def load_all(path: Path) -> list:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def kubernetes_docs() -> dict[str, dict]:
    return {doc["kind"]: doc for path in sorted(KUBERNETES.glob("*.yaml")) for doc in load_all(path)}


def test_every_yaml_file_parses():
    assert {p.name for p in YAML_FILES} >= {"compose.yaml", "gateway.yaml", "prometheus.yml", "deployment.yaml",
                                            "service.yaml", "hpa.yaml", "configmap.yaml", "secret.yaml"}
    for path in YAML_FILES:
        assert load_all(path), path


def test_compose_file_is_valid_and_wired():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)
    services = compose["services"]
    assert {"gateway-a", "gateway-b", "nginx", "postgis", "minio", "prometheus"} <= set(services)
    for name in ("gateway-a", "gateway-b"):
        gw = services[name]
        assert gw["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
        assert (DEPLOY / gw["build"]["context"] / gw["build"]["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
        assert gw["environment"]["AWS_ENDPOINT_URL"] == "http://minio:9000"
        assert "./gateway.yaml:/etc/ogc-gateway/gateway.yaml:ro" in gw["volumes"]
    # a gateway volume each: their catalogs are their own
    assert services["gateway-a"]["volumes"][1] != services["gateway-b"]["volumes"][1]
    assert set(services["nginx"]["depends_on"]) == {"gateway-a", "gateway-b"}
    # every file a service mounts is in deploy/
    for svc in services.values():
        for volume in svc.get("volumes", ()):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DEPLOY / source).is_file(), volume
    # nginx balances, and Prometheus scrapes, exactly the gateway services
    upstream = re.findall(r"^\s*server\s+([\w.-]+):(\d+)", (DEPLOY / "nginx.conf").read_text(), re.M)
    assert sorted(upstream) == [("gateway-a", "8080"), ("gateway-b", "8080")]
    prometheus = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    targets = [t for job in prometheus["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]]
    assert sorted(targets) == ["gateway-a:8080", "gateway-b:8080"]
    assert prometheus["scrape_configs"][0]["metrics_path"] == "/metrics"


def test_compose_schema_refuses_a_broken_file():
    """The check has teeth: the schema rejects what Compose would."""
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    compose["services"]["nginx"]["depends_on"] = {"gateway-a": {"condition": "when_it_feels_like_it"}}
    compose["services"]["minio"]["restart_policy"] = "always"
    assert len(list(jsonschema.Draft7Validator(schema).iter_errors(compose))) >= 2


@pytest.mark.parametrize("path", sorted(KUBERNETES.glob("*.yaml")), ids=lambda p: p.name)
def test_kubernetes_manifest_is_valid(path):
    version = kubernetes_validate.latest_version()
    for doc in load_all(path):
        kubernetes_validate.validate(doc, version, strict=True)


def test_kubernetes_validation_has_teeth():
    doc = kubernetes_docs()["Deployment"]
    doc["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["pathh"] = "/readyz"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def test_kubernetes_manifests_fit_together():
    docs = kubernetes_docs()
    assert set(docs) == {"Deployment", "Service", "HorizontalPodAutoscaler", "ConfigMap", "Secret"}
    deployment, pod = docs["Deployment"], docs["Deployment"]["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert docs["Service"]["spec"]["selector"].items() <= labels.items()
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert docs["Service"]["spec"]["ports"][0]["targetPort"] in ports
    target = docs["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    refs = {(k, e[k]["name"]) for e in container["envFrom"] for k in e}
    assert refs == {("configMapRef", docs["ConfigMap"]["metadata"]["name"]),
                    ("secretRef", docs["Secret"]["metadata"]["name"])}
    config_volume = next(v for v in pod["spec"]["volumes"] if "configMap" in v)
    mount = next(m for m in container["volumeMounts"] if m["name"] == config_volume["name"])
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["OGC_GATEWAY_CONFIG"] == f"{mount['mountPath']}/{config_volume['configMap']['items'][0]['path']}"
    gateway_yaml = yaml.safe_load(docs["ConfigMap"]["data"]["gateway.yaml"])
    assert gateway_yaml["services"] == yaml.safe_load((DEPLOY / "gateway.yaml").read_text())["services"]
    assert container["args"][:2] == ["ogc-gateway", "serve"]


def test_nginx_accepts_the_config(tmp_path):
    """Debian's nginx checks the file (`nginx -t`) under a temporary prefix. Two things are changed
    for this machine only: the gateway host names (resolved by Compose's DNS) become 127.0.0.1, and
    the cache folder moves under the prefix."""
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        pytest.skip("nginx is not installed (.ci/run installs Debian's nginx)")
    text = (DEPLOY / "nginx.conf").read_text()
    text = re.sub(r"(server\s+)gateway-[ab](:8080)", r"\g<1>127.0.0.1\2", text)
    text = text.replace("/var/cache/nginx/", f"{tmp_path}/cache/")
    (tmp_path / "cache").mkdir()
    (tmp_path / "nginx.conf").write_text(text)
    result = subprocess.run([nginx, "-t", "-p", f"{tmp_path}/", "-c", str(tmp_path / "nginx.conf"), "-e", "stderr"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
    # and it refuses a broken one
    (tmp_path / "nginx.conf").write_text(text.replace("proxy_cache_lock on;", "proxy_cache_lock maybe;"))
    broken = subprocess.run([nginx, "-t", "-p", f"{tmp_path}/", "-c", str(tmp_path / "nginx.conf"), "-e", "stderr"],
                            capture_output=True, text=True)
    assert broken.returncode != 0


def test_systemd_accepts_the_unit(tmp_path):
    """`systemd-analyze verify` in a temporary root holding the host's own unit files and the
    command the unit starts (verify insists that ExecStart exists); any warning fails the test."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (.ci/run installs Debian's systemd)")
    unit = DEPLOY / "ogc-gateway.service"
    exec_start = next(line.split("=", 1)[1] for line in unit.read_text().splitlines() if line.startswith("ExecStart="))
    command = Path(shlex.split(exec_start)[0])
    root = tmp_path / "root"
    system_units = next(p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")) if p.is_dir())
    shutil.copytree(system_units, root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    shutil.copy(unit, root / "etc/systemd/system" / unit.name)
    (root / command.relative_to("/")).parent.mkdir(parents=True)
    (root / command.relative_to("/")).write_text("#!/bin/sh\n")
    (root / command.relative_to("/")).chmod(0o755)

    def verify(name: str) -> subprocess.CompletedProcess:
        return subprocess.run([analyze, "verify", f"--root={root}", name], capture_output=True, text=True)

    result = verify(unit.name)
    assert result.returncode == 0 and unit.name not in result.stderr, result.stderr
    # the check has teeth: a wrong value is reported
    (root / "etc/systemd/system/broken.service").write_text(
        unit.read_text().replace("Type=exec", "Type=whenever"))
    assert "broken.service" in verify("broken.service").stderr


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip())
            for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_dockerfile_shape():
    steps = dockerfile_instructions()
    assert sum(1 for op, _ in steps if op == "FROM") == 2               # multi-stage
    last_stage = steps[max(i for i, (op, _) in enumerate(steps) if op == "FROM"):]
    user = [arg for op, arg in last_stage if op == "USER"]
    assert user and user[-1] not in ("root", "0")
    health = next(arg for op, arg in last_stage if op == "HEALTHCHECK")
    assert "/healthz" in health
    # every file copied from the build context exists
    for op, arg in steps:
        if op == "COPY" and not arg.startswith("--from"):
            for source in arg.split()[:-1]:
                assert (REPO / source).exists(), source
    # no system GDAL: the wheels bring their own
    assert not any("gdal" in arg.lower() for op, arg in steps if op == "RUN")


def test_dockerfile_commands_are_the_readmes():
    """What the image runs to install and to serve is what the README tells a reader to run."""
    readme = (REPO / "README.md").read_text()
    steps = dockerfile_instructions()
    commands = [c.strip() for op, arg in steps if op == "RUN" for c in arg.split("&&")]
    commands.append(" ".join(json.loads(next(arg for op, arg in steps if op == "CMD"))))
    wanted = [c for c in commands if c.startswith(("pip ", "ogc-gateway "))]
    assert len(wanted) == 2
    for command in wanted:
        plain = command.replace("--no-cache-dir ", "")
        assert f"`{plain}`" in readme or f"\n{plain}\n" in readme, command
    unit = (DEPLOY / "ogc-gateway.service").read_text()
    exec_start = next(line.split("=", 1)[1] for line in unit.splitlines() if line.startswith("ExecStart="))
    assert "ogc-gateway " + exec_start.split("/ogc-gateway ", 1)[1] in readme


def test_the_deployment_configurations_pass_the_strict_validator(tmp_path):
    from ogc_gateway.config import load_config

    image_config = load_config(DEPLOY / "gateway.yaml")
    assert image_config.server.cache_url == "s3://ogc-gateway-cache/cache"
    # one catalog shared by every instance; its password comes from PGPASSWORD, never from the file
    assert image_config.server.catalog_url == "postgresql://ogc_gateway@postgis:5432/ogc_gateway"
    gateways = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    assert gateways["gateway-a"]["environment"]["PGPASSWORD"] and gateways["gateway-b"]["depends_on"]["postgis"]
    assert "PGPASSWORD" in kubernetes_docs()["Secret"]["stringData"]
    # the image holds the driver the shared catalog needs (the [postgis] extra: psycopg with its libpq)
    extras = re.search(r"pip install [^\n]*'\.\[([a-z0-9,]+)\]'", (DEPLOY / "Dockerfile").read_text())
    assert extras and {"s3", "postgis"} <= set(extras.group(1).split(","))
    assert image_config.services["elevation"].sources == ("s3://imagery/elevation/**/*.tif",)
    configmap = kubernetes_docs()["ConfigMap"]["data"]["gateway.yaml"]
    (tmp_path / "gateway.yaml").write_text(configmap)
    assert load_config(tmp_path / "gateway.yaml").server == image_config.server


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, process: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    import time

    import requests

    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, log.read_text()
        try:
            if requests.get(url, timeout=10).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass
        assert time.monotonic() < deadline, f"{url} did not answer: {log.read_text()[-2000:]}"
        time.sleep(0.2)


def test_nginx_in_front_of_two_gateways(tmp_path):
    """deploy/nginx.conf run for real by Debian's nginx before two `ogc-gateway serve` instances: it
    balances over both, caches tiles (never with a token), passes X-Forwarded-* (the gateway's hrefs
    name the public host) and the request id, and keeps /metrics private."""
    import sys

    import requests

    import synth

    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        pytest.skip("nginx is not installed (.ci/run installs Debian's nginx)")
    from test_wmts import COL0, ROW0, Z

    synth.make_dem(tmp_path / "dem")
    processes: list[subprocess.Popen] = []
    ports = [_free_port(), _free_port()]
    try:
        for n, port in enumerate(ports):
            folder = tmp_path / f"gw{n}"
            folder.mkdir()
            (folder / "gateway.yaml").write_text(
                f"server:\n  proxy_headers: true\nservices:\n  dem:\n    sources: {tmp_path}/dem/*.tif\n")
            log = folder / "out.log"
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "ogc_gateway.cli", "serve", "--config", str(folder / "gateway.yaml"),
                 "--port", str(port), "--workers", "1"], stdout=open(log, "w"), stderr=subprocess.STDOUT))
        for n, port in enumerate(ports):
            _wait(f"http://127.0.0.1:{port}/readyz", processes[n], tmp_path / f"gw{n}" / "out.log")
        front = _free_port()
        text = (DEPLOY / "nginx.conf").read_text()
        text = text.replace("server gateway-a:8080", f"server 127.0.0.1:{ports[0]}")
        text = text.replace("server gateway-b:8080", f"server 127.0.0.1:{ports[1]}")
        text = text.replace("listen 80;", f"listen 127.0.0.1:{front};")
        text = text.replace("/var/cache/nginx/", f"{tmp_path}/cache/")
        (tmp_path / "cache").mkdir()
        (tmp_path / "nginx.conf").write_text(text)
        nginx_log = tmp_path / "nginx.log"
        processes.append(subprocess.Popen(
            [nginx, "-p", f"{tmp_path}/", "-c", str(tmp_path / "nginx.conf"), "-e", "stderr",
             "-g", "daemon off; user root;"], stdout=open(nginx_log, "w"), stderr=subprocess.STDOUT))
        base = f"http://127.0.0.1:{front}"
        _wait(f"{base}/healthz", processes[-1], nginx_log)

        tile = f"{base}/arcgis/rest/services/dem/ImageServer/tile/{Z}/{ROW0}/{COL0}"
        first, second = requests.get(tile), requests.get(tile)
        assert first.status_code == second.status_code == 200 and first.content == second.content
        assert (first.headers["X-Cache-Status"], second.headers["X-Cache-Status"]) == ("MISS", "HIT")
        with_token = requests.get(tile, params={"token": "abc"})
        assert with_token.headers["X-Cache-Status"] == "BYPASS"

        described = requests.get(f"{base}/arcgis/rest/services/dem/ImageServer/exportImage",
                                 params={"bbox": "500000,5001200,500800,5002000", "size": "80,80", "f": "json"},
                                 headers={"Host": "maps.example.org", "X-Request-Id": "edge-42"})
        assert described.headers["X-Request-Id"] == "edge-42"
        assert described.json()["href"].startswith("http://maps.example.org/arcgis/rest/directories/")
        made = requests.get(f"{base}/healthz").headers["X-Request-Id"]
        assert re.fullmatch(r"[0-9a-f]{32}", made)                         # nginx's $request_id
        assert requests.get(f"{base}/metrics").status_code == 404
        for _ in range(6):                                                  # round robin over both
            assert requests.get(f"{base}/arcgis/rest/services", params={"f": "json"}).status_code == 200
    finally:
        stop_processes(processes)
    for n in range(2):
        lines = [line for line in (tmp_path / f"gw{n}" / "out.log").read_text().splitlines()
                 if '"GET /arcgis/rest/services?f=json"' in line]
        assert lines, f"instance {n} answered none of the balanced requests"
