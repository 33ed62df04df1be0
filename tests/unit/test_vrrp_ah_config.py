"""`auth_type AH` from keepalived.conf to the instance spec, as keepalived 2.2.7 reads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastha.config.loader import load
from fastha.runtime.vrrp.from_config import InstanceSpec, vrrp_spec
from fastha.vrrp.states import State
from fastha.wire import AUTH_AH

pytestmark = pytest.mark.unit


def _spec(tmp_path: Path, state: str, priority: int, auth: str) -> InstanceSpec:
    conf = tmp_path / "k.conf"
    conf.write_text(
        f"vrrp_instance VI_1 {{\n    state {state}\n    interface eth0\n"
        f"    virtual_router_id 51\n    priority {priority}\n    advert_int 1\n"
        f"    authentication {{\n{auth}    }}\n"
        "    virtual_ipaddress {\n        198.18.0.1/24\n    }\n}\n"
    )
    result = load(conf)
    (spec,) = vrrp_spec(result.config).instances
    return spec


@pytest.mark.parametrize(("state", "priority", "initial"), [
    ("MASTER", 200, State.BACKUP),  # "Initial state master is incompatible with AH ... clearing"
    ("MASTER", 255, State.MASTER),  # the address owner keeps it
    ("BACKUP", 200, State.BACKUP),
])  # fmt: skip
def test_ah_key_and_initial_state(tmp_path: Path, state: str, priority: int,
                                  initial: State) -> None:  # fmt: skip
    spec = _spec(tmp_path, state, priority, "        auth_type AH\n        auth_pass s3cr3tlong\n")
    assert (spec.auth_type, spec.auth_data) == (AUTH_AH, b"s3cr3tlo")  # the HMAC key
    assert spec.params.initial_state is initial


def test_ah_without_password_is_ignored(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "BACKUP", 100, "        auth_type AH\n")
    assert spec.auth_type == 0
