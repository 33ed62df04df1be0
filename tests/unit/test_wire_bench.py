"""`fastha bench codec` runs and reports every codec (figures only; timings never asserted)."""

from __future__ import annotations

import orjson
import pytest
from click.testing import CliRunner

from fastha.bench.codec import command


@pytest.mark.unit
def test_bench_codec_json_shape() -> None:
    result = CliRunner().invoke(
        command, ["--json", "--min-time", "0.001", "--repeat", "1"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    rows = orjson.loads(result.stdout)["rows"]
    by_op = {r["op"]: r for r in rows}
    for op in (
        "encode v2",
        "encode v3 ipv4",
        "encode v3 ipv6",
        "decode v2",
        "decode v3 ipv4",
        "decode v3 ipv6",
    ):
        r = by_op[op]
        assert r["_wire_ns"] > 0 and r["struct_ns"] > 0 and r["scapy_ns"] > 0
        assert r["struct_ratio"] is not None and r["scapy_ratio"] is not None
