#!/usr/bin/env bash
# Builds the documentation site into build/site/ (or the directory given), strictly:
# any warning (a broken link, a docstring mkdocstrings cannot read) fails the build.
# Run scripts/setup.sh first; this adds the `docs` dependency group to its .venv.
set -euo pipefail
site="$(realpath -m "${1:-$(dirname "$0")/../build/site}")"
cd "$(dirname "$0")/.."
export PATH="$HOME/.local/bin:$PATH"
if ! command -v uv >/dev/null 2>&1; then
  echo "docs.sh: uv not found: run scripts/setup.sh first" >&2
  exit 2
fi
# --inexact: adds the docs group and removes nothing setup.sh installed.
uv sync --all-packages --frozen --inexact --quiet --group docs
.venv/bin/mkdocs build --strict --quiet --site-dir "$site"
echo "docs.sh: site built in $site/ (${SECONDS} s)"
