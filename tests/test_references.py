"""Every reference in code and docs resolves inside this repository (or is a public URL).

A bare citation ``§4.9`` (or ``Appendix A.2``) names a heading of docs/dataverse.md;
``singer-sdk.md §1.8`` names a heading of docs/singer-sdk.md; ``RFC 6749 §2.3.1`` is external and
not checked. Paths such as ``docs/emulator-faults.md`` and relative Markdown links must exist.
This file is not scanned itself, so that the forbidden names below can be spelled out.
"""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SCANNED = {".py", ".md", ".yml", ".yaml"}
SKIPPED_DIRS = {".git", ".venv", ".tools", "build", "dist", "node_modules"}

CITATION = re.compile(
    r"(?:(?P<doc>[\w-]+\.md)\s+)?(?:§\s?|Appendix\s+)(?P<num>(?:\d+|[A-C])(?:\.\d+)*)"
)
EXTERNAL = re.compile(r"RFC\s?\d+\s*$")
HEADING = re.compile(r"^#{1,6}\s+(?:Appendix\s+)?(?P<num>(?:\d+|[A-C])(?:\.\d+)*)[.\s]")
FORBIDDEN = ("WEB-API-REFERENCE", "SINGER-SDK-NOTES", "SDK notes", "../shared", "/work/shared")
DOC_PATH = re.compile(r"(?<![\w./-])docs/[\w./-]*\w\.md\b")
MD_LINK = re.compile(r"\]\((?P<target>[^()\s]+)\)")


def repo_files() -> list[Path]:
    """Tracked and new (not ignored) files; a plain walk when this is not a git checkout."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        paths = [ROOT / line for line in out.splitlines()]
    except (OSError, subprocess.CalledProcessError):
        paths = [p for p in ROOT.rglob("*") if not SKIPPED_DIRS & set(p.relative_to(ROOT).parts)]
    this = Path(__file__).resolve()
    return sorted(p for p in paths if p.suffix in SCANNED and p.is_file() and p.resolve() != this)


@cache
def sections(doc: str) -> frozenset[str]:
    """Section numbers of the headings of ``docs/<doc>`` (empty when it does not exist)."""
    path = DOCS / doc
    if not path.is_file():
        return frozenset()
    lines = path.read_text("utf-8").splitlines()
    return frozenset(m["num"] for m in map(HEADING.match, lines) if m)


def lines_of(path: Path) -> list[tuple[str, str]]:
    """``(file:line, text)`` for every line of ``path``."""
    rel = path.relative_to(ROOT).as_posix()
    text = path.read_text("utf-8", errors="replace")
    return [(f"{rel}:{n}", line) for n, line in enumerate(text.splitlines(), start=1)]


def unresolved_citations(where: str, line: str) -> list[str]:
    """The citations on ``line`` with no matching heading."""
    found = []
    for m in CITATION.finditer(line):
        if EXTERNAL.search(line[: m.start()]):
            continue
        doc = m["doc"] or "dataverse.md"
        if m["num"] not in sections(doc):
            found.append(f"{where}: {m.group(0).strip()!r} has no heading in docs/{doc}")
    return found


def test_dataverse_reference_has_numbered_sections() -> None:
    """The reference itself parses: the check below cannot pass vacuously."""
    assert {"0.1", "1.6", "4.9", "5.4", "11", "A.2"} <= sections("dataverse.md")
    assert {"1.1", "1.7", "1.8", "3.1", "3.2"} <= sections("singer-sdk.md")


def test_every_cited_section_exists() -> None:
    """A ``§n.m`` in code or docs names a heading of docs/dataverse.md (or of the doc it names)."""
    problems = [
        problem
        for path in repo_files()
        for where, line in lines_of(path)
        for problem in unresolved_citations(where, line)
    ]
    assert not problems, "Citations that lead nowhere:\n" + "\n".join(problems)


def test_no_reference_outside_the_repository() -> None:
    """Nothing points at the notes this project was built from: they are not in the repository."""
    problems = [
        f"{where}: mentions {name!r}; cite docs/dataverse.md, docs/singer-sdk.md or a public page"
        for path in repo_files()
        for where, line in lines_of(path)
        for name in FORBIDDEN
        if name in line
    ]
    assert not problems, "References outside the repository:\n" + "\n".join(problems)


def test_docs_paths_exist() -> None:
    """``docs/x.md`` mentioned anywhere, and relative Markdown links, point at existing files."""
    problems = []
    for path in repo_files():
        for where, line in lines_of(path):
            problems += [
                f"{where}: {m.group(0)} does not exist"
                for m in DOC_PATH.finditer(line)
                if not (ROOT / m.group(0)).is_file()
            ]
            if path.suffix != ".md":
                continue
            for m in MD_LINK.finditer(line):
                target = m["target"].split("#", 1)[0]
                if not target or re.match(r"[a-z][a-z0-9+.-]*:", target):
                    continue
                if not (path.parent / target).exists():
                    problems.append(f"{where}: link ({m['target']}) does not exist")
    assert not problems, "Paths that lead nowhere:\n" + "\n".join(problems)
