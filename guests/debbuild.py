"""Build SSH clients for wassh from Debian's source packages, reproducibly.

    python guests/debbuild.py openssh     # -> ssh.wasm
    python guests/debbuild.py dropbear    # -> dbclient.wasm, dropbearconvert.wasm
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
   the flags below; no source patches;
4. builds the programs and copies them into the cache,
   ``$XDG_CACHE_HOME/wassh/guests/<program>-<debian version>-<key>.wasm``, where
   the key covers the SDK, the zig version and the flags, so an SDK change
   rebuilds and an unchanged one reuses.

The source trees live in ``guests/build/`` (not committed). The last line printed
for each program is its path. Building needs root only for step 1 on a machine
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
    package: str  # Debian source package
    programs: tuple[str, ...]  # make targets, each a .wasm in the cache
    configure: tuple[str, ...]
    touch_configure: bool = False  # Debian's patches leave configure.ac newer


COMMON = ("--host=wasm32-unknown-wasi", "--build=x86_64-pc-linux-gnu")
# -s: no debug info (a quarter of the size, and a faster first compile at start-up)
BUILD_FLAGS = ["CFLAGS=-O2", "LDFLAGS=-s"]

RECIPES = {
    "openssh": Recipe(
        package="openssh",
        programs=("ssh",),
        touch_configure=True,
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
        programs=("dbclient", "dropbearconvert"),
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
        log(f"apt-get source {package} ({version})")
        run(["apt-get", "source", "--download-only", package], cwd=pkg_dir)
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
    """Wrapper scripts for CC/AR/RANLIB that start fast (no package import)."""
    from wassh import cc as wassh_cc

    bin_dir.mkdir(parents=True, exist_ok=True)
    zig = wassh_cc._zig_cc()[:-1]  # the zig binary (or python -m ziglang)
    tools = {
        "cc": f'exec "{sys.executable}" "{wassh_cc.__file__}" "$@"\n',
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
    from wassh import cc as wassh_cc

    h = hashlib.sha256()
    h.update(wassh_cc._sdk_hash().encode())
    h.update(repr((recipe, BUILD_FLAGS)).encode())
    return h.hexdigest()[:10]


def outputs(name: str, version: str) -> dict[str, Path]:
    recipe = RECIPES[name]
    key = build_key(recipe)
    ver = re.sub(r"[^A-Za-z0-9.+~-]", "_", version)
    return {p: cache_dir() / f"{p}-{ver}-{key}.wasm" for p in recipe.programs}


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


def build(name: str, *, force: bool = False, jobs: int | None = None) -> dict[str, Path]:
    """Build (or reuse) the recipe's programs; returns {program: cached .wasm}."""
    recipe = RECIPES[name]
    ensure_sources(recipe.package)
    version = source_version(recipe.package)
    wanted = outputs(name, version)
    with _lock(name):
        if not force and all(p.is_file() for p in wanted.values()):
            return wanted
        t0 = time.monotonic()
        tree = fetch(recipe.package, version, build_key(recipe))
        tools = _toolchain(tree.parent / "bin")
        if recipe.touch_configure:
            (tree / "configure").touch()
        logs = tree.parent
        log(f"configure {recipe.package} {version}")
        t1 = time.monotonic()
        settings = [f"{k}={v}" for k, v in tools.items()]
        settings += BUILD_FLAGS
        run(["./configure", *recipe.configure, *settings], cwd=tree, logfile=logs / "configure.log")
        t2 = time.monotonic()
        jobs = jobs or os.cpu_count() or 2
        log(f"make -j{jobs} {' '.join(recipe.programs)}")
        run(["make", f"-j{jobs}", *recipe.programs], cwd=tree, logfile=logs / "make.log")
        t3 = time.monotonic()
        for program, dest in wanted.items():
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_suffix(".tmp")
            shutil.copyfile(tree / program, tmp)
            os.replace(tmp, dest)
        log(
            f"{recipe.package} {version}: fetch {t1 - t0:.0f}s, configure {t2 - t1:.0f}s, "
            f"make {t3 - t2:.0f}s"
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
