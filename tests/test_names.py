"""Name lookups through a resolver plugin (an offer of kind NAMES), as the guest sees them.

The resolver here is a plugin written against the public API that answers from
a table, so each case is exact; the DNS and DNS-over-HTTPS plugin is tested
against real servers in its own directory. What is checked: the answers reach
getaddrinfo as real addresses (no fake ones), the glibc-style flags, the EAI_*
results, the canonical name, reverse lookups, the deadline and cancellation of a
resolver that never answers (and of the host's resolver the tcp transport uses
without one), a signal while a lookup waits, the network policy
on resolved addresses, and a resolver plugin's bugs.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import trio
import wassh
from guestbuild import build_guest
from suitekit import GUESTS, EchoServer, run_guest

V4 = socket.AF_INET
V6 = socket.AF_INET6


def packed(text: str) -> tuple[int, bytes]:
    family = V6 if ":" in text else V4
    return family, socket.inet_pton(family, text)


class TableResolver:
    """Answers from a table; a few names behave badly on purpose."""

    name = "table"

    def __init__(self) -> None:
        self.asked: list[tuple[str, int]] = []
        self.cancelled = 0

    TABLE: Mapping[str, list[str]] = {
        "both.test": ["::1", "127.0.0.1"],
        "v4.test": ["127.0.0.1"],
        "v6.test": ["::1"],
        "many.test": [f"127.0.0.{i}" for i in range(1, 41)],
        "alias.test": ["127.0.0.1"],
        "denied.test": ["127.0.0.1"],
        "slowish.test": ["127.0.0.1"],
    }

    @wassh.hookimpl
    def wassh_transport_offer(
        self, config: wassh.TransportConfig, settings: Mapping[str, object]
    ) -> wassh.Offer:
        return wassh.Offer(name="table", kinds=frozenset({wassh.NAMES}), rank=100)

    @wassh.hookimpl
    async def wassh_getaddrinfo(
        self, host: str, family: int, config: wassh.TransportConfig
    ) -> wassh.NameAnswer:
        self.asked.append((host, family))
        if host == "hang.test":
            try:
                await trio.sleep_forever()
            finally:
                self.cancelled += 1
        if host == "slowish.test":
            await trio.sleep(1.0)
        if host == "servfail.test":
            raise socket.gaierror(socket.EAI_AGAIN, "SERVFAIL")
        if host == "refused.test":
            raise socket.gaierror(socket.EAI_FAIL, "REFUSED")
        if host == "buggy.test":
            raise RuntimeError("a resolver bug")
        if host == "nonsense.test":
            return [("not", "an answer")]  # type: ignore[return-value]
        texts = self.TABLE.get(host.rstrip("."))
        if texts is None:
            raise socket.gaierror(socket.EAI_NONAME, "NXDOMAIN")
        found = [packed(t) for t in texts]
        if family != socket.AF_UNSPEC:
            found = [f for f in found if f[0] == family]
        if not found:
            raise socket.gaierror(socket.EAI_NODATA, "no address of that family")
        canonical = "real-name.example.test" if host == "alias.test" else None
        return wassh.NameAnswer(found, canonical)


@pytest.fixture(scope="module")
def names_guest() -> Path:
    return build_guest(GUESTS / "names" / "names.c", sdk=True)


def names(guest: Path, *args: str, resolver: object = None, **options: object) -> tuple[int, str]:
    plugins = [resolver if resolver is not None else TableResolver()]
    r = run_guest(guest, *args, plugins=plugins, **options)
    assert "Traceback" not in r.stderr, r.stderr
    return r.code, r.stdout


@pytest.mark.parametrize(
    ("args", "lines"),
    [
        (("both.test",), ["inet6 ::1", "inet 127.0.0.1"]),
        (("both.test", "inet"), ["inet 127.0.0.1"]),
        (("both.test", "inet6"), ["inet6 ::1"]),
        (("v4.test", "inet6", "v4mapped"), ["inet6 ::ffff:127.0.0.1"]),
        (("both.test", "inet6", "v4mapped"), ["inet6 ::1"]),
        (("both.test", "inet6", "v4mapped", "all"), ["inet6 ::1", "inet6 ::ffff:127.0.0.1"]),
        (("v4.test", "addrconfig"), ["inet 127.0.0.1"]),
        (("alias.test", "canon"), ["canonical real-name.example.test", "inet 127.0.0.1"]),
        (("v4.test", "canon"), ["canonical v4.test", "inet 127.0.0.1"]),
        (("v4.test.",), ["inet 127.0.0.1"]),
    ],
)
def test_answers_are_real_addresses_with_glibc_flags(
    names_guest: Path, args: tuple[str, ...], lines: list[str]
) -> None:
    code, out = names(names_guest, "lookup", *args)
    assert (code, out.splitlines()) == (0, lines)


def test_every_address_of_a_long_answer_reaches_the_guest(names_guest: Path) -> None:
    code, out = names(names_guest, "lookup", "many.test")
    assert code == 0
    assert out.splitlines() == [f"inet 127.0.0.{i}" for i in range(1, 41)]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("nowhere.test",), "EAI_NONAME: Name or service not known"),
        (("v4.test", "inet6"), "EAI_NODATA: No address associated with hostname"),
        (("servfail.test",), "EAI_AGAIN: Temporary failure in name resolution"),
        (("refused.test",), "EAI_FAIL: Non-recoverable failure in name resolution"),
    ],
)
def test_failures_are_the_eai_results_of_linux(
    names_guest: Path, args: tuple[str, ...], error: str
) -> None:
    code, out = names(names_guest, "lookup", *args)
    assert (code, out.strip()) == (1, f"error {error}")


def test_gethostbyname_gives_the_canonical_name_and_h_errno(names_guest: Path) -> None:
    assert names(names_guest, "hostent", "alias.test") == (
        0,
        "h_name real-name.example.test\ninet 127.0.0.1\n",
    )
    assert names(names_guest, "hostent", "nowhere.test") == (1, "h_errno 1\n")  # HOST_NOT_FOUND
    assert names(names_guest, "hostent", "v6.test") == (1, "h_errno 4\n")  # NO_DATA
    assert names(names_guest, "hostent", "servfail.test") == (1, "h_errno 2\n")  # TRY_AGAIN


def test_a_guest_connects_to_what_the_resolver_answered(
    names_guest: Path, echo_server: EchoServer
) -> None:
    code, out = names(names_guest, "connect", "v4.test", str(echo_server.port), "ping")
    assert (code, out.splitlines()) == (0, ["connected inet 127.0.0.1", "reply ping"])


def test_add_host_names_come_first_and_as_real_addresses(
    names_guest: Path, echo_server: EchoServer
) -> None:
    resolver = TableResolver()
    code, out = names(
        names_guest, "lookup", "local.test", resolver=resolver, hosts={"local.test": "127.0.0.9"}
    )
    assert (code, out.splitlines()) == (0, ["inet 127.0.0.9"])
    assert resolver.asked == []  # the table, as /etc/hosts comes before DNS


def test_reverse_lookups_know_the_names_the_guest_resolved(names_guest: Path) -> None:
    assert names(names_guest, "reverse", "127.0.0.7", "many.test") == (0, "name many.test\n")
    # Nothing looked up: the host knows no name for it, and asks no DNS.
    assert names(names_guest, "reverse", "127.0.0.7") == (1, "error EAI_NONAME\n")


def test_a_resolver_that_never_answers_ends_at_the_connect_timeout(names_guest: Path) -> None:
    resolver = TableResolver()
    started = time.monotonic()
    code, out = names(
        names_guest,
        "lookup",
        "hang.test",
        resolver=resolver,
        config=wassh.TransportConfig(connect_timeout=0.5),
    )
    took = time.monotonic() - started
    assert (code, out.strip()) == (1, "error EAI_AGAIN: Temporary failure in name resolution")
    assert 0.5 <= took < 10, took
    assert resolver.cancelled == 1  # the plugin's task was cancelled, not left running


def test_cancelling_the_guest_ends_a_lookup_under_way(names_guest: Path) -> None:
    resolver = TableResolver()

    async def main() -> None:
        with trio.move_on_after(0.5) as scope:
            await wassh.run(
                names_guest,
                ["names", "lookup", "hang.test"],
                plugins=[resolver],
                stdout=wassh.Capture(),
            )
        assert scope.cancelled_caught
        with trio.fail_after(5):
            while resolver.cancelled == 0:
                await trio.sleep(0.01)

    started = time.monotonic()
    trio.run(main)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("how", "code", "lines"),
    [
        ("restart", 0, ["alarms 1", "inet 127.0.0.1"]),
        ("jump", 3, ["lookup abandoned after 1 alarm(s)"]),
    ],
)
def test_a_signal_during_a_lookup_runs_its_handler(
    names_guest: Path, how: str, code: int, lines: list[str]
) -> None:
    """The handler runs while the lookup waits; returning from it, the lookup goes on
    (as glibc's resolver does); jumping out of it abandons the lookup."""
    resolver = TableResolver()
    got = names(names_guest, "alarm", "slowish.test", how, resolver=resolver)
    assert got == (code, "\n".join(lines) + "\n")
    assert resolver.asked == [("slowish.test", socket.AF_UNSPEC)]  # one lookup, not two


def test_the_policy_judges_resolved_addresses_by_their_names(
    names_guest: Path, echo_server: EchoServer
) -> None:
    port = str(echo_server.port)
    allow_name = wassh.TransportConfig(connect_allow=["v4.test"])
    code, out = names(names_guest, "connect", "v4.test", port, "hi", config=allow_name)
    assert (code, out.splitlines()) == (0, ["connected inet 127.0.0.1", "reply hi"])
    # Denied by name: the address the name resolved to is no way around the rule.
    deny_name = wassh.TransportConfig(connect_deny=["denied.test"])
    code, out = names(names_guest, "connect", "denied.test", port, "hi", config=deny_name)
    assert (code, out.strip()) == (1, "connect inet: Permission denied")
    # Denied by address: whatever name led there.
    deny_address = wassh.TransportConfig(connect_allow=["v4.test"], connect_deny=["127.0.0.0/8"])
    code, out = names(names_guest, "connect", "v4.test", port, "hi", config=deny_address)
    assert (code, out.strip()) == (1, "connect inet: Permission denied")
    # An address allowed only through a name the guest never looked up stays denied.
    other = wassh.TransportConfig(connect_allow=["other.test"])
    code, out = names(names_guest, "connect", "v4.test", port, "hi", config=other)
    assert (code, out.strip()) == (1, "connect inet: Permission denied")


@pytest.mark.parametrize("name", ["buggy.test", "nonsense.test"])
def test_a_resolver_bug_is_logged_and_eai_fail_to_the_guest(
    names_guest: Path, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    code, out = names(names_guest, "lookup", name)
    assert (code, out.strip()) == (1, "error EAI_FAIL: Non-recoverable failure in name resolution")
    assert any(r.name == "wassh.names" and "table" in r.getMessage() for r in caplog.records)


def test_without_a_resolver_names_still_get_fake_addresses(names_guest: Path) -> None:
    r = run_guest(names_guest, "lookup", "anything.test")
    assert r.code == 0
    assert r.stdout.splitlines() == ["inet6 100::1", "inet 0.0.0.1"]


def test_a_sync_hook_is_refused_at_start_up(names_guest: Path) -> None:
    class SyncResolver(TableResolver):
        @wassh.hookimpl
        def wassh_getaddrinfo(  # type: ignore[override]
            self, host: str, family: int, config: wassh.TransportConfig
        ) -> wassh.NameAnswer:
            return wassh.NameAnswer([packed("127.0.0.1")])

    with pytest.raises(wassh.PluginError, match="async def"):
        run_guest(names_guest, "lookup", "v4.test", plugins=[SyncResolver()])


class StalledHostResolver:
    """Stands in for the OS resolver, which cannot be made slow here: names under
    ``stall.test`` block the calling thread until released, as a resolver whose
    server never answers does (glibc retries for up to 30 s)."""

    def __init__(self, real: Callable[..., Any]) -> None:
        self.real = real
        self.release = threading.Event()
        self.entered = threading.Semaphore(0)

    def __call__(self, host: object, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith("stall.test"):
            self.entered.release()
            self.release.wait(60)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return self.real(host, *args, **kwargs)


@pytest.fixture
def stalled(monkeypatch: pytest.MonkeyPatch) -> Iterator[StalledHostResolver]:
    stand_in = StalledHostResolver(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", stand_in)
    yield stand_in
    stand_in.release.set()


def test_the_tcp_transport_host_lookup_ends_at_the_connect_timeout(
    names_guest: Path, stalled: StalledHostResolver
) -> None:
    """Without a resolver plugin the tcp transport looks the fake name up with the
    host's resolver at connect time; a resolver that stalls costs the guest its
    connect timeout, not the resolver's own."""
    started = time.monotonic()
    r = run_guest(
        names_guest,
        "connect",
        "db.stall.test",
        "9",
        "hi",
        config=wassh.TransportConfig(connect_timeout=0.5),
    )
    took = time.monotonic() - started
    assert r.code == 1
    assert r.stdout.splitlines() == [
        "connect inet6: Operation timed out",
        "connect inet: Operation timed out",
    ]
    assert 1.0 <= took < 10, took  # one connect timeout per address tried


def test_cancelling_the_guest_ends_a_host_lookup_under_way(
    names_guest: Path, stalled: StalledHostResolver
) -> None:
    async def main() -> None:
        async with trio.open_nursery() as nursery:
            cancel = trio.CancelScope()

            async def guest() -> None:
                with cancel:
                    await wassh.run(
                        names_guest,
                        ["names", "connect", "db.stall.test", "9", "hi"],
                        stdout=wassh.Capture(),
                        config=wassh.TransportConfig(connect_timeout=60),
                    )

            nursery.start_soon(guest)
            await trio.to_thread.run_sync(stalled.entered.acquire)  # the lookup is under way
            cancel.cancel()

    started = time.monotonic()
    trio.run(main)
    assert time.monotonic() - started < 10
