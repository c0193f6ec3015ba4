"""LERC1 ("CntZImage"): no maintained library writes it, and ArcGIS 10.3/10.4-era clients ask for it.
Written from the format description: a header, a validity mask ("count" part, RLE-packed bits)
and a "z" part of tiles, each tile constant, bit-stuffed quantised offsets or raw float32.
Multi-band = one blob per band; only the first carries the mask. Values are float32 by design."""

from __future__ import annotations

import struct

import numpy as np

_LERC1_TILE = 16


def encode_lerc1(values: np.ndarray, valid: np.ndarray, max_z_error: float) -> bytes:
    z_bands = values.astype(np.float32)
    valid = valid & np.isfinite(z_bands).all(axis=0)   # LERC1 has no way to carry NaN/inf
    return b"".join(_lerc1_band(z, valid, max_z_error, with_mask=(i == 0))
                    for i, z in enumerate(z_bands))


def _lerc1_band(z: np.ndarray, valid: np.ndarray, max_z_error: float, with_mask: bool) -> bytes:
    rows, cols = z.shape
    out = bytearray(b"CntZImage " + struct.pack("<iiiid", 11, 8, rows, cols, max_z_error))
    if with_mask:
        # 0x0 tiles means "count part is a bit mask"; 0 bytes with max 1 means "all valid".
        rle = b"" if valid.all() else _lerc1_rle(np.packbits(valid.ravel()).tobytes())
        out += struct.pack("<iiif", 0, 0, len(rle), 1.0) + rle
    # Tiles are rows // tiles_v by cols // tiles_h; a remainder forms extra, smaller tiles.
    tile_h = rows // max(1, rows // _LERC1_TILE)
    tile_w = cols // max(1, cols // _LERC1_TILE)
    tiles_v, tiles_h = rows // tile_h, cols // tile_w
    body = bytearray()
    for r0 in range(0, rows, tile_h):
        for c0 in range(0, cols, tile_w):
            tile = (slice(r0, r0 + tile_h), slice(c0, c0 + tile_w))
            body += _lerc1_tile(z[tile][valid[tile]], max_z_error)
    z_max = float(z[valid].max()) if valid.any() else 0.0
    out += struct.pack("<iiif", tiles_v, tiles_h, len(body), z_max) + body
    return bytes(out)


def _lerc1_tile(z: np.ndarray, max_z_error: float) -> bytes:
    """One tile's valid values. Flag byte: 0 raw, 1 bit-stuffed, 2 all zero, 3 constant."""
    if z.size == 0:
        return b"\x02"
    z_min, z_max = float(z.min()), float(z.max())
    if z_min == z_max == 0.0:
        return b"\x02"
    if z_min == z_max:
        code, offset = _lerc1_offset(z_min)
        return bytes([3 | code << 6]) + offset
    if max_z_error > 0 and (z_max - z_min) / (2 * max_z_error) <= 2 ** 24:
        code, offset = _lerc1_offset(z_min)
        q = ((z.astype(np.float64) - z_min) / (2 * max_z_error) + 0.5).astype(np.uint32)
        if not q.any():
            return bytes([3 | code << 6]) + offset
        return bytes([1 | code << 6]) + offset + _lerc1_bitstuff(q)
    return b"\x00" + z.astype("<f4").tobytes()


def _lerc1_offset(value: float) -> tuple[int, bytes]:
    """The smallest exact encoding of a tile offset: (size code for bits 6-7, bytes)."""
    if value.is_integer() and -128 <= value <= 127:
        return 2, struct.pack("<b", int(value))
    if value.is_integer() and -32768 <= value <= 32767:
        return 1, struct.pack("<h", int(value))
    return 0, struct.pack("<f", value)


def _lerc1_bitstuff(q: np.ndarray) -> bytes:
    """Bits byte + element count + values packed MSB-first into little-endian uint32 words.

    The last word is cut to the bytes that hold data (its high bytes, written low byte first).
    """
    n = q.size
    nbits = int(q.max()).bit_length()
    code, count = (2, struct.pack("<B", n)) if n < 256 else \
        (1, struct.pack("<H", n)) if n < 65536 else (0, struct.pack("<I", n))
    shifts = np.arange(nbits - 1, -1, -1, dtype=np.uint32)
    bits = ((q[:, np.newaxis] >> shifts) & 1).astype(np.uint8).ravel()
    words = (bits.size + 31) // 32
    bits = np.concatenate([bits, np.zeros(words * 32 - bits.size, np.uint8)])
    data = np.packbits(bits).view(">u4").astype("<u4").tobytes()
    tail_bits = (n * nbits) % 32
    if tail_bits:
        unused = 4 - (tail_bits + 7) // 8
        data = data[:len(data) - 4] + data[len(data) - 4 + unused:]
    return struct.pack("<B", nbits | code << 6) + count + data


def _lerc1_rle(data: bytes) -> bytes:
    """Esri's byte RLE: int16 n>0 then n literal bytes; int16 -n then one byte repeated n times."""
    out = bytearray()
    literal = bytearray()

    def flush() -> None:
        for k in range(0, len(literal), 32767):
            chunk = literal[k:k + 32767]
            out.extend(struct.pack("<h", len(chunk)) + chunk)
        literal.clear()

    i = 0
    while i < len(data):
        j = i
        while j < len(data) and data[j] == data[i] and j - i < 32767:
            j += 1
        if j - i >= 5:      # shorter runs cost more as a repeat than as literals
            flush()
            out.extend(struct.pack("<hB", -(j - i), data[i]))
        else:
            literal.extend(data[i:j])
        i = j
    flush()
    out.extend(struct.pack("<h", -32768))   # end marker
    return bytes(out)
