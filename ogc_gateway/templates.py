"""Jinja2 rendering of the XML documents the faces send (capabilities, KML).

The templates live in the top-level `capabilities_templates/` folder so they can be edited without
touching code; a wheel carries them as `ogc_gateway/capabilities_templates` (pyproject force-include),
so both places are searched.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

_PACKAGE_DIR = Path(__file__).resolve().parent
# Installed wheel first, then the source checkout (editable installs and tests).
_SEARCH_PATH = (_PACKAGE_DIR / "capabilities_templates", _PACKAGE_DIR.parent / "capabilities_templates")


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The shared Environment, built on first use so importing this module stays cheap."""
    folders = [str(p) for p in _SEARCH_PATH if p.is_dir()]
    if not folders:
        raise RuntimeError(f"capabilities_templates not found (looked in {', '.join(map(str, _SEARCH_PATH))})")
    return Environment(
        loader=FileSystemLoader(folders),
        # Every value a client sends may end up in a document: escape by default for XML/KML.
        autoescape=select_autoescape(enabled_extensions=("xml", "kml", "html"), default_for_string=False),
        # A missing variable is a bug in the face, not something to render as an empty string.
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render(template_name: str, **context) -> str:
    """Render one template from capabilities_templates/ with the given variables."""
    return environment().get_template(template_name).render(**context)
