"""The target compares keys as the environment's base language does (§3.10).

Microsoft Learn, "Language collations" (https://learn.microsoft.com/power-platform/admin/language-collations):
English (1033, the emulator's default) is ``_CI_AI``, accent variants are one key; Finnish (1035)
is ``_CI_AS``, "José" and "Jose" are two keys (case still folds). The target reads
``organizations?$select=languagecode`` once per run and follows it.
"""

from __future__ import annotations

import io
import json
import logging
from typing import TYPE_CHECKING

import pytest
from singer_sdk.testing import target_sync_test

from target_dynamics.collation import DEFAULT, Collation
from target_dynamics.identity import key_guid
from target_dynamics.target import TargetDynamics

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.usefixtures("reset_emulator")

ACCENT_SENSITIVE = Collation(accent_sensitive=True)
FINNISH = 1035  # _CI_AS in Learn's table


@pytest.fixture
def finnish(emulator_factory):
    """A private emulator whose base language is accent-sensitive."""
    return emulator_factory(latency="zero", language_code=FINNISH)


def settings(emulator, id_field: str) -> dict:
    return {
        **emulator.target_config,
        "entity": "contacts",
        "operation": "upsert",
        "id_field": id_field,
        "streams": {"people": {"columns": {"key": id_field, "last": "lastname"}}},
    }


def messages(records: list[dict]) -> str:
    schema = {"properties": {f: {"type": ["string", "null"]} for f in ("key", "last")}}
    lines = [{"type": "SCHEMA", "stream": "people", "schema": schema, "key_properties": []}]
    lines += [{"type": "RECORD", "stream": "people", "record": r} for r in records]
    return "".join(json.dumps(m) + "\n" for m in lines)


def run(emulator, id_field: str, records: list[dict]) -> TargetDynamics:
    """Upsert ``records`` (fields ``key`` and ``last``) into contacts by ``id_field``."""
    target = TargetDynamics(config=settings(emulator, id_field))
    target_sync_test(target, io.StringIO(messages(records)))
    return target


def run_cli(singer, emulator, id_field: str, records: list[dict], tmp_path: Path):
    """The same through the ``target-dynamics`` console script."""
    return singer.cli(settings(emulator, id_field), messages(records), tmp_path, env=singer.QUIET)


def contacts(emulator, column: str) -> list[tuple[str, str, str]]:
    rows = emulator.admin.snapshot().get("contact", [])
    return sorted((r["contactid"], r[column], r["lastname"]) for r in rows)


@pytest.mark.parametrize("id_field", ["emailaddress1", "employeeid"])
def test_accent_variant_in_a_later_run_upserts_the_same_row(reset_emulator, id_field):
    """§3.10: "josé@x.org", then "jose@x.org" is one row, by alternate key (emailaddress1)
    and by matched column (employeeid: the row the lookup returns is recognised, no duplicate)."""
    run(reset_emulator, id_field, [{"key": "josé@x.org", "last": "First"}])
    [(guid, _, _)] = contacts(reset_emulator, id_field)
    run(reset_emulator, id_field, [{"key": "JOSE@x.org", "last": "Second"}])
    assert [(g, last) for g, _, last in contacts(reset_emulator, id_field)] == [(guid, "Second")]


@pytest.mark.parametrize("id_field", ["emailaddress1", "employeeid"])
def test_accent_variants_in_one_batch_are_merged(reset_emulator, id_field):
    """§3.10, §6.3: two accent variants in one batch are one row (later values win); the
    UpsertMultiple does not fail on a duplicate key."""
    records = [{"key": "josé@x.org", "last": "First"}, {"key": "Jose@x.org", "last": "Second"}]
    before = reset_emulator.admin.counters()["requests"]
    run(reset_emulator, id_field, records)
    after = reset_emulator.admin.counters()["requests"]
    bulk = {k: v - before.get("bulk", {}).get(k, 0) for k, v in after["bulk"].items()}
    assert {k: v for k, v in bulk.items() if v} == {"204": 1}  # one UpsertMultiple, no 412
    assert after.get("batch") == before.get("batch")  # no fallback isolating the rows
    rows = contacts(reset_emulator, id_field)
    assert [last for _, _, last in rows] == ["Second"]
    if id_field == "employeeid":  # created under the id of the key, for either spelling
        assert rows[0][0] == key_guid("contact", {"employeeid": "josé@x.org"}, DEFAULT)


