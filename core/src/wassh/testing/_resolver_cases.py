"""The resolver conformance cases: ``ResolverConformance`` and its ``ResolverKit``.

Hook-level cases load the resolver as the core does (``make_plugin_manager``
and ``Transports``: its offer, the check of its hooks) and await its
``wassh_getaddrinfo`` on a trio loop of their own, holding each answer to the
contract the core enforces. Guest-level cases run the resolver guest
(``guests/resolve.c``) and assert what a program's ``getaddrinfo`` gets.
Cases are plain (synchronous) pytest tests that run their own trio loop.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar, TypeVar

import trio

from ..abi.errno import UNEXPECTED
from ..names import NameAnswer
from ..plugins import NAMES, Owner, PluginError, Transports, make_plugin_manager
from ._guest import ConformanceFailure, GuestRun, run_guest
from ._peer import PeerServer
from ._resolver_spec import ResolverUnderTest, family_of

T = TypeVar("T")

RUN_TIMEOUT = 60.0  # seconds one guest run may take before the case fails
LOOKUP_TIMEOUT = 20.0  # seconds one hook-level lookup of a declared name may take
HOSTILE_BOUND = 10.0  # seconds a lookup of a hostile host string may take to fail
CANCEL_AFTER = 0.5  # seconds the cancellation case lets a lookup of `unanswered` wait
CANCEL_BOUND = 5.0  # seconds from a cancellation to the lookup (or guest) having ended
GUEST_CONNECT_TIMEOUT = 1.0  # the connect timeout a guest's unanswered lookup ends at
AGAIN_BOUND = 10.0  # seconds for that guest to see EAI_AGAIN
HELD_CONNECT_TIMEOUT = 60.0  # a lookup the kit cancels is never ended by the core first
SETTLE = 0.3  # seconds to let a guest that said "asking" reach the host's wait
CONCURRENT = 20

FAMILIES: dict[str, int] = {
    "unspec": socket.AF_UNSPEC,
    "inet": socket.AF_INET,
    "inet6": socket.AF_INET6,
}
FAMILY_NAMES = {number: f"AF_{text.upper()}" for text, number in FAMILIES.items()}
# The EAI_* codes the core turns into the guest's own (others become EAI_FAIL).
KNOWN_EAI = {
    socket.EAI_AGAIN: "EAI_AGAIN",
    socket.EAI_FAIL: "EAI_FAIL",
    socket.EAI_FAMILY: "EAI_FAMILY",
    socket.EAI_MEMORY: "EAI_MEMORY",
    socket.EAI_NONAME: "EAI_NONAME",
    socket.EAI_NODATA: "EAI_NODATA",
}


def hostile_names(missing: str) -> list[str]:
    """Host strings no resolver can answer; each lookup must end in ``gaierror``."""
    return [
        ".".join(["a" * 63] * 3 + ["b" * 62]),  # 254 bytes without a dot to excuse them
        "x" * 1000 + ".test",
        "b" * 64 + ".test",  # a 64-byte label
        "a..b",
        "nul\0.test",
        "bücher.test",
        "\u2603.test",
        "esc\\046aped.test",  # a DNS presentation escape
        "space here.test",
        "",
        ".",
        "..",
        missing + ".",  # a trailing dot: absolute, still the missing name
        missing + "..",
    ]


def _fail(message: str, run: GuestRun | None = None) -> ConformanceFailure:
    return ConformanceFailure(message + ("\n" + run.describe() if run is not None else ""))


def expect(actual: object, expected: object, what: str, run: GuestRun | None = None) -> None:
    """Fail with both values, what was checked and the guest's output."""
    if actual != expected:
        raise _fail(f"{what}: expected {expected!r}, got {actual!r}", run)


def expect_true(condition: bool, what: str, run: GuestRun | None = None) -> None:
    if not condition:
        raise _fail(what, run)


