"""Compiled loops of the resampler and the default stretch (numba): one pass over the cells instead
of a dozen whole-array numpy passes.

A 256 x 256 cross-CRS item in numpy is about fifteen passes over 65,536 cells (positions, taps,
four gathers, weights, lerps, the quotient), each allocating its array; profiles of WMS GetMap put
a quarter of the request there. These loops do the same arithmetic per cell, in the same types
and the same order as the numpy formulas they replace (engine/warp.py documents them), so every
value is the same to the bit. They release the GIL, so the worker's other request thread runs
meanwhile. Compiled once per machine (numba's cache, beside this file or in the user's cache
folder) and loaded in milliseconds after that.

`planes` are (m, height, width) arrays of the work type (float32 or float64): the bands' values
times validity, then the validity layers - or the values alone when every pixel is valid.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def bilinear(planes, xv, xd, yv, yd, k, t, ox, sx, oy, sy, out, weights):    # type: ignore[no-untyped-def]
    """out[:, r, c] = the bilinear taps of `planes` around each cell's source position (pixel
    units, 0 = the window's first edge: warp.Positions, whose last step is done here); `out`
    comes zeroed. Returns whether every tap of every cell is inside the window ("interior").

    Interior: two lerps along x and one along y, weights in float64 (as numpy's float32 - intp
    difference gives them), each step rounded to the planes' type (stored into `out`, as numpy's
    in-place `b -= a; b *= t; b += a` does). Otherwise the four taps are weighed in float32, 0
    outside the window, summed in this order, and `weights[r, c]` gets their sum for the
    caller's quotient."""
    m, height, width = planes.shape
    rows, cols = out.shape[1], out.shape[2]
    pxs = np.empty((rows, cols), np.float32)
    pys = np.empty((rows, cols), np.float32)
    interior = True
    for r in range(rows):
        for c in range(cols):
            px, py = _position(xv, xd, yv, yd, k, t, ox, sx, oy, sy, r, c)
            pxs[r, c], pys[r, c] = px, py
            interior &= (px >= 0.5) & (py >= 0.5) & (px - np.float32(0.5) < width - 1) \
                & (py - np.float32(0.5) < height - 1)
    for r in range(rows):
        for c in range(cols):
            px, py = pxs[r, c], pys[r, c]
            fx = px - np.float32(0.5)
            fy = py - np.float32(0.5)
            if interior:
                col, row = int(fx), int(fy)
                tx = np.float64(fx) - col
                ty = np.float64(fy) - row
                for b in range(m):
                    p00, p01 = planes[b, row, col], planes[b, row, col + 1]
                    out[b, r, c] = (p01 - p00) * tx
                    upper = out[b, r, c] + p00
                    p10, p11 = planes[b, row + 1, col], planes[b, row + 1, col + 1]
                    out[b, r, c] = (p11 - p10) * tx
                    lower = out[b, r, c] + p10
                    out[b, r, c] = (lower - upper) * ty
                    out[b, r, c] += upper
                continue
            colf, rowf = np.floor(fx), np.floor(fy)
            tx, ty = fx - colf, fy - rowf
            col, row = int(colf), int(rowf)
            one = np.float32(1)
            if 0 <= col < width - 1 and 0 <= row < height - 1:      # all four taps inside
                wx0, wx1, wy0, wy1 = one - tx, tx, one - ty, ty
                c0, c1, r0, r1 = col, col + 1, row, row + 1
            else:
                wx0 = (one - tx) * np.float32(0 <= col < width)
                wx1 = tx * np.float32(-1 <= col < width - 1)
                wy0 = (one - ty) * np.float32(0 <= row < height)
                wy1 = ty * np.float32(-1 <= row < height - 1)
                c0, c1 = min(max(col, 0), width - 1), min(max(col + 1, 0), width - 1)
                r0, r1 = min(max(row, 0), height - 1), min(max(row + 1, 0), height - 1)
            weights[r, c] = (wx0 + wx1) * (wy0 + wy1)
            w00, w01, w10, w11 = wy0 * wx0, wy0 * wx1, wy1 * wx0, wy1 * wx1
            for b in range(m):
                acc = out[b, r, c]
                acc += planes[b, r0, c0] * w00
                acc += planes[b, r0, c1] * w01
                acc += planes[b, r1, c0] * w10
                acc += planes[b, r1, c1] * w11
                out[b, r, c] = acc
    return interior


