"""LVS side of the keepalived.conf model (contract stub; filled in below)."""

from __future__ import annotations

from dataclasses import dataclass

from fastha.config.source import Where


@dataclass(frozen=True, slots=True, kw_only=True)
class VirtualServerGroup:
    where: Where | None = None
    name: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class VirtualServer:
    where: Where | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SslConfig:
    where: Where | None = None
    password: str | None = None
    ca: str | None = None
    certificate: str | None = None
    key: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BfdInstance:
    where: Where | None = None
    name: str = ""
