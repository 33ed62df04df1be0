"""The configuration in force in the VRRP child: what a reload swaps, read by the parts
that follow it."""

from __future__ import annotations

from dataclasses import dataclass

from fastha.config.model import Config
from fastha.runtime.vrrp.from_config import VrrpSpec


@dataclass(slots=True)
class Current:
    config: Config
    spec: VrrpSpec
