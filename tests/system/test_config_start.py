"""Start where keepalived starts (issue 14): keepalived 2.2.7 itself is the oracle.

keepalived runs with most bad values, each replaced by its fallback, and stops only on a
few (a keyword without its parameter; its VRRP child's CONFIG exits). For every config
of the corpus (tests/golden/config, its broken/ and fallback/ directories) keepalived is
started for real in a namespace (tests.support.keepalived_start), and fastha's start-up
verdict (`load().startable`, what `fastha daemon` starts with) must be the same; for the
fallback configs the values keepalived dumps (`-d`) must be the values fastha's VRRP
child is built with (`vrrp_spec`), and `keepalived -t`'s exit code fastha check-config's.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support import keepalived
from tests.support.keepalived_start import StartResult, start, starts
from tests.support.prereq import need_root, need_tool

pytestmark = [pytest.mark.system, pytest.mark.keepalived]

CORPUS = Path(__file__).resolve().parents[1] / "golden" / "config"
FALLBACK = CORPUS / "fallback"
CONFIGS = sorted(
    [*CORPUS.glob("*.conf"), *(CORPUS / "broken").glob("*.conf"), *FALLBACK.glob("*.conf")]
)


def _name(path: Path) -> str:
    return str(path.relative_to(CORPUS))


@pytest.fixture(scope="module")
def keepalived_verdicts() -> dict[Path, tuple[bool, str]]:
    """Every corpus config started under keepalived (4 at a time)."""
    need_root()
    need_tool("keepalived")
    need_tool("ip")

    def one(path: Path) -> tuple[bool, str]:
        return starts(path, checker="virtual_server" in path.read_text(errors="replace"))

    with ThreadPoolExecutor(4) as pool:
        return dict(zip(CONFIGS, pool.map(one, CONFIGS), strict=True))


@pytest.mark.parametrize("path", CONFIGS, ids=_name)
def test_starts_where_keepalived_starts(
    path: Path, keepalived_verdicts: dict[Path, tuple[bool, str]]
) -> None:
    from fastha.config.loader import load

    ka_runs, ka_log = keepalived_verdicts[path]
    ours = load(path)
    report = "\n".join(str(d) for d in ours.diagnostics) or "(nothing)"
    assert ours.startable == ka_runs, (
        f"{_name(path)}: keepalived {'runs' if ka_runs else 'does not run'}, fastha's daemon "
        f"{'would start' if ours.startable else 'refuses'}\n--- fastha says:\n{report}\n"
        f"--- keepalived logged:\n{ka_log[-4000:]}"
    )


@pytest.mark.parametrize("path", sorted(FALLBACK.glob("*.conf")), ids=_name)
def test_fallback_config_exit_code_is_keepalived_t(path: Path) -> None:
    from fastha.config.loader import load

    ka = keepalived.check(path, binary=need_tool("keepalived"))
    assert int(load(path).exit_code) == ka.returncode, "\n".join(ka.messages)


def _instance_values(result: StartResult, name: str) -> dict[str, str]:
    dump = result.section("VRRP Instance", name)
    return {k: dump[k] for k in ("Priority", "Wantstate", "Gratuitous ARP repeat",
                                  "Gratuitous ARP refresh repeat", "Authentication type",
                                  "Send advert after receive lower priority advert",
                                  "Gratuitous ARP delay", "Down timer adverts")
            if k in dump}  # fmt: skip


def _script_values(result: StartResult, name: str) -> dict[str, str]:
    dump = result.section("VRRP Script", name)
    return {k: dump[k] for k in ("Interval", "Rise", "Fall") if k in dump}


# keepalived's dump of the auth type (vrrp_data.c dump_vrrp) by its wire value.
_AUTH_NAMES = {0: "none", 1: "SIMPLE_PASSWORD", 2: "IPSEC_AH"}


def _fastha_values(path: Path) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """The same fields, from what fastha's VRRP child is built with."""
    from fastha.config.loader import load
    from fastha.runtime.vrrp.from_config import vrrp_spec

    result = load(path)
    assert result.startable, [str(d) for d in result.diagnostics]
    spec = vrrp_spec(result.config)
    instances = {
        i.name: {
            "Priority": str(i.params.priority),
            "Wantstate": i.params.initial_state.name,
            "Gratuitous ARP repeat": str(i.params.garp_master_repeat),
            "Gratuitous ARP refresh repeat": str(i.params.garp_master_refresh_repeat),
            "Gratuitous ARP delay": str(i.params.garp_master_delay_ns // 10**9),
            "Down timer adverts": str(i.params.down_timer_adverts),
            "Send advert after receive lower priority advert": str(
                not (
                    i.params.lower_prio_no_advert
                    if i.params.lower_prio_no_advert is not None
                    else i.params.strict
                )
            ).lower(),
            **({"Authentication type": _AUTH_NAMES[i.auth_type]} if i.params.version == 2 else {}),
        }
        for i in spec.instances
    }
    scripts = {
        s.name: {"Interval": f"{s.interval_s:g} sec", "Rise": str(s.rise), "Fall": str(s.fall)}
        for s in spec.scripts.values()
    }
    return instances, scripts


FALLBACK_VRRP = """
vrrp_script chk {
    script "/bin/true"
    interval 0
    rise 2y
    fall abc
}
vrrp_instance VI_1 {
    state master
    interface eth0
    virtual_router_id 51
    priority 150,abc
    garp_master_repeat 0
    garp_master_refresh_repeat 4z
    track_script {
        chk
    }
    virtual_ipaddress {
        198.18.0.10/24
    }
}
vrrp_instance VI_2 {
    state MASTER
    interface eth0
    virtual_router_id 52
    priority 300
    virtual_ipaddress {
        198.18.0.11/24
    }
}
vrrp_instance VI_3 {
    interface eth0
    virtual_router_id 53
    lower_prio_no_advert True
    garp_master_delay 3x
    down_timer_adverts 5z
    authentication {
        auth_type pass
        auth_pass secret
    }
    virtual_ipaddress {
        198.18.0.12/24
    }
}
"""


@pytest.mark.parametrize(
    "path",
    ["inline", *sorted(p for p in FALLBACK.glob("*.conf") if "vrrp_instance" in p.read_text())],
    ids=lambda p: p if isinstance(p, str) else _name(p),
)
def test_fallback_values_are_keepalived_values(tmp_path: Path, path: Path | str) -> None:
    """Each value keepalived replaces (priority '150,abc' -> 100, state 'master' ->
    BACKUP, garp repeat 0 -> 1, '4z' -> 4, script interval 0 -> 1, rise '2y' -> 2, fall
    'abc' -> 1, priority 300 -> 100 even for MASTER, auth_type 'pass' -> none,
    lower_prio_no_advert 'True' ignored, garp_master_delay '3x' -> 3,
    down_timer_adverts '5z' -> 5) is the
    value fastha runs with."""
    need_root()
    need_tool("keepalived")
    if isinstance(path, str):
        path = tmp_path / "keepalived.conf"
        path.write_text(FALLBACK_VRRP)
    from fastha.config.loader import load

    if not load(path).startable:
        pytest.skip("keepalived does not run this one (test_starts_where_keepalived_starts)")
    ka = start(path, args=("-P",))
    assert ka.runs, ka.log[-3000:]
    instances, scripts = _fastha_values(path)
    assert instances, "no instance"
    for name, ours in instances.items():
        theirs = _instance_values(ka, name)
        assert theirs, f"keepalived dumped no instance {name}:\n{ka.log[-3000:]}"
        assert ours == theirs, name
    for name, ours in scripts.items():
        theirs = _script_values(ka, name)
        assert theirs, f"keepalived dumped no script {name}"
        assert ours == theirs, name


@pytest.fixture(scope="module")
def case_verdicts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[bool, str]]:
    from tests.unit.test_config_keepalived_verdicts import CASES

    need_root()
    need_tool("keepalived")
    base = tmp_path_factory.mktemp("cases")
    paths = []
    for case, (text, _runs) in sorted(CASES.items()):
        path = base / f"{case}.conf"
        path.write_text(text)
        paths.append(path)
    with ThreadPoolExecutor(4) as pool:
        got = pool.map(lambda p: starts(p, checker=False), paths)
        return {p.stem: v for p, v in zip(paths, got, strict=True)}