@numba.njit(cache=True, nogil=True)
def _position(xv, xd, yv, yd, k, t, ox, sx, oy, sy, r, c):    # type: ignore[no-untyped-def]
    """Cell (r, c)'s source position: warp.Positions.arrays for one cell, the same float32 steps."""
    i, f = k[r], t[r]
    x = xd[i, c] * f
    x += xv[i, c]
    x += ox
    x *= sx
    y = yd[i, c] * f
    y += yv[i, c]
    y += oy
    y *= sy
    return x, y


@numba.njit(cache=True, nogil=True)
def two_passes(planes, ix, wx, x_taps, iy, wy, y_taps, lo, hi):    # type: ignore[no-untyped-def]
    """sum_k wy[k] * (sum_j wx[j] * planes[:, iy[k], ix[j]]) for (bands, rows, cols) planes, the
    same-CRS resampling (warp.separable): along x over the source rows lo..hi that some output row
    uses, then along y. Taps are (taps, cells) indexes and weights; `x_taps`/`y_taps` say which
    taps weigh anywhere (the others are skipped, as numpy skipped them). Each product is rounded to
    the planes' type and the sum starts at the first tap, as numpy's `part *= w; out += part`."""
    m = planes.shape[0]
    cols, rows = ix.shape[1], iy.shape[1]
    across = np.zeros((m, hi - lo, cols), planes.dtype)
    for b in range(m):
        for r in range(hi - lo):
            line, dst = planes[b, lo + r], across[b, r]
            first = True
            for j in range(ix.shape[0]):
                if x_taps[j]:
                    taps, weights = ix[j], wx[j]
                    if first:
                        for c in range(cols):
                            dst[c] = line[taps[c]] * weights[c]
                    else:
                        for c in range(cols):
                            dst[c] += line[taps[c]] * weights[c]
                    first = False
    out = np.zeros((m, rows, cols), planes.dtype)
    for b in range(m):
        for i in range(rows):
            dst = out[b, i]
            first = True
            for k in range(iy.shape[0]):
                if y_taps[k]:
                    w, src = wy[k, i], across[b, iy[k, i] - lo]
                    if first:
                        for c in range(cols):
                            dst[c] = src[c] * w
                    else:
                        for c in range(cols):
                            dst[c] += src[c] * w
                    first = False
    return out


@numba.njit(cache=True, nogil=True)
def outer_support(sy, sx, support, values):    # type: ignore[no-untyped-def]
    """support = the outer product of the axes' in-window weights (float64, stored in support's
    type), and values 0 wherever it is 0: warp.separable's window valid everywhere."""
    for i in range(len(sy)):
        for j in range(len(sx)):
            support[i, j] = sy[i] * sx[j]
            if support[i, j] == 0:
                for b in range(values.shape[0]):
                    values[b, i, j] = 0


@numba.njit(cache=True, nogil=True)
def quotient(values, support):    # type: ignore[no-untyped-def]
    """values /= support where support > 0, else 0, in place: the valid-weighted means of a
    resampling (`support` has one layer for every band, or one per band)."""
    n, rows, cols = values.shape
    shared = support.shape[0] == 1
    for b in range(n):
        s = support[0] if shared else support[b]
        for r in range(rows):
            for c in range(cols):
                w = s[r, c]
                values[b, r, c] = values[b, r, c] / w if w > 0 else 0


