"""Build real network programs for wassh from Debian's source packages, reproducibly.

    python guests/debbuild.py openssh     # -> ssh.wasm
    python guests/debbuild.py dropbear    # -> dbclient.wasm, dropbearconvert.wasm
    python guests/debbuild.py curl        # -> curl.wasm (also: redis, netcat, tcputils,
                                          #    connect-proxy)
    python guests/debbuild.py all

Each recipe:

1. makes sure apt knows Debian's source packages (adds a ``deb-src`` twin of the
   machine's ``deb`` entries under ``/etc/apt/sources.list.d/`` when there is
   none, then ``apt-get update``);
2. fetches the source with ``apt-get source``. apt checks the files it downloads
   against the hashes in the signed archive index, and ``dpkg-source`` checks the
   upstream and Debian tarballs against the ``.dsc`` while unpacking, so a
   tampered or truncated download fails here;
3. configures it with ``wassh cc`` as the compiler (the guest SDK is in place at
   configure time, so configure finds getaddrinfo, sigaction, getpass, ...) and
   the flags below; no source patches. A package without a configure script
   (a plain Makefile) gets the compiler and its settings as make variables;
4. builds the programs (make in the recipe's directory, with its targets and
   variables) and copies them into the cache,
   ``$XDG_CACHE_HOME/wassh/guests/<program>-<debian version>-<key>.wasm``, where
   the key covers the SDK, the zig version and the flags, so an SDK change
   rebuilds and an unchanged one reuses.

Every step that takes more than a few seconds prints a line when it starts, a
heartbeat every 15 s (time so far, and configure checks or compiles done) and its
time when it ends, on stderr. The source trees live in ``guests/build/`` (not
committed), with ``configure.log`` and ``make.log`` beside each tree. The last
line printed for each program is its path. Building needs root only for step 1 on a machine
without ``deb-src`` entries.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUILD_ROOT = HERE / "build"
SOURCES_DIR = Path("/etc/apt/sources.list.d")
DEB_SRC_FILE = SOURCES_DIR / "wassh-deb-src.sources"


@dataclass(frozen=True)
class Recipe:
    """How one Debian source package becomes .wasm programs.

    ``programs`` maps each program's name (its .wasm in the cache) to its path in
    the built tree. ``configure`` is None for a package built by its Makefile
    alone. ``make`` lists make's runs, each its arguments (``-C dir``, targets);
    by default one run whose targets are the programs' paths. ``make_vars`` are
    command-line variables for every run, where ``{CC}``, ``{AR}``,
    ``{RANLIB}``, ``{CFLAGS}`` and ``{LDFLAGS}`` stand for the toolchain and the
    build flags.
    """

    package: str  # Debian source package
    programs: tuple[tuple[str, str], ...]  # (name, path in the tree)
    configure: tuple[str, ...] | None
    cflags: tuple[str, ...] = ()  # added to CFLAGS
    make: tuple[tuple[str, ...], ...] = ()
    make_vars: tuple[str, ...] = ()
    touch_autotools: bool = False  # Debian's patches leave configure.ac newer


def _same(*names: str) -> tuple[tuple[str, str], ...]:
    return tuple((n, n) for n in names)


COMMON = ("--host=wasm32-unknown-wasi", "--build=x86_64-pc-linux-gnu")
# -s: no debug info (a quarter of the size, and a faster first compile at start-up)
CFLAGS = "-O2"
LDFLAGS = "-s"
BUILD_FLAGS = [f"CFLAGS={CFLAGS}", f"LDFLAGS={LDFLAGS}"]

RECIPES = {
    "openssh": Recipe(
        package="openssh",
        programs=_same("ssh"),
        touch_autotools=True,
        configure=(
            *COMMON,
            "--without-openssl",
            "--without-zlib",
            "--without-pam",
            "--without-selinux",
            "--without-kerberos5",
            "--without-libedit",
            "--without-ldns",
            "--with-sandbox=no",
            "--disable-pkcs11",
            "--disable-security-key",
            "--without-stackprotect",
            "--without-hardening",
            "--disable-lastlog",
            "--disable-utmp",
            "--disable-utmpx",
            "--disable-wtmp",
            "--disable-wtmpx",
            "--disable-pututline",
            "--disable-pututxline",
            "--disable-strip",
            "--without-pie",
        ),
    ),
    "dropbear": Recipe(
        package="dropbear",
        programs=_same("dbclient", "dropbearconvert"),
        configure=(
            *COMMON,
            "--disable-zlib",
            "--disable-syslog",
            "--disable-shadow",
            "--disable-lastlog",
            "--disable-utmp",
            "--disable-utmpx",
            "--disable-wtmp",
            "--disable-wtmpx",
            "--disable-loginfunc",
            "--disable-pututline",
            "--disable-pututxline",
            "--disable-openpty",
            "--disable-harden",
            "--enable-bundled-libtom",
        ),
    ),
    "curl": Recipe(
        package="curl",
        programs=(("curl", "src/curl"),),
        make=(("-C", "lib"), ("-C", "src", "curl")),
        touch_autotools=True,
        configure=(
            *COMMON,
            # HTTP, FTP, and the rest of curl's own protocols over plain TCP
            "--without-ssl",
            "--disable-shared",
            # no libraries beyond the SDK's libc
            "--without-zlib",
            "--without-brotli",
            "--without-zstd",
            "--without-libpsl",
            "--without-libidn2",
            "--without-nghttp2",
            "--without-libssh2",
            "--without-librtmp",
            "--without-gssapi",
            "--disable-ldap",
            "--disable-ldaps",
            # the resolver runs in line (a guest has no threads)
            "--disable-threaded-resolver",
            # ntlm_wb starts a helper program
            "--disable-ntlm-wb",
            "--disable-manual",
        ),
    ),
    "redis": Recipe(
        package="redis",
        programs=(("redis-cli", "src/redis-cli"),),
        configure=None,
        make=(("-C", "src", "redis-cli"),),
        make_vars=(
            "CC={CC}",
            "AR={AR}",
            "RANLIB={RANLIB}",
            "CFLAGS={CFLAGS}",
            "LDFLAGS={LDFLAGS}",
            "OPT=",
            "DEBUG=",
            # not Linux: no jemalloc, no -ldl/-lrt specifics, no systemd
            "uname_S=WASI",
            "uname_M=wasm32",
            "MALLOC=libc",
            "BUILD_TLS=no",
            "USE_SYSTEMD=no",
            # the client needs neither Lua nor jemalloc
            "DEPENDENCY_TARGETS=hiredis linenoise hdr_histogram",
        ),
    ),
    "netcat": Recipe(
        package="netcat",
        programs=(("nc", "nc"),),
        configure=None,
        make=(("linux",),),
        cflags=(
            # netcat.c calls time() without <time.h> (glibc's headers bring it in):
            # an implicit int time() in main, which calls setjmp, makes invalid wasm
            "-include time.h",
            # K&R-style calls and implicit ints, which gcc 12 (Debian's compiler)
            # warns about and clang refuses unless told they are warnings
            "-Wno-error=int-conversion",
            "-Wno-error=implicit-int",
            "-Wno-error=implicit-function-declaration",
        ),
        make_vars=(
            "CC={CC} {CFLAGS}",
            "LDFLAGS={LDFLAGS}",
            "STATIC=",
            # Debian's flags (debian/rules) but GAPING_SECURITY_HOLE: -e forks,
            # puts the socket on the child's stdio and execs a program (the SDK's
            # fork + exec would need that program to be a wasm one; not tried)
            'DFLAGS=-DLINUX -DTELNET -DIP_TOS -DDEBIAN_VERSION=\\"1.10-47\\"',
        ),
    ),
    "tcputils": Recipe(
        package="tcputils",
        programs=_same("tcpconnect", "tcplisten", "tcpbug"),
        configure=None,
        make=(("all",),),
        make_vars=(
            "CC={CC} -Wall",
            "COPT={CFLAGS}",
            "LDFLAGS={LDFLAGS}",
            "AR={AR}",
            "RANLIB={RANLIB}",
        ),
    ),
    "connect-proxy": Recipe(
        package="connect-proxy",
        programs=(("connect-proxy", "connect"),),
        configure=None,
        # one file and no Makefile: make's built-in rule, with debian/rules' define
        make=(("connect",),),
        # a glibc name for the handler type, in a cast
        cflags=("'-D__sighandler_t=void(*)(int)'",),
        make_vars=(
            "CC={CC}",
            "CFLAGS={CFLAGS}",
            "LDFLAGS={LDFLAGS}",
            "CPPFLAGS=-DSOCKLEN_T=socklen_t",
        ),
    ),
}


class BuildError(RuntimeError):
    pass


def log(msg: str) -> None:
    print(f"[debbuild] {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], cwd: Path | None = None, logfile: Path | None = None) -> str:
    """Run a command; on failure raise BuildError with the end of its output."""
    proc = subprocess.run(
        cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False
    )
    if logfile is not None:
        logfile.write_text(proc.stdout)
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-40:])
        where = f" (full log: {logfile})" if logfile else ""
        raise BuildError(f"{' '.join(cmd[:3])}... failed with {proc.returncode}{where}\n{tail}")
    return proc.stdout


HEARTBEAT_S = 15.0
# What a heartbeat counts in a step's log: configure's checks, the compiler's runs.
_CHECKS = re.compile(r"^checking ", re.M)
_COMPILES = re.compile(r"(?:^|\s)-c(?:\s|$)|^\s*CC\s", re.M)


def run_step(
    label: str,
    cmd: list[str],
    cwd: Path,
    logfile: Path,
    counts: tuple[re.Pattern[str], str] | None = None,
) -> float:
    """Run one long build step with its output in ``logfile``; returns its seconds.

    Prints a line when it starts, a heartbeat every ``HEARTBEAT_S`` (the time so
    far and, with ``counts``, how many log lines match, e.g. "212 checks") and
    its time when done. On failure raises BuildError with the end of the log.
    """
    log(f"{label} ...")
    t0 = time.monotonic()
    with open(logfile, "w") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        while True:
            try:
                proc.wait(timeout=HEARTBEAT_S)
                break
            except subprocess.TimeoutExpired:
                note = ""
                if counts is not None:
                    pattern, noun = counts
                    text = logfile.read_text(errors="replace")
                    note = f", {len(pattern.findall(text))} {noun}"
                log(f"{label}: {time.monotonic() - t0:.0f} s{note}")
    seconds = time.monotonic() - t0
    if proc.returncode != 0:
        lines = logfile.read_text(errors="replace").splitlines()
        tail = "\n".join(lines[-40:])
        raise BuildError(f"{label} failed with {proc.returncode} (full log: {logfile})\n{tail}")
    log(f"{label}: done in {seconds:.1f} s")
    return seconds


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "wassh" / "guests"


# -- apt ------------------------------------------------------------------------------------


def _has_deb_src() -> bool:
    files = [Path("/etc/apt/sources.list"), *sorted(SOURCES_DIR.glob("*.list"))]
    for f in files:
        if f.is_file() and re.search(r"^\s*deb-src\s", f.read_text(), re.M):
            return True
    for f in sorted(SOURCES_DIR.glob("*.sources")):
        if re.search(r"^Types:.*\bdeb-src\b", f.read_text(), re.M | re.I):
            return True
    return False


def _deb_src_twin() -> str:
    """deb-src stanzas mirroring the machine's deb entries (deb822 format)."""
    stanzas: list[str] = []
    for f in sorted(SOURCES_DIR.glob("*.sources")):
        for block in re.split(r"\n\s*\n", f.read_text()):
            if re.search(r"^Types:.*\bdeb\b", block, re.M | re.I) and not re.search(
                r"^Enabled:\s*no", block, re.M | re.I
            ):
                lines = [ln for ln in block.strip().splitlines() if not ln.startswith("#")]
                lines = [
                    "Types: deb-src" if ln.lower().startswith("types:") else ln for ln in lines
                ]
                stanzas.append("\n".join(lines))
    one_line = [Path("/etc/apt/sources.list"), *sorted(SOURCES_DIR.glob("*.list"))]
    for f in one_line:
        if not f.is_file():
            continue
        for ln in f.read_text().splitlines():
            m = re.match(r"^\s*deb\s+(\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s+(.+)$", ln)
            if m:
                opts = m.group(1) or ""
                signed = re.search(r"signed-by=(\S+?)[\s\]]", opts)
                stanza = [
                    "Types: deb-src",
                    f"URIs: {m.group(2)}",
                    f"Suites: {m.group(3)}",
                    f"Components: {m.group(4).strip()}",
                ]
                if signed:
                    stanza.append(f"Signed-By: {signed.group(1)}")
                stanzas.append("\n".join(stanza))
    if not stanzas:
        raise BuildError("no Debian 'deb' entries found to mirror as 'deb-src'")
    return "\n\n".join(stanzas) + "\n"


