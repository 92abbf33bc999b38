"""The installed Tansiq version (the package's metadata), for /livez, /metrics and the API docs."""

from __future__ import annotations

from functools import cache
from importlib import metadata


@cache
def installed_version() -> str:
    try:
        return metadata.version("tansiq")
    except metadata.PackageNotFoundError:  # a bare checkout, never installed
        return "0"
