"""The IPVS driver's struct codec against pyroute2's IPVS schema (the oracle): every
request encodes to the same bytes, every dump reply decodes to the same values, and a
short or overlong reply is a DecodeError, never an IndexError or a wrong value."""

from __future__ import annotations

import socket
import struct

import pytest

from fastha.drivers import ipvs as drv
from fastha.ipvs.model import AF_INET6, Dest, Fwd, Service, SvcFlags, TunFlags, TunType
from fastha.ipvs.planner import Op, OpKind

pytestmark = pytest.mark.unit

SERVICES = [
    Service("10.0.0.1", 80, scheduler="wlc",
            dests=(Dest("192.168.0.1", 8080, 3), Dest("192.168.0.2", 8080, 0, Fwd.ROUTE))),
    Service("10.0.0.2", 0, protocol=socket.IPPROTO_UDP, scheduler="rr", timeout=300,
            netmask=24, flags=SvcFlags.ONEPACKET, dests=(Dest("192.168.0.3", 0, 7, Fwd.ROUTE),)),
    Service(fwmark=7, scheduler="sh", flags=SvcFlags.SCHED1 | SvcFlags.SCHED2,
            dests=(Dest("10.1.0.1", 0, 2, Fwd.TUNNEL, 10, 5, TunType.GUE, 6080, TunFlags.CSUM),)),
    Service(fwmark=8, af=AF_INET6, scheduler="mh", netmask=64,
            dests=(Dest("fd00::9", 0, 1, Fwd.TUNNEL, 0, 0, TunType.GRE, 0, TunFlags.REMCSUM),)),
    Service("fd00::1", 443, protocol=132, scheduler="lc", timeout=60, netmask=48, pe_name="sip",
            dests=(Dest("fd00::2", 8443, 65535),)),
]  # fmt: skip
OPS = [Op(k, s) for k in (OpKind.ADD_SERVICE, OpKind.EDIT_SERVICE, OpKind.DEL_SERVICE)
       for s in SERVICES] + [Op(k, s, d) for k in (OpKind.ADD_DEST, OpKind.EDIT_DEST,
                                                    OpKind.DEL_DEST)
                             for s in SERVICES for d in s.dests]  # fmt: skip


def pyroute2_payload(op: Op) -> bytes:
    msg = drv.ipvsmsg()
    msg["cmd"] = drv._CMD[op.kind]
    msg["version"] = 1
    msg["attrs"] = drv._op_attrs(op)
    msg.encode()
    return bytes(msg.data[16:])


@pytest.mark.parametrize("op", OPS, ids=str)
def test_encode_op_equals_pyroute2(op: Op) -> None:
    assert drv.encode_op(op) == pyroute2_payload(op)


def reply(kind: str, attrs: list) -> bytes:
    """A dump reply as the kernel sends it (with the counters pyroute2 also decodes)."""
    msg = drv.ipvsmsg()
    msg["cmd"] = 1 if kind == "SERVICE" else 5
    msg["version"] = 1
    msg["attrs"] = [[f"IPVS_CMD_ATTR_{kind}", {"attrs": attrs}]]
    msg.encode()
    return bytes(msg.data)


def kernel_attrs_service(s: Service) -> list:
    return [*drv._svc_attrs(s), ["IPVS_SVC_ATTR_STATS", {"attrs": [["IPVS_STATS_ATTR_CONNS", 4]]}]]


def kernel_attrs_dest(d: Dest) -> list:
    return [*drv._dest_attrs(d), ["IPVS_DEST_ATTR_ACTIVE_CONNS", 1],
            ["IPVS_DEST_ATTR_INACT_CONNS", 2]]  # fmt: skip