def expect_none(wrong: Sequence[str], what: str) -> None:
    """Fail listing ``wrong``, one finding a line, under ``what``."""
    if wrong:
        raise _fail(f"{what}:\n" + "\n".join(f"  {line}" for line in wrong))


def eai_name(code: object) -> str:
    return KNOWN_EAI.get(code, f"EAI {code!r}") if isinstance(code, int) else repr(code)


def _asked(host: str, family: int) -> str:
    return f"{host!r} ({FAMILY_NAMES[family]})"


def _described(outcome: NameAnswer | socket.gaierror) -> str:
    if isinstance(outcome, socket.gaierror):
        return f"gaierror {eai_name(outcome.args[0] if outcome.args else None)}: {outcome}"
    return f"answer {outcome.addresses!r} (canonical {outcome.canonical_name!r})"


def answer_texts(answer: NameAnswer, host: str, family: int) -> set[str]:
    """The answer's addresses as literals, held to the contract the core enforces."""
    texts: set[str] = set()
    try:
        entries = list(answer.addresses)
    except TypeError:
        raise _fail(
            f"{_asked(host, family)}: addresses {answer.addresses!r} is no sequence"
        ) from None
    size: dict[int, int] = {socket.AF_INET: 4, socket.AF_INET6: 16}
    for entry in entries:
        if (
            not isinstance(entry, tuple)
            or len(entry) != 2
            or not isinstance(entry[1], bytes)
            or size.get(entry[0]) != len(entry[1])
        ):
            raise _fail(
                f"{_asked(host, family)}: {entry!r} is not a (socket.AF_INET, 4 bytes) or "
                "(socket.AF_INET6, 16 bytes) pair"
            )
        fam, packed = entry
        if family != socket.AF_UNSPEC and fam != family:
            raise _fail(
                f"{_asked(host, family)}: answered {socket.inet_ntop(fam, packed)}, an address "
                f"of another family (full answer: {_texts(entries)})"
            )
        texts.add(socket.inet_ntop(fam, packed))
    return texts


def _texts(entries: Sequence[tuple[int, bytes]]) -> list[str]:
    return [socket.inet_ntop(f, p) for f, p in entries]


def _task_names() -> list[str]:
    def walk(task: trio.lowlevel.Task) -> Iterator[str]:
        yield task.name
        for nursery in task.child_nurseries:
            for child in nursery.child_tasks:
                yield from walk(child)

    root = trio.lowlevel.current_root_task()
    assert root is not None
    return list(walk(root))


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


