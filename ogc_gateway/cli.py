"""The `ogc-gateway` command: serve, demo, check-config, catalog, seed, make-layer.

Every problem a user can cause (a bad config, an unreadable file, a busy port) ends as plain lines on
stderr and exit status 1, never as a traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from gunicorn.app.base import BaseApplication

from . import __version__, logs
from .cli_common import CONFIG_HELP, DEFAULT_CONFIG, ENV_CONFIG  # noqa: F401  (still importable from here)
from .cli_common import load as _load
from .cli_common import user_errors as _user_errors
from .config import CACHE_DIR_NAME, Config, config_for_folder, load_config
from .engine import ConfigError


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

def _open_services(config: Config) -> dict:
    """Synchronise every catalog once, in this (the master) process, before workers start; under
    the cache folder's lock, so instances sharing it that start at once sync one after the other
    (the later ones find nothing left to do) instead of timing out on the database lock."""
    import fcntl

    from .engine import configure_s3_gdal, open_services

    configure_s3_gdal()
    config.server.cache_dir.mkdir(parents=True, exist_ok=True)
    with open(config.server.cache_dir / "sync.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return open_services(config, sync=True)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


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
    # Flask, the faces and the resampler's compiled loops loaded once, before the fork: a worker, also
    # one recycled after max_requests, then boots in 0.03 s of CPU instead of 0.3 s.
    from . import app  # noqa: F401
    from .engine import prepare_kernels
    prepare_kernels()
    _print_urls(config, host, port)
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    options = {
        "bind": bind,
        "workers": workers or os.cpu_count() or 1,
        # Requests are read whole by an asyncio loop before a thread runs them (ogc_gateway/asgi.py):
        # slow or idle clients hold a coroutine, not a worker.
        "worker_class": "asgi",
        "worker_connections": 1000,
        "keepalive": 5,
        # Above every service's max_request_seconds: work is stopped by its own deadline, not a kill.
        "timeout": max(120, _longest_budget(config) + 30),
        # No recycling after N requests: a recycled worker stops accepting and then waits up to
        # graceful_timeout for every open connection, idle ones included, so 100 slow clients turned
        # each recycle into a 24 s stall (benchmarks/stayup.py). Memory stays bounded by GDAL_CACHEMAX,
        # the per-thread dataset pool and max_output_bytes.
        "max_requests": 0,
        # gunicorn >= 24 opens a control socket in ~/.gunicorn by default; two servers would share it.
        "control_socket_disable": True,
        # gunicorn's error log and the workers' logs: the level and format of --log-level/--log-format
        **logs.gunicorn_options(),
    }
    from . import gunicorn_hooks  # Prometheus multiprocess metrics: a per-run folder, dead workers marked

    options.update(on_starting=gunicorn_hooks.on_starting, child_exit=gunicorn_hooks.child_exit,
                   on_exit=gunicorn_hooks.on_exit,
                   logger_class=gunicorn_hooks.QuietAccessLogger)  # no unwritten gunicorn access lines
    _GatewayApplication(config, options).run()


def _longest_budget(config: Config) -> int:
    return max([config.server.limits.max_request_seconds]
               + [s.limits.max_request_seconds for s in config.services.values()])


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
        from .access import configure_logging
        from .app import create_app
        from .asgi import WsgiOnAsgi
        from .tilefast import inline_answers

        if self.gateway_config.server.access_log:
            configure_logging(self.gateway_config.server.access_log_format == "json")
        app = create_app(self.gateway_config, sync=False)
        server = self.gateway_config.server
        return WsgiOnAsgi(app, max_body=server.max_request_bytes, max_upload=server.max_upload_bytes,
                          threads=server.max_heavy_per_worker + 1, inline=inline_answers(app))


# ---- commands -------------------------------------------------------------------------------------

@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ogc-gateway")
@click.option("--log-level", type=click.Choice(logs.LEVELS, case_sensitive=False), default=logs.DEFAULT_LEVEL,
              envvar=logs.ENV_LEVEL, show_default=True, show_envvar=True,
              help="Log records of ogc-gateway (and gunicorn's) from this level up, on stderr.")
@click.option("--log-format", type=click.Choice(logs.FORMATS, case_sensitive=False), default="text",
              envvar=logs.ENV_FORMAT, show_default=True, show_envvar=True,
              help="text lines, or one JSON object a line for log collectors.")
def cli(log_level: str, log_format: str) -> None:
    """ogc-gateway: rasters served as ArcGIS ImageServer REST services and OGC WMS/WCS/WMTS."""
    logs.configure(log_level, json=log_format.lower() == "json")


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
    from .engine import expand_sources

    with _user_errors():
        config = _load(config_file)
        opened = _open_services(config)
    click.echo(f"OK: {len(config.services)} services")
    from .engine import unnamed_warning
    for name, svc in opened.items():
        if warning := unnamed_warning(svc.info.crs):
            click.echo(f"warning: services.{name}: {warning}")
    for name, service in config.services.items():
        files = {f for pattern in service.sources for f in expand_sources(pattern)}
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
@click.option("--spark", "spark_master", is_flag=False, flag_value="local[*]", default=None, metavar="[MASTER]",
              help="Render the blocks as Spark tasks (the [spark] extra) on MASTER (default local[*]); "
                   "executors must share the cache folder.")
def seed(service: str, config_file: str | None, tms: str | None, levels: str | None, bbox: str | None,
         bbox_crs: str, style: str | None, fmt: str | None, time: str | None, workers: int | None,
         clean: bool, spark_master: str | None) -> None:
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
                if spark_master:
                    from .spark import batch

                    counts = batch.seed(config, plan, found, spark_master, progress)
                else:
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
    """A progress bar (tqdm, as `seed` draws) on stderr for a catalog change, opened at the first
    file (when the number of files is known); silent when stderr is not a terminal."""

    def __init__(self, label: str):
        self.label, self.bar = label, None

    def __call__(self, path: str, total: int) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=self.label, unit="file", file=sys.stderr, disable=None,
                            dynamic_ncols=True)
        self.bar.update(1)

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()


def _catalog(config: Config, name: str, *, first_sync: bool = True):
    """The catalog of one configured service, synchronised first if it never was."""
    from .engine import configure_s3_gdal, open_catalog

    configure_s3_gdal()
    if name not in config.services:
        raise ConfigError([f"no service named {name!r}; services: {', '.join(config.services)}"])
    cat = open_catalog(config, config.services[name])
    if first_sync and not cat.last_change():
        with _Progress(f"{name}: first sync") as progress:
            cat.sync(progress)
    return cat


def _compiled(cat, where: str | None):
    from .engine import compile_where

    return compile_where(where, cat.info().fields, param="--where") if where else None


@catalog.command("sync")
@click.argument("services", nargs=-1)
@click.option("--config", "config_file", metavar="FILE", help=CONFIG_HELP)
@click.option("--spark", "spark_master", is_flag=False, flag_value="local[*]", default=None, metavar="[MASTER]",
              help="Read the new and changed files' headers on Spark (the [spark] extra) on MASTER "
                   "(default local[*]); executors must see the same files.")
def catalog_sync(services: tuple[str, ...], config_file: str | None, spark_master: str | None) -> None:
    """Bring the catalogs of SERVICES (default: every service) in line with their sources."""
    from .engine import read_files

    with _user_errors():
        config = _load(config_file)
        reader = read_files
        if spark_master:
            from .spark import batch

            reader = batch.reader(spark_master, "ogc-gateway catalog sync")
        for name in services or tuple(config.services):
            cat = _catalog(config, name, first_sync=False)
            with _Progress(f"{name}: sync") as progress:
                report = cat.sync(progress, reader)
            click.echo(f"{name}: {report.added} added or re-read, {report.removed} removed, "
                       f"{report.unchanged} unchanged")


@catalog.command("add")
@click.argument("service")
@click.argument("files", nargs=-1, required=True)
@click.option("--config", "config_file", metavar="FILE", help=CONFIG_HELP)
def catalog_add(service: str, files: tuple[str, ...], config_file: str | None) -> None:
    """Add FILES (paths, s3:// or https:// URLs) to SERVICE. They stay across syncs while they
    exist, even outside the service's sources, and a file taken out with `remove` comes back."""
    from .engine import configure_s3_gdal, is_remote, source_exists

    configure_s3_gdal()
    with _user_errors():
        missing = [f for f in files if not (source_exists(f) if is_remote(f) else os.path.isfile(f))]
        if missing:
            raise click.BadParameter(f"{', '.join(missing)} does not exist", param_hint="FILES")
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

    from .engine import build_overviews, needs_overviews

    with _user_errors():
        cat = _catalog(_load(config_file), service)
        todo = []
        for oid, _, _, path in cat.entries():
            record = cat.record(oid)
            if needs_overviews(record["width"], record["height"], record["overviews"]):
                todo.append(path)
        built, skipped = 0, []
        with _Progress(f"{service}: overviews") as progress:
            for path in todo:
                progress(path, len(todo))
                try:
                    build_overviews(path, resampling)
                    built += 1
                except (ValueError, OSError, RasterioError) as exc:
                    skipped.append(f"{path}: skipped: {exc}")
        for line in skipped:
            click.echo(line, err=True)
        cat.sync()
    click.echo(f"{service}: overviews built for {built} file(s); {len(skipped)} skipped")


@cli.command()
@click.argument("name")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--config", "config_file", metavar="FILE", help=CONFIG_HELP)
@click.option("--title", help="The service's title.")
@click.option("--time-field", help="Attribute holding each raster's time (makes the service time-enabled).")
@click.option("--build-pyramids", is_flag=True, help="Write overviews into the copies first.")
def publish(name: str, files: tuple[Path, ...], config_file: str | None, title: str | None,
            time_field: str | None, build_pyramids: bool) -> None:
    """Publish FILES as a new service NAME, as the HTTP publishing API does: the files are copied
    into the data folder and a running server serves the service at its next request."""
    from .publish.services import PublishedServices

    with _user_errors():
        store = PublishedServices(_load(config_file))
        service = {k: v for k, v in (("title", title), ("time_field", time_field)) if v}
        store.check_new(name, service, list(files))
        result = store.create(name, service, list(files), build_pyramids, click.echo)
    click.echo(f"Published {result['serviceName']}: {result['itemCount']} raster(s)")
# ---- users and API keys (security/commands.py) ----------------------------------------------------

def _add_security_commands() -> None:
    from .security.commands import keys, users

    cli.add_command(users)
    cli.add_command(keys)


_add_security_commands()


@cli.command("make-layer")
@click.argument("url")
@click.argument("output", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--extent", metavar="XMIN,YMIN,XMAX,YMAX", help="Clip to this box (the service's units).")
@click.option("--extent-of", type=click.Path(exists=True, dir_okay=False), metavar="FILE",
              help="Clip to the extent of a raster or vector file.")
@click.option("--bands", metavar='"1;2;3"', help="Bands, counted from 1 (default: all).")
@click.option("--mosaic-method", type=click.Choice(["NORTH_WEST", "CLOSEST_TO_CENTER", "LOCK_RASTER", "BY_ATTRIBUTE",
                                                    "CLOSEST_TO_NADIR", "CLOSEST_TO_VIEWPOINT", "SEAMLINE", "NONE"],
                                                   case_sensitive=False))
@click.option("--order-field", metavar="F", help="Field ordering the rasters (BY_ATTRIBUTE).")
@click.option("--order-base-value", metavar="V", help="Rasters sorted by their distance to this value.")
@click.option("--lock-rasterid", metavar='"4;5"', help="Raster ids the layer is locked to (LOCK_RASTER).")
@click.option("--cell-size", type=float, metavar="C", help="Cell size (default: the service's).")
@click.option("--where", metavar="CLAUSE", help="SQL where clause selecting rasters.")
@click.option("--processing-template", metavar="NAME", help="A raster function template of the service.")
@click.option("--token", metavar="T", help="Token of a secured service.")
@click.option("--gis", metavar="NAME", help="A GIS registered with register_gis (tokens generated for you).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def make_layer(url: str, output: Path, extent, extent_of, bands, mosaic_method, order_field, order_base_value,
               lock_rasterid, cell_size, where, processing_template, token, gis, quiet) -> None:
    """Make Image Server Layer: OUTPUT .xml/.vrt is a GDAL layer streaming from the image service at
    URL; OUTPUT .tif is a cloud-optimised GeoTIFF of it."""
    from .client.http import ImageServiceError
    from .client.layer import make_image_server_layer

    try:
        written = make_image_server_layer(url, output, extent=extent, bands=bands, mosaic_method=mosaic_method,
                                          order_field=order_field, order_base_value=order_base_value,
                                          lock_rasterid=lock_rasterid, cell_size=cell_size, where_clause=where,
                                          processing_template=processing_template, extent_of=extent_of,
                                          token=token, gis=gis, progress=not quiet)
    except (ValueError, KeyError, ImageServiceError, OSError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(str(written))


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
