"""Which SMTP alerts the children send, and when (keepalived's rules).

Who asks for mail (keepalived vrrp_parser.c / check_parser.c, default off):

- a VRRP instance: its own `smtp_alert`, else global `smtp_alert_vrrp`, else global
  `smtp_alert`; a sync group the same way. An instance whose group sends alerts does
  not send its own (vrrp_notify.c: the group's mail stands for its members).
- a virtual server: its own `smtp_alert`, else global `smtp_alert_checker`, else global
  `smtp_alert`; a real server: its own, else its virtual server's.

Mail goes only with `smtp_server` and `notification_email` set (fastha.drivers.smtp). The
sending is fire-and-forget on the child's loop: a slow or dead SMTP server never delays
an advert or a probe.

    VrrpAlerts(config).transition(inst, State.MASTER)        # from the VRRP runner
    CheckerAlerts(config, health).observe(health, {vi, ...}) # after health actions
"""

from __future__ import annotations

import logging
from typing import Any

from fastha.drivers.smtp import SmtpAlerts

log = logging.getLogger("fastha.smtp")

_MAIL_STATES = {"MASTER", "BACKUP", "FAULT", "STOP"}


def _pick(*values: bool | None) -> bool:
    for v in values:
        if v is not None:
            return bool(v)
    return False


class _Base:
    def __init__(self) -> None:
        self.smtp: SmtpAlerts | None = None
        self._old: list[SmtpAlerts] = []  # replaced by a reload, draining

    def _settings(self, config: Any) -> None:
        new = SmtpAlerts.from_config(config.global_defs)
        if self.smtp is not None and (new is None or new.settings != self.smtp.settings):
            self._old.append(self.smtp)
        if new is not None and self.smtp is not None and new.settings == self.smtp.settings:
            return  # keep the counters and the mails in flight
        self.smtp = new

    @property
    def sent(self) -> int:
        return sum(s.sent for s in (*self._old, *([self.smtp] if self.smtp else [])))

    @property
    def failed(self) -> int:
        return sum(s.failed for s in (*self._old, *([self.smtp] if self.smtp else [])))

    async def drain(self, timeout: float) -> None:
        """On stop: let the last mails (the "Stopping" ones) go, within `timeout`."""
        for s in (*self._old, *([self.smtp] if self.smtp else [])):
            await s.drain(timeout)


class VrrpAlerts(_Base):
    def __init__(self, config: Any) -> None:
        super().__init__()
        self.instances: dict[str, bool] = {}
        self.groups: dict[str, bool] = {}
        self.group_sent: dict[str, str] = {}  # group -> state last mailed
        self.configure(config)

    def configure(self, config: Any) -> None:
        self._settings(config)
        g = config.global_defs
        self.instances = {
            i.name: _pick(i.smtp_alert, g.smtp_alert_vrrp, g.smtp_alert)
            for i in config.vrrp_instances
        }
        self.groups = {
            sg.name: _pick(sg.smtp_alert, g.smtp_alert_vrrp, g.smtp_alert)
            for sg in config.vrrp_sync_groups
        }

    def transition(self, inst: Any, new_state: Any) -> None:
        """An instance entered `new_state` (a State): mail for it, or for its group once
        the whole group is there."""
        if self.smtp is None:
            return
        state = getattr(new_state, "name", str(new_state))
        if state not in _MAIL_STATES:
            return
        group = getattr(inst, "group", None)
        if group is not None and self.groups.get(group.name):
            group_state = getattr(group.state, "name", str(group.state))
            if group_state == state and self.group_sent.get(group.name) != state:
                self.group_sent[group.name] = state
                self.smtp.vrrp_group(group.name, state)
            return
        if self.instances.get(inst.name):
            self.smtp.vrrp(inst.name, state)


def rs_mail_body(probe: Any, up: bool) -> str:
    """The body of a real server's mail: the wording of the checker that decided it
    (check_tcp.c, check_udp.c, check_ping.c, check_dns.c, check_misc.c, check_http.c,
    check_smtp.c)."""
    # Here, not at the top: the VRRP child imports this module and never checks.
    from fastha.check.spec import DnsSpec, MiscSpec, PingSpec, TcpSpec, UdpSpec

    word = "succeed" if up else "failed"
    if isinstance(probe, TcpSpec):
        return f"=> TCP CHECK {word} on service <="
    if isinstance(probe, UdpSpec):
        return f"=> UDP CHECK {word} on service <="
    if isinstance(probe, PingSpec):
        return f"=> ICMP CHECK {word} on service <="
    if isinstance(probe, DnsSpec):
        return f"=> DNS_CHECK: {word} on service <="
    if isinstance(probe, MiscSpec):
        return f"=> MISC CHECK {'succeeded' if up else 'failed'} on service <="
    if up:
        return "=> CHECK succeed on service <="
    if type(probe).__name__ in ("HttpSpec", "TlsSpec"):
        return "=> CHECK failed on service : HTTP request failed <="
    return "=> CHECK failed on service <="


