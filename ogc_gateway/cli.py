"""The `ogc-gateway` command: serve, demo, check-config, catalog.

Every problem a user can cause (a bad config, an unreadable file, a busy port) ends as plain lines on
stderr and exit status 1, never as a traceback.
"""

from __future__ import annotations

import glob
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import click
from gunicorn.app.base import BaseApplication

from . import __version__
from .config import CACHE_DIR_NAME, Config, config_for_folder, load_config
from .engine.errors import ConfigError, GatewayError, InvalidParameter

ENV_CONFIG = "OGC_GATEWAY_CONFIG"
DEFAULT_CONFIG = "gateway.yaml"

CONFIG_HELP = f"Configuration file (default: ${ENV_CONFIG}, then ./{DEFAULT_CONFIG})."


def service_urls(base_url: str, name: str, multidimensional: bool = False) -> list[tuple[str, str]]:
    """(label, URL) of every face of one service, as printed when the server starts; a
    multidimensional service adds its variables and dimensions, and its slices."""
    root = f"{base_url}/arcgis/rest/services/{name}/ImageServer"
    urls = [("ImageServer", root),
            ("WMS", f"{base_url}/arcgis/services/{name}/ImageServer/WMSServer?SERVICE=WMS&REQUEST=GetCapabilities"),
            ("WCS", f"{base_url}/arcgis/services/{name}/ImageServer/WCSServer?SERVICE=WCS&REQUEST=GetCapabilities"),
            ("WMTS", f"{root}/WMTS/1.0.0/WMTSCapabilities.xml")]
    if multidimensional:
        urls += [("multidimensionalInfo", f"{root}/multidimensionalInfo?f=pjson"),
                 ("slices", f"{root}/slices?f=pjson")]
    return urls


# ---- helpers --------------------------------------------------------------------------------------

