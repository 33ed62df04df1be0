"""keepalived 2.2.7's command line under `fastha daemon`: each option means what it means
to keepalived or is refused by name, and the exit codes are keepalived's.

Where the two can be run side by side without starting a daemon (-v, --signum, -t,
-e, a missing file, a bad option), the same command runs under both and the test
compares: keepalived (Debian's /usr/sbin/keepalived) is the oracle. A daemon that did
start by mistake would be in an empty network namespace (unshare -n) with its files in
tmp, and is killed by its pid.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from tests.support.prereq import need_tool

from fastha.cli.daemon import getopt_args

pytestmark = pytest.mark.unit

GOOD = "global_defs {\n    router_id x\n}\n"
ERRORS = "global_defs {\n    vrrp_version 9\n}\n"


def run(impl: str, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """One command line under keepalived or `fastha daemon`, in an empty network
    namespace, pid files in tmp."""
    if impl == "keepalived":
        cmd = [need_tool("keepalived")]
    else:
        cmd = [sys.executable, "-m", "fastha.cli.main", "daemon"]
    pids = ["-p", str(tmp / "p.pid"), "-r", str(tmp / "r.pid"), "-c", str(tmp / "c.pid")]
    full = [need_tool("unshare"), "-n", *cmd, *args, *(pids if "-n" in args else [])]
    proc = subprocess.Popen(full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"{full} did not exit: it started a daemon\n{err}") from None
    return subprocess.CompletedProcess(full, proc.returncode, out, err)


both = pytest.mark.parametrize(
    "impl", [pytest.param("keepalived", marks=pytest.mark.keepalived), "fastha"]
)


@pytest.mark.parametrize(
    ("argv", "parsed"),
    [
        (["-nlP"], ["-n", "-l", "-P"]),
        (["-fFILE", "-D"], ["--use-file=FILE", "-D"]),
        (["-f", "-x"], ["--use-file=-x"]),  # getopt takes the next word, whatever it is
        (["-nf", "FILE"], ["-n", "--use-file=FILE"]),
        (["-t"], ["--config-test="]),
        (["-tLOG", "-f", "F"], ["--config-test=LOG", "--use-file=F"]),
        (["-t", "F"], ["--config-test=", "F"]),  # an optional value is only ever attached
        (["--config-test"], ["--config-test="]),
        (["--config-test=LOG"], ["--config-test=LOG"]),
        (["-lt"], ["-l", "--config-test="]),
        (["--use-file", "F"], ["--use-file", "F"]),
        (["--", "-n"], ["--", "-n"]),
    ],
)
def test_getopt_parsing(argv: list[str], parsed: list[str]) -> None:
    assert getopt_args(argv) == parsed


@both
@pytest.mark.parametrize(
    ("name", "number"), [("STOP", 15), ("RELOAD", 1), ("DATA", 10), ("STATS", 12)]
)
def test_signum(impl: str, name: str, number: int, tmp_path: Path) -> None:
    r = run(impl, tmp_path, f"--signum={name}")
    assert (r.returncode, r.stdout) == (0, f"{number}\n")


@both
def test_signum_json_and_unknown(impl: str, tmp_path: Path) -> None:
    import signal

    r = run(impl, tmp_path, "--signum=JSON")
    assert (r.returncode, r.stdout) == (0, f"{signal.SIGRTMIN + 2}\n")
    r = run(impl, tmp_path, "--signum=NOSUCH")
    assert r.returncode == 1 and r.stderr.strip() == "Unknown sigfunc NOSUCH"


@both
def test_signum_stats_clear(impl: str, tmp_path: Path) -> None:
    """keepalived's SIGRTMAX-1, which both daemons handle (the counters are written, then
    cleared: tests/conformance's signals scenario)."""
    import signal

    r = run(impl, tmp_path, "--signum=STATS_CLEAR")
    assert (r.returncode, r.stdout) == (0, f"{signal.SIGRTMAX - 1}\n")


