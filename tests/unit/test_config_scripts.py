"""Script security as keepalived 2.2.7 -t checks it (validate_scripts.py), on a pinned host.

The file system, users and PATH are fakes, so every case is exact whatever machine runs
the tests; the verdicts were taken from Debian's keepalived 2.2.7 on the same layouts
(the corpus file broken/script_security.conf runs against the real keepalived too).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from fastha.config.diagnostics import ExitCode
from fastha.config.loader import LoadResult, load
from fastha.config.scripts import Flags
from fastha.config.source import Where, where_of
from fastha.config.validate import Host

pytestmark = pytest.mark.unit

DIR = stat.S_IFDIR | 0o755
EXE = stat.S_IFREG | 0o755

# path -> (mode, uid, gid)
FILES: dict[str, tuple[int, int, int]] = {
    "/": (DIR, 0, 0),
    "/usr": (DIR, 0, 0),
    "/usr/bin": (DIR, 0, 0),
    "/usr/bin/true": (EXE, 0, 0),
    "/usr/bin/pgrep": (EXE, 0, 0),
    "/etc": (DIR, 0, 0),
    "/etc/ka": (DIR, 0, 0),
    "/etc/ka/ok.sh": (EXE, 0, 0),
    "/etc/ka/world.sh": (stat.S_IFREG | 0o777, 0, 0),
    "/etc/ka/group.sh": (stat.S_IFREG | 0o775, 0, 100),
    "/etc/ka/rootgroup.sh": (stat.S_IFREG | 0o775, 0, 0),
    "/etc/ka/user.sh": (EXE, 1000, 0),
    "/home": (DIR, 0, 0),
    "/home/op": (DIR, 1000, 1000),
    "/home/op/s.sh": (EXE, 0, 0),
    "/tmp": (stat.S_IFDIR | 0o1777, 0, 0),
    "/tmp/s.sh": (EXE, 0, 0),
    "/srv": (stat.S_IFDIR | 0o777, 0, 0),
    "/srv/s.sh": (EXE, 0, 0),
}


def fake_stat(path: str) -> os.stat_result:
    try:
        mode, uid, gid = FILES[path]
    except KeyError:
        raise FileNotFoundError(path) from None
    return os.stat_result((mode, 0, 0, 1, uid, gid, 0, 0, 0, 0))


def host(script_user: bool = False) -> Host:
    users = {"root": (0, 0), "nobody": (65534, 65534)}
    if script_user:
        users["keepalived_script"] = (999, 999)
    return Host(
        interfaces=frozenset({"eth0"}),
        user_ids=users.get,
        group_id={"root": 0, "nogroup": 65534}.get,
        stat=fake_stat,
        lstat=fake_stat,  # no symlinks in the fake
        path="/usr/local/bin:/usr/bin",
    )


INSTANCE = """\
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 31
    priority 100
    %s
    virtual_ipaddress {
        192.0.2.31/24
    }
}
"""

SERVER = """\
virtual_server 192.0.2.100 80 {
    protocol TCP
    %s
    real_server 192.0.2.11 80 {
        %s
    }
}
"""


def conf(
    tmp_path: Path,
    gdefs: str = "",
    script: str | None = None,
    instance: str | None = "track_script { chk }",
    extra: str = "",
    keepalived_script: bool = False,
) -> LoadResult:
    text = f"global_defs {{\n    router_id t\n{gdefs}\n}}\n"
    if script is not None:
        text += f'vrrp_script chk {{\n    script "{script}"\n}}\n'
    if instance is not None:
        text += INSTANCE % instance
    text += extra
    path = tmp_path / "keepalived.conf"
    path.write_text(text)
    return load(path, host=host(keepalived_script))


SECURE_ROOT = "    enable_script_security\n    script_user root"


def msgs(result: LoadResult) -> list[str]:
    return [d.message for d in result.diagnostics]


def test_scripts_without_script_security_exit_6_at_the_script(tmp_path: Path) -> None:
    result = conf(tmp_path, script="/usr/bin/pgrep haproxy")
    assert result.exit_code == ExitCode.SCRIPT_SECURITY
    (diag,) = [d for d in result.diagnostics if "SECURITY VIOLATION" in d.message]
    assert diag.message == (
        "SECURITY VIOLATION - scripts are being executed but script_security not enabled."
    )
    assert diag.where is not None and diag.where.line == 6  # the `script` line


def test_unused_vrrp_script_counts_but_not_without_instances(tmp_path: Path) -> None:
    assert conf(tmp_path, script="/usr/bin/true", instance="").exit_code == 6
    assert conf(tmp_path, script="/usr/bin/true", instance=None).exit_code == 0


def test_insecure_scripts_are_named_in_the_violation(tmp_path: Path) -> None:
    result = conf(tmp_path, script="/etc/ka/world.sh")
    assert result.exit_code == 6
    assert any(m.endswith("There are insecure scripts.") for m in msgs(result))


@pytest.mark.parametrize(
    ("script", "verdict"),
    [
        ("/etc/ka/ok.sh", 0),
        ("/etc/ka/world.sh", 5),  # writable by everyone
        ("/etc/ka/group.sh", 5),  # writable by a non-root group
        ("/etc/ka/rootgroup.sh", 0),  # group root may write
        ("/etc/ka/user.sh", 5),  # owned by a user
        ("/home/op/s.sh", 5),  # in a directory a user owns
        ("/srv/s.sh", 5),  # in a directory everyone may write
        ("/tmp/s.sh", 0),  # the sticky bit protects a directory
        ("pgrep", 0),  # found on PATH
        ("/etc/ka/missing.sh", 5),
        ("missing", 5),
    ],
)
def test_track_scripts_run_as_root_must_be_secure(
    tmp_path: Path, script: str, verdict: int
) -> None:
    result = conf(tmp_path, SECURE_ROOT, script=script)
    assert int(result.exit_code) == verdict, msgs(result)
    # keepalived runs on without the script: a warning, the configuration loads.
    assert result.ok
    if verdict:
        (diag,) = [d for d in result.diagnostics if d.exit_code != ExitCode.OK]
        assert diag.message.startswith("Disabling track script chk ")
        assert diag.where is not None and diag.where.line == 7


def test_missing_track_script_without_security_is_a_config_error(tmp_path: Path) -> None:
    result = conf(tmp_path, script="/etc/ka/missing.sh")
    assert result.exit_code == ExitCode.CONFIG
    assert "Disabling track script chk since not found/accessible" in msgs(result)
    assert not any("SECURITY VIOLATION" in m for m in msgs(result))


def test_insecure_notify_script_is_only_logged(tmp_path: Path) -> None:
    result = conf(tmp_path, SECURE_ROOT, instance="notify_master /etc/ka/world.sh")
    assert result.exit_code == ExitCode.OK
    assert "Disabling script /etc/ka/world.sh due to insecure" in msgs(result)


def test_a_script_run_by_a_user_needs_no_protection(tmp_path: Path) -> None:
    gdefs = "    enable_script_security"
    result = conf(tmp_path, gdefs, script="/etc/ka/world.sh", keepalived_script=True)
    assert result.exit_code == ExitCode.OK, msgs(result)


def test_security_without_any_script_user_refuses_scripts(tmp_path: Path) -> None:
    result = conf(tmp_path, "    enable_script_security", script="/etc/ka/ok.sh")
    assert result.exit_code == ExitCode.CONFIG
    assert msgs(result)[:2] == [
        "Unable to set default user keepalived_script for script",
        "Unable to set default user for vrrp script chk - removing",
    ]


def test_checker_and_start_scripts(tmp_path: Path) -> None:
    misc = conf(tmp_path, extra=SERVER % ("", "MISC_CHECK {\n misc_path /usr/bin/true\n }"))
    assert misc.exit_code == 6
    assert any(m.startswith("SECURITY VIOLATION - check scripts") for m in msgs(misc))
    quorum = conf(tmp_path, extra=SERVER % ("quorum_up /usr/bin/true", "TCP_CHECK {\n }"))
    assert quorum.exit_code == 6
    start = conf(tmp_path, "    startup_script /usr/bin/true", instance=None)
    assert start.exit_code == 6
    assert any(m.startswith("SECURITY VIOLATION - start/shutdown") for m in msgs(start))


# --- positions: every keyword line, recorded once by the parser ----------------------


def test_positions_of_keywords_and_list_items(tmp_path: Path) -> None:
    path = tmp_path / "keepalived.conf"
    path.write_text(
        "vrrp_sync_group G {\n"
        "    group {\n"
        "        VI_1\n"
        "        VI_2 VI_3\n"
        "    }\n"
        "}\n" + INSTANCE % "track_interface {\n        eth0\n    }"
    )
    result = load(path, host=Host(interfaces=frozenset({"eth0"}), check_scripts=False))
    config = result.config
    group = config.vrrp_sync_groups[0]
    vrrp = config.vrrp_instances[0]
    assert where_of(group, "group") == Where(str(path), 2)
    assert [where_of(group, "group", i).line for i in range(3)] == [3, 4, 4]
    assert where_of(vrrp, "interface") == Where(str(path), 9)
    assert where_of(vrrp, "nopreempt") == vrrp.where  # not written: the block's line
    missing = [d for d in result.diagnostics if "VI_2" in d.message]
    assert missing and missing[0].where.line == 4


def test_lb_algo_and_lb_kind_are_noted_without_changing_the_verdict(tmp_path: Path) -> None:
    server = SERVER.replace("protocol TCP", "protocol TCP\n    lb_algo rr\n    lb_kind DR")
    result = conf(tmp_path, instance=None, extra=server % ("", "TCP_CHECK {\n }"))
    notes = [d for d in result.diagnostics if "deprecated" in d.message]
    assert len(notes) == 2
    assert all(d.exit_code == ExitCode.OK for d in notes)
    assert result.exit_code == ExitCode.OK and result.ok


# -- the resolver every script runs through (fastha.config.scripts.resolve) ---------------

LINK = stat.S_IFLNK | 0o777
# path -> (mode, uid, gid, symlink target or None); inode = position in the table.
TREE: dict[str, tuple[int, int, int, str | None]] = {
    "/": (DIR, 0, 0, None),
    "/bin": (LINK, 0, 0, "usr/bin"),
    "/usr": (DIR, 0, 0, None),
    "/usr/bin": (DIR, 0, 0, None),
    "/usr/bin/true": (EXE, 0, 0, None),
    "/etc": (DIR, 0, 0, None),
    "/etc/ka": (DIR, 0, 0, None),
    "/etc/ka/ok.sh": (EXE, 0, 0, None),
    "/etc/ka/alias.sh": (LINK, 0, 0, "ok.sh"),  # root's link: keeps its name
    "/etc/ka/theirs.sh": (LINK, 1000, 1000, "ok.sh"),  # a user's link
    "/etc/ka/op": (LINK, 0, 0, "/home/op"),  # into a user's directory
    "/home": (DIR, 0, 0, None),
    "/home/op": (DIR, 1000, 1000, None),
    "/home/op/s.sh": (EXE, 0, 0, None),
    "/root": (stat.S_IFDIR | 0o700, 0, 0, None),
    "/root/s.sh": (EXE, 0, 0, None),
    "/srv": (stat.S_IFDIR | 0o777, 0, 0, None),
    "/srv/s.sh": (EXE, 0, 0, None),
}
_INODES = {p: i for i, p in enumerate(TREE)}


def _tree_lstat(path: str) -> os.stat_result:
    path = "/" + path.strip("/") if path != "/" else "/"
    try:
        mode, uid, gid, _ = TREE[path]
    except KeyError:
        raise FileNotFoundError(path) from None
    return os.stat_result((mode, _INODES[path], 1, 1, uid, gid, 0, 0, 0, 0))


def _tree_readlink(path: str) -> str:
    target = TREE[path][3]
    assert target is not None
    return target


def _tree_stat(path: str) -> os.stat_result:
    from fastha.config.scripts import realpath_as

    return _tree_lstat(realpath_as(tree_host(), path, 0, 0))


def tree_host(keepalived_script: bool = False) -> Host:
    users = {"root": (0, 0), "nobody": (65534, 65534), "op": (1000, 1000)}
    if keepalived_script:
        users["keepalived_script"] = (999, 999)
    return Host(
        interfaces=frozenset({"eth0"}),
        user_ids=users.get,
        group_id={"root": 0, "nogroup": 65534}.get,
        stat=_tree_stat,
        lstat=_tree_lstat,
        readlink=_tree_readlink,
        path="/usr/local/bin:/bin",
    )


def _resolve(command: str, user: str | None = "root", *, security: bool = True, **kw: bool):
    from fastha.config.model import GlobalDefs
    from fastha.config.scripts import resolve

    return resolve(
        command, user, None, GlobalDefs(enable_script_security=security), tree_host(**kw)
    )


@pytest.mark.parametrize(
    ("command", "argv0", "runnable"),
    [
        ("/etc/ka/ok.sh a", "/etc/ka/ok.sh", True),
        # A root link to a file in the same directory keeps the name it was called by.
        ("/etc/ka/alias.sh", "/etc/ka/alias.sh", True),
        # ... and a user's link there is a component a user owns.
        ("/etc/ka/theirs.sh", "/etc/ka/theirs.sh", False),
        # Through a link into a user's directory: the resolved path is checked.
        ("/etc/ka/op/s.sh", "/home/op/s.sh", False),
        ("/srv/s.sh", "/srv/s.sh", False),
        ("/bin/true", "/usr/bin/true", True),
        ("true", "/usr/bin/true", True),  # PATH search, then realpath
        ("/etc/ka/../ka/./ok.sh", "/etc/ka/ok.sh", True),
    ],
)
def test_resolve_as_keepalived(command: str, argv0: str, runnable: bool) -> None:
    r = _resolve(command)
    assert (r.argv[0], r.runnable) == (argv0, runnable), r.notes
    assert (r.uid, r.gid) == (0, 0)
    assert r.argv[1:] == tuple(command.split()[1:])


def test_resolve_insecure_without_security_runs_and_says_so() -> None:
    r = _resolve("/srv/s.sh", security=False)
    assert r.runnable and r.flags & Flags.INSECURE
    assert r.notes == ("Unsafe permissions found for script '/srv/s.sh'.",)
    r = _resolve("/srv/s.sh")
    assert not r.runnable
    assert r.notes == ("Unsafe permissions found for script '/srv/s.sh' - disabling.",)


def test_resolve_realpath_as_the_scripts_user() -> None:
    """keepalived resolves the path with the script's uid: nobody cannot enter /root."""
    r = _resolve("/root/s.sh", "nobody")
    assert not r.runnable and r.flags & Flags.NOTFOUND
    assert r.notes == ("Script /root/s.sh cannot be accessed - Permission denied",)
    # A user's script needs no path protection: /srv is fine for nobody.
    assert _resolve("/srv/s.sh", "nobody").runnable


