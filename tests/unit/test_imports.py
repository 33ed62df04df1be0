"""Each process imports only what it uses (issue 19, RSS): the parent, the VRRP child and
the checker child are imported in a fresh interpreter (``python -I``, as the daemon runs
them) and their ``sys.modules`` must stay out of a list of modules that process never
needs. Each module on a list costs its process RSS for nothing (benchmarks/bench_rss.py
measures it): pyroute2's package ``__init__`` pulls in NDB with sqlite3, IPDB and
unittest (~9 MB); importlib.metadata, only for ``__version__``, pulls in email and
zipfile (~3 MB); a child loading the other child's runtime pays for both.

The last tests keep the cuts honest: code that does want all of pyroute2, or the
version, still gets it.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.unit

# What no daemon process loads at start.
NEVER = (
    "importlib.metadata",  # fastha.__version__, read on first use only
    "email",
    "zipfile",
    "sqlite3",  # pyroute2.ndb, via pyroute2/__init__
    "pyroute2.ndb",
    "pyroute2.ipdb",
    "pyroute2.conntrack",
    "pyroute2.nftables",
    "fastha.bench",
    "orjson",  # the control socket's: at its first request (runtime/control)
    "scapy",
    "rich",
    "matplotlib",
)

PROCESSES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # name: (modules the process imports, modules it must not have)
    "parent": (
        ("fastha.cli.main", "fastha.cli.daemon", "fastha.daemon.supervisor"),
        (
            *NEVER,
            # The parent never touches the network (ARCHITECTURE.md). ("pyroute2" itself
            # may be there: the drivers' empty stand-in, drivers/pyroute2_lean.)
            "pyroute2.netlink",
            "uvloop",  # nor needs a fast loop: the stdlib's serves it
            "fastha._wire",
            "fastha.runtime.vrrp",
            "fastha.runtime.check",
            "fastha.probes",
            "fastha.drivers.netlink",
            "fastha.drivers.ipvs",
        ),
    ),
    "vrrp": (
        ("fastha.runtime.child", "fastha.runtime.vrrp.runner"),
        (
            *NEVER,
            "click",
            "fastha.cli",
            "fastha.daemon",
            "fastha.runtime.check",
            "fastha.check",
            "fastha.probes",
            "fastha.drivers.ipvs",
            "fastha.drivers.genl",
            # pyroute2's iproute imports unittest for unittest.mock (pyroute2_lean.deferred)
            "unittest.case",
            "unittest.loader",
            "difflib",
        ),
    ),
    "checker": (
        ("fastha.runtime.child", "fastha.runtime.check.runner"),
        (
            *NEVER,
            "click",
            "fastha.cli",
            "fastha.daemon",
            "fastha.runtime.vrrp",
            "fastha.drivers.netlink",
            "fastha.drivers.vrrp_socket",
            "pyroute2.iproute",
        ),
    ),
    # `fastha --version`, `fastha check-config`: no event loop at all.
    "cli": (
        ("fastha.cli.main", "fastha.cli.check_config"),
        (*NEVER, "asyncio", "uvloop", "pyroute2.netlink", "fastha._wire"),
    ),
}


def modules_after(imports: tuple[str, ...], code: str = "") -> list[str]:
    """sys.modules of a fresh isolated interpreter after ``imports`` (and ``code``)."""
    program = "\n".join(
        [
            "import importlib, json, sys",
            *(f"importlib.import_module({m!r})" for m in imports),
            code,
            "print(json.dumps(sorted(sys.modules)))",
        ]
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", program], capture_output=True, text=True, cwd="/"
    )
    assert out.returncode == 0, out.stderr
    return list(json.loads(out.stdout.splitlines()[-1]))


def loaded(modules: list[str], forbidden: tuple[str, ...]) -> list[str]:
    """The forbidden names present, as a module or as a package of one."""
    return sorted(f for f in forbidden if any(m == f or m.startswith(f + ".") for m in modules))


@pytest.mark.parametrize("process", sorted(PROCESSES))
def test_process_imports_stay_out_of_its_heavy_list(process: str) -> None:
    imports, forbidden = PROCESSES[process]
    modules = modules_after(imports)
    assert set(imports) <= set(modules)  # the probe ran
    assert not loaded(modules, forbidden), f"the {process} process imports them"


# OpenSSL (libssl, libcrypto: ~4.5 MB of RSS), loaded by ssl, hashlib and hmac.
TLS = ("ssl", "_ssl", "hashlib", "_hashlib", "hmac", "secrets")

# A process's real entry point, run until it stops on a configuration file that is not
# there (after its start-up imports), then the modules it imports next.
ENTRIES: dict[str, tuple[list[str], tuple[str, ...]]] = {
    "parent": (["fastha.cli.main", "daemon", "-n", "-l"], ("fastha.daemon.supervisor",)),
    "vrrp": (["fastha.runtime.child", "vrrp", "-G", "-l"], ("fastha.runtime.vrrp.runner",)),
    "bfd": (["fastha.runtime.child", "bfd", "-G", "-l"], ("fastha.runtime.bfd.runner",)),
    "checker": (["fastha.runtime.child", "check", "-G", "-l"], ("fastha.runtime.check.runner",)),
}


def modules_of_entry(process: str) -> list[str]:
    argv, later = ENTRIES[process]
    program = "\n".join(
        [
            "import atexit, importlib, json, runpy, sys",
            "def show():",
            *(f"    importlib.import_module({m!r})" for m in later),
            "    print(json.dumps(sorted(sys.modules)))",
            "atexit.register(show)",
            f"sys.argv = {[argv[0], *argv[1:], '-f', '/nonexistent/keepalived.conf']!r}",
            f"runpy.run_module({argv[0]!r}, run_name='__main__', alter_sys=True)",
        ]
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", program], capture_output=True, text=True, cwd="/"
    )
    assert out.returncode != 0 and "/nonexistent/keepalived.conf" in out.stderr, out.stderr
    return list(json.loads(out.stdout.splitlines()[-1]))


@pytest.mark.parametrize("process", sorted(ENTRIES))
def test_no_tls_at_start(process: str) -> None:
    """Every process runs its event loop (asyncio, and uvloop in the children) without
    OpenSSL: fastha.runtime.notls, started from the real entry point before anything
    imports asyncio. The checker loads it at its first SSL_GET (the next test)."""
    modules = modules_of_entry(process)
    loops = {"asyncio"} if process == "parent" else {"asyncio", "uvloop"}
    assert loops <= set(modules)
    assert not loaded(modules, TLS), f"the {process} process loads OpenSSL"


def test_a_child_parses_its_command_line_without_argparse() -> None:
    """argparse (with gettext and locale) is ~0.3 MB of RSS in each child: the children
    read the parent's command line with getopt (runtime/child.parse_args)."""
    modules = modules_of_entry("vrrp")
    assert "getopt" in modules
    assert not loaded(modules, ("argparse",))


