"""Benchmark figures as an SVG chart of horizontal bars, written by hand (no plotting library).

A chart is a title, a few lines of notes (the machine, how busy it was) and groups:
one group per figure, its panels side by side (one per server shape), one bar per
runner in each panel. Bars of a group share one scale, so the panels compare; each
runner keeps its colour everywhere, named in the legend.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 1100
MARGIN = 20
LABEL_WIDTH = 150  # runner names, right-aligned before the bars
TEXT_WIDTH = 170  # the value printed after the longest bar
BAR_HEIGHT = 15
BAR_GAP = 4
LINE = 16
FONT = "font-family:DejaVu Sans,Verdana,Arial,sans-serif"

# One colour per runner, in order of first appearance: greys and blues for the
# references, warm colours for wassh (so wassh's bars are the ones the eye finds).
PALETTE = {
    "native C": "#7f7f7f",
    "Python": "#4c78a8",
    "wassh": "#e45756",
    "wassh (pure Python)": "#f2a35e",
    "wasmtime CLI": "#54a24b",
}
SPARE_COLOURS = ["#b279a2", "#ff9da6", "#9d755d", "#72b7b2", "#eeca3b", "#bab0ac"]


@dataclass(frozen=True)
class Bar:
    label: str  # the runner
    value: float  # NaN: no figure (the runner failed or was not run)
    text: str  # printed after the bar: the value with its unit


@dataclass(frozen=True)
class Panel:
    title: str
    bars: Sequence[Bar]


@dataclass(frozen=True)
class Group:
    title: str  # the figure, with its unit
    note: str  # e.g. "higher is better"
    panels: Sequence[Panel]


def colours(groups: Sequence[Group]) -> dict[str, str]:
    """Each runner's colour: its own from PALETTE, else the next spare one."""
    found: dict[str, str] = {}
    spare = 0
    for group in groups:
        for panel in group.panels:
            for bar in panel.bars:
                if bar.label in found:
                    continue
                if bar.label in PALETTE:
                    found[bar.label] = PALETTE[bar.label]
                else:
                    found[bar.label] = SPARE_COLOURS[spare % len(SPARE_COLOURS)]
                    spare += 1
    return found


def _text(x: float, y: float, content: str, size: int = 12, extra: str = "") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" style="{FONT}"{extra}>'
        f"{escape(content)}</text>"
    )


def _legend(palette: dict[str, str], y: float) -> tuple[list[str], float]:
    parts: list[str] = []
    x = float(MARGIN)
    for label, colour in palette.items():
        width = 22 + 7 * len(label)
        if x + width > WIDTH - MARGIN:
            x = MARGIN
            y += LINE + 2
        parts.append(f'<rect x="{x:.1f}" y="{y - 10:.1f}" width="12" height="12" fill="{colour}"/>')
        parts.append(_text(x + 16, y, label))
        x += width + 14
    return parts, y + LINE


def _panel(
    group: Group,
    panel: Panel,
    x: float,
    width: float,
    y: float,
    scale: float,
    palette: dict[str, str],
) -> list[str]:
    parts = [_text(x + LABEL_WIDTH, y, panel.title, 12, ' font-style="italic"')]
    bar_space = width - LABEL_WIDTH - TEXT_WIDTH
    y += 6
    for bar in panel.bars:
        mid = y + BAR_HEIGHT / 2 + 4
        parts.append(_text(x + LABEL_WIDTH - 6, mid, bar.label, 12, ' text-anchor="end"'))
        length = 0.0
        if not math.isnan(bar.value) and scale > 0:
            length = max(1.0, bar_space * bar.value / scale)
            parts.append(
                f'<rect x="{x + LABEL_WIDTH:.1f}" y="{y:.1f}" width="{length:.1f}" '
                f'height="{BAR_HEIGHT}" fill="{palette[bar.label]}">'
                f"<title>{escape(f'{group.title}, {panel.title}, {bar.label}: {bar.text}')}"
                "</title></rect>"
            )
        parts.append(_text(x + LABEL_WIDTH + length + 5, mid, bar.text, 11))
        y += BAR_HEIGHT + BAR_GAP
    return parts


def render(title: str, notes: Sequence[str], groups: Sequence[Group]) -> str:
    """The whole chart as an SVG document."""
    palette = colours(groups)
    parts: list[str] = [_text(MARGIN, 30, title, 18, ' font-weight="bold"')]
    y = 30.0 + LINE + 4
    for note in notes:
        parts.append(_text(MARGIN, y, note, 12, ' fill="#444"'))
        y += LINE
    legend, y = _legend(palette, y + 8)
    parts += legend
    for group in groups:
        y += 14
        parts.append(_text(MARGIN, y, group.title, 14, ' font-weight="bold"'))
        if group.note:
            parts.append(_text(WIDTH - MARGIN, y, group.note, 11, ' text-anchor="end" fill="#444"'))
        y += LINE + 4
        values = [b.value for p in group.panels for b in p.bars if not math.isnan(b.value)]
        scale = max(values, default=0.0)
        width = (WIDTH - 2 * MARGIN) / max(1, len(group.panels))
        tallest = 0.0
        for i, panel in enumerate(group.panels):
            parts += _panel(group, panel, MARGIN + i * width, width, y, scale, palette)
            tallest = max(tallest, 6 + len(panel.bars) * (BAR_HEIGHT + BAR_GAP))
        y += tallest + 6
    height = math.ceil(y + MARGIN)
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
            f'viewBox="0 0 {WIDTH} {height}" role="img">',
            f"<title>{escape(title)}</title>",
            f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>',
            *parts,
            "</svg>",
            "",
        ]
    )
