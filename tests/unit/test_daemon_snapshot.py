"""The parent's config snapshot: what the children load instead of re-reading the file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from fastha.config.loader import load
from fastha.runtime import child_status

CORPUS = Path(__file__).resolve().parents[1] / "golden" / "config"
CONFS = sorted(CORPUS.glob("*.conf"))


@pytest.mark.parametrize("conf", CONFS, ids=[c.stem for c in CONFS])
def test_the_corpus_round_trips(conf: Path, tmp_path: Path) -> None:
    result = load(str(conf), "lb-a")
    assert result.ok, result.errors
    path = str(tmp_path / "run" / child_status.SNAPSHOT_NAME)
    child_status.write_snapshot(path, result.config)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert child_status.read_snapshot(path) == result.config
    assert os.listdir(tmp_path / "run") == [child_status.SNAPSHOT_NAME]  # no tmp left


def test_reload_prefers_the_snapshot_over_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "k.conf"
    conf.write_text("global_defs {\n  router_id one\n}\n")
    good = load(str(conf), "x")
    assert good.ok
    snap = str(tmp_path / child_status.SNAPSHOT_NAME)
    child_status.write_snapshot(snap, good.config)
    conf.write_text("vrrp_instance VI_1 {\n  virtual_router_id 300\n")  # half-written
    monkeypatch.setenv(child_status.ENV_CONFIG, str(conf))
    monkeypatch.setenv(child_status.ENV_SNAPSHOT, snap)
    config = child_status.reload_config()
    assert config is not None and config.global_defs.router_id == "one"
    # An unreadable snapshot keeps the running config (None), never falls back to the file.
    Path(snap).write_bytes(b"garbage")
    assert child_status.reload_config() is None
    os.unlink(snap)
    assert child_status.reload_config() is None


def test_the_vrrp_and_bfd_children_get_the_model_without_its_lvs_part(tmp_path: Path) -> None:
    result = load(str(CORPUS / "full_director.conf"), "lb-a")
    assert result.ok and result.config.virtual_servers and result.config.vrrp_instances
    path = str(tmp_path / "run" / child_status.SNAPSHOT_NAME)
    child_status.write_snapshots(path, result.config)
    assert child_status.snapshot_for(path, "check") == path
    whole = child_status.read_snapshot(path)
    assert whole == result.config
    lean = child_status.read_snapshot(child_status.snapshot_for(path, "vrrp"))
    assert child_status.snapshot_for(path, "bfd") == child_status.snapshot_for(path, "vrrp")
    assert lean.virtual_servers == () and lean.virtual_server_groups == () and lean.ssl is None
    assert lean == child_status.without_lvs(result.config)
    assert lean.vrrp_instances == result.config.vrrp_instances
    assert lean.global_defs == result.config.global_defs


def test_a_snapshot_leaves_out_positions(tmp_path: Path) -> None:
    result = load(str(CORPUS / "full_director.conf"), "lb-a")
    assert result.ok
    vi = result.config.vrrp_instances[0]
    assert vi.positions  # where each keyword was: for validation, in the parent
    path = str(tmp_path / child_status.SNAPSHOT_NAME)
    child_status.write_snapshot(path, result.config)
    back = child_status.read_snapshot(path)
    assert not back.vrrp_instances[0].positions
    assert not back.virtual_servers[0].real_servers[0].positions
    assert back.vrrp_instances[0].where == vi.where  # each block keeps its own line