@pytest.fixture(scope="module")
def http_and_https() -> Iterator[tuple[int, int]]:
    """An HTTP and an HTTPS server on loopback (the probes' test servers; a trustme
    certificate): their ports."""
    import ssl

    import trustme
    from tests.probes.servers import HttpServer

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(ctx)
    plain, tls = HttpServer(), HttpServer(tls=ctx)
    try:
        yield plain.port, tls.port
    finally:
        plain.close()
        tls.close()


def test_the_checker_loads_openssl_at_its_first_ssl_get(http_and_https: tuple[int, int]) -> None:
    """In a process started as the checker (its loop without ssl), HTTP_GETs with a
    digest pass and fail by it without OpenSSL (the digest's MD5 is CPython's own) nor
    the regex module (no url has a regex); the first SSL_GET loads the real ssl and
    passes over real TLS."""
    from tests.probes.servers import BODY

    http, https = http_and_https
    good = hashlib.md5(BODY).hexdigest()
    code = f"""
from fastha.runtime.notls import import_loops
assert import_loops(uvloop=True)  # as the checker starts
import fastha.runtime.check.runner
import ipaddress, uvloop
from fastha.check.spec import Endpoint, HttpSpec, StatusRange, TlsSpec, UrlSpec
from fastha.probes import ProbeContext, run_probe

def spec(port, digest, tls=None):
    ep = Endpoint(host=ipaddress.ip_address('127.0.0.1'), port=port, connect_timeout=5)
    url = UrlSpec(path='/ok', status=(StatusRange(lo=200, hi=299),), digest=digest)
    return HttpSpec(kind='SSL_GET' if tls else 'HTTP_GET', endpoint=ep, urls=(url,), tls=tls)

def probe(s):
    return uvloop.run(run_probe(s, ProbeContext()))

tls = {TLS!r}
assert probe(spec({http}, {good!r})).ok
bad = probe(spec({http}, '0' * 32))
assert not bad.ok and 'MD5 digest error' in bad.reason, bad
assert not [m for m in tls if m in sys.modules], [m for m in tls if m in sys.modules]
assert 'regex' not in sys.modules  # no url has a regex
out = probe(spec({https}, {good!r}, TlsSpec()))
assert out.ok, out
assert 'ssl' in sys.modules and '_ssl' in sys.modules
"""
    modules_after((), code)