class ResolverKit:
    """What a resolver conformance case works with (the ``wassh_resolver_kit`` fixture).

    Also usable for an author's own cases: ``kit.loaded()`` loads the resolver
    as the core does, ``await kit.lookup(transports, host, family)`` asks its
    hook, ``kit.run(*argv)`` runs the resolver guest; ``kit.peer`` is the TCP
    peer server.
    """

    def __init__(self, resolver: ResolverUnderTest, peer: PeerServer, guest: Path) -> None:
        self.resolver = resolver
        self.peer = peer
        self.guest = guest
        # How long one guest run may take before the case fails.
        self.run_timeout = RUN_TIMEOUT
        # How soon a cancelled lookup (or guest) must have ended.
        self.cancel_bound = CANCEL_BOUND
        self._tokens = 0

    def token(self) -> str:
        """A name for this case's connections at the peer server, unique in the session."""
        self._tokens += 1
        return f"r{os.getpid()}-{id(self):x}-{self._tokens}"

    # -- the hook, as the core calls it -------------------------------------------------
    @contextmanager
    def loaded(self) -> Iterator[Transports]:
        """The resolver loaded the way the core loads it; its offer made."""
        name = self.resolver.name
        try:
            pm = make_plugin_manager(**self.resolver.load_options())
            transports = Transports(pm, self.resolver.config())
        except PluginError as exc:
            raise _fail(f"the core refuses resolver {name!r}: {exc}") from exc
        try:
            yield transports
        finally:
            transports.stop()

    def owner(self, transports: Transports, host: str, family: int = socket.AF_UNSPEC) -> Owner:
        """The owner the core would ask for ``host``; it must be the resolver under test's."""
        owner = transports.resolver(host, family)
        expect_true(
            owner is not None and owner.plugin_name == self.resolver.name,
            f"a lookup of {_asked(host, family)} would be answered by "
            f"{owner.plugin_name if owner else 'no resolver plugin'!r}, not "
            f"{self.resolver.name!r} (offers: "
            + ", ".join(
                f"{o.name} of {p} {sorted(o.kinds)}"
                + ("" if o.available else f" unavailable: {o.reason}")
                for o, p in transports.offers
            )
            + ")",
        )
        assert owner is not None
        return owner

    async def lookup(
        self, transports: Transports, host: str, family: int, owner: Owner | None = None
    ) -> NameAnswer | socket.gaierror:
        """The hook's answer for ``host``, or the ``gaierror`` it raised; anything else fails."""
        if owner is None:
            owner = self.owner(transports, host, family)
        try:
            answer: object = await owner.wassh_getaddrinfo(host, family, transports.config)
        except socket.gaierror as exc:
            return exc
        except Exception as exc:
            raise _fail(
                f"looking up {_asked(host, family)} raised {type(exc).__name__}: {exc}, "
                "not socket.gaierror (the core logs it as a bug and the guest gets EAI_FAIL)"
            ) from exc
        if not isinstance(answer, NameAnswer):
            raise _fail(f"looking up {_asked(host, family)} returned {answer!r}, not a NameAnswer")
        return answer

    def hooked(self, case: Callable[[Transports], Awaitable[T]]) -> T:
        """Run ``case`` with the loaded resolver on a trio loop of its own."""

        async def main() -> T:
            with self.loaded() as transports:
                return await case(transports)

        try:
            return trio.run(main)
        except trio.TooSlowError:
            raise _fail(
                f"a lookup by {self.resolver.name!r} of a declared name did not end "
                f"within {LOOKUP_TIMEOUT} s"
            ) from None

    # -- the guest ---------------------------------------------------------------------
    def new_run(self, *argv: str) -> GuestRun:
        return GuestRun(self.resolver.name, argv, role="resolver")

    async def arun(
        self,
        *argv: str,
        connect_timeout: float | None = None,
        state: GuestRun | None = None,
    ) -> GuestRun:
        """Run the resolver guest to its end on the current trio loop; fails if the host
        recorded an unexpected error meanwhile (``wassh.abi.errno.UNEXPECTED``)."""
        run = state or self.new_run(*argv)
        config = self.resolver.config(connect_timeout)
        before = UNEXPECTED.count
        start = time.monotonic()
        try:
            await run_guest(
                self.guest,
                run,
                config,
                self.resolver.run_options(),
                timeout=self.run_timeout,
                program="resolve",
            )
        finally:
            run.seconds = time.monotonic() - start
            unexpected = UNEXPECTED.count - before
        if unexpected:
            last = UNEXPECTED.recent[-1] if UNEXPECTED.recent else "(not kept)"
            raise _fail(
                f"the host recorded {unexpected} unexpected error(s) (a bug the guest sees as "
                f"EAI_FAIL or EIO); the last:\n{last}",
                run,
            )
        return run

    def run(self, *argv: str, connect_timeout: float | None = None) -> GuestRun:
        """Run the resolver guest to its end (a trio loop of its own)."""
        return trio.run(lambda: self.arun(*argv, connect_timeout=connect_timeout))

    def guest_results(self, run: GuestRun) -> dict[tuple[str, str], list[str]]:
        """What the guest's ``lookup`` mode printed: (family, name) -> the line's rest
        (``["answer", canonical, address...]`` or ``["error", "EAI_..."]``)."""
        found: dict[tuple[str, str], list[str]] = {}
        for line in run.lines:
            word, *rest = line.split(" ")
            if word in ("answer", "error") and len(rest) >= 3:
                found[(rest[0], rest[1])] = [word, *rest[2:]]
        return found