@numba.njit(cache=True, nogil=True)
def between(nodes, at):    # type: ignore[no-untyped-def]
    """For each position `at` (float64), the interval of the sorted `nodes` holding it (clipped to
    the first and last) and the fraction along it, in float64."""
    k = np.empty(len(at), np.intp)
    t = np.empty(len(at), np.float64)
    for i in range(len(at)):
        j = min(max(np.searchsorted(nodes, at[i], side="right") - 1, 0), len(nodes) - 2)
        k[i] = j
        t[i] = (at[i] - nodes[j]) / (nodes[j + 1] - nodes[j])
    return k, t


@numba.njit(cache=True, nogil=True)
def along(values, nodes, at, rows):    # type: ignore[no-untyped-def]
    """Linear interpolation of (m, a, b) node values along their rows (axis 1) or their columns
    (axis 2) at positions `at` (float64): each cell d = v[k + 1] - v[k], d *= t, d += v[k] in the
    values' type, t rounded to it first (numpy's take / diff / in-place steps, to the bit). One
    node: its values repeated."""
    m, a, b = values.shape
    out = np.empty((m, len(at), b) if rows else (m, a, len(at)), values.dtype)
    if len(nodes) == 1:
        for p in range(m):
            for i in range(out.shape[1]):
                for j in range(out.shape[2]):
                    out[p, i, j] = values[p, 0, j] if rows else values[p, i, 0]
        return out
    k, t64 = between(nodes, at)
    t = np.empty(len(at), values.dtype)
    for i in range(len(at)):
        t[i] = t64[i]
    for p in range(m):
        for i in range(out.shape[1]):
            for j in range(out.shape[2]):
                if rows:
                    lo, hi, f = values[p, k[i], j], values[p, k[i] + 1, j], t[i]
                else:
                    lo, hi, f = values[p, i, k[j]], values[p, i, k[j] + 1], t[j]
                d = hi - lo
                d *= f
                out[p, i, j] = d + lo
    return out


@numba.njit(cache=True, nogil=True)
def stretch(band, lo, factor, out):    # type: ignore[no-untyped-def]
    """out = rint(clip((band - lo) * factor, 0, 255)) as uint8, NaN as 0: the default rendering's
    linear stretch (engine/render.py) in float64, one pass instead of six."""
    for r in range(band.shape[0]):
        for c in range(band.shape[1]):
            x = (np.float64(band[r, c]) - lo) * factor
            if x < 0.0:
                x = 0.0
            elif x > 255.0:
                x = 255.0
            x = np.rint(x)
            out[r, c] = 0 if np.isnan(x) else x


def prepare() -> None:
    """Compile (or load from numba's cache) the loops for both work types now: a server calls this
    before it forks its workers, which then start with them ready instead of paying a quarter of
    a second (a second without the cache) on their first request."""
    for work in (np.float32, np.float64):
        lines, rows = np.zeros((2, 2), np.float32), np.zeros(1, np.float32)
        bilinear(np.zeros((1, 2, 2), work), lines, lines[:1], lines, lines[:1], np.zeros(1, np.intp), rows,
                 np.float32(0), np.float32(1), np.float32(0), np.float32(1), np.zeros((1, 1, 2), work),
                 np.empty((1, 2), np.float32))
        taps, weights, used = np.zeros((1, 1), np.intp), np.ones((1, 1), work), np.ones(1, np.bool_)
        two_passes(np.zeros((1, 1, 1), work), taps, weights, used, taps, weights, used, 0, 1)
        along(np.zeros((1, 2, 2), work), np.arange(2.0), np.zeros(1), True)
        outer_support(np.ones(1), np.ones(1), np.zeros((1, 1), work), np.zeros((1, 1, 1), work))
        quotient(np.zeros((1, 1, 1), work), np.ones((1, 1, 1), work))
        quotient(np.zeros((1, 1, 1), work), np.ones((1, 1, 1), np.float32))
        stretch(np.zeros((1, 1), work), 0.0, 1.0, np.zeros((1, 1), np.uint8))
