"""Issue 15, Low items on the configuration path.

- A config whose macros or includes fan out to nothing (ten `$L9` per `$L10`, ... ten
  empty `$L0` per `$L1`; or ten includes per file, eleven files deep) emitted no line,
  so the lines-emitted bound never tripped and the work grew ~10x per level: the
  preprocessor now counts its steps and files and refuses with a clear error. The load
  runs in a subprocess with a generous timeout: a hang fails the test instead of CI.
- Every header of an SMTP alert (and the envelope) is one line, whatever CR the config's
  quoted strings hold: a real aiosmtpd server receives the alert and its headers are
  parsed (Python's parser, like many MTAs, ends a header at a bare CR).
"""

from __future__ import annotations

import email
import email.policy
import subprocess
import sys
from pathlib import Path

import pytest
from tests.unit.test_daemon_smtp import received

from fastha.config.loader import load
from fastha.drivers.smtp import SmtpAlerts

pytestmark = pytest.mark.unit

LOAD = """
import sys
from fastha.config.loader import load
r = load(sys.argv[1], None)
print("OK" if r.ok else "\\n".join(str(d) for d in r.errors))
"""


def _load_in_subprocess(path: Path) -> str:
    try:
        r = subprocess.run([sys.executable, "-c", LOAD, str(path)], capture_output=True,
                           text=True, timeout=120)  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail(f"loading {path.name} did not finish in 120 s (unbounded expansion)")
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_macro_fan_out_to_nothing_is_refused(tmp_path: Path) -> None:
    lines = ["$L0="]
    for k in range(1, 12):
        lines += [f"$L{k}=" + " \\\n".join([f"$L{k - 1}"] * 10), ""]
    lines += ["$L11", "global_defs {", "    router_id x", "}"]
    conf = tmp_path / "macro.conf"
    conf.write_text("\n".join(lines) + "\n")
    out = _load_in_subprocess(conf)
    assert "fanning out to nothing" in out, out


def test_include_fan_out_is_refused(tmp_path: Path) -> None:
    (tmp_path / "inc0.conf").write_text("\n")
    for k in range(1, 12):
        (tmp_path / f"inc{k}.conf").write_text(f"include inc{k - 1}.conf\n" * 10)
    conf = tmp_path / "include.conf"
    conf.write_text("include inc11.conf\nglobal_defs {\n    router_id x\n}\n")
    out = _load_in_subprocess(conf)
    assert "files; refused" in out or "fanning out" in out, out


def test_big_generated_config_still_loads(tmp_path: Path) -> None:
    """The bound is on work per line emitted: a real generated config passes."""
    conf = tmp_path / "seq.conf"
    conf.write_text(
        "$INST=vrrp_instance VI_${i} { \\\n  interface eth0 \\\n  virtual_router_id ${i} \\\n"
        "  priority 100 \\\n  virtual_ipaddress { \\\n    198.18.1.${i}/32 \\\n  } \\\n}\n\n"
        "~SEQ(i, 1, 200) $INST\n"
    )
    result = load(conf, None)
    assert result.ok, [str(d) for d in result.errors]
    assert len(result.config.vrrp_instances) == 200


CRLF_CONF = (
    "global_defs {\n"
    '    router_id "LB_A\rBcc: evil@attacker.example"\n'
    '    notification_email_from "lb-a@example.com\rX-Injected: from"\n'
    "    notification_email {\n"
    '        "ops@example.com\rX-Injected: to"\n'
    "    }\n"
    "    smtp_server 127.0.0.1\n"
    '    smtp_helo_name "lb-a\rX-Injected: helo"\n'
    "}\n"
)


def test_smtp_headers_carry_no_config_cr_lf(tmp_path: Path) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_bytes(CRLF_CONF.encode())
    result = load(conf, None)
    assert result.ok, [str(d) for d in result.errors]
    gdefs = result.config.global_defs
    assert "\r" in gdefs.router_id  # the config does hold it: the alert must not pass it on
    alerts = SmtpAlerts.from_config(gdefs)
    assert alerts is not None
    got = received(alerts.settings, lambda a: a.vrrp("VI_1", "MASTER"))
    msg = email.message_from_bytes(got["content"], policy=email.policy.compat32)
    assert [k for k, _ in msg.items()] == ["Date", "From", "Subject", "X-Mailer", "To"], msg.items()
    assert msg["Bcc"] is None and msg["X-Injected"] is None
    for key, value in msg.items():
        unfolded = value.replace("\r\n ", " ")
        assert "\r" not in unfolded and "\n" not in unfolded, (key, value)
    assert msg["Subject"].startswith("[LB_ABcc: evil@attacker.example] VRRP Instance VI_1")
    # The envelope: one line each (aiosmtpd keeps the address up to the blank).
    envelope = [got["mail_from"], *got["rcpt_tos"], got["helo"]]
    assert not any("\r" in v or "\n" in v for v in envelope), envelope
    assert got["mail_from"].startswith("lb-a@example.com")
    assert [r.startswith("ops@example.com") for r in got["rcpt_tos"]] == [True]
