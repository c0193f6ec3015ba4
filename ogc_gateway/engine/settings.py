"""The settings the engine works from: small frozen dataclasses that config.py fills from YAML.

They live in the engine so the engine never imports the configuration loader (config.py imports
these and re-exports them; `from ogc_gateway.config import ...` keeps working).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FunctionTemplate:
    """A raster-function template offered by a service (`raster_functions:` entries)."""

    name: str
    function: str
    arguments: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    definition: dict[str, Any] | None = None     # the RFT JSON of a template file in that form