def pyroute2_service(raw: bytes) -> Service:
    m = drv.ipvsmsg(raw)
    m.decode()
    g = m.get_attr("IPVS_CMD_ATTR_SERVICE").get_attr
    af = g("IPVS_SVC_ATTR_AF")
    return Service(addr=g("IPVS_SVC_ATTR_ADDR") or "", port=g("IPVS_SVC_ATTR_PORT") or 0,
                   protocol=g("IPVS_SVC_ATTR_PROTOCOL") or 0,
                   fwmark=g("IPVS_SVC_ATTR_FWMARK") or 0, af=af,
                   scheduler=g("IPVS_SVC_ATTR_SCHED_NAME"),
                   flags=g("IPVS_SVC_ATTR_FLAGS")["flags"],
                   timeout=g("IPVS_SVC_ATTR_TIMEOUT"),
                   netmask=drv._netmask_plen(af, g("IPVS_SVC_ATTR_NETMASK")),
                   pe_name=g("IPVS_SVC_ATTR_PE_NAME") or "")  # fmt: skip


def pyroute2_dest(raw: bytes) -> Dest:
    m = drv.ipvsmsg(raw)
    m.decode()
    g = m.get_attr("IPVS_CMD_ATTR_DEST").get_attr
    fwd = Fwd(g("IPVS_DEST_ATTR_FWD_METHOD") & 7)
    tun = fwd == Fwd.TUNNEL
    return Dest(g("IPVS_DEST_ATTR_ADDR"), g("IPVS_DEST_ATTR_PORT"), g("IPVS_DEST_ATTR_WEIGHT"),
                fwd, g("IPVS_DEST_ATTR_U_THRESH"), g("IPVS_DEST_ATTR_L_THRESH"),
                TunType(g("IPVS_DEST_ATTR_TUN_TYPE")) if tun else TunType.IPIP,
                g("IPVS_DEST_ATTR_TUN_PORT") if tun else 0,
                TunFlags(g("IPVS_DEST_ATTR_TUN_FLAGS")) if tun else TunFlags(0))  # fmt: skip


@pytest.mark.parametrize("svc", SERVICES, ids=str)
def test_decode_service_equals_pyroute2(svc: Service) -> None:
    raw = reply("SERVICE", kernel_attrs_service(svc))
    mine = drv.decode_service(raw)
    assert mine == pyroute2_service(raw) == Service(**{**{f: getattr(svc, f) for f in (
        "addr", "port", "protocol", "fwmark", "af", "scheduler", "flags", "timeout",
        "netmask", "pe_name")}})  # fmt: skip


@pytest.mark.parametrize("dest", [d for s in SERVICES for d in s.dests], ids=str)
def test_decode_dest_equals_pyroute2(dest: Dest) -> None:
    raw = reply("DEST", kernel_attrs_dest(dest))
    assert drv.decode_dest(raw, dest.af) == pyroute2_dest(raw) == dest


def test_decode_dest_without_family_attribute_uses_the_services() -> None:
    d = Dest("fd00::2", 80, 1)
    attrs = [a for a in kernel_attrs_dest(d) if a[0] != "IPVS_DEST_ATTR_ADDR_FAMILY"]
    # pyroute2 cannot encode the address without the family: pack it by hand.
    attrs = [a for a in attrs if a[0] != "IPVS_DEST_ATTR_ADDR"]
    raw = bytearray(reply("DEST", attrs))
    addr = drv._attr(drv.DEST_ADDR, socket.inet_pton(socket.AF_INET6, d.addr))
    nest_off = 16 + 4
    struct.pack_into("=H", raw, nest_off, struct.unpack_from("=H", raw, nest_off)[0] + len(addr))
    raw += addr
    struct.pack_into("=I", raw, 0, len(raw))
    assert drv.decode_dest(bytes(raw), AF_INET6) == d


@pytest.mark.parametrize("cut", range(1, 60))
def test_truncated_replies_are_decode_errors(cut: int) -> None:
    raw = reply("DEST", kernel_attrs_dest(Dest("192.168.0.1", 80, 3)))
    short = raw[: len(raw) - cut]
    try:
        d = drv.decode_dest(short, socket.AF_INET)
    except drv.DecodeError:
        return
    # Cutting whole trailing attributes off leaves a valid, smaller message.
    assert d.addr == "192.168.0.1"


def test_overlong_attribute_is_a_decode_error() -> None:
    raw = bytearray(reply("SERVICE", kernel_attrs_service(SERVICES[0])))
    struct.pack_into("=H", raw, 20, 0xFFF0)  # the nested service attribute's length
    with pytest.raises(drv.DecodeError):
        drv.decode_service(bytes(raw))
