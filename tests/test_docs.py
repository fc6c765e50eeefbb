"""The documentation site builds in strict mode: a broken link, a missing page or a bad nav entry fails.

`make docs` (and CI) build it the same way; this keeps the docs pages that `make test` reads commands
from (tests/test_readme.py) in a site that builds.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

pytest.importorskip("mkdocs", reason="the docs extra: make install, or pip install -e '.[docs]'")


def test_the_docs_site_builds_strict(tmp_path: Path) -> None:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "WARNING" not in result.stderr, result.stderr[-3000:]
    for page in ("index.html", "getting-started/index.html", "results/anchors/index.html"):
        assert (tmp_path / "site" / page).is_file(), page


def test_every_docs_page_is_in_the_nav() -> None:
    """A page left out of mkdocs.yml's nav builds but cannot be reached from the site's menu."""
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = [path.relative_to(ROOT / "docs").as_posix() for path in (ROOT / "docs").rglob("*.md")]
    assert [page for page in pages if f": {page}" not in nav] == []
