"""Names of routing tables and route protocols, read as keepalived 2.2.7 reads them
(lib/rttables.c find_entry): a number (C strtoul, base 0: `0x64` too) is used as it is;
a name is looked up in /etc/iproute2/rt_tables (rt_protos), two words a line, then in
keepalived's built-in defaults. keepalived 2.2.7 reads only those files, not the
`.d` directories beside them, and neither does fastha.
"""

from __future__ import annotations

import os

IPROUTE2_DIR = "/etc/iproute2"

RT_TABLE_MAX = 0xFFFFFFFF
TABLE_DEFAULTS = {"default": 253, "main": 254, "local": 255}
PROTO_DEFAULTS = {
    "none": 0,
    "redirect": 1,
    "kernel": 2,
    "boot": 3,
    "static": 4,
    "gated": 8,
    "ra": 9,
    "mrt": 10,
    "zebra": 11,
    "bird": 12,
    "babel": 42,
    "dnrouted": 13,
    "xorp": 14,
    "ntk": 15,
    "dhcp": 16,
}
# rtnetlink.h RTPROT_KEEPALIVED: what keepalived installs its tracked routes and rules with.
RTPROT_KEEPALIVED = 18


def _number(word: str) -> int | None:
    text = word.strip(" \t")
    if not text or text[0] in "+-":
        return None
    try:
        if text.lower().startswith("0x"):
            return int(text, 16)
        if text.startswith("0") and len(text) > 1:
            return int(text, 8)
        return int(text, 10)
    except ValueError:
        return None


def _read(name: str, limit: int) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        with open(os.path.join(IPROUTE2_DIR, name), encoding="utf-8", errors="replace") as fh:
            for line in fh:
                words = line.split("#", 1)[0].split()
                if len(words) != 2:
                    continue
                number = _number(words[0])
                if number is not None and number <= limit:
                    out.setdefault(words[1], number)
    except OSError:
        pass
    return out


def _find(word: str, file: str, defaults: dict[str, int], limit: int) -> int | None:
    number = _number(word)
    if number is not None:
        return number if number <= limit else None
    table = _read(file, limit)
    taken = set(table.values())
    for name, value in defaults.items():  # keepalived adds a default whose id is not used
        if value not in taken:
            table.setdefault(name, value)
    return table.get(word)


def table_id(word: str) -> int | None:
    """`table WORD` -> the table's number, or None if keepalived would not find it."""
    return _find(word, "rt_tables", TABLE_DEFAULTS, RT_TABLE_MAX)


def protocol_id(word: str) -> int | None:
    """`protocol WORD` -> the route protocol's number (0-255), or None."""
    return _find(word, "rt_protos", PROTO_DEFAULTS, 255)
