"""IPVS planner: desired vs kernel -> smallest ordered op list (pure)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastha.ipvs.model import Dest, Fwd, Service
from fastha.ipvs.planner import OpKind, apply, plan

pytestmark = pytest.mark.unit

ADDRS = [f"10.0.0.{i}" for i in range(1, 5)] + ["2001:db8::1"]
RS = [f"192.168.0.{i}" for i in range(1, 6)]

dests = st.builds(
    Dest,
    addr=st.sampled_from(RS),
    port=st.sampled_from([80, 443]),
    weight=st.integers(0, 3),
    fwd=st.sampled_from([Fwd.MASQ, Fwd.ROUTE, Fwd.TUNNEL]),
    u_threshold=st.sampled_from([0, 100]),
)


def _uniq_dests(ds: list[Dest]) -> tuple[Dest, ...]:
    return tuple({d.key: d for d in ds}.values())


services = st.builds(
    lambda addr, port, fwmark, sched, timeout, ds: Service(
        addr=addr, port=port, fwmark=fwmark, scheduler=sched, timeout=timeout,
        dests=_uniq_dests(ds)),
    addr=st.sampled_from(ADDRS),
    port=st.sampled_from([80, 443]),
    fwmark=st.sampled_from([0, 0, 0, 7]),
    sched=st.sampled_from(["wlc", "rr"]),
    timeout=st.sampled_from([0, 300]),
    ds=st.lists(dests, max_size=4),
)  # fmt: skip
tables = st.lists(services, max_size=5).map(lambda ss: list({s.key: s for s in ss}.values()))


def _by_key(table: list[Service]) -> dict[object, Service]:
    return {s.key: replace(s, dests=tuple(sorted(s.dests, key=lambda d: d.key))) for s in table}


@given(desired=tables, kernel=tables, flush=st.booleans())
def test_plan_converges_and_owns_only_what_config_owns(desired, kernel, flush) -> None:
    ops = plan(desired, kernel, flush=flush)
    after = _by_key(apply(kernel, ops))  # apply() raises where the kernel would refuse
    want = _by_key(desired)
    before = _by_key(kernel)
    for key, svc in want.items():
        got = after[key]
        assert got.attrs() == svc.attrs()
        if flush or key not in before:
            assert set(got.dests) == set(svc.dests)
        else:  # foreign real servers in an owned service survive
            foreign = {d.key for d in before[key].dests} - {d.key for d in svc.dests}
            assert set(got.dests) == set(svc.dests) | {
                d for d in before[key].dests if d.key in foreign
            }
    for key, svc in before.items():
        if key not in want:
            assert (key in after) != flush  # foreign services survive unless flush
            if not flush:
                assert after[key] == svc
    assert plan(desired, apply(kernel, ops), flush=flush) == []


@given(desired=tables, kernel=tables)
def test_order_and_no_delete_add(desired, kernel) -> None:
    ops = plan(desired, kernel, flush=True)
    rank = {OpKind.DEL_DEST: 0, OpKind.DEL_SERVICE: 1, OpKind.ADD_SERVICE: 2,
            OpKind.EDIT_SERVICE: 2, OpKind.ADD_DEST: 3, OpKind.EDIT_DEST: 3}  # fmt: skip
    assert [rank[o.kind] for o in ops] == sorted(rank[o.kind] for o in ops)
    deleted = {(o.service.key, o.dest.key if o.dest else None)
               for o in ops if o.kind in (OpKind.DEL_DEST, OpKind.DEL_SERVICE)}  # fmt: skip
    added = {(o.service.key, o.dest.key if o.dest else None)
             for o in ops if o.kind in (OpKind.ADD_DEST, OpKind.ADD_SERVICE)}  # fmt: skip
    assert not deleted & added


@given(desired=tables)
def test_unchanged_state_gives_empty_plan(desired) -> None:
    assert plan(desired, desired) == []
    assert plan(desired, apply([], plan(desired, []))) == []


def test_weight_change_is_one_edit_in_place() -> None:
    svc = Service("10.0.0.1", 80, dests=(Dest("192.168.0.1", 80, weight=1),))
    new = replace(svc, dests=(Dest("192.168.0.1", 80, weight=5),))
    ops = plan([new], [svc])
    assert [(o.kind, o.dest) for o in ops] == [(OpKind.EDIT_DEST, new.dests[0])]


def test_scheduler_change_is_edit_service_only() -> None:
    svc = Service("10.0.0.1", 80, dests=(Dest("192.168.0.1", 80),))
    ops = plan([replace(svc, scheduler="rr")], [svc])
    assert [o.kind for o in ops] == [OpKind.EDIT_SERVICE]


def test_previous_ownership_removes_dropped_entries_only() -> None:
    mine = Service("10.0.0.1", 80, dests=(Dest("192.168.0.1", 80), Dest("192.168.0.2", 80)))
    gone = Service("10.0.0.2", 80)
    foreign = Service("10.0.0.3", 80)
    kernel = [replace(mine, dests=(*mine.dests, Dest("192.168.0.9", 80))), gone, foreign]
    desired = [replace(mine, dests=mine.dests[:1])]
    ops = plan(desired, kernel, previous=[mine, gone])
    assert [(o.kind, o.service.key, o.dest) for o in ops] == [
        (OpKind.DEL_DEST, mine.key, mine.dests[1]),
        (OpKind.DEL_SERVICE, gone.key, None),
    ]
