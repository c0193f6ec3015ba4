"""What an encoder hands a face: the bytes, their media type and file extension. Its own module so
the picture, raw-value and dispatching encoders share it without importing each other."""

from __future__ import annotations

from dataclasses import dataclass

OCTET = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class Encoded:
    """Encoded bytes plus what a face needs to send them."""

    data: bytes
    content_type: str
    extension: str          # without dot: "png", "jpg", "tif", "lerc", "bip", ...