@pytest.mark.parametrize("id_field", ["emailaddress1", "employeeid"])
def test_accent_variants_in_one_batch_are_two_rows_when_accents_matter(
    finnish, id_field, tmp_path, singer
):
    """§3.10 ``_CI_AS`` (1035): the CLI keeps "José" and "Jose" apart inside one batch, by
    alternate key and by matched column: two rows, neither record lost to the other."""
    records = [{"key": "José", "last": "Accented"}, {"key": "Jose", "last": "Plain"}]
    done = run_cli(singer, finnish, id_field, records, tmp_path)
    assert done.returncode == 0, done.stderr
    rows = contacts(finnish, id_field)
    assert sorted((key, last) for _, key, last in rows) == [
        ("Jose", "Plain"),
        ("José", "Accented"),
    ]
    if id_field == "employeeid":  # each spelling created under an id of its own
        assert sorted(guid for guid, _, _ in rows) == sorted(
            key_guid("contact", {"employeeid": k}, ACCENT_SENSITIVE) for k in ("José", "Jose")
        )


def test_matched_column_recognises_rows_as_an_accent_sensitive_environment_does(finnish):
    """§3.10 ``_CI_AS``: a later run's "JOSÉ" finds and updates the "José" row (case folds);
    "Jose" finds no row and creates its own, leaving "José" alone."""
    run(finnish, "employeeid", [{"key": "José", "last": "First"}])
    [(guid, _, _)] = contacts(finnish, "employeeid")
    run(finnish, "employeeid", [{"key": "JOSÉ", "last": "Second"}])
    assert [(g, last) for g, _, last in contacts(finnish, "employeeid")] == [(guid, "Second")]
    run(finnish, "employeeid", [{"key": "Jose", "last": "Plain"}])
    rows = {key: (g, last) for g, key, last in contacts(finnish, "employeeid")}
    assert rows == {"JOSÉ": (guid, "Second"), "Jose": (rows["Jose"][0], "Plain")}
    assert rows["Jose"][0] != guid


def test_base_language_that_cannot_be_read_warns_once_and_compares_as_ci_ai(reset_emulator, caplog):
    """A role without read access to the organization table (403 ``0x80040220``): one warning,
    the run goes on comparing keys as Dataverse's default (accent-insensitive) collation does."""
    client_id = reset_emulator.target_config["client_id"]
    reset_emulator.admin.set_role(client_id, {"tables": {"contact": ["read", "create", "write"]}})
    records = [{"key": "josé@x.org", "last": "First"}, {"key": "Jose@x.org", "last": "Second"}]
    with caplog.at_level(logging.WARNING):
        run(reset_emulator, "emailaddress1", records)
    warnings = [r.getMessage() for r in caplog.records if "base language" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert "0x80040220" in warnings[0]
    assert "_CI_AI" in warnings[0]
    assert [last for _, _, last in contacts(reset_emulator, "emailaddress1")] == ["Second"]


def test_key_guid_follows_the_collation_and_keeps_ascii_ids():
    """§3.10: one id for accent variants under ``_CI_AI``, two under ``_CI_AS``; ids of ASCII
    keys are the ones earlier versions chose, under either collation."""
    accented, plain = {"emailaddress1": "José@x.org"}, {"emailaddress1": "jose@X.ORG"}
    assert key_guid("contact", accented, DEFAULT) == key_guid("contact", plain, DEFAULT)
    assert key_guid("contact", accented, ACCENT_SENSITIVE) != key_guid(
        "contact", plain, ACCENT_SENSITIVE
    )
    assert key_guid("contact", accented, ACCENT_SENSITIVE) == key_guid(
        "contact", {"emailaddress1": "JOSÉ@x.org"}, ACCENT_SENSITIVE
    )
    for collation in (DEFAULT, ACCENT_SENSITIVE):
        assert key_guid("contact", {"emailaddress1": "Ann@X.org"}, collation) == (
            "b3d85ebd-8c74-5602-ad9d-90c40b69918f"
        )
    assert key_guid("contact", {"employeeid": "E1", "lastname": "Straße"}, DEFAULT) == (
        "82980d78-13f5-5a80-a29b-c2e2c35ca288"
    )


def test_lists_named_by_accent_variants_are_two_lists_when_accents_matter(finnish):
    """§3.10 ``_CI_AS``: lists "Café" and "Cafe" are two lists, each created under its own id
    and holding its own members (under ``_CI_AI`` the second would reuse the first's id)."""
    config = {
        **settings(finnish, "emailaddress1"),
        "streams": {
            "people": {
                "columns": {"key": "emailaddress1", "last": "lastname"},
                "marketing_list_field": "last",
            }
        },
    }
    records = [{"key": "a@x.org", "last": "Café"}, {"key": "b@x.org", "last": "Cafe"}]
    target_sync_test(TargetDynamics(config=config), io.StringIO(messages(records)))
    snapshot = finnish.admin.snapshot()
    lists = {row["listname"]: row["listid"] for row in snapshot.get("list", [])}
    assert sorted(lists) == ["Cafe", "Café"]
    assert lists["Café"] == key_guid("list", {"listname": "Café"}, ACCENT_SENSITIVE)
    assert lists["Cafe"] == key_guid("list", {"listname": "Cafe"}, ACCENT_SENSITIVE)
