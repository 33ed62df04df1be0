"""A master's ARP/ND defence of its VIPs: which claims to answer, and when.

A node that was master for a moment (our adverts lost on the way to it) may have
pointed hosts' ARP caches at itself, and we may never have heard its advert: the
master announces again, one advert interval after the first claim, so that its burst
lands after the rest of the claimer's burst, and a lower-priority master that hears
ours has had an interval to hear our advert and step down instead of answering.
Claims while the answer is pending are absorbed in it.

The answer announces only the addresses claimed (a claim for one VIP must not make us
re-announce all of them: a cheap amplifier on the segment), and a MAC that keeps
claiming is answered less and less often: after an answer, none for its claims for one
interval, then 2, 4 ... up to CLAIM_BACKOFF_MAX intervals; a MAC quiet for as long as
its back-off starts again at one. `fsm.Machine` owns one `Defence` and arms the timer.
"""

from __future__ import annotations

# The longest back-off for one claiming MAC, in advert intervals, and how many
# claiming MACs are remembered.
CLAIM_BACKOFF_MAX = 64
CLAIMERS_MAX = 256


class Defence:
    __slots__ = ("_claimers", "_defend")

    def __init__(self) -> None:
        # The claimed VIPs the pending answer announces, and per claiming MAC
        # (until_ns, backoff_ns): no new answer for it before until_ns.
        self._defend: set[str] = set()
        self._claimers: dict[str, tuple[int, int]] = {}

    def claim(self, address: str, mac: str, now_ns: int, interval_ns: int) -> bool:
        """Record a claim; False when `mac` is still in its back-off (ignored)."""
        seen = self._claimers.get(mac)
        if seen is not None and now_ns < seen[0]:
            return False
        if seen is None or now_ns - seen[0] >= seen[1]:
            backoff = interval_ns
        else:
            backoff = min(2 * seen[1], CLAIM_BACKOFF_MAX * interval_ns)
        self._claimers.pop(mac, None)
        if len(self._claimers) >= CLAIMERS_MAX:
            # Many MACs (spoofed ones cost an attacker nothing): forget the oldest.
            del self._claimers[next(iter(self._claimers))]
        self._claimers[mac] = (now_ns + backoff, backoff)
        self._defend.add(address)
        return True

    def take(self) -> tuple[str, ...]:
        """The addresses the answer due now announces (then none are pending)."""
        addresses = tuple(sorted(self._defend))
        self._defend.clear()
        return addresses

    def clear(self) -> None:
        self._defend.clear()
        self._claimers.clear()
