"""docs/plugins.md's worked example, run as written against a real loopback server."""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

import pytest
from suitekit import EchoServer, run_guest
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


def test_the_guides_example_is_strictly_typed(tmp_path: Path) -> None:
    import subprocess
    import sys

    text = (ROOT / "docs" / "plugins.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "class Mesh" in b)
    (tmp_path / "mesh_example.py").write_text(block)
    r = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "mesh_example.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