@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn the errors a user can cause into lines on stderr and exit 1."""
    from rasterio.errors import RasterioError

    try:
        yield
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        sys.exit(1)
    except InvalidParameter as exc:
        click.echo(f"error: {exc.name}: {exc.why}", err=True)
        sys.exit(1)
    except (OSError, RasterioError, GatewayError) as exc:
        click.echo(f"error: {getattr(exc, 'message', None) or exc}", err=True)
        sys.exit(1)


def _config_path(option: str | None) -> Path:
    return Path(option or os.environ.get(ENV_CONFIG) or DEFAULT_CONFIG)


def _load(option: str | None) -> Config:
    path = _config_path(option)
    if option is None and not os.environ.get(ENV_CONFIG) and not path.exists():
        raise ConfigError([f"no configuration: ./{DEFAULT_CONFIG} does not exist; pass --config FILE, "
                           f"set {ENV_CONFIG}, or try `ogc-gateway demo`"])
    return load_config(path)


def _open_services(config: Config) -> None:
    """Synchronise every catalog once, in this (the master) process, before workers start."""
    from .engine.service import open_services

    open_services(config, sync=True)


def _base_url(host: str, port: int) -> str:
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    return f"http://{f'[{shown}]' if ':' in shown else shown}:{port}"


def _print_urls(config: Config, host: str, port: int) -> None:
    base = _base_url(host, port)
    click.echo(f"Services directory: {base}/arcgis/rest/services")
    click.echo(f"Every service in one WMS: {base}/ogc/wms?SERVICE=WMS&REQUEST=GetCapabilities")
    click.echo(f"Every service in one WCS: {base}/ogc/wcs?SERVICE=WCS&REQUEST=GetCapabilities")
    click.echo(f"Every service in one WMTS: {base}/ogc/wmts/1.0.0/WMTSCapabilities.xml")
    for name, service in config.services.items():
        for label, url in service_urls(base, name, service.multidimensional):
            click.echo(f"  {name} {label}: {url}")


def _serve(config: Config, host: str, port: int, workers: int | None) -> None:
    """What `serve` does once it has a config: sync catalogs, print URLs, run gunicorn."""
    with _user_errors():
        _open_services(config)
    from . import app  # noqa: F401  (Flask and the faces imported once, before the fork: a worker, also
    #                    one recycled after max_requests, then boots in 0.03 s of CPU instead of 0.3 s)
    _print_urls(config, host, port)
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    options = {
        "bind": bind,
        "workers": workers or os.cpu_count() or 1,
        "worker_class": "sync",
        "timeout": 120,
        "max_requests": 2000,          # recycle long-lived workers (GDAL caches, fragmentation)
        "max_requests_jitter": 200,    # ... but not all at the same moment
        # gunicorn >= 24 opens a control socket in ~/.gunicorn by default; two servers would share it.
        "control_socket_disable": True,
    }
    _GatewayApplication(config, options).run()


class _GatewayApplication(BaseApplication):
    """Gunicorn run in-process, so `ogc-gateway serve` needs no separate gunicorn command line."""

    def __init__(self, config: Config, options: dict) -> None:
        self.gateway_config = config
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings:       # settings newer than the installed gunicorn are skipped
                self.cfg.set(key, value)

    def load(self):
        # Imported in each worker, after the fork: open GDAL datasets must not cross a fork.
        from .app import create_app

        return create_app(self.gateway_config, sync=False)


# ---- commands -------------------------------------------------------------------------------------

@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ogc-gateway")
def cli() -> None:
    """ogc-gateway: rasters served as ArcGIS ImageServer REST services and OGC WMS/WCS/WMTS."""


@cli.command()
@click.argument("folder", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--config", "config_file", metavar="FILE", help=CONFIG_HELP)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", type=click.IntRange(min=1), help="Worker processes (default: CPU count).")
def serve(folder: Path | None, config_file: str | None, host: str, port: int,
          workers: int | None) -> None:
    """Serve a configuration, or every raster sub-folder of FOLDER as a service."""
    with _user_errors():
        if folder is not None and config_file is not None:
            raise click.UsageError("give either FOLDER or --config, not both")
        if folder is not None:
            config, mapping = config_for_folder(folder, Path.cwd() / CACHE_DIR_NAME)
            for sub, name in mapping.items():
                click.echo(f"{folder / sub} -> {name}")
        else:
            config = _load(config_file)
    _serve(config, host, port, workers)


@cli.command()
@click.option("--dir", "folder", default="./ogc-gateway-demo", show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Where to write the demo.")
@click.option("--force", is_flag=True, help="Regenerate files that already exist.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", type=click.IntRange(min=1), help="Worker processes (default: CPU count).")
def demo(folder: Path, force: bool, host: str, port: int, workers: int | None) -> None:
    """Generate a small demo data set (no download) and serve it."""
    from .demo import generate

    with _user_errors():
        click.echo(f"Writing the demo data set to {folder} ...")
        config_path = generate(folder, force=force)
        config = load_config(config_path)
    click.echo(f"Later, `ogc-gateway serve --config {config_path}` serves the same.")
    _serve(config, host, port, workers)


@cli.command("check-config")
@click.option("--config", "config_file", metavar="FILE", help=CONFIG_HELP)
def check_config(config_file: str | None) -> None:
    """Report every problem of a configuration (exit status 1 if there is any)."""
    with _user_errors():
        config = _load(config_file)
        _open_services(config)
    click.echo(f"OK: {len(config.services)} services")
    for name, service in config.services.items():
        files = {f for pattern in service.sources for f in glob.iglob(pattern, recursive=True)
                 if os.path.isfile(f)}
        title = f" ({service.title})" if service.title else ""
        click.echo(f"  {name}{title}: {len(files)} files")


@cli.command()
@click.argument("service")
@click.option("--config", "config_file", metavar="FILE", help=CONFIG_HELP)
@click.option("--tms", metavar="ID", help="Tile matrix set (default: the service's tile scheme, "
                                          "WebMercatorQuad unless `tile_scheme: native`).")
@click.option("--levels", metavar="RANGE", help="Levels such as 0-12, 5 or 3,5,7 (default: 0 to the level "
                                                "matching the data's resolution).")
@click.option("--bbox", metavar="W,S,E,N", help="Only tiles meeting this box.")
@click.option("--bbox-crs", default="EPSG:4326", show_default=True, help="CRS of --bbox.")
@click.option("--style", help="Style: default or a raster-function template (default: default).")
@click.option("--format", "fmt", help="png, jpeg, webp (WMTS) or mixed (the ImageServer tile resource); "
                                      "default png.")
@click.option("--time", help="ISO times separated by commas, or 'all' (default: the latest time).")
@click.option("--workers", type=click.IntRange(min=1), help="Worker processes (default: CPU count).")
@click.option("--clean", is_flag=True, help="Remove the given levels from the cache instead (every style, "
                                            "format and time unless narrowed).")
def seed(service: str, config_file: str | None, tms: str | None, levels: str | None, bbox: str | None,
         bbox_crs: str, style: str | None, fmt: str | None, time: str | None, workers: int | None,
         clean: bool) -> None:
    """Render SERVICE's tiles into the tile cache ahead of time (resumable), or --clean levels."""
    from tqdm import tqdm

    from . import seed as seeding

    with _user_errors():
        config = _load(config_file)
        if clean:
            if not levels:
                raise click.UsageError("--clean needs --levels (the levels to remove)")
            removed = seeding.clean(config, service, tms=tms, levels=levels, style=style, fmt=fmt, time=time)
            click.echo(f"Removed {removed} cached level folder(s) of {service}.")
            return
        plan, found = seeding.prepare(config, service, tms=tms, levels=levels, bbox=bbox, bbox_crs=bbox_crs,
                                      style=style or "default", fmt=fmt or "png", time=time, metatile=None)
        total = seeding.tile_count(plan, found)
        levels_text = f"{plan.levels[0]}-{plan.levels[-1]}" if len(plan.levels) > 1 else str(plan.levels[0])
        click.echo(f"Seeding {service}: {plan.tile_set} levels {levels_text}, style {plan.style}, format "
                   f"{plan.format}, {len(plan.times)} time(s): {total} tiles")
        with tqdm(total=total, unit="tile", dynamic_ncols=True) as bar:
            def progress(tiles: int, outcome: str) -> None:
                bar.update(tiles)
            try:
                counts = seeding.run(config, plan, found, workers or seeding.default_workers(), progress)
            except KeyboardInterrupt:
                bar.close()
                click.echo("Interrupted: the tiles written so far are kept; run the same command to resume.",
                           err=True)
                sys.exit(130)
    click.echo(f"Done: {counts['rendered']} rendered, {counts['cached']} already cached, "
               f"{counts['empty']} without data.")


