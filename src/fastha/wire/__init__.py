"""Public face of the compiled wire layer.

`_wire` is compiled and has no pure-Python fallback: a second implementation at run time
would be a second attack surface. If it is missing, say how to build it.
"""

try:
    from fastha import _wire  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only on a broken install
    raise ImportError(
        "fastha._wire (the compiled wire layer) is not built: run "
        "`pip install -e .` (or `python setup.py build_ext --inplace`) with Cython and a C compiler"
    ) from exc
