"""keepalived's fix-ups of a vrrp_instance's parameters, each in one place.

keepalived settles an instance's parameters as it completes it (vrrp.c
vrrp_complete_instance): it inherits what the instance leaves unset from global_defs
(or its sync group), derives what depends on others (version from the family, initial
state from the priority...) and resets what conflicts ("... - resetting"), saying so.
Each function here returns the value the instance runs with and what keepalived says
on the way. `validate_vrrp.py` reports the sayings (check-config, keepalived -t) and
the VRRP child's builder (`from_config.py`) runs with the values, so the two never
disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from fastha.config.diagnostics import Diagnostic, warning
from fastha.config.inherit import inherit
from fastha.config.model import GlobalDefs
from fastha.config.model_vrrp import (
    AuthType,
    State,
    VrrpInstance,
    VrrpSyncGroup,
    VrrpTrackProcess,
)
from fastha.vrrp.params import PRIO_DEFAULT, PRIO_OWNER
from fastha.vrrp.timing import DOWN_TIMER_ADVERTS, V2_MAX_ADVER_INT_CS, V3_MAX_ADVER_INT_CS

OWNER_PRIORITY = PRIO_OWNER
DEFAULT_PRIORITY = PRIO_DEFAULT
V2_MAX_ADVERT = V2_MAX_ADVER_INT_CS // 100  # seconds
V3_MAX_ADVERT = Decimal(V3_MAX_ADVER_INT_CS) / 100  # seconds
AUTH_PASS_LEN = 8  # RFC 2338 section 5.3.10
AUTH_NONE, AUTH_PASS, AUTH_AH = 0, 1, 2  # the advert's auth type field


def effective_priority(vrrp: VrrpInstance) -> int:
    """keepalived: an unset priority is 255 for initial state MASTER, else 100."""
    if vrrp.priority is not None:
        return vrrp.priority
    return OWNER_PRIORITY if vrrp.state is State.MASTER else DEFAULT_PRIORITY


def family(vrrp: VrrpInstance) -> int:
    """The instance's address family: its first VIP's, else its source / peers', else 4."""
    if vrrp.virtual_ipaddresses:
        return vrrp.virtual_ipaddresses[0].address.version
    if vrrp.mcast_src_ip is not None:
        return vrrp.mcast_src_ip.version
    if vrrp.unicast_peers:
        return vrrp.unicast_peers[0].address.version
    return 6 if vrrp.native_ipv6 else 4


def strict(g: GlobalDefs, vrrp: VrrpInstance) -> bool:
    return inherit(vrrp.strict_mode, default=g.vrrp_strict)


def version(g: GlobalDefs, vrrp: VrrpInstance) -> tuple[int, list[Diagnostic]]:
    """IPv6 is VRRP version 3 unless the instance says 2 (keepalived's vrrp_complete_instance
    keeps an explicit 2 on IPv6 outside strict mode); else the instance's, else vrrp_version."""
    if family(vrrp) != 6:
        return vrrp.version or g.vrrp_version, []
    if vrrp.version == 2 and strict(g, vrrp):
        text = f"({vrrp.name}) cannot use IPv6 with VRRP version 2; setting version 3"
        return 3, [warning(vrrp.where, text)]
    return vrrp.version or 3, []


def _round(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).quantize(Decimal(1), rounding=ROUND_HALF_UP) * step


