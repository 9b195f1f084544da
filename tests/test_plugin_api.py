"""The plugin API's contract: required hooks, class plugins, settings, options, commands."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import pytest
import wassh
from suitekit import EchoServer, run_guest
from wassh import (
    STREAM,
    Offer,
    PluginError,
    PluginOptions,
    SocketHandle,
    TransportConfig,
    Transports,
    hookimpl,
    make_plugin_manager,
    os_socket,
)

WASSH = Path(sys.executable).parent / "wassh"


class Loopback(os_socket.OSSocketHooks):
    """A complete stream transport over a socketpair whose peer echoes."""

    name = "loopback"
    instances: ClassVar[list[Loopback]] = []

    def __init__(self) -> None:
        self.settings: Mapping[str, object] = {}
        self.stopped = False
        self.peers: list[socket.socket] = []
        Loopback.instances.append(self)

    @hookimpl
    def wassh_transport_offer(
        self, config: TransportConfig, settings: Mapping[str, object]
    ) -> Offer:
        self.settings = settings
        return Offer("loopback", frozenset({STREAM}), rank=900)

    @hookimpl
    def wassh_transport_stop(self) -> None:
        self.stopped = True
        for peer in self.peers:
            peer.close()

    @hookimpl
    def wassh_sock_connect(self, sock: SocketHandle[socket.socket], host: str, port: int) -> bool:
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        theirs.sendall(str(self.settings.get("greeting", "hi")).encode())
        theirs.shutdown(socket.SHUT_WR)
        self.peers.append(theirs)
        sock.state = ours
        return True

    @hookimpl
    def wassh_sock_connect_check(self, sock: SocketHandle[socket.socket]) -> bool:
        return True


class NoRecv:
    """Offers stream sockets but forgets ``wassh_sock_recv``."""

    name = "norecv"

    @hookimpl
    def wassh_transport_offer(self) -> Offer:
        return Offer("norecv", frozenset({STREAM}))

    @hookimpl
    def wassh_sock_connect(self, sock: SocketHandle[object], host: str, port: int) -> bool:
        return True

    @hookimpl
    def wassh_sock_connect_check(self, sock: SocketHandle[object]) -> bool:
        return True

    @hookimpl
    def wassh_sock_send(self, sock: SocketHandle[object], data: memoryview) -> int:
        return len(data)

    @hookimpl
    def wassh_sock_poll_handle(self, sock: SocketHandle[object], write: bool) -> tuple[int, int]:
        return 0, 1

    @hookimpl
    def wassh_sock_close(self, sock: SocketHandle[object]) -> None:
        return None


def test_a_plugin_missing_a_required_hook_is_refused_at_start_up() -> None:
    pm = make_plugin_manager(entry_points=False, plugins=[NoRecv()])
    with pytest.raises(PluginError) as info:
        Transports(pm, TransportConfig())
    assert str(info.value) == (
        "plugin 'norecv' offers stream sockets ('norecv') but does not implement wassh_sock_recv"
    )


def test_an_unavailable_offer_needs_no_hooks() -> None:
    class Later:
        name = "later"

        @hookimpl
        def wassh_transport_offer(self) -> Offer:
            return Offer("later", frozenset({STREAM}), available=False, reason="not yet")

    pm = make_plugin_manager(entry_points=False, plugins=[Later()])
    assert [o.name for o, _ in Transports(pm, TransportConfig()).offers] == ["later"]


def test_an_offer_of_the_wrong_type_is_refused() -> None:
    class Wrong:
        name = "wrong"

        @hookimpl
        def wassh_transport_offer(self) -> object:
            return "stream please"

    pm = make_plugin_manager(entry_points=False, plugins=[Wrong()])
    with pytest.raises(PluginError, match="plugin 'wrong' offered 'stream please'"):
        Transports(pm, TransportConfig())


def test_a_class_plugin_gets_an_instance_per_runtime_its_settings_and_a_stop(
    netclient: Path,
) -> None:
    Loopback.instances.clear()
    for greeting in ("first", "second"):
        r = run_guest(
            netclient,
            "echo",
            "anywhere.test",
            "7",
            "x",
            plugins=[Loopback],  # the class: the core makes the instance
            settings={"loopback": {"greeting": greeting}},
        )
        assert r.stdout.startswith(greeting), r
    first, second = Loopback.instances
    assert first is not second
    assert first.settings == {"greeting": "first"} and second.settings == {"greeting": "second"}
    assert first.stopped and second.stopped


def test_settings_for_a_plugin_that_is_not_there_stop_the_run(netclient: Path) -> None:
    with pytest.raises(PluginError, match="settings given for plugin 'nosuch' \\(x\\), but no"):
        run_guest(netclient, "echo", "h", "1", settings={"nosuch": {"x": 1}})
    with pytest.raises(PluginError, match="plugin 'websocket' \\(url\\), but it is blocked"):
        run_guest(
            netclient,
            "echo",
            "h",
            "1",
            block=["websocket"],
            settings={"websocket": {"url": "ws://x/"}},
        )


def test_a_plugin_rejecting_its_settings_stops_the_run(netclient: Path) -> None:
    with pytest.raises(
        PluginError, match="plugin 'tcp' cannot make its offer: ValueError: takes no"
    ):
        run_guest(netclient, "echo", "h", "1", settings={"tcp": {"speed": "ludicrous"}})


def test_embedder_settings_do_not_leak_into_the_callers_config(netclient: Path) -> None:
    config = TransportConfig()
    run_guest(
        netclient,
        "echo",
        "anywhere.test",
        "7",
        plugins=[Loopback],
        settings={"loopback": {}},
        config=config,
    )
    assert config.settings == {} and config.hosts == {}


def test_a_name_that_is_no_address_from_getname_is_ignored_not_a_crash(
    netclient: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Liar(Loopback):
        name = "liar"

        @hookimpl
        def wassh_transport_offer(self) -> Offer:
            return Offer("liar", frozenset({STREAM}), rank=901)

        @hookimpl
        def wassh_sock_getname(
            self, sock: SocketHandle[socket.socket], remote: bool
        ) -> tuple[str, int]:
            return ("db.example.com", 5432)

    r = run_guest(netclient, "echo", "127.0.0.1", "7", "x", plugins=[Liar()])
    assert r.code == 0 and r.stdout.startswith("hi"), r
    assert "returned ('db.example.com', 5432) from wassh_sock_getname" in caplog.text
    assert "Traceback" not in r.stderr


def test_default_hooks_answer_as_linux_does() -> None:
    """A transport that implements only its required hooks: the rest answer as Linux
    would (shutdown, bind, listen, accept: EOPNOTSUPP), options stay the core's, and
    names are unknown (the core then reports the dialled or unspecified address)."""

    class Minimal(NoRecv):
        name = "minimal"

        @hookimpl
        def wassh_sock_recv(self, sock: SocketHandle[object], buf: memoryview, peek: bool) -> int:
            return 0

    pm = make_plugin_manager(entry_points=False, plugins=[Minimal])
    owner = Transports(pm, TransportConfig()).choose(
        wassh.ConnectRequest(STREAM, socket.AF_INET, "h", 1)
    )
    assert owner is not None and owner.plugin_name == "minimal"
    handle: SocketHandle[object] = None  # type: ignore[assignment]  # defaults never look
    for call in (
        lambda: owner.wassh_sock_shutdown(handle, socket.SHUT_WR),
        lambda: owner.wassh_sock_bind(handle, "127.0.0.1", 0),
        lambda: owner.wassh_sock_listen(handle, 1),
        lambda: owner.wassh_sock_accept(handle),
    ):
        with pytest.raises(OSError) as info:
            call()
        assert info.value.errno == errno.EOPNOTSUPP
    assert owner.wassh_sock_setsockopt(handle, socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1) is None
    assert owner.wassh_sock_getsockopt(handle, socket.SOL_SOCKET, socket.SO_KEEPALIVE) is None
    assert owner.wassh_sock_getname(handle, True) is None


# -- the command line --------------------------------------------------------------------


def wassh_cli(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(WASSH), *args], capture_output=True, text=True, timeout=60, env=env)


def test_plugin_options_are_in_their_own_groups_of_wassh_run() -> None:
    r = wassh_cli("run", "--help")
    assert r.returncode == 0
    assert "websocket plugin:" in r.stdout and "--relay URL" in r.stdout
    assert "listen plugin:" in r.stdout and "--unix GUEST_PATH=HOST_PATH" in r.stdout


def test_plugin_commands_are_listed_and_take_global_options() -> None:
    r = wassh_cli("--help")
    assert r.returncode == 0
    assert "relay" in r.stdout and "run a relay server" in r.stdout
    r = wassh_cli("-v", "relay", "--help")
    assert r.returncode == 0, r.stderr
    assert "--listen" in r.stdout


def test_a_plugin_option_given_to_a_blocked_plugin_is_one_line(netclient: Path) -> None:
    r = wassh_cli("run", "--block-plugin", "listen", "--unix", "/a=/b", str(netclient))
    assert r.returncode == 2 and r.stdout == ""
    # A blocked plugin adds no options: its flag is unknown on this command line.
    assert r.stderr == "wassh: unrecognized arguments: --unix (see 'wassh --help')\n"


def test_a_third_party_plugin_adds_an_option_and_a_command(tmp_path: Path) -> None:
    (tmp_path / "greeter.py").write_text(
        "from wassh import STREAM, Offer, PluginCommand, hookimpl\n"
        "class Greeter:\n"
        "    @hookimpl\n"
        "    def wassh_addoption(self, options):\n"
        "        options.add('--greeting', dest='greeting', help='what to say', metavar='TEXT')\n"
        "    @hookimpl\n"
        "    def wassh_transport_offer(self, settings):\n"
        "        return Offer('greeter', frozenset({STREAM}), available=False,\n"
        "                     reason='says ' + str(settings.get('greeting', 'nothing')))\n"
        "def _hello(argv):\n"
        "    print('hello', *argv)\n"
        "    return 3\n"
        "hello = PluginCommand(help='say hello', main=_hello)\n"
    )
    dist = tmp_path / "greeter-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: greeter\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[wassh]\ngreeter = greeter:Greeter\n[wassh.commands]\nhello = greeter:hello\n"
    )
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    r = wassh_cli("transports", "--greeting", "bonjour", env=env)
    # Settings given to an unavailable plugin: fail closed, naming the plugin and its reason.
    assert r.returncode == 2
    assert (
        "settings given for plugin 'greeter' (greeting), but it is unavailable: says bonjour"
        in (r.stderr)
    )
    r = wassh_cli("transports", env=env)
    assert "says nothing" in r.stdout
    assert "--greeting TEXT" in wassh_cli("run", "--help", env=env).stdout
    r = wassh_cli("-v", "hello", "a", "--b", env=env)
    assert (r.returncode, r.stdout) == (3, "hello a --b\n")
    assert "say hello" in wassh_cli("--help", env=env).stdout


def test_two_plugins_claiming_one_option_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "clash.py").write_text(
        "from wassh import hookimpl\n"
        "class Clash:\n"
        "    @hookimpl\n"
        "    def wassh_addoption(self, options):\n"
        "        options.add('--relay', dest='relay', help='mine')\n"
    )
    dist = tmp_path / "clash-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: clash\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[wassh]\nclash = clash:Clash\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    r = wassh_cli("transports", env=env)
    assert r.returncode == 2 and r.stderr == (
        "wassh: plugins 'clash' and 'websocket' both add --relay "
        "(block one with --block-plugin NAME)\n"
    )
    # Blocking either one resolves it.
    assert wassh_cli("transports", "--block-plugin", "clash", env=env).returncode == 0
    r = wassh_cli("transports", "--block-plugin=websocket", env=env)
    assert r.returncode == 0, r.stderr


def test_echo_through_the_public_helpers(netclient: Path, echo_server: EchoServer) -> None:
    """``os_socket`` helpers carry a whole TCP transport (the tcp plugin is one)."""
    r = run_guest(netclient, "echo", "127.0.0.1", str(echo_server.port), "helpers")
    assert r.stdout.startswith("helpers\n"), r


def test_plugin_options_class_validates_flags() -> None:
    import argparse

    options = PluginOptions(argparse.ArgumentParser(), "mine", "mine plugin")
    with pytest.raises(ValueError, match="long flags"):
        options.add("-x", dest="x", help="short")
    with pytest.raises(ValueError, match="not an identifier"):
        options.add("--x", dest="x-y", help="bad dest")


class Lingering(Loopback):
    """A stream transport whose connections each keep a trio task running, which lets
    ``Cancelled`` escape when cancelled (as a careless plugin's task would); its peer
    never answers, so the guest blocks in ``recv``."""

    name = "lingering"
    started: ClassVar[list[str]] = []
    ended: ClassVar[list[str]] = []

    @hookimpl
    def wassh_transport_offer(self) -> Offer:
        return Offer("lingering", frozenset({STREAM}), rank=902)

    @hookimpl
    def wassh_sock_connect(self, sock: SocketHandle[socket.socket], host: str, port: int) -> bool:
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        self.peers.append(theirs)
        sock.state = ours
        sock.portal.start_soon(self._background, host)
        return True

    async def _background(self, host: str) -> None:
        import trio

        Lingering.started.append(host)
        try:
            await trio.sleep_forever()
        finally:
            Lingering.ended.append(host)


async def test_cancelling_a_guest_raises_a_bare_cancelled_whatever_plugins_tasks_do(
    netclient: Path,
) -> None:
    import trio

    Lingering.started.clear()
    Lingering.ended.clear()
    caught: list[BaseException] = []
    with trio.CancelScope() as scope:

        async def cancel_when_connected() -> None:
            while not Lingering.started:
                await trio.sleep(0.01)
            await trio.sleep(0.2)  # the guest is blocked in recv by now
            scope.cancel()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(cancel_when_connected)
            try:
                await wassh.run(
                    netclient,
                    ["netclient", "echo", "stuck.test", "7", "hi"],
                    plugins=[Lingering],
                    stdout=wassh.Capture(),
                    stderr=wassh.Capture(),
                )
            except BaseException as exc:
                caught.append(exc)
                raise
    assert scope.cancelled_caught
    assert len(caught) == 1 and type(caught[0]).__name__ == "Cancelled", caught
    # The plugin's task was cancelled too, after the guest had stopped.
    assert Lingering.ended == ["stuck.test"]
