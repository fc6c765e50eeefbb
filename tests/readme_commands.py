"""The commands the README and the docs pages show, read from their code blocks and tables (for
tests/test_readme.py)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

PREFIX = "python -m stn_fovea."


def documented_commands(*documents: Path) -> list[str]:
    """Every `python -m stn_fovea.<entry point> ...` command of the documents, in order, once each."""
    found: list[str] = []
    for document in documents:
        text = document.read_text()
        for block in re.findall(r"```bash\n(.*?)```", text, re.S):
            for line in block.replace("\\\n", " ").splitlines():
                line = line.split("  #")[0].split(" # ")[0].strip()
                if line.startswith(PREFIX):
                    found.append(" ".join(line.split()))
        found += [" ".join(cell.split()) for cell in re.findall(r"`(python -m stn_fovea\.[^`]*)`", text)]
    return list(dict.fromkeys(found))


def split_command(command: str) -> tuple[str, list[str]]:
    """('train', ['-m', 'model=what,stn', ...]) from 'python -m stn_fovea.train -m model=what,stn ...'."""
    words = shlex.split(re.sub(r"<[^>]*>", "<placeholder>", command))
    return words[2][len("stn_fovea.") :], words[3:]
