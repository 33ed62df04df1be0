"""pyroute2's netlink modules without its package ``__init__``.

``import pyroute2.netlink`` runs ``pyroute2/__init__.py`` first, and that imports every
feature pyroute2 has: NDB (sqlite3), IPDB, conntrack, nftables, ethtool, wireguard,
plan9, multiprocessing, unittest.mock (pyroute2 0.9.7). fastha uses a few message
classes and AsyncIPRoute; the rest cost each child ~9 MB of RSS (the checker: 13 MB).

``install()`` puts a stand-in for the package in ``sys.modules``: the real package's
spec and ``__path__`` (so ``import pyroute2.netlink.generic.ipvs`` finds the real
submodules), without running its ``__init__``. A name the stand-in does not have yet
(``from pyroute2 import IPRoute``) is a submodule when one exists, else it runs the real
``__init__`` in the stand-in then: code that wants all of pyroute2 still gets it, and
pays for it only then. Installed by ``fastha.drivers`` (its ``__init__``), so it is in
place before any driver's ``from pyroute2... import``; a no-op when pyroute2 is loaded.

``deferred()`` keeps two standard packages that pyroute2's iproute imports at its top,
and fastha never has it use, as light while the driver imports it: ``ssl`` (for its
"probe" messages; OpenSSL costs ~4.5 MB of RSS in a process with no other use for it)
is a stand-in that imports the real module at the first use of a name, and
``unittest`` is a stand-in package like pyroute2's, so the ``unittest.mock`` it does
use at import loads without unittest's ``__init__`` (case, loader, runner, difflib:
~1.2 MB). Afterwards both names in ``sys.modules`` are the real ones again, on demand.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import types
from collections.abc import Iterator
from typing import Any

NAME = "pyroute2"


class _Lean(types.ModuleType):
    """The stand-in package: submodules on demand, the whole ``__init__`` on demand."""

    def __getattr__(self, name: str) -> Any:
        package = self.__name__
        if not name.startswith("__") and importlib.util.find_spec(f"{package}.{name}"):
            return importlib.import_module(f"{package}.{name}")
        full = self.__dict__.pop("_fastha_full", None)
        if full is not None:
            full()  # once: the real __init__, in this module's namespace
            if name in self.__dict__:
                return self.__dict__[name]
        raise AttributeError(f"module {package!r} has no attribute {name!r}")


def _lean(name: str) -> _Lean | None:
    """A stand-in for the package ``name``; None when it is not installed."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return None
    module = _Lean(name)
    module.__spec__ = spec
    module.__file__ = spec.origin
    module.__path__ = list(spec.submodule_search_locations)
    module.__package__ = name
    module.__loader__ = spec.loader
    module.__cached__ = spec.cached  # type: ignore[attr-defined]  # ModuleType lacks it
    loader = spec.loader
    module.__dict__["_fastha_full"] = lambda: loader.exec_module(module)
    return module


def install() -> None:
    if NAME in sys.modules:
        return
    module = _lean(NAME)
    if module is not None:  # else not installed: the drivers' own imports say so
        sys.modules[NAME] = module


class _Deferred(types.ModuleType):
    """Stands for a module until one of its names is used, then hands every name over
    to the real module (imported then)."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # __path__, __spec__...: the import system's probes
            raise AttributeError(name)
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), name)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """The block's ``import ssl`` and ``import unittest`` get the light stand-ins (see
    the module's doc); they leave ``sys.modules`` with the block."""
    ssl = None if "ssl" in sys.modules else _Deferred("ssl")
    unittest = None if "unittest" in sys.modules else _lean("unittest")
    if ssl is not None:
        sys.modules["ssl"] = ssl
    if unittest is not None:
        sys.modules["unittest"] = unittest
    try:
        yield
    finally:
        if ssl is not None and sys.modules.get("ssl") is ssl:
            del sys.modules["ssl"]
        if unittest is not None and "_fastha_full" in unittest.__dict__:
            # Its __init__ never ran: the real package (and fresh submodules, which it
            # would not know as its attributes) on the next import.
            for name in [n for n in sys.modules if n.partition(".")[0] == "unittest"]:
                del sys.modules[name]
