"""The installed authswitch's version, as its package metadata says (``--version``, metrics,
/readyz)."""

from __future__ import annotations

import functools
from importlib.metadata import PackageNotFoundError, version


@functools.cache  # the metadata lookup walks sys.path; /readyz reports it every second
def authswitch_version() -> str:
    """The version of the installed distribution; "unknown" when run from an uninstalled tree."""
    try:
        return version("authswitch")
    except PackageNotFoundError:
        return "unknown"
