"""The no_accept firewall (strict mode without `accept`): the nftables table that drops
traffic to the VIPs follows the configuration, set before any VIP."""

from __future__ import annotations

from fastha.drivers.firewall import VipFirewall
from fastha.runtime.vrrp.from_config import VrrpSpec


class NoAcceptFirewall:
    def __init__(self, spec: VrrpSpec) -> None:
        self.firewall = VipFirewall(spec.nft_table, spec.nft_priority)

    async def start(self, spec: VrrpSpec) -> None:
        await self.firewall.apply(spec.no_accept_addresses())  # before any VIP

    async def follow(self, old: VrrpSpec, new: VrrpSpec) -> None:
        """Reload: the no_accept table follows the new file (before any new VIP)."""
        addresses = new.no_accept_addresses()
        if (old.nft_table, old.nft_priority) != (new.nft_table, new.nft_priority):
            await self.firewall.remove()
            self.firewall = VipFirewall(new.nft_table, new.nft_priority)
        elif old.no_accept_addresses() == addresses:
            return
        await self.firewall.apply(addresses)

    async def remove(self) -> None:
        await self.firewall.remove()
