"""A request's time budget (`max_request_seconds`), checked between steps of the work (issue 15, item 3).

Why: a 4000 x 4000 focal median ran past gunicorn's timeout and the worker was killed (an HTML 500
after 120 s). The budget starts when the engine takes a request; the mosaic checks it between items,
raster functions between functions, focal statistics between row blocks. An overrun raises TimeBudget,
which each face reports in its own format; the worker lives on. Work that clearly cannot fit is refused
before it starts (engine/budget.py estimates it).

The deadline lives in a ContextVar: each request runs in one thread, and nested engine calls (a tile's
metatile, a rendering rule's own mosaic) keep the outermost budget.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from .errors import TooLarge

_deadline: ContextVar[tuple[float, float] | None] = ContextVar("ogc_gateway_deadline", default=None)


class TimeBudget(TooLarge):
    """The request ran past its time budget and was stopped."""


@contextmanager
def budget(seconds: float) -> Iterator[None]:
    """Run the block under a budget of `seconds`, unless an outer budget already runs."""
    if _deadline.get() is not None:
        yield
        return
    token = _deadline.set((time.monotonic() + seconds, seconds))
    try:
        yield
    finally:
        _deadline.reset(token)


def check() -> None:
    """Raise TimeBudget when the current request has run past its budget (no budget: nothing)."""
    current = _deadline.get()
    if current is not None and time.monotonic() > current[0]:
        raise TimeBudget("time", f"the request ran past its time budget of {current[1]:g} s "
                                 "(max_request_seconds) and was stopped: ask for fewer pixels, fewer "
                                 "items or a lighter rendering rule")