def advert_int_cs(vrrp: VrrpInstance, ver: int) -> tuple[int, list[Diagnostic]]:
    """The advert interval in centiseconds: v2 whole seconds up to 255, v3 centiseconds
    up to 40.95 s; keepalived rounds half up to the unit."""
    name, where = f"({vrrp.name})", vrrp.where
    advert = Decimal(repr(vrrp.advert_int))
    if ver == 2:
        if advert > V2_MAX_ADVERT:
            text = (
                f"{name} VRRPv2 advertisement interval {advert:.2f}s is out of range. "
                f"Must be less than {V2_MAX_ADVERT + 1}s. Setting to {V2_MAX_ADVERT}s"
            )
            return V2_MAX_ADVER_INT_CS, [warning(where, text)]
        whole = _round(advert, Decimal(1))
        if advert == whole:
            return int(whole) * 100, []
        text = (
            f"{name} VRRPv2 advertisement interval {float(advert):f}s must be an integer. rounding"
        )
        return max(1, int(whole)) * 100, [warning(where, text)]
    if advert > V3_MAX_ADVERT:
        text = (
            f"{name} VRRPv3 advertisement interval {advert:.2f}s is out of range. "
            f"Must be less than 40.96s. Setting to {V3_MAX_ADVERT}s"
        )
        return V3_MAX_ADVER_INT_CS, [warning(where, text)]
    cs = _round(advert, Decimal("0.01"))
    if advert == cs:
        return int(cs * 100), []
    text = (
        f"{name} VRRPv3 advertisement interval {float(advert):f}s must be in units of 10ms "
        "- rounding"
    )
    return max(1, int(cs * 100)), [warning(where, text)]


def _ah(g: GlobalDefs, vrrp: VrrpInstance, ver: int) -> bool:
    """Whether the instance sends AH adverts (see authentication())."""
    auth = vrrp.authentication
    return (
        auth is not None
        and auth.auth_type is AuthType.AH
        and bool(auth.auth_pass)
        and ver == 2
        and not strict(g, vrrp)
        and family(vrrp) != 6
    )


def initial_master(
    g: GlobalDefs, vrrp: VrrpInstance, ver: int
) -> tuple[bool, list[Diagnostic], list[Diagnostic]]:
    """keepalived's wantstate, MASTER or not: the configured `state`, else MASTER for the
    address owner. Strict mode wants MASTER exactly for the owner; AH wants a backup
    first (it learns the sequence number from the master's adverts). Returns the
    value, what strict mode says and what AH says (said where each is checked)."""
    owner = effective_priority(vrrp) == OWNER_PRIORITY
    if vrrp.state is None:
        return owner, [], []
    master = vrrp.state is State.MASTER
    if strict(g, vrrp) and master != owner:
        text = f"({vrrp.name}) State MASTER must match being address owner"
        return owner, [warning(vrrp.where, text)], []
    if master and not owner and _ah(g, vrrp, ver):
        auth = vrrp.authentication
        text = (
            f"({vrrp.name}) Initial state master is incompatible with AH authentication - clearing"
        )
        return False, [], [warning(auth.where if auth else vrrp.where, text)]
    return master, [], []


@dataclass(frozen=True, slots=True)
class Preemption:
    nopreempt: bool
    preempt_delay: float  # seconds


def preemption(
    g: GlobalDefs, vrrp: VrrpInstance, master: bool
) -> tuple[Preemption, list[Diagnostic]]:
    """nopreempt and preempt_delay, given the initial state (`master`), in
    vrrp_complete_instance's order: each reset is seen by the checks after it."""
    name, where = f"({vrrp.name})", vrrp.where
    said = []
    nopreempt, delay = vrrp.nopreempt, vrrp.preempt_delay
    if nopreempt and effective_priority(vrrp) == OWNER_PRIORITY:
        said.append(
            warning(
                where,
                f"{name} nopreempt is incompatible with priority {OWNER_PRIORITY}. "
                "resetting nopreempt",
            )
        )
        nopreempt = False
    if master and nopreempt:
        said.append(
            warning(
                where,
                f"{name} Warning - nopreempt will not work with initial state MASTER - clearing",
            )
        )
        nopreempt = False
    if master and delay:
        said.append(
            warning(
                where,
                f"{name} Warning - preempt delay will not work with initial state MASTER - clearing",
            )
        )
        delay = 0.0
    if delay and strict(g, vrrp):
        said.append(
            warning(where, f"{name} preempt_delay is incompatible with strict mode - resetting")
        )
    if delay and nopreempt:
        said.append(
            warning(where, f"{name} preempt_delay is incompatible with nopreempt mode - resetting")
        )
    if delay and (nopreempt or strict(g, vrrp)):
        delay = 0.0
    return Preemption(nopreempt, delay), said