def quorum_mail_body(plan: Any, was_up: bool, now_up: bool, weight_sum: int, init: bool) -> str:
    """keepalived do_vs_notifies: the threshold is the one the change was measured
    against (quorum + hysteresis to gain it, quorum - hysteresis to lose it)."""
    threshold = plan.quorum + (-1 if was_up else 1) * plan.hysteresis
    if init:
        word = "Starting with quorum up" if now_up else "Starting with quorum down"
    else:
        word = "Gained quorum" if now_up else "Lost quorum"
    return f"=> {word} {plan.quorum}+{plan.hysteresis}={threshold} <= {weight_sum} <="


class CheckerAlerts(_Base):
    """Real server UP/DOWN and quorum mails, found by comparing the health model with
    what was last seen, only for the virtual servers an action touched (plus those
    without quorum, where a sorry server hides real server changes from `Changed`)."""

    def __init__(self, config: Any, health: Any) -> None:
        super().__init__()
        self.vs_flags: list[bool] = []
        self.rs_flags: list[list[bool]] = []
        self.seen_alive: list[list[bool]] = []
        self.seen_quorum: list[bool] = []
        self.configure(config, health)
        # At start keepalived evaluates every virtual server's quorum from "down"
        # (init_service_vs): "Starting with quorum up" (or down, with a sorry server).
        self.seen_quorum = [False] * len(self.seen_quorum)
        self.initial: set[int] = set(range(len(self.seen_quorum)))

    @property
    def enabled(self) -> bool:
        return self.smtp is not None and any(any(r) for r in self.rs_flags)

    def configure(self, config: Any, health: Any) -> None:
        """A (re)loaded config: flags from it, the current health as the baseline (a
        reload sends no mail for state it carried over)."""
        self._settings(config)
        g = config.global_defs
        self.vs_flags, self.rs_flags = [], []
        for vs in config.virtual_servers:
            flag = _pick(vs.smtp_alert, g.smtp_alert_checker, g.smtp_alert)
            self.vs_flags.append(flag)
            self.rs_flags.append([_pick(rs.smtp_alert, flag) for rs in vs.real_servers])
        self.seen_alive = [[r.alive for r in v.servers] for v in health.vss]
        self.seen_quorum = [v.quorum_up for v in health.vss]

    def observe(self, health: Any, touched: set[int]) -> None:
        assert self.smtp is not None
        vis = set(touched)
        vis.update(vi for vi, up in enumerate(self.seen_quorum) if not up)
        for vi in sorted(vis):
            if vi >= len(health.vss) or vi >= len(self.rs_flags):
                continue
            v = health.vss[vi]
            p = v.plan
            for ri, r in enumerate(v.servers):
                if r.alive != self.seen_alive[vi][ri]:
                    self.seen_alive[vi][ri] = r.alive
                    if self.rs_flags[vi][ri]:
                        rs = f"[{r.key.address}]:{p.protocol}:{r.key.port}"
                        self.smtp.real_server(rs, p.name, up=r.alive, body=self._rs_body(health, r))
            init = vi in self.initial
            self.initial.discard(vi)
            was = self.seen_quorum[vi]
            changed = v.quorum_up != was
            if changed or (init and p.sorry_server is not None):
                self.seen_quorum[vi] = v.quorum_up
                if self.vs_flags[vi]:
                    body = quorum_mail_body(p, was, v.quorum_up, v.weight_sum(), init)
                    self.smtp.virtual_server(p.name, "UP" if v.quorum_up else "DOWN", body)

    @staticmethod
    def _rs_body(health: Any, r: Any) -> str | None:
        """The checker that decided: the first one down, else the first one."""
        checks = [health.checks[c] for c in r.plan.checks]
        if not checks:
            return None
        down = [c for c, cid in zip(checks, r.plan.checks, strict=True)
                if not health.checkers[cid].up]  # fmt: skip  # the comprehension reads as one clause
        return rs_mail_body((down or checks)[0].probe, r.alive)
