"""mkdocs hook: draws docs/benchmarks/chart.svg from the committed results.

The chart comes from ``bench/run.py --from RESULTS --chart SVG``, which reads the
figures a real run saved with ``--json``: building the site never runs a benchmark.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError


def on_pre_build(config: MkDocsConfig) -> None:
    root = Path(config.config_file_path).parent
    results = Path(config.docs_dir) / "benchmarks" / "results.json"
    chart = results.with_name("chart.svg")
    with tempfile.TemporaryDirectory() as tmp:
        drawn = Path(tmp) / "chart.svg"
        run_py = str(root / "bench" / "run.py")
        done = subprocess.run(
            [sys.executable, run_py, "--from", str(results), "--chart", str(drawn)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise PluginError(f"bench/run.py --chart failed: {done.stderr.strip()}")
        svg = drawn.read_bytes()
    # Rewritten only when it changes: under `mkdocs serve` a write would trigger another build.
    if not chart.exists() or chart.read_bytes() != svg:
        chart.write_bytes(svg)