def test_an_smtp_alert_loads_no_tls_nor_email() -> None:
    """A process started as the VRRP child sends an alert to a real SMTP server (aiosmtpd,
    in this process) and stays without OpenSSL and the email package: the driver speaks
    keepalived's plain SMTP itself (drivers/smtp)."""
    import asyncio
    import threading

    from aiosmtpd.smtp import SMTP as SMTPProtocol

    got: list[bytes] = []

    class Inbox:
        async def handle_DATA(self, _server: object, _session: object, envelope: Any) -> str:
            got.append(envelope.original_content)
            return "250 OK"

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(
        loop.create_server(lambda: SMTPProtocol(Inbox()), "127.0.0.1", 0)
    )
    port = server.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    code = f"""
from fastha.runtime.notls import import_loops
assert import_loops(uvloop=True)  # as the VRRP child starts
import fastha.runtime.vrrp.runner
import uvloop
from fastha.drivers.smtp import SmtpAlerts, SmtpSettings

async def send():
    alerts = SmtpAlerts(SmtpSettings(server='127.0.0.1', port={port}, emails=('a@x.test',)))
    return await alerts.vrrp('VI_1', 'MASTER')

assert uvloop.run(send()) is True
"""
    try:
        modules = modules_after((), code)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()
    assert len(got) == 1 and b"VI_1 - Entering MASTER state" in got[0]
    assert not loaded(modules, (*TLS, "email", "aiosmtplib"))


def test_a_loop_without_tls_refuses_tls_and_ssl_still_imports() -> None:
    """TLS asked of such a loop is a clear error, not a crash in a stand-in; a later
    `import ssl` (smtplib's) gets the real module."""
    code = (
        "from fastha.runtime.notls import NoTls, import_loops\n"
        "assert import_loops(uvloop=True)\n"
        "import asyncio, uvloop\n"
        "async def tls():\n"
        "    loop = asyncio.get_running_loop()\n"
        "    await loop.create_connection(asyncio.Protocol, '127.0.0.1', 9, ssl=True)\n"
        "try:\n"
        "    uvloop.run(tls())\n"
        "except NoTls:\n"
        "    pass\n"
        "else:\n"
        "    raise SystemExit('TLS ran')\n"
        "assert 'ssl' not in sys.modules\n"
        "import ssl\n"
        "assert ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).verify_mode == ssl.CERT_REQUIRED\n"
    )
    modules_after((), code)


def test_pyroute2s_deferred_modules_work_when_used() -> None:
    """The iproute driver keeps pyroute2's ssl and unittest light (pyroute2_lean.deferred):
    neither is loaded whole, yet both work in full when used, there and anywhere."""
    code = (
        "from fastha.runtime.notls import import_loops\n"
        "assert import_loops(uvloop=True)\n"  # as the VRRP child starts
        "import fastha.drivers.netlink\n"
        "heavy = [m for m in ('ssl', 'unittest.case', 'difflib') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "import pyroute2.netlink.rtnl.probe_msg as probe\n"
        "import pyroute2.netlink.rtnl.iprsocket as iprsocket\n"
        "assert probe.ssl.CERT_REQUIRED == 2 and 'ssl' in sys.modules\n"
        "assert iprsocket.mock.Mock()\n"
        "import unittest, unittest.mock\n"
        "assert unittest.mock.Mock and unittest.TestCase and callable(unittest.main)\n"
    )
    modules_after((), code)


BFD_AND_VRRP = """
bfd_instance b1 {
    neighbor_ip 198.18.0.2
}
vrrp_instance VI_1 {
    interface lo
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        198.18.0.100/32
    }
    track_bfd {
        b1 weight 10
    }
}
"""


def test_the_vrrp_child_reads_its_snapshot_without_parser_or_lvs_model(tmp_path: Path) -> None:
    """A snapshot with a bfd_instance (track_bfd) and no virtual_server: the VRRP child
    unpickles it, at start and on reload, without loading config.model_lvs
    (config.model_bfd holds BfdInstance) nor the parser (only a child without a parent
    reads the file)."""
    conf = tmp_path / "keepalived.conf"
    conf.write_text(BFD_AND_VRRP)
    snapshot = tmp_path / "run" / "config.snapshot"
    write = (
        "from fastha.config.loader import load\n"
        "from fastha.runtime.child_status import write_snapshot\n"
        f"result = load({str(conf)!r}, 'test')\n"
        "assert result.config is not None and result.config.bfd_instances\n"
        f"write_snapshot({str(snapshot)!r}, result.config)\n"
    )
    modules_after((), write)
    read = (
        "from fastha.runtime.notls import import_loops\n"
        "import_loops(uvloop=True)\n"
        "import os, types\n"
        "import fastha.runtime.vrrp.runner\n"
        "from fastha.runtime import child, child_status\n"
        f"os.environ[child_status.ENV_SNAPSHOT] = {str(snapshot)!r}\n"
        "args = types.SimpleNamespace(file='/nonexistent/keepalived.conf', config_id=None)\n"
        "for config in child._load(args, vrrp=True), child_status.reload_config():\n"
        "    assert [b.name for b in config.bfd_instances] == ['b1'], config.bfd_instances\n"
        "    assert config.vrrp_instances[0].track_bfds\n"
    )
    modules = modules_after((), read)
    assert "fastha.config.model_bfd" in modules
    parser = ("fastha.config.loader", "fastha.config.parser", "fastha.config.preprocess")
    assert not loaded(modules, ("fastha.config.model_lvs", *parser))