# ---- catalog management ---------------------------------------------------------------------------

@cli.group()
def catalog() -> None:
    """Manage the catalogs of the services: sync, add, remove, list, overviews.

    A running server sees every change at its next request; no restart is needed."""


class _Progress:
    """A progress bar on stderr for a catalog change, opened at the first file (when the number of
    files is known); silent when stderr is not a terminal."""

    def __init__(self, label: str):
        self.label, self.bar = label, None

    def __call__(self, path: str, total: int) -> None:
        if self.bar is None:
            self.bar = click.progressbar(length=total, label=self.label, file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(1)

    def __enter__(self) -> "_Progress":
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)


def _catalog(config: Config, name: str, *, first_sync: bool = True):
    """The catalog of one configured service, synchronised first if it never was."""
    from .engine.catalog import Catalog
    from .engine.service import catalog_path

    if name not in config.services:
        raise ConfigError([f"no service named {name!r}; services: {', '.join(config.services)}"])
    cat = Catalog(catalog_path(config, name), config.services[name])
    if first_sync and not cat.last_change():
        with _Progress(f"{name}: first sync") as progress:
            cat.sync(progress)
    return cat


def _compiled(cat, where: str | None):
    from .engine.where import compile_where

    return compile_where(where, cat.info().fields, param="--where") if where else None


@catalog.command("sync")
@click.argument("services", nargs=-1)
@click.option("--config", "config_file", metavar="FILE", help=CONFIG_HELP)
def catalog_sync(services: tuple[str, ...], config_file: str | None) -> None:
    """Bring the catalogs of SERVICES (default: every service) in line with their sources."""
    with _user_errors():
        config = _load(config_file)
        for name in services or tuple(config.services):
            cat = _catalog(config, name, first_sync=False)
            with _Progress(f"{name}: sync") as progress:
                report = cat.sync(progress)
            click.echo(f"{name}: {report.added} added or re-read, {report.removed} removed, "
                       f"{report.unchanged} unchanged")


