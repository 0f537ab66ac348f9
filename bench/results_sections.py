"""Sections that other benchmarks keep inside bench/RESULTS.md (each issue's targets table lives
there), between markers, so that each benchmark can rewrite its own section and bench_ann.py,
which writes the rest of the file, carries them over when it rewrites RESULTS.md."""
from __future__ import annotations

import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
_BLOCK = re.compile(r"<!-- section:(?P<name>[\w-]+) -->\n.*?<!-- /section:(?P=name) -->\n", re.S)


def blocks(text: str) -> list[str]:
    """The marked sections in `text`, in order, markers included."""
    return [m.group(0) for m in _BLOCK.finditer(text)]


def update_section(name: str, body: str, path: Path = RESULTS) -> None:
    """Replace section `name` of `path` with `body` (appended at the end when absent)."""
    block = f"<!-- section:{name} -->\n{body.rstrip()}\n<!-- /section:{name} -->\n"
    text = path.read_text() if path.exists() else ""
    pattern = re.compile(rf"<!-- section:{re.escape(name)} -->\n.*?<!-- /section:{re.escape(name)} -->\n", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.write_text(text)
