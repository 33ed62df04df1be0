"""How much of a VRRP socket's receive buffer each instance asks for (keepalived's
``vrrp_rx_bufs_policy``); the socket driver (``fastha.drivers.vrrp_socket``) adds the
shares of the instances it serves and sets SO_RCVBUF.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RxBufs:
    """One instance's share of its socket's receive buffer: keepalived's
    vrrp_rx_bufs_policy resolved (vrrp.c adds every instance's share on a socket).

    SIZE: ``size`` bytes; ADVERT: multiplier x advert length, also in ``size``; MTU:
    ``mtu_multiplier`` x the interface MTU, known only when the socket opens. All zero:
    no policy, the socket gets DEFAULT_RCVBUF.
    """

    size: int = 0
    mtu_multiplier: int = 0

    def bytes_for(self, mtu: int) -> int:
        return self.size + self.mtu_multiplier * mtu
