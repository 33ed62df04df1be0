"""tshark's VRRP dissector as an oracle: one pcap per run, hundreds of random adverts."""

from __future__ import annotations

import random
import socket
from pathlib import Path

import pytest
from tests.support.prereq import need_tool
from tests.support.wire_packets import ip_packet, tshark_layers, write_pcap
from tests.support.wire_strategies import AdvertSpec, encode_with, random_spec

from fastha import wire

N = 400


def _as_list(v: object) -> list[object]:
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def _check(spec: AdvertSpec, msg: bytes, v: dict[str, object]) -> None:
    tree = v["vrrp.typever_tree"]
    assert isinstance(tree, dict)
    assert (tree["vrrp.version"], tree["vrrp.type"]) == (str(spec.version), "1")
    assert v["vrrp.virt_rtr_id"] == str(spec.vrid)
    assert v["vrrp.prio"] == str(spec.priority)
    assert v["vrrp.addr_count"] == str(len(spec.addresses))
    assert v["vrrp.checksum"] == f"0x{int.from_bytes(msg[6:8], 'big'):04x}"
    assert v["vrrp.checksum.status"] == "1", "tshark says the checksum is bad"
    key = "vrrp.ip_addr" if spec.family == socket.AF_INET else "vrrp.ipv6_addr"
    assert _as_list(v.get(key)) == [socket.inet_ntop(spec.family, a) for a in spec.addresses]
    if spec.version == 2:
        assert v["vrrp.auth_type"] == str(spec.auth_type)
        assert v["vrrp.adver_int"] == str(spec.adver_int)
        pw = spec.auth_data.rstrip(b"\x00")
        if spec.auth_type == 1 and pw.isalnum() and b"\x00" not in pw:
            assert v["vrrp.auth_string"] == pw.decode()
    else:
        assert v["vrrp.short_adver_int"] == str(spec.adver_int)


@pytest.mark.unit
@pytest.mark.parametrize("as_v2", [False, True], ids=["pseudo-header", "checksum-as-v2"])
def test_tshark_decodes_what_we_encode(tmp_path: Path, as_v2: bool) -> None:
    tshark = need_tool("tshark")
    rng = random.Random(5798 + as_v2)
    specs: list[AdvertSpec] = []
    while len(specs) < N:
        s = random_spec(rng)
        # tshark applies one checksum mode per run (its v3_checksum_as_in_v2 preference).
        if s.version == 3 and s.family == socket.AF_INET and s.checksum_as_v2 != as_v2:
            continue
        if as_v2 and s.version == 3 and s.family == socket.AF_INET6:
            continue
        specs.append(s)
    msgs = [encode_with(wire, s) for s in specs]
    pcap = tmp_path / "adverts.pcap"
    write_pcap(
        pcap, [ip_packet(m, s.family, s.src, s.dst) for s, m in zip(specs, msgs, strict=True)]
    )
    frames = tshark_layers(
        tshark, pcap, f"vrrp.v3_checksum_as_in_v2:{'TRUE' if as_v2 else 'FALSE'}"
    )
    assert len(frames) == N
    for spec, msg, layers in zip(specs, msgs, frames, strict=True):
        _check(spec, msg, layers["vrrp"])  # type: ignore[arg-type]
