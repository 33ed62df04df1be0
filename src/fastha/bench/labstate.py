"""The lab's state file and work directory: what lets ``fastha lab down|status`` find a
lab another invocation built, and what makes that safe.

State (namespaces, pids, paths) is written to ``/run/fastha-lab/NAME.json``; it is read
back only from a root-owned, 0600 file in root-owned directories (there is no /tmp
fallback: anyone can write a JSON there naming a directory to delete). Teardown deletes
only a work directory the lab made (a root-owned mkdtemp directory holding its marker
file), whatever the state file says.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastha.bench.topology import LabError
from fastha.drivers.files import open_dir, read_private, write_atomic

if TYPE_CHECKING:
    from fastha.bench.lab import Lab

STATE_DIRS = (Path("/run/fastha-lab"),)
WORKDIR_MARKER = ".fastha-lab"  # in every work directory up() made: down() deletes only those


def state_dir() -> Path:
    d = STATE_DIRS[0]
    try:
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(open_dir(str(d)))
    except OSError as exc:
        raise LabError(f"state directory {d}: {exc}") from None
    return d


def state_path(name: str) -> Path | None:
    """The state file of a lab, wherever it was written."""
    return next((p for d in STATE_DIRS if (p := d / f"{name}.json").exists()), None)


def made_by_us(workdir: Path, name: str) -> bool:
    """A work directory up() made: a real directory (no symlink) of ours, named by
    mkdtemp for this lab, holding our marker -- never what a state file merely names."""
    try:
        st = workdir.lstat()
        marker = (workdir / WORKDIR_MARKER).lstat()
    except OSError:
        return False
    return (
        stat.S_ISDIR(st.st_mode)
        and st.st_uid == os.geteuid()
        and not st.st_mode & 0o022
        and workdir.name.startswith(f"fastha-lab-{name}-")
        and stat.S_ISREG(marker.st_mode)
        and marker.st_uid == os.geteuid()
    )


def as_dict(lab: Lab) -> dict[str, Any]:
    return {
        "name": lab.name,
        "spec": {
            **{k: v for k, v in asdict(lab.spec).items() if k != "directors"},
            "directors": [asdict(d) for d in lab.spec.directors],
        },
        "switch": lab.switch,
        "namespaces": lab.namespaces,
        "workdir": str(lab.workdir) if lab.workdir else None,
        "own_workdir": lab.own_workdir,
        "nodes": {k: asdict(v) for k, v in lab.nodes.items()},
        "created_by": os.getpid(),
    }


def save(lab: Lab) -> None:
    if lab.state_file is not None:
        doc = json.dumps(as_dict(lab), indent=2).encode()
        write_atomic(str(lab.state_file), doc, 0o600)


def read(name: str) -> tuple[Path, dict[str, Any]]:
    """The state file of lab ``name`` and its document."""
    path = state_path(name)
    if path is None:
        raise LabError(f"no lab named {name!r} (no state file in {[str(d) for d in STATE_DIRS]})")
    try:
        # Only a file root wrote (0600, root's, in root's directories) is believed.
        return path, json.loads(read_private(str(path)))
    except (OSError, ValueError) as exc:
        raise LabError(f"lab {name!r}: state file refused: {exc}") from None


def status(lab: Lab, present: set[str]) -> dict[str, Any]:
    """The lab as ``fastha lab status`` shows it; ``present``: namespaces that exist."""
    nodes = {}
    for n in lab.nodes.values():
        row: dict[str, Any] = {
            "namespace": n.ns,
            "present": n.ns in present,
            "ipv4": n.ipv4,
            "mac": n.mac,
        }
        if n.impl:
            row.update(
                impl=n.impl,
                priority=n.priority,
                pid=n.pid,
                running=lab.running(n.name),
                states=lab.states(n.name),
                log=n.log,
            )
        nodes[n.name] = row
    spec = lab.spec
    return {
        "name": lab.name,
        "switch": lab.switch,
        "namespaces": {ns: ns in present for ns in lab.namespaces},
        "version": spec.version,
        "advert_int": spec.advert_int,
        "instances": spec.instances,
        "vips": [spec.vip(i) for i in range(spec.instances)],
        "nodes": nodes,
        "workdir": str(lab.workdir),
        "state_file": str(lab.state_file),
    }
