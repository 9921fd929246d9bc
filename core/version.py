"""The installed package's version, for `noisebrush --version` and the server's health answer."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _installed


def version() -> str:
    """The version pip installed (the source tree's when run uninstalled: 0+unknown)."""
    try:
        return _installed("noisebrush")
    except PackageNotFoundError:
        return "0+unknown"
