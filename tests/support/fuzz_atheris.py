"""Coverage-guided fuzzing (atheris / libFuzzer) of the VRRP decoder and the config
loader: no input may raise anything but the documented error.

    python -m tests.support.fuzz_atheris wire   -runs=200000 -max_total_time=60
    python -m tests.support.fuzz_atheris config -runs=20000  -max_total_time=60

Arguments after the target go to libFuzzer unchanged (-runs, -max_total_time, -seed,
corpus directories...). A finding makes libFuzzer print the traceback and the input
(``crash-<sha1>`` in the current directory) and exit non-zero.

- wire: ``fastha.wire.decode`` for both families and versions' expectations,
  ``decode_ipv4`` and ``Expect.decode``/``check`` on the same bytes; only
  ``DecodeError`` may come out, an accepted advert must render (``to_dict``) and agree
  with the independently written struct codec (fastha.bench.struct_codec) on every field.
  ``_wire`` is compiled without libFuzzer instrumentation, so coverage feedback comes
  from the Python side only; the seeds are valid v2/v3 adverts, so the mutations start
  from structure.
- config: the bytes are a keepalived.conf (latin-1, so every byte string is a file);
  ``fastha.config.loader.load`` must return keepalived -t's exit code (0, 4, 5, 6), every
  diagnostic must render and a loaded config must dump. The Python config code is
  instrumented, so libFuzzer sees its branch coverage.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import tempfile
from pathlib import Path

import atheris

EXIT_CODES = {0, 2, 4, 5, 6}  # 2: a missing parameter (keepalived exits while parsing)

with atheris.instrument_imports(include=["fastha"]):
    from fastha import wire
    from fastha.bench import struct_codec
    from fastha.config.loader import load

SRC = socket.inet_aton("198.18.0.3")
DST = socket.inet_aton("224.0.0.18")
SRC6 = socket.inet_pton(socket.AF_INET6, "fe80::3")
DST6 = socket.inet_pton(socket.AF_INET6, "ff02::12")
VIP = socket.inet_aton("198.18.0.100")
EXPECTS = [
    wire.Expect(3, adver_int=100, addresses=[VIP]),
    wire.Expect(2, auth_type=1, auth_data=b"s3cret", adver_int=1, addresses=[VIP]),
    wire.Expect(2, adver_int=1, addresses=[VIP], check_addresses=False),
]


def _agree(adv: wire.Advert, buf: bytes) -> None:
    """An accepted advert's fields are what the bytes say (RFC 3768/5798 5.1)."""
    assert adv.version == buf[0] >> 4 and adv.type == buf[0] & 0x0F, (adv.to_dict(), buf.hex())
    assert adv.vrid == buf[1] and adv.priority == buf[2] and adv.count == buf[3]
    if adv.version == 3:
        assert adv.adver_int == int.from_bytes(buf[4:6], "big") & 0x0FFF
    else:
        assert adv.adver_int == buf[5] and adv.auth_type == buf[4]
    size = 4 if adv.family == socket.AF_INET else 16
    assert adv.address_block == buf[8 : 8 + size * adv.count]
    if adv.version == 2:  # v2's checksum covers the message alone (RFC 3768 5.3.8)
        end = 8 + 4 * adv.count + 8
        assert struct_codec.checksum(bytes(buf[:end])) == 0, buf.hex()


def wire_one(data: bytes) -> None:
    for family, src, dst in ((socket.AF_INET, SRC, DST), (socket.AF_INET6, SRC6, DST6)):
        for ttl in (255, -1):
            try:
                adv = wire.decode(data, family, src, dst, ttl)
            except wire.DecodeError as e:
                assert isinstance(e.reason, wire.DropReason), e
                continue
            adv.to_dict()
            _agree(adv, data)
            for exp in EXPECTS:
                r = exp.check(adv)
                assert r == 0 or r in iter(wire.DropReason), r
    with contextlib.suppress(wire.DecodeError):
        wire.decode_ipv4(data).to_dict()
    for exp in EXPECTS:
        try:
            adv = exp.decode(data, socket.AF_INET, SRC, DST, 255)
        except wire.DecodeError:
            continue
        exp.check(adv)


_CONF_DIR = Path(tempfile.mkdtemp(prefix="fuzz-conf-"))
_CONF = _CONF_DIR / "keepalived.conf"


def config_one(data: bytes) -> None:
    _CONF.write_bytes(data)
    result = load(_CONF, None)
    assert int(result.exit_code) in EXIT_CODES, result.exit_code
    for d in result.diagnostics:
        str(d)
    if result.config is not None:
        from fastha.config.dump import dumps

        dumps(result.config)


def _seeds(target: str) -> Path:
    """A seed corpus directory of valid inputs for the target."""
    d = Path(tempfile.mkdtemp(prefix=f"fuzz-{target}-seeds-"))
    if target == "wire":
        seeds = [
            wire.encode_v3(51, 100, 100, [VIP], socket.AF_INET, SRC, DST),
            wire.encode_v3(
                51,
                100,
                100,
                [socket.inet_pton(socket.AF_INET6, "fe80::1")],
                socket.AF_INET6,
                SRC6,
                DST6,
            ),
            wire.encode_v2(51, 100, 1, [VIP], 1, b"s3cret"),
            wire.encode_v2(51, 100, 1, [VIP, VIP], 0, b""),
        ]
    else:
        seeds = [
            b"global_defs {\n  router_id lb1\n  vrrp_version 3\n}\n"
            b'vrrp_script chk { script "/bin/true"\n interval 1\n weight -10 }\n'
            b"vrrp_instance VI_1 {\n  state MASTER\n  interface eth0\n  virtual_router_id 51\n"
            b"  priority 150\n  advert_int 0.05\n  authentication { auth_type PASS\n"
            b"  auth_pass s3cret }\n  virtual_ipaddress {\n    198.18.0.100/24 dev eth0\n  }\n"
            b"  track_script { chk }\n  notify /bin/true\n}\n",
            b"$M=198.18.0.1\nvirtual_server $M 80 {\n  delay_loop 6\n  lb_algo rr\n"
            b"  lb_kind NAT\n  protocol TCP\n  real_server 198.18.0.2 80 {\n"
            b"    weight 1\n    TCP_CHECK { connect_timeout 3 }\n  }\n}\n",
            b"@lb1 global_defs { router_id x }\nvrrp_sync_group G { group { VI_1 } }\n",
        ]
    for i, s in enumerate(seeds):
        (d / f"seed{i}").write_bytes(s)
    return d


# The harness itself is instrumented too: for the compiled decoder, the branches here
# (which family/ttl decoded, which expectation accepted) are the only feedback.
wire_one = atheris.instrument_func(wire_one)
_agree = atheris.instrument_func(_agree)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("wire", "config"):
        print(__doc__, file=sys.stderr)
        return 2
    target = argv[0]
    one = wire_one if target == "wire" else config_one
    os.chdir(_CONF_DIR)  # crash files and relative includes land here
    corpus = Path(tempfile.mkdtemp(prefix=f"fuzz-{target}-corpus-"))
    args = [sys.argv[0], *argv[1:], str(corpus), str(_seeds(target))]
    atheris.Setup(args, one)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
