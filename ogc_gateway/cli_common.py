"""What every `ogc-gateway` command shares: finding and loading the configuration, and turning the
errors a user can cause into lines on stderr and exit status 1 (never a traceback).

Apart from cli.py so command groups defined elsewhere (security/commands.py) can use them
without importing the CLI that registers them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from .config import Config, load_config
from .engine import ConfigError, GatewayError, InvalidParameter

ENV_CONFIG = "OGC_GATEWAY_CONFIG"
DEFAULT_CONFIG = "gateway.yaml"

CONFIG_HELP = f"Configuration file (default: ${ENV_CONFIG}, then ./{DEFAULT_CONFIG})."


@contextmanager
def user_errors() -> Iterator[None]:
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


def config_path(option: str | None) -> Path:
    return Path(option or os.environ.get(ENV_CONFIG) or DEFAULT_CONFIG)


def load(option: str | None) -> Config:
    path = config_path(option)
    if option is None and not os.environ.get(ENV_CONFIG) and not path.exists():
        raise ConfigError([f"no configuration: ./{DEFAULT_CONFIG} does not exist; pass --config FILE, "
                           f"set {ENV_CONFIG}, or try `ogc-gateway demo`"])
    return load_config(path)
