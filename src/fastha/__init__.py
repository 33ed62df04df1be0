"""fastha: a keepalived-compatible high-availability daemon with a compiled hot path."""

from typing import Any

__version__: str  # set by __getattr__ on first use (an annotation only: no attribute yet)


def __getattr__(name: str) -> Any:
    """`__version__`, read from the installed metadata on first use: importlib.metadata
    (with email, zipfile, csv) costs every process ~6 MB of RSS, and only `--version`,
    the metrics' build info and the man pages need it."""
    if name != "__version__":
        raise AttributeError(f"module 'fastha' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        value = version("fastha")
    except PackageNotFoundError:  # running from a source tree without install
        value = "0.0.0+src"
    globals()["__version__"] = value
    return value
