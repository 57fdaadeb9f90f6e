from __future__ import annotations

import importlib.util
import json
import os
from importlib import resources
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "build_emulator_data.py"
# The table facts the data files are built from (scripts/build_emulator_data.py), when available.
SHARED = Path(os.environ.get("DATAVERSE_ENTITY_FACTS", "/nonexistent"))
NO_FACTS = "set DATAVERSE_ENTITY_FACTS to the table facts directory"
DATA = resources.files("dataverse_emulator.data")


def load_script():
    spec = importlib.util.spec_from_file_location("build_emulator_data", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not SHARED.is_dir(), reason=NO_FACTS)
def test_generated_tables_are_up_to_date() -> None:
    """The committed data/tables files are exactly what the build script makes from the facts."""
    script = load_script()
    out = Path(str(DATA.joinpath("tables")))
    assert script.main(["--entities", str(SHARED), "--out", str(out), "--check"]) == 0


@pytest.mark.skipif(not SHARED.is_dir(), reason=NO_FACTS)
def test_check_detects_stale_files(tmp_path: Path) -> None:
    script = load_script()
    assert script.main(["--entities", str(SHARED), "--out", str(tmp_path)]) == 0
    (tmp_path / "contact.json").write_text("{}\n", "utf-8")
    assert script.main(["--entities", str(SHARED), "--out", str(tmp_path), "--check"]) == 1


def test_every_table_file_is_named_after_its_table() -> None:
    files = [f for f in DATA.joinpath("tables").iterdir() if f.name.endswith(".json")]
    assert len(files) == 13
    for item in files:
        doc = json.loads(item.read_text("utf-8"))
        assert item.name == f"{doc['logical_name']}.json"
        assert {c["logical_name"] for c in doc["columns"]} >= {doc["primary_id"]}


def test_default_environment_names_real_tables_and_columns() -> None:
    """§3.6 / §6.5: keys on existing columns; a bulk flag for every standard table."""
    env = json.loads(DATA.joinpath("default-environment.json").read_text("utf-8"))
    tables = {
        f.name.removesuffix(".json"): json.loads(f.read_text("utf-8"))
        for f in DATA.joinpath("tables").iterdir()
        if f.name.endswith(".json")
    }
    assert set(env["supports_bulk"]) == set(tables)
    assert "no alternate keys out of the box" in env["comment"]
    for key in env["keys"]:
        columns = {c["logical_name"] for c in tables[key["table"]]["columns"]}
        assert set(key["key_attributes"]) <= columns
    for table, choices in env["global_choices"].items():
        if table == "comment":
            continue
        types = {c["logical_name"]: c["type"] for c in tables[table]["columns"]}
        assert {types[column] for column in choices} <= {"Picklist", "MultiSelectPicklist"}


def test_documented_example_is_the_shipped_example() -> None:
    """docs/emulator-entities.md shows the shipped example file verbatim."""
    doc = (ROOT / "docs" / "emulator-entities.md").read_text("utf-8")
    example = DATA.joinpath("examples").joinpath("custom-entities.json").read_text("utf-8")
    assert f"```json\n{example}```" in doc