def test_a_tcp_check_loads_no_other_probe() -> None:
    """A real TCP_CHECK (to a closed port on loopback) loads its own probe only: not
    dnspython (DNS_CHECK) nor the HTTP probe's regex, which a TCP-only checker never uses."""
    code = (
        "import asyncio, ipaddress\n"
        "from fastha.check.spec import Endpoint, TcpSpec\n"
        "from fastha.probes import ProbeContext, run_probe\n"
        "ep = Endpoint(host=ipaddress.ip_address('127.0.0.1'), port=9, connect_timeout=1)\n"
        "out = asyncio.run(run_probe(TcpSpec(endpoint=ep), ProbeContext()))\n"
        "assert not out.ok, out\n"
    )
    modules = modules_after(("fastha.runtime.check.runner",), code)
    assert "fastha.probes.tcp" in modules
    heavy = ("dns", "regex", "idna", "fastha.probes.dns", "fastha.probes.http", *NEVER)
    assert not loaded(modules, heavy)


def test_the_check_tells_loaded_from_not() -> None:
    """The same probe does see a heavy module when one is imported."""
    modules = modules_after(("fastha.runtime.child",), "import pyroute2.ndb.main")
    assert {"pyroute2.ndb", "sqlite3"} <= set(loaded(modules, NEVER))


def test_all_of_pyroute2_is_still_there_when_asked_for() -> None:
    """After the drivers installed their lean pyroute2, `from pyroute2 import X` of any
    name still works (the package __init__ runs then), and submodules are the real ones."""
    code = (
        "import pyroute2.netlink.generic.ipvs as ipvs\n"
        "assert 'pyroute2.ndb' not in sys.modules\n"
        "from pyroute2 import IPRoute, NDB, AsyncIPRoute\n"
        "import pyroute2, pyroute2.iproute.linux as linux\n"
        "assert AsyncIPRoute is linux.AsyncIPRoute and pyroute2.IPVS\n"
        "assert pyroute2.netlink.generic.ipvs is ipvs\n"
        "try:\n"
        "    pyroute2.no_such_name\n"
        "except AttributeError:\n"
        "    pass\n"
        "else:\n"
        "    raise SystemExit('no AttributeError')\n"
    )
    modules = modules_after(("fastha.drivers.ipvs", "fastha.drivers.netlink"), code)
    assert "pyroute2.ndb" in modules


def test_pyroute2_dunders_are_the_real_ones() -> None:
    """A dunder the stand-in lacks (pyroute2.__version__) runs the real __init__ too."""
    code = "import pyroute2\nassert pyroute2.__version__.count('.') >= 1, pyroute2.__version__\n"
    modules_after((), code)


def test_the_version_is_still_there_when_asked_for() -> None:
    out = subprocess.run(
        [sys.executable, "-I", "-m", "fastha.cli.main", "--version"],
        capture_output=True,
        text=True,
        cwd="/",
    )
    assert out.returncode == 0, out.stderr
    import fastha

    assert out.stdout == f"fastha, version {fastha.__version__}\n"
    assert fastha.__version__ and fastha.__version__ != "0.0.0+src"


def test_the_vrrp_child_reads_a_director_config_without_the_lvs_model(tmp_path: Path) -> None:
    """A config with virtual servers: the VRRP child's snapshot leaves them out, so the
    child never unpickles a real server (nor loads config.model_lvs)."""
    conf = Path(__file__).resolve().parents[1] / "golden" / "config" / "full_director.conf"
    snapshot = tmp_path / "run" / "config.snapshot"
    write = (
        "from fastha.config.loader import load\n"
        "from fastha.runtime.child_status import write_snapshots\n"
        f"result = load({str(conf)!r}, 'lb-a')\n"
        "assert result.config is not None and result.config.virtual_servers\n"
        f"write_snapshots({str(snapshot)!r}, result.config)\n"
    )
    modules_after((), write)
    read = (
        "from fastha.runtime.notls import import_loops\n"
        "import_loops(uvloop=True)\n"
        "import fastha.runtime.vrrp.runner\n"
        "from fastha.runtime.child_status import read_snapshot, snapshot_for\n"
        f"config = read_snapshot(snapshot_for({str(snapshot)!r}, 'vrrp'))\n"
        "assert config.vrrp_instances and not config.virtual_servers\n"
    )
    assert not loaded(modules_after((), read), ("fastha.config.model_lvs",))
