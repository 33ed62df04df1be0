"""`fastha check-config`: keepalived -t's contract, with file:line on every problem."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from tests.support import keepalived
from tests.support.prereq import need_tool

CORPUS = Path(__file__).resolve().parents[1] / "golden" / "config"


def run(*args: str) -> tuple[int, str, str]:
    from fastha.cli.main import main

    result = CliRunner().invoke(main, ["check-config", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.unit
def test_good_config_exits_0_and_says_ok() -> None:
    code, out, err = run("-f", str(CORPUS / "vrrp_basic.conf"))
    assert code == 0
    assert out == ""
    assert "configuration OK" in err


@pytest.mark.unit
def test_dump_prints_the_model_as_json() -> None:
    from fastha.config.dump import dumps
    from fastha.config.loader import load

    path = CORPUS / "full_director.conf"
    code, out, _ = run("-f", str(path), "--dump")
    assert code == 0
    assert orjson.loads(out) == orjson.loads(dumps(load(path).config))
    assert orjson.loads(out) == orjson.loads((CORPUS / "full_director.json").read_bytes())


@pytest.mark.unit
def test_long_option_names_as_keepalived() -> None:
    code, _, _ = run("--use-file", str(CORPUS / "vrrp_basic.conf"))
    assert code == 0


@pytest.mark.unit
def test_broken_config_exits_5_with_file_line_messages() -> None:
    path = CORPUS / "broken" / "bad_values.conf"
    code, out, err = run("-f", str(path))
    assert code == 5
    assert out == ""
    assert f"{path}:6: error:" in err
    assert "configuration OK" not in err


@pytest.mark.unit
def test_warnings_alone_fail_like_keepalived() -> None:
    """keepalived -t exits 5 on a warning (unknown or deprecated keyword); so does fastha."""
    code, _, err = run("-f", str(CORPUS / "deprecated_spellings.conf"))
    assert code == 5
    assert ": warning:" in err
    assert "configuration OK" not in err


@pytest.mark.unit
def test_broken_config_still_dumps_what_it_could_read() -> None:
    code, out, _ = run("-f", str(CORPUS / "broken" / "unknown_keywords.conf"), "--dump")
    assert code == 5
    assert isinstance(orjson.loads(out), dict)


@pytest.mark.unit
def test_missing_file_is_fatal(tmp_path: Path) -> None:
    """fastha exits 4 for a main file that cannot be read. keepalived 2.2.7 -t logs
    "Config files missing" and exits 0 (checked in the keepalived test below): a
    deliberate difference, since a daemon started on a missing file would run nothing."""
    code, out, err = run("-f", str(tmp_path / "nope.conf"), "--dump")
    assert code == 4
    assert out == ""
    assert "nope.conf" in err


@pytest.mark.unit
def test_config_id_selects_conditional_lines() -> None:
    path = str(CORPUS / "conditional_ids.conf")
    dumps = {}
    for cid in ("lb-a", "lb-b"):
        code, out, _ = run("-f", path, "-i", cid, "--dump")
        assert code == 0
        dumps[cid] = orjson.loads(out)
        assert dumps[cid] == orjson.loads((CORPUS / f"conditional_ids@{cid}.json").read_bytes())
    code, out, _ = run("-f", path, "--config-id", "lb-a", "--dump")
    assert orjson.loads(out) == dumps["lb-a"]
    assert dumps["lb-a"] != dumps["lb-b"]


@pytest.mark.unit
def test_process_entry_point(tmp_path: Path) -> None:
    """The installed console script, as an operator runs it."""
    exe = Path(sys.executable).with_name("fastha")
    proc = subprocess.run(
        [str(exe), "check-config", "-f", str(CORPUS / "broken" / "include_error.conf")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 5
    assert "include_error.d/inner.conf:6:" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.unit
@pytest.mark.keepalived
def test_keepalived_facts_the_cli_is_modelled_on(tmp_path: Path) -> None:
    """Pin what keepalived 2.2.7 -t does, so a Debian upgrade that changes it is noticed."""
    binary = need_tool("keepalived")
    assert keepalived.check(tmp_path / "nope.conf", binary=binary).returncode == 0
    assert keepalived.check(CORPUS / "vrrp_basic.conf", binary=binary).returncode == 0
    assert keepalived.check(CORPUS / "deprecated_spellings.conf", binary=binary).returncode == 5
    script = tmp_path / "s.conf"
    script.write_text(
        'vrrp_script chk {\n script "/bin/true"\n}\nvrrp_instance VI_1 {\n interface eth0\n'
        " virtual_router_id 1\n track_script {\n  chk\n }\n virtual_ipaddress {\n"
        "  192.0.2.1/32\n }\n}\n"
    )
    res = keepalived.check(script, binary=binary)
    assert res.returncode == 6, res.stderr
    assert "SECURITY VIOLATION" in res.stderr