@dataclass(frozen=True, slots=True)
class Auth:
    type: int  # AUTH_NONE, AUTH_PASS, AUTH_AH
    data: bytes  # the password, at most AUTH_PASS_LEN bytes (AH: its HMAC key)


def authentication(g: GlobalDefs, vrrp: VrrpInstance, ver: int) -> tuple[Auth, list[Diagnostic]]:
    """RFC 3768 authentication: v2 only, never in strict mode, never without a password,
    AH never over IPv6; the password is cut to 8 characters."""
    auth = vrrp.authentication
    if auth is None:
        return Auth(AUTH_NONE, b""), []
    name, where = f"({vrrp.name})", auth.where
    said = []
    result = Auth(AUTH_NONE, b"")
    data = (auth.auth_pass or "").encode()[:AUTH_PASS_LEN]
    if auth.auth_type is not None:
        if strict(g, vrrp):
            said.append(
                warning(where, f"{name} Strict mode does not support authentication. Ignoring.")
            )
        elif ver == 3:
            said.append(
                warning(where, f"{name} VRRP version 3 does not support authentication. Ignoring.")
            )
        elif not auth.auth_pass:
            said.append(
                warning(where, f"{name} Authentication specified but no password given. Ignoring")
            )
        elif auth.auth_type is AuthType.AH and family(vrrp) == 6:
            said.append(warning(where, f"{name} Cannot use AH authentication with IPv6. ignoring"))
        else:
            result = Auth(AUTH_AH if auth.auth_type is AuthType.AH else AUTH_PASS, data)
    if auth.auth_pass is not None and len(auth.auth_pass) > AUTH_PASS_LEN:
        said.append(warning(where, f"Truncating auth_pass to {AUTH_PASS_LEN} characters"))
    return result, said


def down_timer_adverts(g: GlobalDefs, vrrp: VrrpInstance) -> tuple[int, list[Diagnostic]]:
    """RFC 5798's Master_Down_Interval counts 3 adverts; strict mode keeps it so."""
    value = inherit(vrrp.down_timer_adverts, default=g.vrrp_down_timer_adverts)
    if value != DOWN_TIMER_ADVERTS and strict(g, vrrp):
        text = f"({vrrp.name}) down_timer_adverts is incompatible with strict mode - resetting"
        return DOWN_TIMER_ADVERTS, [warning(vrrp.where, text)]
    return value, []


@dataclass(frozen=True, slots=True)
class Adverts:
    """Gratuitous ARP/NA and advert settings, inherited from global_defs."""

    garp_master_delay: int  # seconds
    garp_master_repeat: int
    garp_master_refresh: int  # seconds, 0: none
    garp_master_refresh_repeat: int
    garp_lower_prio_delay: int  # seconds
    garp_lower_prio_repeat: int
    lower_prio_no_advert: bool
    higher_prio_send_advert: bool


