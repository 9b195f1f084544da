"""docs/plugins.md's worked example, run as written against a real loopback server."""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

import pytest
from guestbuild import build_guest
from suitekit import GUESTS, EchoServer, run_guest
from wassh import PluginError
from wassh.events import Connected, Event, TransportChosen

ROOT = Path(__file__).resolve().parent.parent


def _example() -> ModuleType:
    text = (ROOT / "docs" / "plugins.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "class Mesh" in b)
    module = ModuleType("mesh_example")
    exec(compile(block, "docs/plugins.md", "exec"), module.__dict__)
    return module


@pytest.fixture(scope="module")
def mesh() -> ModuleType:
    return _example()


def test_the_guides_transport_routes_its_names(
    mesh: ModuleType, netclient: Path, echo_server: EchoServer
) -> None:
    events: list[Event] = []
    r = run_guest(
        netclient,
        "echo",
        "db.mesh",
        "5432",
        "via the mesh",
        plugins=[mesh.MeshTransport],
        settings={"mesh": {"routes": {"db.mesh": f"127.0.0.1:{echo_server.port}"}}},
        events=events.append,
    )
    assert r.code == 0, r
    assert r.stdout.startswith("via the mesh\n"), r
    assert len(echo_server.records) == 1
    chosen = [e for e in events if isinstance(e, TransportChosen)]
    assert chosen[-1].transport == "mesh" and chosen[-1].reason == "claimed: its rule accepts this"
    connected = next(e for e in events if isinstance(e, Connected))
    assert (connected.host, connected.address) == ("db.mesh", "127.0.0.1")


def test_the_guides_transport_leaves_other_names_alone(
    mesh: ModuleType, netclient: Path, echo_server: EchoServer
) -> None:
    r = run_guest(
        netclient,
        "echo",
        "127.0.0.1",
        str(echo_server.port),
        "direct",
        plugins=[mesh.MeshTransport],
        settings={"mesh": {"routes": ["db.mesh=127.0.0.1:9"]}},
    )
    assert r.stdout.startswith("direct\n"), r


def test_the_guides_transport_obeys_the_policy_on_its_gateway(
    mesh: ModuleType, netclient: Path, echo_server: EchoServer
) -> None:
    import wassh

    config = wassh.TransportConfig(connect_deny=["127.0.0.0/8"])
    r = run_guest(
        netclient,
        "echo",
        "db.mesh",
        "5432",
        plugins=[mesh.MeshTransport],
        settings={"mesh": {"routes": {"db.mesh": f"127.0.0.1:{echo_server.port}"}}},
        config=config,
    )
    assert "Permission denied" in r.stdout, r
    assert echo_server.records == []


def test_the_guides_transport_refuses_bad_settings(mesh: ModuleType, netclient: Path) -> None:
    with pytest.raises(PluginError, match=r"bad mesh route db=1\.2\.3\.4:5"):
        run_guest(
            netclient,
            "echo",
            "h",
            "1",
            plugins=[mesh.MeshTransport],
            settings={"mesh": {"routes": ["db=1.2.3.4:5"]}},
        )


@pytest.mark.parametrize("marker", ["class Mesh", "class ZoneResolver"])
def test_the_guides_examples_are_strictly_typed(tmp_path: Path, marker: str) -> None:
    import subprocess
    import sys

    text = (ROOT / "docs" / "plugins.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if marker in b)
    (tmp_path / "example.py").write_text(block)
    r = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "example.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr


# -- the resolver example, and its conformance class as the guide writes it ------------------


def _zone_example() -> ModuleType:
    text = (ROOT / "docs" / "plugins.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    module = ModuleType("zone_example")
    for marker in ("class ZoneResolver", "class TestZoneResolver"):
        block = next(b for b in blocks if marker in b)
        exec(compile(block, "docs/plugins.md", "exec"), module.__dict__)
    return module


ZONE = _zone_example()
pytest_plugins = ["wassh.testing"]


class TestTheGuidesResolverConforms(ZONE.TestZoneResolver):  # type: ignore[name-defined,misc]
    """The guide's resolver passes the resolver suite with the guide's declaration."""


@pytest.fixture(scope="module")
def names_guest() -> Path:
    return build_guest(GUESTS / "names" / "names.c", sdk=True)


def test_the_guides_resolver_answers_its_zone_and_leaves_other_names_alone(
    names_guest: Path,
) -> None:
    r = run_guest(names_guest, "lookup", "db.corp", plugins=[ZONE.ZoneResolver])
    assert (r.code, r.stdout) == (0, "inet 10.1.2.3\n")
    r = run_guest(names_guest, "lookup", "db.corp", "inet6", plugins=[ZONE.ZoneResolver])
    assert (r.code, r.stdout) == (1, "error EAI_NODATA: No address associated with hostname\n")
    r = run_guest(names_guest, "lookup", "db.example", plugins=[ZONE.ZoneResolver])
    assert (r.code, r.stdout) == (0, "inet6 100::1\ninet 0.0.0.1\n")  # not .corp: fake DNS