@both
def test_version_layout(impl: str, tmp_path: Path) -> None:
    """What tools parse from keepalived -v: stderr, `NAME vVERSION (...)` first, then a
    blank line; `Running on` and `Config options:` lines."""
    r = run(impl, tmp_path, "-v")
    assert r.returncode == 0 and r.stdout == ""
    lines = r.stderr.splitlines()
    assert re.fullmatch(r"\w+ v\d+\.\d+\.\d+\S* \(.+\)", lines[0]), lines[0]
    assert lines[1] == ""
    assert any(ln.startswith("Running on Linux ") for ln in lines)
    options = [ln for ln in lines if ln.startswith("Config options:")]
    assert options and "VRRP" in options[0].split() and "LVS" in options[0].split()


@both
def test_missing_file_at_start_exits_6(impl: str, tmp_path: Path) -> None:
    r = run(impl, tmp_path, "-n", "-l", "-f", str(tmp_path / "missing.conf"))
    assert r.returncode == 6, r.stderr


@both
def test_bad_option_exits_1(impl: str, tmp_path: Path) -> None:
    r = run(impl, tmp_path, "-Z", "-t", "-f", str(tmp_path / "missing.conf"))
    assert r.returncode == 1
    assert "-Z" in r.stderr


@both
def test_config_test_to_a_log_file(impl: str, tmp_path: Path) -> None:
    conf = tmp_path / "k.conf"
    conf.write_text(ERRORS)
    log = tmp_path / "test.log"
    r = run(impl, tmp_path, f"-t{log}", "-f", str(conf))
    assert r.returncode == 5
    assert "vrrp_version" in log.read_text() or "9" in log.read_text()
    assert r.stderr == ""
    log.unlink()
    r = run(impl, tmp_path, f"--config-test={log}", "-f", str(conf))
    assert r.returncode == 5 and log.read_text()
    conf.write_text(GOOD)
    assert run(impl, tmp_path, "-t", "-f", str(conf)).returncode == 0


@both
def test_all_config_makes_a_missing_include_fatal(impl: str, tmp_path: Path) -> None:
    conf = tmp_path / "k.conf"
    conf.write_text(GOOD + f"include {tmp_path}/none.conf\n")
    assert run(impl, tmp_path, "-t", "-f", str(conf)).returncode == 0
    assert run(impl, tmp_path, "-e", "-t", "-f", str(conf)).returncode == 6
    conf.write_text(GOOD + f"includem {tmp_path}/none.conf\n")
    assert run(impl, tmp_path, "-t", "-f", str(conf)).returncode == 6


def test_config_errors_at_start_exit_2(tmp_path: Path) -> None:
    """keepalived's KEEPALIVED_EXIT_CONFIG; fastha finds them before any child runs."""
    conf = tmp_path / "k.conf"
    conf.write_text("vrrp_instance VI_1 {\n    interface lo\n    virtual_router_id 300\n}\n")
    r = run("fastha", tmp_path, "-n", "-l", "-f", str(conf))
    assert r.returncode == 2, r.stderr
    assert "configuration has errors" in r.stderr


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (["-X"], "-X/--release-vips"),
        (["-T"], "-T/--genhash"),
        (["-Asock"], "-A/--snmp-agent-socket"),
        (["-M"], "-M/--core-dump-pattern"),
        (["--core-dump-pattern=core"], "-M/--core-dump-pattern"),
        (["--config-fd=3"], "--config-fd"),
        (["-glog"], "-g/--log-file"),
        (["-x"], "-x/--snmp"),
        (["-a"], "-a/--address-monitoring"),
        (["-m"], "-m/--core-dump"),
    ],
)
def test_unsupported_options_are_refused_by_name(
    args: list[str], name: str, tmp_path: Path
) -> None:
    r = run("fastha", tmp_path, *args, "-f", str(tmp_path / "missing.conf"))
    assert r.returncode == 1
    assert f"keepalived's {name} is not supported by fastha" in r.stderr


def test_accepted_options(tmp_path: Path) -> None:
    """-B/-b (no BFD child, ever), --all and -D with -t check and exit as plain -t."""
    conf = tmp_path / "k.conf"
    conf.write_text(GOOD)
    r = run("fastha", tmp_path, "-B", "-b", str(tmp_path / "b.pid"), "--all", "-DD", "-t",
            "-f", str(conf))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "b.pid").exists()