def test_resolve_default_user() -> None:
    r = _resolve("/etc/ka/ok.sh", None, keepalived_script=True)
    assert (r.uid, r.gid, r.runnable) == (999, 999, True)
    r = _resolve("/etc/ka/ok.sh", None)  # no keepalived_script, security on: dropped
    assert not r.runnable
    assert r.notes == (
        "Script user 'keepalived_script' does not exist",
        "Unable to set default user keepalived_script for script",
    )
    r = _resolve("/etc/ka/ok.sh", None, security=False)  # then root, with the warning
    assert r.runnable and (r.uid, r.gid) == (os.geteuid(), os.getegid())
    assert r.notes == ("Script user 'keepalived_script' does not exist",)


@pytest.mark.parametrize("command", ["/etc/ka/ok.sh 'a", '/etc/ka/ok.sh "a', "/etc/ka/ok.sh \\"])
def test_resolve_unsplittable_command_is_no_script(command: str) -> None:
    r = _resolve(command)
    assert not r.runnable and r.flags & Flags.UNUSABLE


def test_unbalanced_quote_is_reported_and_never_reaches_the_vrrp_child(tmp_path: Path) -> None:
    """keepalived drops such a script (-t exit 5); the VRRP child's spec simply has none
    (it used to raise in shlex.split and crash-loop the child)."""
    from fastha.runtime.vrrp.from_config import vrrp_spec

    result = conf(tmp_path, SECURE_ROOT, script="/etc/ka/ok.sh 'x",
                  instance="track_script {\n chk\n }\n notify_master \"/etc/ka/ok.sh 'y\"")  # fmt: skip
    assert result.exit_code == ExitCode.CONFIG
    assert "String '/etc/ka/ok.sh 'x': missing terminating '" in msgs(result)
    assert result.config is not None
    spec = vrrp_spec(result.config)
    assert spec.scripts == {}
    assert spec.instances[0].notify == {} and spec.instances[0].track_scripts == ()


def test_command_lines_have_one_tokenizer() -> None:
    """Validation and every process that runs scripts split a command line the same way:
    keepalived's tokenizer, through fastha.config.scripts only (no shlex anywhere)."""
    import ast

    src = Path(__file__).resolve().parents[2] / "src" / "fastha"
    shlex_users, splitters = [], []
    for path in sorted(src.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                shlex_users += [path.name for a in node.names if a.name == "shlex"]
            elif isinstance(node, ast.ImportFrom) and node.module == "shlex":
                shlex_users.append(path.name)
            elif isinstance(node, ast.Name) and node.id == "split_quoted_escaped":
                splitters.append(str(path.relative_to(src)))
    assert not shlex_users
    assert set(splitters) <= {"config/lexer.py", "config/scripts.py"}, splitters
