"""`fastha decode`: golden hex -> JSON files, and the capture reader on every format."""

from __future__ import annotations

import os
import shlex
import struct
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from tests.support.prereq import need_tool
from tests.support.wire_packets import tshark_layers

from fastha.cli.decode import command

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "wire"
CASES = sorted(GOLDEN.glob("*.hex"))
# FASTHA_REGEN_GOLDEN=1 rewrites the .json files; review the diff before committing.
REGEN = os.environ.get("FASTHA_REGEN_GOLDEN") == "1"


def _parse_hex_file(path: Path) -> tuple[list[str], str]:
    args: list[str] = []
    hexes: list[str] = []
    for line in path.read_text().splitlines():
        if line.startswith("# args:"):
            args += shlex.split(line.removeprefix("# args:"))
        elif not line.startswith("#"):
            hexes.append(line.strip())
    return args, "".join(hexes)


def _run(*args: str) -> list[dict[str, object]]:
    result = CliRunner().invoke(command, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return [orjson.loads(line) for line in result.stdout_bytes.splitlines()]


@pytest.mark.unit
def test_golden_cases_exist() -> None:
    assert len(CASES) >= 10
    assert {p.stem for p in CASES} == {p.stem for p in GOLDEN.glob("*.json")} or REGEN


@pytest.mark.unit
@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_golden(case: Path) -> None:
    args, hexstr = _parse_hex_file(case)
    got = _run(*args, hexstr)
    expected_path = case.with_suffix(".json")
    if REGEN:
        expected_path.write_bytes(orjson.dumps(got, option=orjson.OPT_INDENT_2) + b"\n")
    assert got == orjson.loads(expected_path.read_bytes())


def _ip_packets() -> list[bytes]:
    out = []
    for case in CASES:
        args, hexstr = _parse_hex_file(case)
        if not args:
            out.append(bytes.fromhex(hexstr))
    return out


def _eth(ip: bytes, vlan: bool = False) -> bytes:
    etype = b"\x86\xdd" if ip[0] >> 4 == 6 else b"\x08\x00"
    tag = b"\x81\x00\x00\x64" if vlan else b""
    return b"\x01\x00\x5e\x00\x00\x12" + b"\x00\x00\x5e\x00\x01\x33" + tag + etype + ip


def _sll(ip: bytes) -> bytes:
    etype = 0x86DD if ip[0] >> 4 == 6 else 0x0800
    return struct.pack("!HHH8sH", 0, 1, 6, b"\x00\x00\x5e\x00\x01\x33\x00\x00", etype) + ip


def _sll2(ip: bytes) -> bytes:
    etype = 0x86DD if ip[0] >> 4 == 6 else 0x0800
    return struct.pack("!HHIHBB8s", etype, 0, 2, 1, 0, 6, b"\x00\x00\x5e\x00\x01\x33\x00\x00") + ip


def _pcap(frames: list[bytes], linktype: int, endian: str = "<", ns: bool = False) -> bytes:
    magic = 0xA1B23C4D if ns else 0xA1B2C3D4
    out = [struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, 262144, linktype)]
    for i, f in enumerate(frames):
        out.append(struct.pack(endian + "IIII", 1_700_000_000 + i, 5, len(f), len(f)) + f)
    return b"".join(out)


def _pcapng(frames: list[bytes], linktype: int) -> bytes:
    def block(btype: int, body: bytes) -> bytes:
        body += b"\x00" * (-len(body) % 4)
        n = len(body) + 12
        return struct.pack("<II", btype, n) + body + struct.pack("<I", n)

    out = [block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))]
    out.append(block(1, struct.pack("<HHI", linktype, 0, 262144)))
    for f in frames:
        out.append(block(6, struct.pack("<IIIII", 0, 0, 0, len(f), len(f)) + f))
    return b"".join(out)


NOT_VRRP = bytes.fromhex("4500001c000000004011000001020304050607080035003500080000")  # UDP


@pytest.mark.unit
@pytest.mark.parametrize(
    "fmt",
    ["ethernet", "ethernet-vlan", "sll", "sll2", "raw", "big-endian-ns", "pcapng"],
)
def test_capture_formats(tmp_path: Path, fmt: str) -> None:
    ips = _ip_packets()
    frames_ip = [NOT_VRRP, *ips]
    builders = {
        "ethernet": lambda: _pcap([_eth(p) for p in frames_ip], 1),
        "ethernet-vlan": lambda: _pcap([_eth(p, vlan=True) for p in frames_ip], 1),
        "sll": lambda: _pcap([_sll(p) for p in frames_ip], 113),
        "sll2": lambda: _pcap([_sll2(p) for p in frames_ip], 276),
        "raw": lambda: _pcap(frames_ip, 101),
        "big-endian-ns": lambda: _pcap(frames_ip, 101, ">", ns=True),
        "pcapng": lambda: _pcapng([_eth(p) for p in frames_ip], 1),
    }
    path = tmp_path / f"capture.{fmt}"
    path.write_bytes(builders[fmt]())
    got = _run(str(path))
    expected = [{"frame": i + 2, **_run(p.hex())[0]} for i, p in enumerate(ips)]
    assert got == expected


@pytest.mark.unit
def test_capture_frames_match_tshark(tmp_path: Path) -> None:
    """Our reader finds the same VRRP frames (by number) as tshark's."""
    tshark = need_tool("tshark")
    ips = _ip_packets()
    path = tmp_path / "mixed.pcap"
    path.write_bytes(_pcap([_eth(p) for p in [NOT_VRRP, *ips, NOT_VRRP]], 1))
    theirs = [i + 1 for i, layers in enumerate(tshark_layers(tshark, path)) if "vrrp" in layers]
    ours = [obj["frame"] for obj in _run(str(path))]
    # tshark does not dissect a VRRP message shorter than its header; we report it.
    short = {i + 2 for i, p in enumerate(ips) if len(p) - 20 < 8}
    assert sorted(set(theirs) | short) == ours


@pytest.mark.unit
def test_hex_input_forms() -> None:
    _args, hexstr = _parse_hex_file(GOLDEN / "v2_pass_ipv4.hex")
    spaced = " ".join(hexstr[i : i + 2] for i in range(0, len(hexstr), 2))
    assert _run(spaced) == _run("0x" + hexstr) == _run(hexstr)


@pytest.mark.unit
def test_bad_input_is_a_usage_error() -> None:
    result = CliRunner().invoke(command, ["zz-not-hex"])
    assert result.exit_code == 2
    result = CliRunner().invoke(command, ["--src", "10.0.0.1", "00"])
    assert result.exit_code == 2
