"""fastha: a keepalived-compatible high-availability daemon with a compiled hot path."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fastha")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+src"
