"""LVS side of the keyword table (contract stub)."""

from __future__ import annotations

from fastha.config.model_lvs import BfdInstance, SslConfig, VirtualServer, VirtualServerGroup
from fastha.config.schema import Block, Keyword


def _name(args: tuple[str, ...]) -> dict[str, str]:
    return {"name": args[0]} if args else {}


LVS_ROOT_KEYWORDS: tuple[Keyword, ...] = (
    Keyword(
        "virtual_server_group",
        field="virtual_server_groups",
        repeat=True,
        block=Block("virtual_server_group", VirtualServerGroup, header=_name),
    ),
    Keyword(
        "virtual_server",
        field="virtual_servers",
        repeat=True,
        block=Block("virtual_server", VirtualServer, header=lambda args: {}),
    ),
    Keyword("SSL", field="ssl", block=Block("SSL", SslConfig)),
    Keyword(
        "bfd_instance",
        field="bfd_instances",
        repeat=True,
        block=Block("bfd_instance", BfdInstance, header=_name),
    ),
)