def test_small_cases_start_as_keepalived_does(case_verdicts: dict[str, tuple[bool, str]]) -> None:
    """The start-up verdicts tests/unit/test_config_keepalived_verdicts.py expects are
    keepalived's own (so that unit test cannot drift from the oracle)."""
    from tests.unit.test_config_keepalived_verdicts import CASES

    wrong = {c: runs for c, (_text, runs) in CASES.items() if case_verdicts[c][0] != runs}
    assert not wrong, {c: case_verdicts[c][1][-1500:] for c in wrong}


@pytest.mark.parametrize(
    "path",
    ["inline", *sorted(p for p in FALLBACK.glob("*.conf") if "vrrp_instance" in p.read_text())],
    ids=lambda p: p if isinstance(p, str) else _name(p),
)
def test_fastha_daemon_starts_where_keepalived_starts(tmp_path: Path, path: Path | str) -> None:
    """The daemon itself (not only the loader's verdict): `fastha daemon -P` on each
    fallback config runs exactly when keepalived -P does."""
    need_root()
    need_tool("keepalived")
    if isinstance(path, str):
        path = tmp_path / "keepalived.conf"
        path.write_text(FALLBACK_VRRP)
    ka = start(path, args=("-P",))
    ours = start(path, args=("-P",), impl="fastha", settle=15.0)
    assert ours.runs == ka.runs, (
        f"keepalived {'runs' if ka.runs else 'stops'}:\n{ka.log[-2000:]}\n"
        f"--- fastha:\n{ours.log[-3000:]}"
    )
    if not ka.runs:
        assert ours.returncode == ka.returncode == 2, ours.log[-2000:]
