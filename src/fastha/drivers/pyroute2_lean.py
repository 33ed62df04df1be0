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
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

NAME = "pyroute2"


class _Lean(types.ModuleType):
    """The stand-in package: submodules on demand, the whole ``__init__`` on demand."""

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("__") and importlib.util.find_spec(f"{NAME}.{name}"):
            return importlib.import_module(f"{NAME}.{name}")
        full = self.__dict__.pop("_fastha_full", None)
        if full is not None:
            full()  # once: the real __init__, in this module's namespace
            if name in self.__dict__:
                return self.__dict__[name]
        raise AttributeError(f"module {NAME!r} has no attribute {name!r}")


def install() -> None:
    if NAME in sys.modules:
        return
    spec = importlib.util.find_spec(NAME)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return  # not installed: the drivers' own imports say so
    module = _Lean(NAME)
    module.__spec__ = spec
    module.__file__ = spec.origin
    module.__path__ = list(spec.submodule_search_locations)
    module.__package__ = NAME
    module.__loader__ = spec.loader
    module.__cached__ = spec.cached  # type: ignore[attr-defined]  # ModuleType lacks it
    loader = spec.loader
    module.__dict__["_fastha_full"] = lambda: loader.exec_module(module)
    sys.modules[NAME] = module
