"""FILE_CHECK on a track_file (keepalived check_file.c / track_file): the file holds an
integer (missing or unreadable: 0). With weight 0 any non-zero value is a failure
(`reverse`: any zero value); otherwise the server's weight moves by value * weight
(subtracted with `reverse`). `dynamic` sets the server's weight to the value."""

from __future__ import annotations

from fastha.check.health import IPVS_WEIGHT_MAX, Outcome
from fastha.check.spec import FileSpec
from fastha.drivers.files import read_small
from fastha.probes import ProbeContext


def read_value(path: str) -> int:
    # Non-blocking, no symlink, regular files only (read_small): a FIFO put there must
    # not hang the checker's loop; anything else reads as 0, as a missing file does.
    try:
        text = read_small(path, 64).split()
        return int(text[0]) if text else 0
    except (OSError, ValueError):
        return 0


def outcome_of(spec: FileSpec, value: int) -> Outcome:
    if spec.dynamic:
        return Outcome(True, weight=max(0, min(IPVS_WEIGHT_MAX, value)))
    if spec.weight == 0:
        failed = (value != 0) != spec.reverse
        return Outcome(not failed, f"{spec.path} = {value}" if failed else "", offset=0)
    return Outcome(True, offset=value * spec.weight * (-1 if spec.reverse else 1))


async def probe(spec: FileSpec, ctx: ProbeContext) -> Outcome:
    # A small local file: reading it inline is cheaper than a thread hop.
    return outcome_of(spec, read_value(spec.path))