def ensure_sources(package: str) -> None:
    """Make ``apt-get source package`` possible (root needed only the first time)."""
    probe = subprocess.run(
        ["apt-cache", "showsrc", "--only-source", package],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode == 0 and "Version:" in probe.stdout:
        return
    if not _has_deb_src():
        if os.geteuid() != 0:
            raise BuildError(
                "apt has no deb-src entries; run this once as root (it adds "
                f"{DEB_SRC_FILE}) or add them yourself"
            )
        log(f"adding {DEB_SRC_FILE}")
        DEB_SRC_FILE.write_text(_deb_src_twin())
    log("apt-get update")
    run(["apt-get", "update"])


def source_version(package: str) -> str:
    """The version ``apt-get source`` would fetch (the candidate)."""
    out = run(["apt-get", "source", "--print-uris", "-qq", package])
    m = re.search(rf"^'\S+'\s+{re.escape(package)}_(\S+)\.dsc\s", out, re.M)
    if not m:
        raise BuildError(f"cannot tell the version of source package {package}:\n{out}")
    return m.group(1)


def fetch(package: str, version: str, key: str) -> Path:
    """Download (verified) and unpack into a fresh tree; returns the tree."""
    pkg_dir = BUILD_ROOT / f"{package}_{version}"
    pkg_dir.mkdir(parents=True, exist_ok=True)
    dsc = pkg_dir / f"{package}_{re.sub(r'^[0-9]+:', '', version)}.dsc"
    if not dsc.is_file():
        run_step(
            f"apt-get source {package} ({version})",
            ["apt-get", "source", "--download-only", package],
            cwd=pkg_dir,
            logfile=pkg_dir / "apt-get-source.log",
        )
        if not dsc.is_file():
            raise BuildError(f"apt-get source did not fetch {dsc.name}")
    tree = pkg_dir / key / "src"
    shutil.rmtree(tree, ignore_errors=True)
    tree.parent.mkdir(parents=True, exist_ok=True)
    # The .dsc came through apt, checked against the signed archive index; every
    # file it lists must match it. dpkg-source checks that too while unpacking.
    _verify_dsc_checksums(dsc)
    log(f"dpkg-source -x {dsc.name}")
    run(["dpkg-source", "-x", str(dsc), "src"], cwd=tree.parent)
    return tree


def _verify_dsc_checksums(dsc: Path) -> None:
    text = dsc.read_text(errors="replace")
    m = re.search(r"^Checksums-Sha256:\n((?:[ \t].*\n?)+)", text, re.M)
    if not m:
        raise BuildError(f"{dsc.name} has no Checksums-Sha256 field")
    for line in m.group(1).strip().splitlines():
        digest, size, name = line.split()
        path = dsc.parent / name
        data = path.read_bytes()
        if len(data) != int(size) or hashlib.sha256(data).hexdigest() != digest:
            raise BuildError(f"{name} does not match the checksum in {dsc.name}")
    log(f"verified {dsc.name}: sha256 of every file matches")


# -- build ------------------------------------------------------------------------------------


def _toolchain(bin_dir: Path) -> dict[str, str]:
    """Scripts for CC/AR/RANLIB: ``wassh cc`` through its lean entry (no package
    import, so hundreds of configure and make calls stay cheap), zig's ar and
    ranlib."""
    import _wassh_entry
    from wassh import cc as wassh_cc

    bin_dir.mkdir(parents=True, exist_ok=True)
    zig = wassh_cc._zig_cc()[:-1]  # the zig binary
    tools = {
        "cc": f'exec "{sys.executable}" "{_wassh_entry.__file__}" cc "$@"\n',
        "ar": f'exec {" ".join(repr(z) for z in zig)} ar "$@"\n',
        "ranlib": f'exec {" ".join(repr(z) for z in zig)} ranlib "$@"\n',
    }
    out = {}
    for name, body in tools.items():
        path = bin_dir / name
        path.write_text("#!/bin/sh\n" + body)
        path.chmod(0o755)
        out[name.upper()] = str(path)
    return out


def build_key(recipe: Recipe) -> str:
    """The SDK, the compiler driver, zig and the recipe: any change rebuilds."""
    import _wassh_cc
    from wassh import cc as wassh_cc

    h = hashlib.sha256()
    h.update(wassh_cc._sdk_hash().encode())
    for module in (_wassh_cc, wassh_cc):
        h.update(Path(module.__file__ or "").read_bytes())
    h.update(repr((recipe, BUILD_FLAGS)).encode())
    return h.hexdigest()[:10]


def outputs(name: str, version: str) -> dict[str, Path]:
    recipe = RECIPES[name]
    key = build_key(recipe)
    ver = re.sub(r"[^A-Za-z0-9.+~-]", "_", version)
    return {p: cache_dir() / f"{p}-{ver}-{key}.wasm" for p, _ in recipe.programs}


@contextmanager
def _lock(name: str) -> Iterator[None]:
    """One build of a recipe at a time on this checkout (the trees are shared)."""
    BUILD_ROOT.mkdir(parents=True, exist_ok=True)
    with open(BUILD_ROOT / f".{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# Generated by autoconf/automake, oldest first: touched in this order they are all
# newer than the inputs Debian's patches changed, so make never reruns autotools.
_AUTOTOOLS_OUTPUTS = ("aclocal.m4", "configure", "config.h.in", "Makefile.in")


def _touch_autotools(tree: Path) -> None:
    for name in _AUTOTOOLS_OUTPUTS:
        for path in sorted(tree.rglob(name)):
            path.touch()


def _configure(recipe: Recipe, tree: Path, tools: dict[str, str], logfile: Path) -> float:
    assert recipe.configure is not None
    cflags = " ".join((CFLAGS, *recipe.cflags))
    settings = [f"{k}={v}" for k, v in tools.items()]
    settings += [f"CFLAGS={cflags}", f"LDFLAGS={LDFLAGS}"]
    return run_step(
        f"configure {recipe.package}",
        ["./configure", *recipe.configure, *settings],
        cwd=tree,
        logfile=logfile,
        counts=(_CHECKS, "checks"),
    )


def _make(recipe: Recipe, tree: Path, tools: dict[str, str], jobs: int, logs: Path) -> float:
    values = {**tools, "CFLAGS": " ".join((CFLAGS, *recipe.cflags)), "LDFLAGS": LDFLAGS}
    variables = [v.format(**values) for v in recipe.make_vars]
    runs = recipe.make or (tuple(path for _, path in recipe.programs),)
    seconds = 0.0
    for i, args in enumerate(runs):
        seconds += run_step(
            f"make {recipe.package} {' '.join(args)}".rstrip(),
            ["make", f"-j{jobs}", *args, *variables],
            cwd=tree,
            logfile=logs / f"make{i or ''}.log",
            counts=(_COMPILES, "compiles"),
        )
    return seconds


class SdkChanged(BuildError):
    pass


def _check_toolchain(tools: dict[str, str], work: Path) -> None:
    """Compile and link an empty program first: a guest SDK that does not build
    fails here with the compiler's message, not as features configure quietly
    finds missing."""
    work.mkdir(parents=True, exist_ok=True)
    src = work / "probe.c"
    src.write_text("int main(void) { return 0; }\n")
    proc = subprocess.run(
        [tools["CC"], "-o", str(work / "probe.wasm"), str(src)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
        raise BuildError(f"wassh cc cannot build an empty program:\n{tail}")


def build(name: str, *, force: bool = False, jobs: int | None = None) -> dict[str, Path]:
    """Build (or reuse) the recipe's programs; returns {program: cached .wasm}.

    A build during which the guest SDK's sources change starts again (configure
    may have probed a half-edited SDK); the cache key names the SDK it was built
    with.
    """
    for _ in range(3):
        try:
            return _build_once(name, force=force, jobs=jobs)
        except SdkChanged:
            log(f"{name}: the guest SDK changed during the build; starting again")
    raise BuildError(f"{name}: the guest SDK kept changing during the build")


def _build_once(name: str, *, force: bool, jobs: int | None) -> dict[str, Path]:
    import _wassh_cc

    recipe = RECIPES[name]
    ensure_sources(recipe.package)
    version = source_version(recipe.package)
    key = build_key(recipe)
    wanted = outputs(name, version)
    with _lock(name):
        if not force and all(p.is_file() for p in wanted.values()):
            return wanted
        t0 = time.monotonic()
        tree = fetch(recipe.package, version, key)
        tools = _toolchain(tree.parent / "bin")
        _check_toolchain(tools, tree.parent / "probe")
        if recipe.touch_autotools:
            _touch_autotools(tree)
        logs = tree.parent
        fetched = time.monotonic() - t0
        configured = 0.0
        if recipe.configure is not None:
            configured = _configure(recipe, tree, tools, logs / "configure.log")
        made = _make(recipe, tree, tools, jobs or os.cpu_count() or 2, logs)
        if build_key(recipe) != key:
            raise SdkChanged(name)
        for program, path in recipe.programs:
            dest = wanted[program]
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_suffix(".tmp")
            # make's output runs under wassh run (a shell header, then the
            # module); the cache holds the bare module
            tmp.write_bytes(_wassh_cc.module_bytes((tree / path).read_bytes()))
            os.replace(tmp, dest)
        log(
            f"{recipe.package} {version}: fetch {fetched:.0f} s, configure {configured:.0f} s, "
            f"make {made:.0f} s"
        )
        return wanted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", choices=[*RECIPES, "all"])
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    parser.add_argument("-j", "--jobs", type=int, help="parallel make jobs")
    ns = parser.parse_args(argv)
    names = list(RECIPES) if ns.recipe == "all" else [ns.recipe]
    try:
        for name in names:
            for program, path in build(name, force=ns.force, jobs=ns.jobs).items():
                log(f"{program}: {path}")
                print(path)
    except BuildError as exc:
        log(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
