"""The target agrees with Dataverse's ``_CI_AI`` collation: accent variants are one key (§3.10)."""

from __future__ import annotations

import io
import json

import pytest
from singer_sdk.testing import target_sync_test

from target_dynamics.identity import key_guid
from target_dynamics.target import TargetDynamics

pytestmark = pytest.mark.usefixtures("reset_emulator")


def run(emulator, id_field: str, records: list[dict]) -> TargetDynamics:
    """Upsert ``records`` (fields ``key`` and ``last``) into contacts by ``id_field``."""
    schema = {"properties": {f: {"type": ["string", "null"]} for f in ("key", "last")}}
    settings = {
        **emulator.target_config,
        "entity": "contacts",
        "operation": "upsert",
        "id_field": id_field,
        "streams": {"people": {"columns": {"key": id_field, "last": "lastname"}}},
    }
    messages = [{"type": "SCHEMA", "stream": "people", "schema": schema, "key_properties": []}]
    messages += [{"type": "RECORD", "stream": "people", "record": r} for r in records]
    target = TargetDynamics(config=settings)
    target_sync_test(target, io.StringIO("".join(json.dumps(m) + "\n" for m in messages)))
    return target


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
        assert rows[0][0] == key_guid("contact", {"employeeid": "josé@x.org"})


def test_key_guid_folds_accents_and_keeps_ascii_ids():
    """§3.10: one id for accent variants; ids of ASCII keys are the ones earlier versions chose."""
    assert key_guid("contact", {"emailaddress1": "José@x.org"}) == key_guid(
        "contact", {"emailaddress1": "jose@X.ORG"}
    )
    assert key_guid("contact", {"emailaddress1": "Ann@X.org"}) == (
        "b3d85ebd-8c74-5602-ad9d-90c40b69918f"
    )
    assert key_guid("contact", {"employeeid": "E1", "lastname": "Straße"}) == (
        "82980d78-13f5-5a80-a29b-c2e2c35ca288"
    )
