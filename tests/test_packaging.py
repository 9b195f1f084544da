"""The six distributions are publishable: license, readme, classifiers, bounded dependencies.

Each distribution carries its own copy of the repository's LICENSE (an sdist or a
wheel holds only files under its own directory), and each plugin's README names
every option the plugin adds to ``wassh run``.
"""

from __future__ import annotations

import email.parser
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parent.parent
DISTRIBUTIONS = {
    "wassh": ROOT / "core",
    "wassh-transport-tcp": ROOT / "plugins" / "transport_tcp",
    "wassh-transport-listen": ROOT / "plugins" / "transport_listen",
    "wassh-transport-websocket": ROOT / "plugins" / "transport_websocket",
    "wassh-transport-proxy": ROOT / "plugins" / "transport_proxy",
    "wassh-resolver-dns": ROOT / "plugins" / "resolver_dns",
}
# The section of `wassh run --help` each plugin's options appear under.
HELP_SECTIONS = {
    "dns plugin": "wassh-resolver-dns",
    "listen plugin": "wassh-transport-listen",
    "proxy plugin": "wassh-transport-proxy",
    "websocket plugin": "wassh-transport-websocket",
}
REQUIRED_CLASSIFIERS = [
    "Operating System :: POSIX :: Linux",
    "Framework :: Trio",
    "Typing :: Typed",
    "Programming Language :: Python :: 3 :: Only",
]


def project(name: str) -> dict[str, Any]:
    data = tomllib.loads((DISTRIBUTIONS[name] / "pyproject.toml").read_text())
    table: dict[str, Any] = data["project"]
    return table


def test_every_workspace_member_is_listed() -> None:
    members = {p.parent for p in ROOT.glob("plugins/*/pyproject.toml")} | {ROOT / "core"}
    assert members == set(DISTRIBUTIONS.values())
    assert {project(name)["name"] for name in DISTRIBUTIONS} == set(DISTRIBUTIONS)


def test_root_license_is_bsd_3_clause() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("BSD 3-Clause License\n")
    assert "Copyright (c) 2026, The wassh authors" in text
    assert "Neither the name of the copyright holder" in text


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_license_copy_is_the_root_one(name: str) -> None:
    copy = DISTRIBUTIONS[name] / "LICENSE"
    assert copy.read_bytes() == (ROOT / "LICENSE").read_bytes(), (
        f"{copy.relative_to(ROOT)} differs from LICENSE: copy it again"
    )


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_metadata_is_complete(name: str) -> None:
    meta = project(name)
    where = DISTRIBUTIONS[name]
    assert meta["license"] == "BSD-3-Clause"
    assert meta["license-files"] == ["LICENSE"]
    assert meta["authors"] == [{"name": "The wassh authors"}]
    readme = where / meta["readme"]
    assert readme.name == "README.md"
    assert readme.read_text().startswith(f"# {name}\n")
    assert meta["description"].strip() and len(meta["keywords"]) >= 3
    assert meta["requires-python"] == ">=3.11"
    # The public repository's address is not known yet: no URLs rather than wrong ones.
    assert "urls" not in meta


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_classifiers(name: str) -> None:
    classifiers: list[str] = project(name)["classifiers"]
    assert len(set(classifiers)) == len(classifiers)
    for wanted in REQUIRED_CLASSIFIERS:
        assert wanted in classifiers
    assert sum(c.startswith("Development Status :: ") for c in classifiers) == 1
    assert any(c.startswith("Topic :: ") for c in classifiers)
    # The license expression replaces "License ::" classifiers (PEP 639); setuptools
    # refuses to build with both.
    assert not any(c.startswith("License :: ") for c in classifiers)
    # Each Python version named is one requires-python admits.
    versions = [c.rsplit(" :: ", 1)[1] for c in classifiers if re.search(r":: 3\.\d+$", c)]
    assert versions
    allowed = SpecifierSet(project(name)["requires-python"])
    assert all(allowed.contains(f"{v}.0") for v in versions), versions


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_typed_marker_ships(name: str) -> None:
    packages = [p.parent for p in (DISTRIBUTIONS[name] / "src").glob("*/__init__.py")]
    assert packages
    for package in packages:
        assert (package / "py.typed").is_file(), package


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_dependencies_are_bounded_above(name: str) -> None:
    """A release of a dependency the host relies on closely must not reach users unreviewed."""
    for dependency in project(name)["dependencies"]:
        specifier = Requirement(dependency).specifier
        assert any(s.operator in {"<", "<=", "==", "~="} for s in specifier), dependency


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_build_backend_understands_license_expressions(name: str) -> None:
    requires = tomllib.loads((DISTRIBUTIONS[name] / "pyproject.toml").read_text())["build-system"][
        "requires"
    ]
    minimum = {"setuptools": "77", "hatchling": "1.27"}
    (backend,) = [Requirement(r) for r in requires if Requirement(r).name in minimum]
    assert backend.specifier == SpecifierSet(f">={minimum[backend.name]}")


def test_plugin_readmes_name_their_options() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "wassh"), "run", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=dict(os.environ, COLUMNS="200"),
    )
    sections = re.split(r"\n(?=\S[^\n]*:\n)", done.stdout)
    seen = set()
    for section in sections:
        title = section.split(":\n", 1)[0]
        if title not in HELP_SECTIONS:
            continue
        seen.add(title)
        readme = (DISTRIBUTIONS[HELP_SECTIONS[title]] / "README.md").read_text()
        options = re.findall(r"^\s+(--[a-z-]+)", section, re.MULTILINE)
        assert options, section
        for option in options:
            assert f"`{option}" in readme, f"{HELP_SECTIONS[title]}'s README omits {option}"
    assert seen == set(HELP_SECTIONS), done.stdout


def test_a_built_wheel_carries_license_and_readme(tmp_path: Path) -> None:
    """What an index shows: the readme as the long description, the license file inside."""
    uv = shutil.which("uv", path=f"{Path.home() / '.local' / 'bin'}") or shutil.which("uv")
    assert uv, "uv is needed to build the wheel"
    where = DISTRIBUTIONS["wassh-transport-tcp"]
    subprocess.run(
        [uv, "build", "--wheel", "--out-dir", str(tmp_path), str(where)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("wassh_transport_tcp-*.whl")
    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
        (meta_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        meta = email.parser.Parser().parsestr(whl.read(meta_name).decode())
        (license_name,) = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
        assert whl.read(license_name) == (ROOT / "LICENSE").read_bytes()
    assert meta["License-Expression"] == "BSD-3-Clause"
    assert meta["Description-Content-Type"] == "text/markdown"
    assert meta.get_payload() == (where / "README.md").read_text()
    assert set(meta.get_all("Classifier") or []) == set(
        project("wassh-transport-tcp")["classifiers"]
    )
    assert meta["Requires-Python"] == ">=3.11"
