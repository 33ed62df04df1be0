"""IPVS reconciliation: desired state vs a kernel dump -> the smallest ordered op list.

Pure (no I/O). Order: dest deletions, then service deletions, then service adds and edits,
then dest adds and edits — so a service exists before its real servers and real servers
go before their service would. Attribute changes are edits in place (SET_SERVICE /
SET_DEST; never delete + add, which would drop connections and persistence). Deleting a
whole service is one op: the kernel removes its real servers with it.

Ownership: fastha changes only what its config owns. Services and real servers that are
in the kernel but not desired survive, unless ``flush`` is set (keepalived ``lvs_flush``)
or they are in ``previous`` (what fastha itself applied last time: a reload that drops a
virtual server or a real server removes it, a foreign one stays).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import Enum

from fastha.ipvs.model import Dest, Service, ServiceKey


class OpKind(Enum):
    DEL_DEST = "del_dest"
    DEL_SERVICE = "del_service"
    ADD_SERVICE = "add_service"
    EDIT_SERVICE = "edit_service"
    ADD_DEST = "add_dest"
    EDIT_DEST = "edit_dest"


@dataclass(frozen=True, slots=True)
class Op:
    kind: OpKind
    service: Service  # for dest ops: the service the dest belongs to (key is what counts)
    dest: Dest | None = None

    def __str__(self) -> str:
        return f"{self.kind.value} {self.service}" + (f" -> {self.dest}" if self.dest else "")


def plan(
    desired: Iterable[Service],
    kernel: Iterable[Service],
    *,
    previous: Iterable[Service] = (),
    flush: bool = False,
) -> list[Op]:
    want = {s.key: s for s in desired}
    have = {s.key: s for s in kernel}
    owned_svcs: set[ServiceKey] = set()
    owned_dests: set[tuple[ServiceKey, tuple[str, int]]] = set()
    for s in previous:
        owned_svcs.add(s.key)
        owned_dests.update((s.key, d.key) for d in s.dests)

    del_dests: list[Op] = []
    del_svcs: list[Op] = []
    svc_ops: list[Op] = []
    dest_ops: list[Op] = []

    for key, gone in have.items():
        if key not in want and (flush or key in owned_svcs):
            del_svcs.append(Op(OpKind.DEL_SERVICE, gone))

    for key, new in want.items():
        cur = have.get(key)
        if cur is None:
            svc_ops.append(Op(OpKind.ADD_SERVICE, new))
            dest_ops.extend(Op(OpKind.ADD_DEST, new, d) for d in new.dests)
            continue
        if cur.attrs() != new.attrs():
            svc_ops.append(Op(OpKind.EDIT_SERVICE, new))
        want_d, have_d = new.dest_map(), cur.dest_map()
        for dkey, d in have_d.items():
            if dkey not in want_d and (flush or (key, dkey) in owned_dests):
                del_dests.append(Op(OpKind.DEL_DEST, new, d))
        for dkey, d in want_d.items():
            old = have_d.get(dkey)
            if old is None:
                dest_ops.append(Op(OpKind.ADD_DEST, new, d))
            elif old != d:
                dest_ops.append(Op(OpKind.EDIT_DEST, new, d))
    return del_dests + del_svcs + svc_ops + dest_ops


def apply(kernel: Iterable[Service], ops: Sequence[Op]) -> list[Service]:
    """What the kernel table becomes after ``ops`` (a model of IPVS for tests and dry
    runs). Raises ``ValueError`` where the kernel would refuse (EEXIST / ESRCH / ENOENT)."""
    table: dict[ServiceKey, Service] = {s.key: s for s in kernel}
    for op in ops:
        key = op.service.key
        if op.kind is OpKind.ADD_SERVICE:
            if key in table:
                raise ValueError(f"service exists: {op}")
            table[key] = replace(op.service, dests=())
            continue
        if key not in table:
            raise ValueError(f"no such service: {op}")
        cur = table[key]
        if op.kind is OpKind.DEL_SERVICE:
            del table[key]
        elif op.kind is OpKind.EDIT_SERVICE:
            table[key] = replace(op.service, dests=cur.dests)
        else:
            assert op.dest is not None
            dests = cur.dest_map()
            exists = op.dest.key in dests
            if op.kind is OpKind.ADD_DEST and exists:
                raise ValueError(f"dest exists: {op}")
            if op.kind is not OpKind.ADD_DEST and not exists:
                raise ValueError(f"no such dest: {op}")
            if op.kind is OpKind.DEL_DEST:
                del dests[op.dest.key]
            else:
                dests[op.dest.key] = op.dest
            table[key] = replace(cur, dests=tuple(dests.values()))
    return list(table.values())
