"""Network-namespace topologies for system tests: a thin fixture over the lab's own
:mod:`fastha.bench.topology` (a switch namespace with a bridge and N node namespaces,
each joined to it by a veth; see there), with the tests' defaults.

Names carry a per-run prefix (``fh<pid%1000>``) plus a counter because other engineers
run namespace tests at the same time; processes start in the repository (so
``python -m tests.support.<helper>`` works) and commands time out after 30 s.

    def test_x(topo: Topology) -> None:
        a = topo.node("a", ipv4="198.18.0.1/24", ipv6="fd00:198:18::1/64")
        b = topo.node("b", ipv4="198.18.0.2/24")
        topo.run(b, "ping", "-c1", "-W1", a.ipv4)
        with topo.capture("obs", "vrrp") as cap:   # observer node running tcpdump
            ...
        cap.packets(...)
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from fastha.bench import topology as lab_topology
from fastha.bench.topology import Node, Place

__all__ = ["PYTHON", "REPO", "Capture", "Node", "Topology", "run_prefix", "topology"]

_counter = itertools.count()
REPO = Path(__file__).resolve().parents[2]
PYTHON = str(REPO / ".venv" / "bin" / "python") if (REPO / ".venv").is_dir() else sys.executable


def run_prefix() -> str:
    """A prefix unique to this test process and topology (fits in IFNAMSIZ with room)."""
    return f"fh{os.getpid() % 1000}{next(_counter)}"


class Capture(lab_topology.Capture):
    """tcpdump writing a pcap inside a namespace; decode it with tshark afterwards."""

    def packets(self, display_filter: str = "", fields: Sequence[str] = ()) -> list[dict[str, Any]]:
        """Decode the capture with tshark: one dict per packet (``-T ek``-style layers)
        or, when ``fields`` are given, ``{field: value}`` per packet."""
        cmd = ["tshark", "-r", str(self.path), "-n"]
        if display_filter:
            cmd += ["-Y", display_filter]
        if fields:
            cmd += ["-T", "fields", "-E", "separator=\t"]
            for f in fields:
                cmd += ["-e", f]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            return [dict(zip(fields, ln.split("\t"), strict=False)) for ln in out.splitlines()]
        cmd += ["-T", "json"]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        return [p["_source"]["layers"] for p in json.loads(out or "[]")]


class Topology(lab_topology.Topology):
    """The lab's topology, built at once. Always ``close()`` it (the ``topo`` fixture
    does); closing kills every process left in its namespaces."""

    def __init__(self, tmp_path: Path | None = None, *, prefix: str | None = None) -> None:
        super().__init__(prefix or run_prefix(), cwd=REPO, nodad=True)
        self.tmp_path = tmp_path or Path("/tmp")
        self.build()

    def run(
        self,
        where: Place | str,
        *cmd: str,
        check: bool = True,
        timeout: float | None = 30,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command to completion in a namespace; output captured as text."""
        return super().run(where, *cmd, check=check, timeout=timeout, input=input)

    def python(
        self, where: Place | str, code: str, *args: str, check: bool = True, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        """Run Python code (the project venv, fastha importable) inside a namespace."""
        return self.run(where, PYTHON, "-c", code, *args, check=check, timeout=timeout)

    def python_popen(
        self, where: Place | str, code: str, *args: str, **kw: Any
    ) -> subprocess.Popen[Any]:
        return self.popen(where, PYTHON, "-c", code, *args, **kw)

    def capture(self, where: Node | str, bpf: str = "", name: str | None = None) -> Capture:
        """An unstarted capture on a node (use as a context manager)."""
        node = where if isinstance(where, Node) else self.nodes[where]
        path = self.tmp_path / f"{name or node.name}-{next(_counter)}.pcap"
        return Capture(self, node, bpf, path)

    def __enter__(self) -> Topology:
        return self


@contextlib.contextmanager
def topology(tmp_path: Path | None = None) -> Iterator[Topology]:
    """A topology for use outside pytest fixtures (benchmarks, ad-hoc scripts)."""
    topo: Topology | None = None
    try:
        topo = Topology(tmp_path)
        yield topo
    finally:
        if topo is not None:
            topo.close()
