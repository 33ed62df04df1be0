"""keepalived's IPsec-AH for VRRPv2 (auth_type AH): the key and the sequence counter an
instance shares between what it sends and what it accepts (ipsecah_counter)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from fastha.vrrp.states import State
from fastha.wire import AUTH_AH, AhKey

if TYPE_CHECKING:
    from fastha.runtime.vrrp.from_config import InstanceSpec
    from fastha.vrrp.fsm import Machine

log = logging.getLogger("fastha.vrrp")


class IpsecAh:
    def __init__(self) -> None:
        self.key: AhKey | None = None
        self.seq = 0
        # Set once the counter would pass 0xFFFFFFFD; cleared as keepalived clears it.
        self.cycle = False

    def rekey(self, spec: InstanceSpec) -> None:
        self.key = AhKey(spec.auth_data) if spec.auth_type == AUTH_AH else None

    def next_seq(self) -> None:
        """One sequence number per advert sent."""
        if self.seq > 0xFFFFFFFD:
            self.cycle = True
        else:
            self.seq += 1

    def on_master(self) -> None:
        """vrrp_state_goto_master: a cycled AH counter starts again."""
        if self.cycle:
            self.cycle, self.seq = False, 0

    def accept(
        self, name: str, packet: memoryview, advert: Any, unicast: bool, machine: Machine
    ) -> bool:
        """keepalived's vrrp_in_chk_ipsecah: the ICV, SPI = source, then a sequence
        number above every one seen or sent (the counter is shared with sending)."""
        assert self.key is not None
        if not self.key.verify(packet, unicast):
            log.info(
                "(%s) IPSEC-AH : invalid IPSEC HMAC-MD5 value. Due to fields mutation"
                " or bad password !",
                name,
            )
            return False
        spi = int.from_bytes(advert.src, "big")
        if advert.ah_spi != spi:
            log.info("IPSEC AH : invalid IPSEC SPI value. %u and expect %u", spi, advert.ah_spi)
            return False
        seq = advert.ah_seq
        if seq <= self.seq:
            log.info(
                "(%s) IPSEC-AH : sequence number %u already processed. Packet dropped. Local(%u)",
                name,
                seq,
                self.seq,
            )
            return False
        self.seq = seq
        m = machine
        if m.state == State.BACKUP:
            self.cycle = False
        elif m.state == State.MASTER and 0 < advert.priority < m.effective_priority:
            # vrrp_state_master_rx: a lower priority advert syncs our counter past it.
            log.info("(%s) IPSEC-AH : Syncing seq_num - Increment seq", name)
            self.seq = seq + 1
            self.cycle = False
        return True
