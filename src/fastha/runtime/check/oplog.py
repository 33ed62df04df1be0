"""One log line per IPVS operation, in keepalived's words (ipwrapper.c)."""

from __future__ import annotations

from typing import Any

from fastha.check.desired import DesiredTable
from fastha.ipvs.model import ServiceKey
from fastha.ipvs.planner import Op, OpKind


def describe(
    op: Op,
    have: dict[ServiceKey, dict[tuple[str, int], Any]],
    table: DesiredTable,
    prev_table: DesiredTable | None = None,
) -> str:
    """``have``: the kernel's real servers by service before ``op``; ``prev_table``: the
    config being replaced during a reload, which names what it alone owned."""
    vs = table.vs_of(op.service.key)
    if vs is None and prev_table is not None:
        vs = prev_table.vs_of(op.service.key)
    name = vs.name if vs is not None else str(op.service)
    proto = vs.proto if vs is not None else "?"
    if vs is not None and vs.name != str(op.service) and len(vs.services) > 1:
        label = f"{name} ({op.service})"  # one service of a group
    else:
        label = name
    if op.kind is OpKind.ADD_SERVICE:
        return f"Adding VS {label}"
    if op.kind is OpKind.EDIT_SERVICE:
        return f"Updating VS {label}"
    if op.kind is OpKind.DEL_SERVICE:
        return f"Removing VS {label}"
    d = op.dest
    assert d is not None
    rs = f"[{d.addr}]:{proto}:{d.port}"
    if op.kind is OpKind.ADD_DEST:
        tail = " (inhibited, weight 0)" if d.weight == 0 else ""
        return f"Adding service {rs} to VS {name}{tail}"
    if op.kind is OpKind.DEL_DEST:
        return f"Removing service {rs} from VS {name}"
    old = have.get(op.service.key, {}).get(d.key)
    if old is not None and (old.weight == 0) != (d.weight == 0):
        if d.weight == 0:
            return f"Disabling service {rs} from VS {name}"
        return f"Enabling service {rs} to VS {name}"
    if old is not None and old.weight != d.weight:
        return (
            f"Changing weight from {old.weight} to {d.weight} for active service {rs} of VS {name}"
        )
    return f"Updating service {rs} of VS {name}"
