"""Reading the YAML file (duplicate keys are problems, not silent overwrites) and building the
whole document: `server`, `services`, `security`. Raises ConfigError listing every problem.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from ..engine import ConfigError
from ..security.settings import SECURITY_KEYS, security_section
from .model import Config
from .server import server_section
from .services import services_section
from .values import Checker


def load_config(path: str | os.PathLike) -> Config:
    """Read, validate and build a configuration; raises ConfigError listing every problem."""
    path = Path(path).expanduser().resolve()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such configuration file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}"]) from None
    raw, problems = _parse_yaml(text, path.name)
    if problems:
        raise ConfigError(problems)
    return config_from_dict(raw, path)


def config_problems(raw: Any, path: Path) -> list[str]:
    """Every problem of an already-parsed YAML document (an empty list when it is valid)."""
    return build(Checker(Path(path).name, Path(path).resolve().parent), raw)[1]


def config_from_dict(raw: Any, path: Path) -> Config:
    """Build a Config from a parsed YAML document; raises ConfigError listing every problem."""
    path = Path(path).resolve()
    config, problems = build(Checker(path.name, path.parent), raw, config_path=path)
    if problems or config is None:          # no config comes without a problem
        raise ConfigError(problems)
    return config


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that records duplicate mapping keys, which plain YAML silently overwrites."""

    duplicates: list[str]

    def construct_mapping(self, node, deep=False):
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                mark = key_node.start_mark
                self.duplicates.append(f"line {mark.line + 1}, column {mark.column + 1}: "
                                       f"duplicate key {key!r}")
            seen.add(key)
        return super().construct_mapping(node, deep)


def _parse_yaml(text: str, label: str) -> tuple[Any, list[str]]:
    loader = _UniqueKeyLoader(text)
    loader.duplicates = []
    try:
        raw = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = exc.problem or exc.context or "invalid YAML"
        return None, [f"{label}: {where}YAML syntax error: {what}"]
    except yaml.YAMLError as exc:
        return None, [f"{label}: YAML syntax error: {exc}"]
    finally:
        loader.dispose()
    return raw, [f"{label}: {d}" for d in loader.duplicates]


def build(check: Checker, raw: Any, config_path: Path | None = None) -> tuple[Config | None, list[str]]:
    """The Config of a parsed document, or None and every problem (`config_path`: the file it came from)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        check.problems.append(f"{check.label}: the document must be a mapping with 'server' and "
                              f"'services', not {type(raw).__name__}")
        return None, check.problems
    top = check.mapping(raw, "", ("server", "services", "security"))
    server = server_section(check, top.get("server"))
    services = services_section(check, top.get("services"), server)
    security = None
    if top.get("security") is not None or "security" in top:
        security = security_section(check.mapping(top.get("security"), "security", SECURITY_KEYS),
                                    check.problem, check.path)
    else:
        for name, service in services.items():
            if service.access is not None:
                check.problem(f"services.{name}.access", "needs a 'security' section (without one every "
                                                         "service is public)")
    if check.problems:
        return None, check.problems
    return Config(server=server, services=services, path=config_path, security=security), []

