"""One instance's receive path: TTL, decode, AH, the checks of RFC 3768/5798 section 7.1
as keepalived makes them, and the unicast source; an accepted advert becomes an event,
a dropped one a counted reason."""

from __future__ import annotations

import logging
import socket
from typing import TYPE_CHECKING

from fastha.vrrp.events import AdvertReceived
from fastha.wire import AUTH_AH, DecodeError, DropReason, Expect

if TYPE_CHECKING:
    from fastha.runtime.vrrp.from_config import InstanceSpec
    from fastha.runtime.vrrp.ipsec_ah import IpsecAh
    from fastha.vrrp.fsm import Machine
    from fastha.vrrp.params import InstanceParams

log = logging.getLogger("fastha.vrrp")

_REASON_NAMES = {int(r): r.name for r in DropReason}


class AdvertReceiver:
    def __init__(
        self, name: str, family: int, spec: InstanceSpec, machine: Machine, ah: IpsecAh
    ) -> None:
        self.name = name
        self.family = family
        self.machine = machine
        self.counters = machine.counters
        self.ah = ah
        self.peers = frozenset(spec.unicast_peers)
        self.peer_ttl = {addr: (lo, hi) for addr, lo, hi in spec.peer_ttl}
        self.check_unicast_src = spec.params.check_unicast_src

    def rebuild(self, spec: InstanceSpec, p: InstanceParams) -> None:
        """The receive-side expectations, from the spec (at start and on reload)."""
        adver_int = p.adver_int_cs // 100 if p.version == 2 else p.adver_int_cs
        self.expect = Expect(
            p.version,
            spec.auth_type,
            spec.auth_data,
            adver_int,
            spec.advert_addresses,
            not p.skip_check_adv_addr,
            False,
            self.family,
        )
        self.check_unicast_src = spec.params.check_unicast_src

    def receive(self, payload: memoryview, src: str, dst: str, ttl: int) -> AdvertReceived | None:
        counters = self.counters
        if self.peers:
            # keepalived checks TTL 255 only for multicast: unicast crosses routers, and
            # keepalived 2.2.7 itself sends IPv6 unicast adverts with hop limit 64. A peer's
            # min_ttl/max_ttl, when configured, bounds it instead.
            lo, hi = self.peer_ttl.get(src, (0, 255))
            if not lo <= ttl <= hi:
                counters.count_drop("TTL")
                return None
            ttl = -1
        try:
            if self.ah.key is not None:
                # An AH socket hands over the whole IPv4 packet: the ICV covers it.
                advert = self.expect.decode_ipv4(payload, ttl >= 0)
            else:
                advert = self.expect.decode(
                    payload,
                    self.family,
                    socket.inet_pton(self.family, src),
                    socket.inet_pton(self.family, dst),
                    ttl,
                )
        except DecodeError as exc:
            counters.count_drop(exc.reason.name)
            log.debug("(%s) dropped advert from %s: %s", self.name, src, exc)
            return None
        # keepalived checks AH after version and auth type, before the rest.
        ah = advert.ah and advert.version == 2 and advert.auth_type == AUTH_AH
        if ah and not self.ah.accept(self.name, payload, advert, bool(self.peers), self.machine):
            counters.count_drop("AUTH_FAILURE")
            return None
        reason = self.expect.check(advert)
        if reason:
            counters.count_drop(_REASON_NAMES.get(reason, str(reason)))
            log.debug(
                "(%s) dropped advert from %s: %s",
                self.name,
                src,
                _REASON_NAMES.get(reason),
            )
            return None
        if self.peers and self.check_unicast_src and src not in self.peers:
            counters.count_drop("UNICAST_SRC")
            return None
        return AdvertReceived(src, advert.priority, advert.adver_int_cs)