def adverts(g: GlobalDefs, vrrp: VrrpInstance) -> tuple[Adverts, list[Diagnostic]]:
    """The lower-priority GARP settings default to the master's; strict mode wants no
    repeated GARP, no advert to a lower priority and none sent on a higher one, and
    resets an instance's own setting that asks otherwise (vrrp_complete_instance)."""
    name, where = f"({vrrp.name})", vrrp.where
    is_strict = strict(g, vrrp)
    delay = inherit(vrrp.garp_master_delay, default=g.vrrp_garp_master_delay)
    repeat = inherit(vrrp.garp_master_repeat, default=g.vrrp_garp_master_repeat)
    said = []
    if is_strict:
        if vrrp.garp_lower_prio_repeat:
            said.append(warning(where, f"{name} Strict mode requires no repeat garps. resetting"))
        if vrrp.garp_lower_prio_delay:
            said.append(
                warning(where, f"{name} Strict mode requires no repeat garp delay. resetting")
            )
        if vrrp.lower_prio_no_advert is False:
            said.append(
                warning(where, f"{name} Strict mode requires no lower priority advert. resetting")
            )
        if vrrp.higher_prio_send_advert:
            text = f"{name} strict mode requires higher_prio_send_advert to be clear. resetting"
            said.append(warning(where, text))
    value = Adverts(
        garp_master_delay=delay,
        garp_master_repeat=repeat,
        garp_master_refresh=inherit(vrrp.garp_master_refresh, default=g.vrrp_garp_master_refresh),
        garp_master_refresh_repeat=inherit(
            vrrp.garp_master_refresh_repeat, default=g.vrrp_garp_master_refresh_repeat
        ),
        garp_lower_prio_delay=0
        if is_strict
        else inherit(vrrp.garp_lower_prio_delay, g.vrrp_garp_lower_prio_delay, default=delay),
        garp_lower_prio_repeat=0
        if is_strict
        else inherit(vrrp.garp_lower_prio_repeat, g.vrrp_garp_lower_prio_repeat, default=repeat),
        lower_prio_no_advert=is_strict
        or inherit(vrrp.lower_prio_no_advert, g.vrrp_lower_prio_no_advert, default=False),
        higher_prio_send_advert=not is_strict
        and inherit(vrrp.higher_prio_send_advert, g.vrrp_higher_prio_send_advert, default=False),
    )
    return value, said


def accept(g: GlobalDefs, vrrp: VrrpInstance, ver: int) -> tuple[bool, list[Diagnostic]]:
    """keepalived's `accept`: unset, true for the address owner, else !strict; strict
    VRRPv2 cannot accept (RFC 3768 has no Accept_Mode). (The machine's Accept_Mode is
    true for the owner whatever this says: InstanceParams.accept_mode.)"""
    owner = effective_priority(vrrp) == OWNER_PRIORITY
    is_strict = strict(g, vrrp)
    if vrrp.accept is None:
        return owner or not is_strict, []
    if vrrp.accept and not owner and is_strict and ver == 2:
        text = (
            f"({vrrp.name}) warning - accept mode for VRRP version 2 does not comply with "
            "RFC3768 - resetting"
        )
        return False, [warning(vrrp.where, text)]
    return vrrp.accept, []


def vmac_xmit_base(g: GlobalDefs, vrrp: VrrpInstance) -> tuple[bool, list[Diagnostic]]:
    """Adverts sent from the VMAC's base interface: only with a VMAC, not in strict mode."""
    name, where = f"({vrrp.name})", vrrp.where
    if not vrrp.vmac_xmit_base:
        return False, []
    if vrrp.use_vmac is None:
        return False, [warning(where, f"{name} vmac_xmit_base is only valid with a vmac")]
    if strict(g, vrrp):
        return False, [
            warning(where, f"{name} xmit_base is incompatible with strict mode - resetting")
        ]
    return True, []


def notify_priority_changes(g: GlobalDefs, vrrp: VrrpInstance, group: VrrpSyncGroup | None) -> bool:
    """The instance's, else its sync group's, else global_defs'."""
    from_group = group.notify_priority_changes if group is not None else None
    return inherit(vrrp.notify_priority_changes, from_group, default=g.vrrp_notify_priority_changes)


def quorum_max(proc: VrrpTrackProcess) -> tuple[int | None, list[Diagnostic]]:
    """vrrp_track_process quorum_max: keepalived drops one below quorum, except 0 with
    the default quorum ("fail if the process runs at all")."""
    value, quorum = proc.quorum_max, proc.quorum
    if value is not None and value < quorum and not (value == 0 == quorum - 1):
        text = f"({proc.name}) quorum_max {value} < quorum {quorum} - ignoring"
        return None, [warning(proc.where, text)]
    return value, []
