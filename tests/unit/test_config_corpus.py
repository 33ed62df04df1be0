"""The keepalived.conf corpus: golden models, and verdicts that agree with keepalived -t.

tests/golden/config/NAME.conf are real-world-style configurations; NAME.json is
`fastha check-config -f NAME.conf --dump` (NAME@ID.json with `-i ID`). Regenerate with

    FASTHA_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_config_corpus.py

and review the diff by eye: the defaults in it are the point of the review.

tests/golden/config/broken/*.conf fail on purpose (their expected diagnostics are
checked in test_config_errors.py). Every configuration, good or broken, is also run
through Debian's `keepalived -t` (2.2.7), and fastha's exit code must be the same,
except for the differences listed in KNOWN_DIFFERENCES with their reason.

The corpus uses the interfaces `lo` and `eth0`, which exist on the developers' machines
and in CI; keepalived and fastha both warn (exit 5) about an interface that is missing.
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest
from tests.support import keepalived
from tests.support.prereq import need_tool

CORPUS = Path(__file__).resolve().parents[1] / "golden" / "config"
BROKEN = CORPUS / "broken"
UPDATE = os.environ.get("FASTHA_UPDATE_GOLDEN", "") not in ("", "0")

# Which `-i` values each file is checked with (None: no -i, the default config-id is
# then the host name). Files that use ${_INSTANCE} pin an id so golden output does not
# depend on the machine's name.
CONFIG_IDS: dict[str, tuple[str | None, ...]] = {
    "conditional_ids.conf": (None, "lb-a", "lb-b"),
    "macros.conf": ("lb-gold",),
}

# Good configurations keepalived 2.2.7 -t accepts with warnings only (exit 5); the
# warning is the point of the file.
EXPECTED_WARNINGS: dict[str, str] = {
    "deprecated_spellings.conf": "lvs_sync_daemon_interface/nb_get_retry are deprecated, "
    "nat_mask is gone (unknown keyword)",
    "sync_group_legacy.conf": "global_tracking and lvs_sync_daemon_interface are deprecated, "
    "lvs_id is gone (unknown keyword)",
}

# (file, config-id) -> why fastha's exit code differs from keepalived 2.2.7's on purpose.
KNOWN_DIFFERENCES: dict[tuple[str, str | None], str] = {}

# (file, config-id) -> a fastha bug that makes its verdict differ from keepalived's; kept
# here (and reported) so the suite stays green while the owner fixes it. The test fails
# once the two agree, so the entry cannot go stale.
FASTHA_BUGS: dict[tuple[str, str | None], str] = {}


def _variants(paths: list[Path]) -> list[tuple[Path, str | None]]:
    out = []
    for path in paths:
        for cid in CONFIG_IDS.get(path.name, (None,)):
            out.append((path, cid))
    return out


def _id(variant: tuple[Path, str | None]) -> str:
    path, cid = variant
    name = str(path.relative_to(CORPUS))
    return name if cid is None else f"{name}@{cid}"


GOOD = _variants(sorted(CORPUS.glob("*.conf")))
ALL = GOOD + _variants(sorted(BROKEN.glob("*.conf")))


def golden_path(path: Path, cid: str | None) -> Path:
    return path.with_name(path.stem + ("" if cid is None else f"@{cid}") + ".json")


@pytest.mark.unit
def test_corpus_is_big_enough() -> None:
    assert len(list(CORPUS.glob("*.conf"))) >= 15
    assert len(list(BROKEN.glob("*.conf"))) >= 5


@pytest.mark.unit
def test_every_golden_has_its_config() -> None:
    """A golden file whose config was renamed or removed is stale."""
    wanted = {golden_path(p, cid).name for p, cid in GOOD}
    present = {p.name for p in CORPUS.glob("*.json")}
    assert present <= wanted, f"stale golden files: {sorted(present - wanted)}"


@pytest.mark.unit
@pytest.mark.parametrize("variant", GOOD, ids=_id)
def test_golden_model(variant: tuple[Path, str | None]) -> None:
    from fastha.config.dump import dumps
    from fastha.config.loader import load

    path, cid = variant
    result = load(path, cid)
    assert result.config is not None, [str(d) for d in result.diagnostics]
    assert not result.errors, [str(d) for d in result.errors]
    got = dumps(result.config) + b"\n"
    gold = golden_path(path, cid)
    if UPDATE or not gold.exists():
        if not UPDATE:
            pytest.fail(f"{gold.name} missing: run with FASTHA_UPDATE_GOLDEN=1 and review it")
        gold.write_bytes(got)
        return
    assert orjson.loads(got) == orjson.loads(gold.read_bytes()), (
        f"{gold.name} differs: if the change is right, regenerate with FASTHA_UPDATE_GOLDEN=1"
    )


@pytest.mark.unit
@pytest.mark.keepalived
@pytest.mark.parametrize("variant", ALL, ids=_id)
def test_verdict_agrees_with_keepalived(variant: tuple[Path, str | None]) -> None:
    from fastha.config.loader import load

    binary = need_tool("keepalived")
    path, cid = variant
    ka = keepalived.check(path, cid, binary=binary)
    ours = load(path, cid)
    mine = int(ours.exit_code)
    ka_report = "\n".join(ka.messages) or "(nothing)"
    our_report = "\n".join(str(d) for d in ours.diagnostics) or "(nothing)"
    key = (str(path.relative_to(CORPUS)), cid)
    for listed in (KNOWN_DIFFERENCES, FASTHA_BUGS):
        if key in listed:
            assert mine != ka.returncode, (
                f"{_id(variant)} now agrees with keepalived (exit {mine}): "
                f"drop it from the list ({listed[key]})"
            )
            return
    assert mine == ka.returncode, (
        f"{_id(variant)}: fastha exit {mine}, keepalived -t exit {ka.returncode}\n"
        f"--- keepalived says:\n{ka_report}\n--- fastha says:\n{our_report}"
    )
    if path.parent == CORPUS and path.name not in EXPECTED_WARNINGS:
        assert ka.returncode == 0, f"good config rejected by keepalived:\n{ka_report}"


@pytest.mark.unit
@pytest.mark.keepalived
@pytest.mark.parametrize("variant", ALL, ids=_id)
def test_check_config_cli_agrees_with_keepalived(variant: tuple[Path, str | None]) -> None:
    """`fastha check-config` exits as keepalived -t, every line `file:line: severity: ...`."""
    from click.testing import CliRunner

    from fastha.cli.check_config import command

    binary = need_tool("keepalived")
    path, cid = variant
    key = (str(path.relative_to(CORPUS)), cid)
    if key in KNOWN_DIFFERENCES or key in FASTHA_BUGS:
        pytest.skip("listed difference (see test_verdict_agrees_with_keepalived)")
    ka = keepalived.check(path, cid, binary=binary)
    args = ["-f", str(path)] + (["-i", cid] if cid is not None else [])
    result = CliRunner().invoke(command, args)
    assert result.exit_code == ka.returncode, result.stderr
    for line in result.stderr.splitlines():
        if line.endswith(": configuration OK"):
            continue
        place, severity, _ = line.split(": ", 2)
        assert severity in ("error", "warning"), line
        assert Path(place.rsplit(":", 1)[0]).exists(), line
