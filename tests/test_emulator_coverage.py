"""docs/emulator-coverage.md is generated from the emulator's code and never stale (issue 13)."""

from __future__ import annotations

import ast
import importlib.util
import typing as t
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def coverage_module() -> t.Any:
    spec = importlib.util.spec_from_file_location(
        "emulator_coverage", ROOT / "scripts" / "emulator_coverage.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_coverage_page_matches_the_code() -> None:
    module = coverage_module()
    page = module.DOC.read_text(encoding="utf-8")
    assert module.replace_section(page, module.render()) == page, (
        "docs/emulator-coverage.md is stale: run .venv/bin/python scripts/emulator_coverage.py"
    )


def test_every_handler_the_router_imports_has_a_route_row() -> None:
    """A handler module added to the route table must be documented in its docstring."""
    module = coverage_module()
    router = ROOT / "dataverse_emulator" / "wire" / "router.py"
    imported = {
        alias.name
        for node in ast.parse(router.read_text(encoding="utf-8")).body
        if isinstance(node, ast.ImportFrom) and node.module == "dataverse_emulator.wire"
        for alias in node.names
    }
    documented = {name for _, name in module.routes(module.docstring(router))}
    helpers = {"navigation", "optional_headers"}  # used by handlers, no route of their own
    assert {f"wire.{name}" for name in imported - helpers} <= documented


def test_gap_paragraph_is_found_and_flattened() -> None:
    module = coverage_module()
    doc = "Summary.\n\nServed: a.\nUnsupported: ``x``, :class:`Y` |\n  and z.\n\nMore."
    assert module.gaps(doc) == "Unsupported: `x`, `Y` \\| and z."
    assert module.gaps("Summary.\n\nAll of it.") is None