class ResolverConformance:
    """Conformance of a resolver plugin (an offer of kind ``NAMES``).

    Subclass it in a test module (name the subclass ``Test...``) and describe
    the resolver with a class attribute ``resolver = ResolverUnderTest(...)``,
    or override the ``wassh_resolver`` fixture (for one that needs servers of
    its own). Needs the ``wassh.testing`` plugin.
    """

    resolver: ClassVar[ResolverUnderTest]

    # -- loading -----------------------------------------------------------------------
    def test_offer(self, wassh_resolver_kit: ResolverKit) -> None:
        """The plugin loads as the core loads it (a ``wassh_getaddrinfo`` that is no
        ``async def`` is refused), makes an available offer of kind NAMES, and is the
        resolver the core asks for every name the cases use."""
        kit = wassh_resolver_kit
        spec = kit.resolver
        with kit.loaded() as transports:
            mine = [o for o, p in transports.offers if p == spec.name]
            expect_true(
                bool(mine), f"plugin {spec.name!r} made no offer (offers: {transports.offers})"
            )
            expect_true(
                any(o.available and NAMES in o.kinds for o in mine),
                f"no available offer of plugin {spec.name!r} is of kind {NAMES!r}: "
                + ", ".join(f"{o.name} {sorted(o.kinds)} {o.reason}" for o in mine),
            )
            for host in [*spec.answers, spec.missing, spec.unanswered]:
                for family in FAMILIES.values():
                    kit.owner(transports, host, family)

    # -- the hook ----------------------------------------------------------------------
    def test_answers(self, wassh_resolver_kit: ResolverKit) -> None:
        """Each declared name is answered with exactly its addresses (in any order)
        for AF_UNSPEC, AF_INET and AF_INET6, and only with addresses of the family
        asked for; the declared canonical names (and no others) are given."""
        kit = wassh_resolver_kit
        spec = kit.resolver

        async def case(transports: Transports) -> list[str]:
            wrong: list[str] = []
            for host, addresses in spec.expected.items():
                for family in FAMILIES.values():
                    want = {a for a in addresses if _matches(a, family)}
                    if not want:
                        continue
                    with trio.fail_after(LOOKUP_TIMEOUT):
                        got = await kit.lookup(transports, host, family)
                    if isinstance(got, socket.gaierror):
                        wrong.append(f"{_asked(host, family)}: {_described(got)}")
                        continue
                    texts = answer_texts(got, host, family)
                    if texts != want:
                        wrong.append(
                            f"{_asked(host, family)}: answered {sorted(texts)}, "
                            f"expected {sorted(want)}"
                        )
                    expected = spec.canonical.get(host)
                    allowed = {None, host.lower()} if expected is None else {expected.lower()}
                    if _canonical(got) not in allowed:
                        wrong.append(
                            f"{_asked(host, family)}: canonical name {got.canonical_name!r}, "
                            f"expected {expected!r}"
                        )
            return wrong

        wrong = kit.hooked(case)
        expect_none(wrong, f"lookups by {spec.name!r} that went wrong")

    def test_no_address_of_the_family(self, wassh_resolver_kit: ResolverKit) -> None:
        """A declared name asked for a family it has no address of (the 127.0.0.1-only
        name as AF_INET6, at least) gives EAI_NODATA: raised, or an empty answer
        (which the core turns into EAI_NODATA)."""
        kit = wassh_resolver_kit
        spec = kit.resolver

        async def case(transports: Transports) -> list[str]:
            wrong: list[str] = []
            for host, addresses in spec.expected.items():
                for family in (socket.AF_INET, socket.AF_INET6):
                    if any(_matches(a, family) for a in addresses):
                        continue
                    with trio.fail_after(LOOKUP_TIMEOUT):
                        got = await kit.lookup(transports, host, family)
                    if isinstance(got, socket.gaierror):
                        if got.args[:1] != (socket.EAI_NODATA,):
                            wrong.append(f"{_asked(host, family)}: {_described(got)}")
                    elif answer_texts(got, host, family):
                        wrong.append(f"{_asked(host, family)}: {_described(got)}")
            return wrong

        wrong = kit.hooked(case)
        expect_none(wrong, "lookups that should give EAI_NODATA (or an empty answer)")

    def test_missing_name(self, wassh_resolver_kit: ResolverKit) -> None:
        """The missing name raises ``socket.gaierror`` with EAI_NONAME, whatever the family."""
        kit = wassh_resolver_kit
        missing = kit.resolver.missing

        async def case(transports: Transports) -> list[str]:
            wrong: list[str] = []
            for family in FAMILIES.values():
                with trio.fail_after(LOOKUP_TIMEOUT):
                    got = await kit.lookup(transports, missing, family)
                if not isinstance(got, socket.gaierror) or got.args[:1] != (socket.EAI_NONAME,):
                    wrong.append(f"{_asked(missing, family)}: {_described(got)}")
            return wrong

        wrong = kit.hooked(case)
        expect_none(wrong, "lookups of the missing name that did not give EAI_NONAME")

    def test_hostile_names(self, wassh_resolver_kit: ResolverKit) -> None:
        """Host strings no resolver can answer (254 bytes, a 64-byte label, an empty
        label, a NUL, non-ASCII, escapes, trailing dots) each end in ``gaierror`` with
        an EAI code the core knows, within 10 s: never an answer, another exception or
        a hang. (The core sends no such string, but the hook must not trust that.)"""
        kit = wassh_resolver_kit
        spec = kit.resolver

        async def case(transports: Transports) -> list[str]:
            owner = kit.owner(transports, spec.v4_only)
            wrong: list[str] = []
            for host in hostile_names(spec.missing):
                shown = repr(host) if len(host) < 80 else f"{host[:40]!r}... ({len(host)} chars)"
                try:
                    with trio.fail_after(HOSTILE_BOUND):
                        got = await kit.lookup(transports, host, socket.AF_UNSPEC, owner)
                except trio.TooSlowError:
                    wrong.append(f"{shown}: no end within {HOSTILE_BOUND} s")
                    continue
                except ConformanceFailure as exc:
                    wrong.append(f"{shown}: {_first_line(exc)}")
                    continue
                if not isinstance(got, socket.gaierror):
                    wrong.append(f"{shown}: {_described(got)}")
                elif not got.args or got.args[0] not in KNOWN_EAI:
                    wrong.append(f"{shown}: gaierror with args {got.args!r}")
            return wrong

        wrong = kit.hooked(case)
        expect_none(wrong, "hostile host strings that did not end in a gaierror")

    def test_concurrent_lookups(self, wassh_resolver_kit: ResolverKit) -> None:
        """Twenty lookups at once (the declared names and their families in turn), in
        one nursery, each get their own answer."""
        kit = wassh_resolver_kit
        spec = kit.resolver
        asks = [
            (host, family, want)
            for host, addresses in spec.expected.items()
            for family in FAMILIES.values()
            if (want := {a for a in addresses if _matches(a, family)})
        ]
        plan = [asks[i % len(asks)] for i in range(CONCURRENT)]

        async def case(transports: Transports) -> list[str]:
            wrong: list[str] = []

            async def one(host: str, family: int, want: set[str]) -> None:
                try:  # a failure is listed, not raised in the nursery's exception group
                    got = await kit.lookup(transports, host, family)
                    if isinstance(got, socket.gaierror):
                        wrong.append(f"{_asked(host, family)}: {_described(got)}")
                    elif (texts := answer_texts(got, host, family)) != want:
                        wrong.append(f"{_asked(host, family)}: {sorted(texts)}, not {sorted(want)}")
                except ConformanceFailure as exc:
                    wrong.append(_first_line(exc))

            with trio.fail_after(LOOKUP_TIMEOUT):
                async with trio.open_nursery() as nursery:
                    for host, family, want in plan:
                        nursery.start_soon(one, host, family, want)
            return wrong

        wrong = kit.hooked(case)
        expect_none(wrong, f"of {CONCURRENT} concurrent lookups, those that went wrong")

    def test_cancelled_lookup(self, wassh_resolver_kit: ResolverKit) -> None:
        """A lookup of the unanswered name, cancelled after 0.5 s, ends within 5 s of
        the cancellation, and leaves no task of its own behind."""
        kit = wassh_resolver_kit
        spec = kit.resolver

        async def case(transports: Transports) -> tuple[float, str | None, list[str]]:
            with trio.fail_after(LOOKUP_TIMEOUT):  # tasks a first lookup starts for good
                await kit.lookup(transports, spec.v4_only, socket.AF_UNSPEC)
            owner = kit.owner(transports, spec.unanswered)
            before = _task_names()
            early: str | None = None

            async def ask() -> None:
                nonlocal early
                with trio.move_on_after(CANCEL_AFTER):
                    try:  # a failure is reported, not raised in the nursery's exception group
                        got = await kit.lookup(transports, spec.unanswered, socket.AF_UNSPEC, owner)
                        early = _described(got)
                    except ConformanceFailure as exc:
                        early = _first_line(exc)

            started = trio.current_time()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ask)
            took = trio.current_time() - started - CANCEL_AFTER
            left: list[str] = []
            with trio.move_on_after(kit.cancel_bound) as waiting:
                while len(_task_names()) > len(before):
                    await trio.sleep(0.01)
            if waiting.cancelled_caught:
                left = [n for n in _task_names() if n not in before] or _task_names()
            return took, early, left

        took, early, left = kit.hooked(case)
        expect(
            early,
            None,
            f"the lookup of unanswered name {spec.unanswered!r} must not complete "
            f"(it ended within {CANCEL_AFTER} s)",
        )
        expect_true(
            took < kit.cancel_bound,
            f"the lookup of {spec.unanswered!r} took {took:.2f} s to end after its scope was "
            f"cancelled (bound {kit.cancel_bound} s): it ignores trio cancellation",
        )
        expect_none(left, f"tasks still running {kit.cancel_bound} s after the cancelled lookup")

    # -- the guest ---------------------------------------------------------------------
    def test_guest_lookups(self, wassh_resolver_kit: ResolverKit) -> None:
        """A guest's getaddrinfo(AI_CANONNAME) of each declared name, for each family,
        gives exactly its addresses and canonical name; EAI_NODATA for a family it has
        no address of (the 127.0.0.1-only name as AF_INET6)."""
        kit = wassh_resolver_kit
        spec = kit.resolver
        argv = [part for host in spec.answers for fam in FAMILIES for part in (fam, host)]
        run = kit.run("lookup", *argv)
        expect(run.code, 0, "the guest's exit status", run)
        results = kit.guest_results(run)
        for host, addresses in spec.expected.items():
            for fam, family in FAMILIES.items():
                want = {a for a in addresses if _matches(a, family)}
                got = results.get((fam, host))
                what = f"getaddrinfo({host!r}, {FAMILY_NAMES[family]})"
                if not want:
                    expect(got, ["error", "EAI_NODATA"], what, run)
                    continue
                expect_true(
                    got is not None and got[0] == "answer",
                    f"{what}: expected an answer, got {got}",
                    run,
                )
                assert got is not None
                expect(sorted(set(got[2:])), sorted(want), f"{what}: its addresses", run)
                expect(len(got[2:]), len(want), f"{what}: addresses given (once each)", run)
                canonical = spec.canonical.get(host, host)
                expect(got[1].lower(), canonical.lower(), f"{what}: ai_canonname", run)

    def test_guest_missing_name(self, wassh_resolver_kit: ResolverKit) -> None:
        """A guest's getaddrinfo of the missing name fails with EAI_NONAME."""
        kit = wassh_resolver_kit
        missing = kit.resolver.missing
        run = kit.run("lookup", "unspec", missing, "inet", missing)
        expect(run.code, 0, "the guest's exit status", run)
        results = kit.guest_results(run)
        for fam in ("unspec", "inet"):
            expect(
                results.get((fam, missing)),
                ["error", "EAI_NONAME"],
                f"getaddrinfo({missing!r}, {FAMILY_NAMES[FAMILIES[fam]]})",
                run,
            )

    def test_guest_connects_by_name(self, wassh_resolver_kit: ResolverKit) -> None:
        """A guest connects by name (the 127.0.0.1-only one) to the kit's peer server
        and its bytes come back."""
        kit = wassh_resolver_kit
        host = kit.resolver.v4_only
        ep, token = kit.peer.endpoint(), kit.token()
        run = kit.run("connect", host, str(ep.port), token)
        expect(run.value("connected"), "127.0.0.1", "the address the guest connected to", run)
        message = f"reached {host} by its name\n"
        expect(run.value("echo"), f"ok {len(message)}", "the echo of the guest's message", run)
        expect(run.code, 0, "the guest's exit status", run)
        conn = kit.peer.connection(token)
        expect_true(conn.wait_ended(CANCEL_BOUND), f"the peer saw no end: {conn.describe()}", run)
        expect(conn.client[0], "127.0.0.1", "where the peer saw the connection come from", run)
        expect(conn.received, len(message), "bytes the peer received", run)

    def test_guest_unanswered_times_out(self, wassh_resolver_kit: ResolverKit) -> None:
        """A guest's lookup of the unanswered name with a connect timeout of 1 s fails
        with EAI_AGAIN, well within 10 s."""
        kit = wassh_resolver_kit
        name = kit.resolver.unanswered
        run = kit.run("lookup", "unspec", name, connect_timeout=GUEST_CONNECT_TIMEOUT)
        expect(
            kit.guest_results(run).get(("unspec", name)),
            ["error", "EAI_AGAIN"],
            f"getaddrinfo({name!r}) with a {GUEST_CONNECT_TIMEOUT} s connect timeout",
            run,
        )
        expect_true(
            run.seconds < AGAIN_BOUND,
            f"the guest took {run.seconds:.2f} s (bound {AGAIN_BOUND} s)",
            run,
        )

    def test_guest_cancelled_in_lookup(self, wassh_resolver_kit: ResolverKit) -> None:
        """A guest waiting in getaddrinfo of the unanswered name: cancelling its
        ``wassh.run`` ends it within 5 s."""
        kit = wassh_resolver_kit
        name = kit.resolver.unanswered
        run = kit.new_run("lookup", "unspec", name)
        scope = trio.CancelScope()
        problems: list[ConformanceFailure] = []  # raised outside the nursery, not in a group

        async def guest() -> None:
            with scope:
                try:
                    await kit.arun(*run.argv, connect_timeout=HELD_CONNECT_TIMEOUT, state=run)
                except ConformanceFailure as exc:
                    problems.append(exc)
            run.cancelled = scope.cancelled_caught and run.code is None

        async def main() -> float:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(guest)
                try:
                    await run.wait_line("asking")
                    await trio.sleep(SETTLE)
                except ConformanceFailure as exc:
                    problems.append(exc)
                cancelled_at = time.monotonic()
                scope.cancel()
            return time.monotonic() - cancelled_at

        took = trio.run(main)
        if problems:
            raise problems[0]
        expect(
            kit.guest_results(run),
            {},
            f"the lookup of unanswered name {name!r} must not complete",
            run,
        )
        expect_true(run.cancelled, "wassh.run did not end by cancellation", run)
        expect_true(
            took < kit.cancel_bound,
            f"wassh.run took {took:.2f} s to return after its scope was cancelled "
            f"(bound {kit.cancel_bound} s)",
            run,
        )


def _matches(address: str, family: int) -> bool:
    return family == socket.AF_UNSPEC or family_of(address) == family


def _canonical(answer: NameAnswer) -> str | None:
    name = answer.canonical_name
    return None if name is None else name.rstrip(".").lower()
