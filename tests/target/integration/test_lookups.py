"""Lookups by alternate key, on the emulator: keys a URL cannot carry are bound by GUID (§3.6)."""

from __future__ import annotations

import json
import typing as t

import pytest

from target_dynamics.target import TargetDynamics

if t.TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.usefixtures("reset_emulator")

BY_NUMBER = {"lookups": {"parentcustomerid": {"table": "account", "key": "accountnumber"}}}
"""Contacts name their account by its alternate key ``accountnumber``."""


def messages(stream: str, records: list[dict[str, t.Any]], keys: tuple[str, ...] = ()) -> list:
    """A SCHEMA (string fields), the records and a STATE: what a tap sends."""
    fields = {name for record in records for name in record}
    schema = {"properties": {name: {"type": ["string", "null"]} for name in sorted(fields)}}
    head = {"type": "SCHEMA", "stream": stream, "schema": schema, "key_properties": list(keys)}
    body = [{"type": "RECORD", "stream": stream, "record": record} for record in records]
    return [head, *body, {"type": "STATE", "value": {"done": stream}}]


def seed_accounts(emulator, singer, numbers: list[str]) -> dict[str, str]:
    """Accounts with these account numbers, written through the target; their ids by number."""
    records = [{"accountnumber": n, "name": f"Account {n}"} for n in numbers]
    target = TargetDynamics(config={**emulator.target_config, "id_field": "accountnumber"})
    singer.listen(target, messages("account", records))
    return {r["accountnumber"]: r["accountid"] for r in emulator.admin.snapshot()["account"]}


def load_contacts(emulator, singer, records: list[dict[str, t.Any]], **config: t.Any):
    """Create contacts (no id: content ids) through the target; (reads it sent, its failure)."""
    before = reads(emulator)
    settings = {**emulator.target_config, "operation": "create", **BY_NUMBER, **config}
    _, failure = singer.run(TargetDynamics(config=settings), messages("contact", records))
    return reads(emulator) - before, failure


def reads(emulator) -> int:
    """GET requests on tables the emulator answered so far (queries, not metadata)."""
    return sum(emulator.admin.counters()["requests"].get("read", {}).values())


def parents(emulator) -> dict[str, str | None]:
    """Each contact's parentcustomerid, by email."""
    rows = emulator.admin.snapshot().get("contact", [])
    return {r["emailaddress1"]: r.get("parentcustomerid") for r in rows}


def test_a_key_a_url_cannot_carry_binds_by_guid_one_query_per_25_keys(reset_emulator, singer):
    """§3.6: `A/1` cannot go in `/accounts(accountnumber='A/1')`: the batch's keys are found by
    $filter (one query per 25, the collation's case folding) and bound by GUID; plain keys
    still bind by key, with no query."""
    slashed = [f"A/{i}" for i in range(30)]
    accounts = seed_accounts(reset_emulator, singer, ["A1", *slashed])
    unbound = [{"emailaddress1": "none@x.org", "parentcustomerid": None}]
    alone, _ = load_contacts(reset_emulator, singer, unbound)  # same schema, nothing to bind
    plain, failure = load_contacts(
        reset_emulator, singer, [{"emailaddress1": "plain@x.org", "parentcustomerid": "A1"}]
    )
    assert failure is None
    assert plain == alone  # bound by key: no lookup
    records = [
        {"emailaddress1": f"c{i}@x.org", "parentcustomerid": number.lower()}
        for i, number in enumerate(slashed)
    ]
    resolved, failure = load_contacts(reset_emulator, singer, records)
    assert failure is None
    assert resolved == alone + 2  # 30 keys: two $filter queries for the whole batch
    landed = parents(reset_emulator)
    assert landed["plain@x.org"] == accounts["A1"]
    assert landed["none@x.org"] is None
    for i, number in enumerate(slashed):
        assert landed[f"c{i}@x.org"] == accounts[number]


def test_a_key_no_row_holds_is_a_dead_letter_naming_the_lookup(
    reset_emulator, singer, tmp_path: Path
):
    """§4.9: like Dataverse's own 404 `0x80060891` for a bind to a missing key; the rest lands."""
    accounts = seed_accounts(reset_emulator, singer, ["B&2"])
    dead = tmp_path / "dead.jsonl"
    records = [
        {"emailaddress1": "found@x.org", "parentcustomerid": "B&2"},
        {"emailaddress1": "lost@x.org", "parentcustomerid": "Z/9"},
    ]
    _, failure = load_contacts(reset_emulator, singer, records, dead_letter_path=str(dead))
    assert failure is not None
    assert "1 records were rejected" in str(failure)
    assert parents(reset_emulator) == {"found@x.org": accounts["B&2"]}
    letters = [json.loads(line) for line in dead.read_text().splitlines()][1:]
    assert [m["record"]["emailaddress1"] for m in letters] == ["lost@x.org"]
    letter = letters[0]["record"]["_dead_letter"]
    assert (letter["code"], letter["status"]) == ("0x80060891", 404)
    assert letter["error"] == (
        "lookup 'parentcustomerid': A record with the specified key values does not exist in "
        "account entity (accountnumber = 'Z/9')"
    )
