"""mkdocs hook: site pages made of README sections, so the text has one home.

The network policy and running ``wassh relay`` are documented in the README;
the site shows those sections as pages of their own, as written, rather than a
copy that would drift from them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files


@dataclass(frozen=True)
class ReadmePage:
    path: str  # under docs/
    title: str
    first: str  # the heading the page starts at
    last_level: int  # the page runs until a heading of this level or higher


PAGES = [
    ReadmePage("network-policy.md", "Network policy", "## Network policy", 2),
    ReadmePage(
        "relay-operations.md",
        "Relay operations",
        "### Running `wassh relay` on the internet",
        2,
    ),
]

# A link into docs/ from the README is a link between pages here.
_DOCS_LINK = re.compile(r"\]\(docs/([^)]+)\)")
_HEADING = re.compile(r"^(#+) ")


def section(readme: str, page: ReadmePage) -> str:
    """The README's lines from ``page.first`` to the next heading at ``page.last_level``
    or above, headings shifted so the first is one level below the page title."""
    lines = readme.splitlines()
    try:
        start = lines.index(page.first)
    except ValueError:
        raise PluginError(f"README.md has no heading {page.first!r} for {page.path}") from None
    shift = len(page.first.split(" ", 1)[0]) - 2
    body: list[str] = []
    fenced = False
    for line in lines[start:]:
        if line.startswith("```"):
            fenced = not fenced
        heading = None if fenced else _HEADING.match(line)
        if heading and body and len(heading.group(1)) <= page.last_level:
            break
        if heading:
            line = "#" * max(2, len(heading.group(1)) - shift) + line[len(heading.group(1)) :]
        body.append(line)
    return "\n".join(body)


def page_text(readme: str, page: ReadmePage) -> str:
    text = _DOCS_LINK.sub(r"](\1)", section(readme, page))
    first, _, rest = text.partition("\n")
    if first.lstrip("#").strip() == page.title:  # the section's own heading is the page's
        text = rest.lstrip("\n")
    return (
        f"# {page.title}\n\n"
        "*This page is a section of the repository's README, as the README has it.*\n\n"
        f"{text}\n"
    )


def on_files(files: Files, config: MkDocsConfig) -> Files:
    readme = (Path(config.config_file_path).parent / "README.md").read_text(encoding="utf-8")
    for page in PAGES:
        files.append(File.generated(config, page.path, content=page_text(readme, page)))
    return files