@catalog.command("add")
@click.argument("service")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--config", "config_file", metavar="FILE", help=CONFIG_HELP)
def catalog_add(service: str, files: tuple[str, ...], config_file: str | None) -> None:
    """Add FILES to SERVICE. They stay across syncs while they exist, even outside the service's
    sources, and a file taken out with `remove` comes back."""
    with _user_errors():
        cat = _catalog(_load(config_file), service)
        with _Progress(f"{service}: add") as progress:
            report = cat.add(list(files), progress)
    click.echo(f"{service}: {report.added} added")


@catalog.command("remove")
@click.argument("service")
@click.option("--where", "where", required=True, help="Where clause choosing the items (e.g. \"Name = 'a'\").")
@click.option("--config", "config_file", metavar="FILE", help=CONFIG_HELP)
def catalog_remove(service: str, where: str, config_file: str | None) -> None:
    """Remove the items of SERVICE that match --where. Their files stay out of later syncs until
    they are added again with `catalog add`."""
    with _user_errors():
        cat = _catalog(_load(config_file), service)
        removed = cat.remove(_compiled(cat, where))
    click.echo(f"{service}: {len(removed)} removed (excluded from later syncs)")


@catalog.command("list")
@click.argument("service")
@click.option("--where", "where", help="Where clause choosing the items.")
@click.option("--excluded", is_flag=True, help="List the files taken out with `remove` instead.")
@click.option("--config", "config_file", metavar="FILE", help=CONFIG_HELP)
def catalog_list(service: str, where: str | None, excluded: bool, config_file: str | None) -> None:
    """List the items of SERVICE (tab-separated OBJECTID, Name, origin, path)."""
    with _user_errors():
        cat = _catalog(_load(config_file), service)
        if excluded:
            for path in cat.excluded():
                click.echo(path)
            return
        click.echo("OBJECTID\tName\torigin\tpath")
        for oid, name, origin, path in cat.entries(_compiled(cat, where)):
            click.echo(f"{oid}\t{name}\t{origin}\t{path}")


@catalog.command("overviews")
@click.argument("service")
@click.option("--resampling", default="average", show_default=True,
              type=click.Choice(["nearest", "average", "bilinear", "cubic", "mode"]))
@click.option("--config", "config_file", metavar="FILE", help=CONFIG_HELP)
def catalog_overviews(service: str, resampling: str, config_file: str | None) -> None:
    """Build overviews inside the GeoTIFF sources of SERVICE that lack them (like gdaladdo), then
    sync the catalog."""
    from rasterio.errors import RasterioError

    from .engine import overviews

    with _user_errors():
        cat = _catalog(_load(config_file), service)
        todo = []
        for oid, _, _, path in cat.entries():
            record = cat.record(oid)
            if overviews.needs_overviews(record["width"], record["height"], record["overviews"]):
                todo.append(path)
        built, skipped = 0, []
        with _Progress(f"{service}: overviews") as progress:
            for path in todo:
                progress(path, len(todo))
                try:
                    overviews.build(path, resampling)
                    built += 1
                except (ValueError, OSError, RasterioError) as exc:
                    skipped.append(f"{path}: skipped: {exc}")
        for line in skipped:
            click.echo(line, err=True)
        cat.sync()
    click.echo(f"{service}: overviews built for {built} file(s); {len(skipped)} skipped")


def main() -> None:
    """Console-script entry point; an unexpected error is one line, not a traceback."""
    try:
        cli(prog_name="ogc-gateway")
    except Exception as exc:  # noqa: BLE001 - the last guard before the user's terminal
        if os.environ.get("OGC_GATEWAY_DEBUG"):
            raise
        click.echo(f"error: {type(exc).__name__}: {exc} (set OGC_GATEWAY_DEBUG=1 for details)",
                   err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
