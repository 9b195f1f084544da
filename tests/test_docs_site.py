"""The documentation site builds strictly and holds the API reference and the benchmark chart.

scripts/docs.sh installs the docs group and runs ``mkdocs build --strict``: any
warning (a broken link between pages, a docstring mkdocstrings cannot parse)
fails it. The pages are then read back: every public name has its entry, the
signatures are the code's, the README sections are the README's, and the chart
is drawn from the committed results with a bar for every figure.
"""

from __future__ import annotations

import html
import importlib
import importlib.util
import inspect
import json
import math
import re
import statistics
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType

import pytest
import wassh

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "benchmarks" / "results.json"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("docs") / "site"
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "docs.sh"), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNING" not in done.stderr, done.stderr
    return out


def _page(site: Path, page: str) -> str:
    return (site / page / "index.html").read_text(encoding="utf-8")


def _main(page: str) -> str:
    """A page's content, without the navigation every page carries."""
    return page[page.index('role="main"') : page.index("<footer")]


def _text(markup: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def _entry(page: str, name: str) -> str:
    """The text of one object's entry: from its heading to the next object's."""
    start = page.index(f'id="{name}"')
    end = page.find('class="doc doc-heading"', page.index(">", start))
    return _text(page[start : end if end != -1 else len(page)])


def _first_prose_sentence(markdown: str) -> str:
    """The first sentence outside code blocks, on one line."""
    lines: list[str] = []
    fenced = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.strip():
            lines.append(line.strip())
        elif lines:
            break
    return " ".join(lines).split(". ", 1)[0]


def _bench_run() -> ModuleType:
    """bench/run.py as a module (it imports bench/chart.py as ``chart``)."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look their module up there
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(ROOT / "bench"))


def test_every_public_name_has_an_entry(site: Path) -> None:
    pages = {
        "wassh": "reference/wassh",
        "wassh.testing": "reference/testing",
        "wassh.policy": "reference/policy",
        "wassh.events": "reference/events",
        "wassh.os_socket": "reference/os_socket",
    }
    missing = []
    for module_name, page in pages.items():
        ids = set(re.findall(r'id="([^"]+)"', _page(site, page)))
        module = importlib.import_module(module_name)
        names = getattr(module, "__all__", None) or [
            name
            for name, value in vars(module).items()
            if inspect.isfunction(value) or inspect.isclass(value)
            if getattr(value, "__module__", None) == module_name and not name.startswith("_")
        ]
        assert names, module_name
        missing += [f"{module_name}.{n}" for n in names if f"{module_name}.{n}" not in ids]
    assert missing == []


@pytest.mark.parametrize("name", ["run_sync", "run", "prepare"])
def test_embedding_signatures_are_the_code_s(site: Path, name: str) -> None:
    entry = _entry(_page(site, "reference/wassh"), f"wassh.{name}")
    signature = inspect.signature(getattr(wassh, name))
    assert f"{name}(" in entry
    for parameter in signature.parameters.values():
        assert re.search(rf"\b{parameter.name}\s*:", entry), (parameter.name, entry[:2000])
    assert f"-> {signature.return_annotation}" in entry
    # The docstring's first line is rendered too.
    doc = inspect.getdoc(getattr(wassh, name)) or ""
    assert re.sub(r"`+", "", doc.splitlines()[0]) in entry


def test_guides_and_readme_sections_are_pages(site: Path) -> None:
    for guide in ("plugins", "abi", "porting", "fastpath", "relay-protocols"):
        source = (ROOT / "docs" / f"{guide}.md").read_text(encoding="utf-8")
        title = source.splitlines()[0].lstrip("# ").replace("`", "")
        assert title in _text(_main(_page(site, guide))), guide
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page, heading in [
        ("network-policy", "## Network policy"),
        ("relay-operations", "### Running `wassh relay` on the internet"),
    ]:
        section = readme.split(f"\n{heading}\n", 1)[1]
        words = re.sub(r"[`*]", "", _first_prose_sentence(section))
        assert len(words) > 40, words
        assert words in " ".join(_text(_main(_page(site, page))).split()), (page, words)


def test_home_links_every_page(site: Path) -> None:
    home = _main((site / "index.html").read_text(encoding="utf-8"))
    links = set(re.findall(r'href="([^"#]+)/(?:#[^"]*)?"', home))
    for page in (
        "plugins",
        "abi",
        "porting",
        "fastpath",
        "network-policy",
        "relay-protocols",
        "relay-operations",
        "relay-load-balancing",
        "reference/wassh",
        "reference/testing",
        "benchmarks",
    ):
        assert page in links, page
        assert (site / page / "index.html").exists(), page


def test_chart_has_a_bar_for_every_saved_figure(site: Path) -> None:
    saved = json.loads(RESULTS.read_text(encoding="utf-8"))
    run = _bench_run()
    assert 'src="chart.svg"' in _page(site, "benchmarks")
    svg = ET.parse(site / "benchmarks" / "chart.svg").getroot()
    assert svg.tag == f"{SVG}svg"
    bars = {
        "".join(rect.itertext())
        for rect in svg.iter(f"{SVG}rect")
        if rect.find(f"{SVG}title") is not None
    }
    expected = 0
    for row in run.ROWS:
        for shape in ("event", "blocking"):
            for server, figures in saved[shape].items():
                values = figures.get(row.key)
                if not values:
                    continue
                expected += 1
                prefix = f"{row.label}, {run.SHAPE_LABELS[shape]} shape, {server}: "
                found = [b for b in bars if b.startswith(prefix)]
                assert len(found) == 1, (prefix, sorted(bars)[:5])
                shown = float(found[0][len(prefix) :].split()[0].replace(",", "").rstrip("/s"))
                # Printed with 0 or 1 decimal: within half a unit of the median.
                assert math.isclose(shown, statistics.median(values), abs_tol=0.51), found
    for name, rate in saved["client"].items():
        expected += 1
        prefix = (
            f"guest client pushing to a native sink (MB/s), direct and through relays, {name}: "
        )
        found = [b for b in bars if b.startswith(prefix)]
        assert len(found) == 1, prefix
        assert math.isclose(
            float(found[0][len(prefix) :].split()[0].replace(",", "")), rate, abs_tol=0.51
        )
    assert len(bars) == expected
    notes = " ".join("".join(t.itertext()) for t in svg.iter(f"{SVG}text"))
    assert saved["machine"].split("\n")[0] in notes
    assert saved["conditions"] in notes


def test_chart_from_a_results_file(tmp_path: Path) -> None:
    chart = tmp_path / "chart.svg"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "run.py"),
            "--from",
            str(RESULTS),
            "--chart",
            str(chart),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "| figure (event loop) |" in done.stdout and "| figure (blocking) |" in done.stdout
    assert ET.parse(chart).getroot().tag == f"{SVG}svg"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[]", "expected an object"),
        (b'{"rounds": 1}', "no figures"),
        (b'{"rounds": 1, "event": {"wassh": {"bulk_MBps": ["x"]}}}', "event.wassh.bulk_MBps"),
        (b'{"rounds": 1, "event": {"wassh": {"bulk_MBps": [NaN]}}}', "finite numbers"),
    ],
)
def test_a_bad_results_file_is_one_line(tmp_path: Path, content: bytes, message: str) -> None:
    saved = tmp_path / "results.json"
    saved.write_bytes(content)
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "run.py"),
            "--from",
            str(saved),
            "--chart",
            str(tmp_path / "c.svg"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert message in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert not (tmp_path / "c.svg").exists()
