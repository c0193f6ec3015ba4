"""PNG files from 8-bit pixel arrays, written with numpy and zlib.

Pillow's PNG encoder tries its five row filters on every row and keeps the best, which costs more
than deflating the result (1.4 ms of a 256 x 256 RGBA map picture, of which deflate is a fraction).
Map pictures deflate about as well with the "Up" filter everywhere (each row minus the row above:
one numpy subtraction), and the file is the same size within a few percent: 0.55 ms for the same
picture. The decoded pixels are the array's, whichever filter is used.

Deflate is zlib-ng's (the same zlib stream format, any PNG reader decodes it): at the same level
it compresses a map picture in about two thirds of zlib's time, to the same size.
"""

from __future__ import annotations

import struct

import numpy as np
import numpy.typing as npt
from zlib_ng import zlib_ng as zlib

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOUR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}          # channels -> grey, grey+alpha, RGB, RGBA
_UP = 2                                            # PNG filter type: each byte minus the one above


def encode(pixels: npt.NDArray[np.uint8], level: int) -> bytes:
    """(rows, cols) grey or (rows, cols, 2 | 3 | 4) grey+alpha, RGB or RGBA uint8 as a PNG."""
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3):
        raise ValueError(f"PNG pixels are (rows, cols[, channels]) uint8, got {pixels.dtype} {pixels.shape}")
    rows, cols = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    lines = pixels.reshape(rows, cols * channels)
    filtered = np.empty((rows, cols * channels + 1), np.uint8)
    filtered[:, 0] = _UP
    filtered[0, 1:] = lines[0]                     # the first row has nothing above: itself
    np.subtract(lines[1:], lines[:-1], out=filtered[1:, 1:])     # modulo 256, as PNG wants
    header = struct.pack(">IIBBBBB", cols, rows, 8, _COLOUR_TYPE[channels], 0, 0, 0)
    return (_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(filtered.data, level))
            + _chunk(b"IEND", b""))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
