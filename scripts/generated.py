"""Generated files, one way for every generator in ``scripts/``.

``main`` rewrites the file, or with ``--check`` exits 1 when it is stale (what the tests and CI
ask); ``replace_section`` swaps the text between two markers, for files that are only partly
generated.
"""

from __future__ import annotations

import argparse
import sys
import typing as t
from pathlib import Path

if t.TYPE_CHECKING:
    from collections.abc import Callable, Sequence

ROOT = Path(__file__).resolve().parent.parent


def replace_section(text: str, start: str, end: str, body: str, where: str) -> str:
    """``text`` with everything between the markers ``start`` and ``end`` replaced by ``body``.

    Raises:
        SystemExit: When ``text`` (the file ``where``) lacks either marker.
    """
    head, found, rest = text.partition(start)
    _, found_end, tail = rest.partition(end)
    if not found or not found_end:
        msg = f"{where} lacks the markers {start!r} ... {end!r}"
        raise SystemExit(msg)
    return f"{head}{start}\n{body}\n{end}{tail}"


def main(
    doc: str | None,
    target: Path,
    render: Callable[[str], str],
    argv: Sequence[str] | None = None,
) -> int:
    """Rewrite ``target`` as ``render`` makes it from its current text, or check it.

    Args:
        doc: The generator's docstring; its first line is the ``--help`` text.
        target: The generated file.
        render: The file's wanted text, given its current text (empty when it is missing).
        argv: The command-line arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit code: 1 when ``--check`` finds ``target`` stale, else 0.
    """
    parser = argparse.ArgumentParser(description=(doc or "").split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the file is stale")
    args = parser.parse_args(argv)
    current = target.read_text(encoding="utf-8") if target.exists() else ""
    wanted = render(current)
    if args.check:
        if wanted != current:
            script = Path(sys.argv[0]).name
            print(f"{target.relative_to(ROOT)} is stale: run .venv/bin/python scripts/{script}")
            return 1
        return 0
    target.parent.mkdir(exist_ok=True)
    target.write_text(wanted, encoding="utf-8")
    return 0
