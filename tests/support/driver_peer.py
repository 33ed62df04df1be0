"""Drive fastha.drivers from inside a namespace (``ip netns exec NS python -m
tests.support.driver_peer ...``); prints one JSON object per line on stdout.

    recv  --dev eth0 --family 6 [--src A] [--peer P ...] --count N --timeout S
          [--vrid V ... [--rx-size BYTES]]   kernel VRID filter, receive buffer share
          [--no-hoplimit] [--no-pktinfo]   IPV6_RECV* turned off after open
          prints {"ready": true, "rcvbuf": N} once the socket is open, then one line
          per packet
    send  --dev eth0 --family 4 [--src A] [--peer P ...] --hex PAYLOAD [--count N]
    garp  --dev eth0 --hex FRAME          sends a prebuilt Ethernet frame via AF_PACKET
    watch --dev eth0 --family 6 --address VIP --count N --timeout S
          drivers.arpwatch: prints {"ready": true}, one line per claim (any address),
          until N claims of VIP, then {"stats": {"malformed": N}}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys

import uvloop

from fastha.drivers.arpwatch import ArpWatch
from fastha.drivers.packet import PacketSender
from fastha.drivers.vrrp_socket import (
    IPV6_RECVHOPLIMIT,
    IPV6_RECVPKTINFO,
    VrrpSocket,
    VrrpSocketConfig,
)
from fastha.vrrp.rxbufs import RxBufs


def _out(obj: object) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _config(a: argparse.Namespace) -> VrrpSocketConfig:
    return VrrpSocketConfig(
        ifname=a.dev,
        family=socket.AF_INET6 if a.family == 6 else socket.AF_INET,
        src=a.src,
        mcast_group=a.group,
        unicast_peers=tuple(a.peer),
        unicast_ttl=a.ttl,
    )


async def recv(a: argparse.Namespace) -> None:
    done = asyncio.get_running_loop().create_future()
    got: list[int] = []

    def on_packet(data: memoryview, src: str, dst: str, ttl: int, ifindex: int) -> None:
        _out({"hex": bytes(data).hex(), "src": src, "dst": dst, "ttl": ttl, "ifindex": ifindex})
        got.append(1)
        if len(got) >= a.count and not done.done():
            done.set_result(None)

    vrids = {v: RxBufs(size=a.rx_size) for v in a.vrid} if a.vrid else None
    sock = VrrpSocket(_config(a), on_packet, vrids=vrids)
    sock.open()
    for off, opt in ((a.no_hoplimit, IPV6_RECVHOPLIMIT), (a.no_pktinfo, IPV6_RECVPKTINFO)):
        if off:
            # The kernel then attaches no such message: what a receiver must not take
            # for "fine" (a dup of the fd shares the socket).
            with socket.socket(fileno=os.dup(sock.fileno)) as dup:
                dup.setsockopt(socket.IPPROTO_IPV6, opt, 0)
    _out({"ready": True, "ifindex": sock.ifindex, "rcvbuf": sock.rcvbuf})
    try:
        await asyncio.wait_for(done, a.timeout)
    except TimeoutError:
        _out({"timeout": True})
    finally:
        sock.close()
        stats = {"received": sock.stats.received}
        if a.no_pktinfo:
            stats["no_pktinfo"] = sock.stats.no_pktinfo
        _out({"stats": stats})


async def send(a: argparse.Namespace) -> None:
    sock = VrrpSocket(_config(a), lambda *_: None)
    sock.open()
    payload = bytes.fromhex(a.hex)
    copies = 0
    for _ in range(a.count):
        copies += sock.send(payload)
        await asyncio.sleep(a.interval)
    sock.close()
    _out({"sent": copies, "stats": {"eagain": sock.stats.send_eagain}})


async def garp(a: argparse.Namespace) -> None:
    sender = PacketSender(a.dev)
    sender.open()
    ok = sum(sender.send(bytes.fromhex(a.hex)) for _ in range(a.count))
    _out({"sent": ok, "mac": sender.mac})
    sender.close()


async def watch(a: argparse.Namespace) -> None:
    done = asyncio.get_running_loop().create_future()
    family = socket.AF_INET6 if a.family == 6 else socket.AF_INET
    got: list[int] = []

    def on_claim(ifname: str, address: bytes, mac: bytes) -> None:
        text = socket.inet_ntop(family, address)
        _out({"ifname": ifname, "address": text, "mac": mac.hex()})
        if text != a.address:
            return
        got.append(1)
        if len(got) >= a.count and not done.done():
            done.set_result(None)

    w = ArpWatch(asyncio.get_running_loop(), a.dev, on_claim, family)
    w.open()
    _out({"ready": True})
    try:
        await asyncio.wait_for(done, a.timeout)
    except TimeoutError:
        _out({"timeout": True})
    finally:
        w.close()
        _out({"stats": {"malformed": w.malformed}})


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("cmd", choices=("recv", "send", "garp", "watch"))
    p.add_argument("--dev", required=True)
    p.add_argument("--family", type=int, default=4)
    p.add_argument("--src")
    p.add_argument("--group")
    p.add_argument("--peer", action="append", default=[])
    p.add_argument("--ttl", type=int, default=255)
    p.add_argument("--hex", default="")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--interval", type=float, default=0.05)
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--vrid", type=int, action="append", default=[])
    p.add_argument("--rx-size", type=int, default=0)
    p.add_argument("--address")
    p.add_argument("--no-hoplimit", action="store_true")
    p.add_argument("--no-pktinfo", action="store_true")
    a = p.parse_args()
    uvloop.run({"recv": recv, "send": send, "garp": garp, "watch": watch}[a.cmd](a))


if __name__ == "__main__":
    main()
