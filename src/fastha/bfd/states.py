"""BFD session states and diagnostic codes (RFC 5880 §4.1), with keepalived 2.2.7's names
for them (bfd.h BFD_STATE_STR / BFD_DIAG_STR), which its log lines use."""

from __future__ import annotations

from enum import IntEnum

from fastha.wire import bfd as wire


class State(IntEnum):
    ADMIN_DOWN = wire.BFD_STATE_ADMIN_DOWN
    DOWN = wire.BFD_STATE_DOWN
    INIT = wire.BFD_STATE_INIT
    UP = wire.BFD_STATE_UP

    @property
    def text(self) -> str:
        """keepalived's name: AdminDown, Down, Init, Up."""
        return _STATE_TEXT[self]


_STATE_TEXT = {
    State.ADMIN_DOWN: "AdminDown",
    State.DOWN: "Down",
    State.INIT: "Init",
    State.UP: "Up",
}


class Diag(IntEnum):
    NO_DIAG = 0
    EXPIRED = 1
    ECHO_FAILED = 2
    NBR_SIGNALLED_DOWN = 3
    FWD_PLANE_RESET = 4
    PATH_DOWN = 5
    CAT_PATH_DOWN = 6
    ADMIN_DOWN = 7
    RCAT_PATH_DOWN = 8


_DIAG_TEXT = (
    "No Diagnostic",
    "Control Detection Time Expired",
    "Echo Function Failed",
    "Neighbor Signaled Session Down",
    "Forwarding Plane Reset",
    "Path Down",
    "Concatenated Path Down",
    "Administratively Down",
    "Reverse Concatenated Path Down",
)


def diag_text(diag: int) -> str:
    """keepalived's BFD_DIAG_STR: the diag's name, or "Unknown"."""
    return _DIAG_TEXT[diag] if 0 <= diag < len(_DIAG_TEXT) else "Unknown"
