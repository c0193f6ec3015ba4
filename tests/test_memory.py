"""ogc_gateway/memory.py: the server's processes keep to two malloc arenas where glibc allows it."""

import platform

from ogc_gateway.memory import fewer_arenas


def test_fewer_arenas_is_applied_on_glibc_and_harmless_elsewhere():
    applied = fewer_arenas()
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert applied is True
    else:
        assert applied in (True, False)
