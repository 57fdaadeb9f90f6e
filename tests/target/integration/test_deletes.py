"""Rows deleted at the source, per-record operations, and state/status pairs (§4.5, §4.10, §6.2)."""

from __future__ import annotations

import io
import json
import logging
import uuid

import pytest
from singer_sdk.testing import target_sync_test

from target_dynamics.target import TargetDynamics

pytestmark = pytest.mark.usefixtures("reset_emulator")

GONE = "2024-05-01T10:00:00Z"
GUIDS = [str(uuid.uuid4()) for _ in range(3)]
MODES = {  # mode -> (id_field, record field -> column)
    "primary": ("contactid", {"id": "contactid"}),
    "alternate": ("emailaddress1", {"email": "emailaddress1"}),
    "match": ("employeeid", {"emp": "employeeid"}),
}


def person(mode: str, n: int, **values: object) -> dict:
    ident = {"id": GUIDS[n], "email": f"p{n}@x.org", "emp": f"E{n}"}
    field = next(iter(MODES[mode][1]))
    return {field: ident[field], "last": f"Last{n}", **values}


def run(emulator, mode: str, records: list[dict], *, fields=(), **config) -> TargetDynamics:
    id_field, columns = MODES[mode]
    props = {f: {"type": ["string", "null"]} for f in [*columns, "last", *fields]}
    props["_sdc_deleted_at"] = {"type": ["string", "null"], "format": "date-time"}
    stream = {"columns": {**columns, "last": "lastname", **{f: f for f in fields}}}
    stream |= config.pop("stream", {})
    settings = {
        **emulator.target_config,
        "entity": "contact",
        "id_field": id_field,
        "streams": {"people": stream},
        **config,
    }
    schema = {"properties": props}
    messages = [{"type": "SCHEMA", "stream": "people", "schema": schema, "key_properties": []}]
    messages += [{"type": "RECORD", "stream": "people", "record": r} for r in records]
    target = TargetDynamics(config=settings)
    target_sync_test(target, io.StringIO("".join(json.dumps(m) + "\n" for m in messages)))
    return target


def contacts(emulator) -> dict[str, tuple[int, int]]:
    """lastname -> (statecode, statuscode) of every contact."""
    rows = emulator.admin.snapshot().get("contact", [])
    return {r["lastname"]: (r["statecode"], r["statuscode"]) for r in rows}


@pytest.mark.parametrize("mode", list(MODES))
def test_source_deletes_deactivate_by_default(reset_emulator, mode):
    """A record with _sdc_deleted_at set deactivates its row (Inactive, its default status);
    a row already gone or already inactive is done, not an error."""
    run(reset_emulator, mode, [person(mode, 0), person(mode, 1)])
    records = [
        person(mode, 0, _sdc_deleted_at=GONE),
        person(mode, 1, _sdc_deleted_at=None),
        person(mode, 2, _sdc_deleted_at=GONE),  # never written: already gone
    ]
    target = run(reset_emulator, mode, records)
    assert contacts(reset_emulator) == {"Last0": (1, 2), "Last1": (0, 1)}
    totals = target.report.totals
    assert (totals.deactivated, totals.gone, totals.upserted, totals.rejected) == (1, 1, 1, 0)
    again = run(reset_emulator, mode, records[:1]).report.totals  # already inactive
    assert (again.landed, again.rejected) == (1, 0)
    assert contacts(reset_emulator)["Last0"] == (1, 2)


def test_deactivation_by_primary_id_goes_as_update_multiple(reset_emulator):
    """§6.2: deactivations addressed by primary id are one UpdateMultiple, not a $batch."""
    run(reset_emulator, "primary", [person("primary", n) for n in range(3)])
    before = reset_emulator.admin.counters()["requests"]
    deleted = [person("primary", n, _sdc_deleted_at=GONE) for n in range(3)]
    run(reset_emulator, "primary", deleted, max_concurrency=1)
    after = reset_emulator.admin.counters()["requests"]
    assert sum(after["bulk"].values()) == sum(before["bulk"].values()) + 1
    assert after.get("batch") == before.get("batch")
    assert set(contacts(reset_emulator).values()) == {(1, 2)}


@pytest.mark.parametrize("mode", list(MODES))
def test_source_deletes_with_hard_delete(reset_emulator, mode):
    run(reset_emulator, mode, [person(mode, 0), person(mode, 1)])
    records = [person(mode, 0, _sdc_deleted_at=GONE), person(mode, 2, _sdc_deleted_at=GONE)]
    totals = run(reset_emulator, mode, records, hard_delete=True).report.totals
    assert contacts(reset_emulator) == {"Last1": (0, 1)}
    assert (totals.deleted, totals.gone, totals.rejected) == (1, 1, 0)


def test_operation_field_picks_each_records_operation(reset_emulator, tmp_path):
    """insert means upsert; delete and deactivate remove; an insert then a delete of the same
    row in one batch end deleted (input order); unknown values are rejected."""
    run(reset_emulator, "alternate", [person("alternate", n) for n in range(2)])
    records = [
        person("alternate", 0, op="DEACTIVATE"),
        person("alternate", 1, op="delete"),
        person("alternate", 2, op="insert", last="Inserted"),
        person("alternate", 2, op="Delete"),
        {"email": "p3@x.org", "last": "Fresh", "op": "Insert"},
        {"email": "p4@x.org", "last": "Bad", "op": "merge"},
    ]
    dead = tmp_path / "dead.jsonl"
    target = run(
        reset_emulator,
        "alternate",
        records,
        fields=("op",),
        stream={"operation_field": "op"},
        max_errors=1,
        dead_letter_path=str(dead),
    )
    assert contacts(reset_emulator) == {"Last0": (1, 2), "Fresh": (0, 1)}
    totals = target.report.totals
    assert (totals.deactivated, totals.deleted, totals.upserted, totals.rejected) == (1, 2, 2, 1)
    [letter] = [json.loads(line) for line in dead.read_text().splitlines()[1:]]
    reason = letter["record"]["_dead_letter"]["error"]
    assert "names no operation: use one of upsert, create" in reason


@pytest.mark.parametrize("operation", ["upsert", "create"])
def test_state_and_status_set_on_create_and_upsert(reset_emulator, operation):
    """§4.10: labels for both; a status alone implies its state; an inactive row is created
    active and then set inactive by an update, since statecode is not valid for create."""
    records = [
        person("alternate", 0, statuscode="Inactive"),
        person("alternate", 1, statecode="inactive"),
        person("alternate", 2, statecode="Active", statuscode="Active"),
    ]
    fields = ("statecode", "statuscode")
    run(reset_emulator, "alternate", records, fields=fields, operation=operation)
    assert contacts(reset_emulator) == {"Last0": (1, 2), "Last1": (1, 2), "Last2": (0, 1)}


def test_state_and_status_change_existing_rows(reset_emulator):
    """An upsert or update reactivates a row: the pair is sent together (§4.10)."""
    fields = ("statecode", "statuscode")
    run(reset_emulator, "primary", [person("primary", 0, statecode="1")], fields=fields)
    assert contacts(reset_emulator) == {"Last0": (1, 2)}
    run(reset_emulator, "primary", [person("primary", 0, statuscode="1")], fields=fields)
    assert contacts(reset_emulator) == {"Last0": (0, 1)}
    records = [person("primary", 0, statecode="Inactive")]
    run(reset_emulator, "primary", records, fields=fields, operation="update")
    assert contacts(reset_emulator) == {"Last0": (1, 2)}


def test_dry_run_counts_deletions_and_deactivations(reset_emulator, caplog):
    run(reset_emulator, "alternate", [person("alternate", n) for n in range(3)])
    records = [
        person("alternate", 0, _sdc_deleted_at=GONE),
        person("alternate", 1, op="delete"),
        person("alternate", 2),
    ]
    with caplog.at_level(logging.INFO):
        run(
            reset_emulator,
            "alternate",
            records,
            fields=("op",),
            stream={"operation_field": "op"},
            dry_run=True,
        )
    assert (
        "3 validated (dry run, nothing written) (would be created 0, updated 0, upserted 1, "
        "deleted 1, deactivated 1)" in caplog.text
    )
    assert set(contacts(reset_emulator).values()) == {(0, 1)}


def run_leads(emulator, records: list[dict], **stream: object) -> TargetDynamics:
    """Stream ``unsubscribed`` into leads by primary id (``id``), ``last`` -> lastname."""
    props = {
        "id": {"type": "string"},
        "last": {"type": ["string", "null"]},
        "_sdc_deleted_at": {"type": ["string", "null"], "format": "date-time"},
    }
    columns = {"id": "leadid", "last": "lastname"}
    settings = {
        **emulator.target_config,
        "entity": "lead",
        "id_field": "leadid",
        "streams": {"unsubscribed": {"columns": columns, **stream}},
    }
    schema = {"properties": props}
    messages = [
        {"type": "SCHEMA", "stream": "unsubscribed", "schema": schema, "key_properties": []}
    ]
    messages += [{"type": "RECORD", "stream": "unsubscribed", "record": r} for r in records]
    target = TargetDynamics(config=settings)
    target_sync_test(target, io.StringIO("".join(json.dumps(m) + "\n" for m in messages)))
    return target


def test_inactive_status_deactivates_leads_with_the_state_it_belongs_to(reset_emulator):
    """A lead has two inactive states (Qualified, Disqualified): `inactive_status` picks the
    status, by label or value, and its state is set with it (§4.10)."""
    people = [{"id": GUIDS[0], "last": "Ng"}, {"id": GUIDS[1], "last": "Li"}]
    run_leads(reset_emulator, people, inactive_status=6)
    gone = [{"id": GUIDS[0], "last": "Ng", "_sdc_deleted_at": GONE}]
    run_leads(reset_emulator, gone, inactive_status="no longer interested")
    rows = reset_emulator.admin.snapshot()["lead"]
    assert {r["lastname"]: (r["statecode"], r["statuscode"]) for r in rows} == {
        "Ng": (2, 6),
        "Li": (0, 1),
    }


@pytest.mark.parametrize(
    ("stream", "problem"),
    [
        ({}, "several inactive states: set `streams.<stream>.inactive_status` to the status"),
        ({"inactive_status": "Gone fishing"}, "'Gone fishing' is no status of the table"),
        ({"inactive_status": 2}, "2 belongs to the active state"),
    ],
    ids=["missing", "unknown", "active"],
)
def test_leads_without_a_usable_inactive_status_are_refused_at_schema(
    reset_emulator, stream, problem
):
    """Nothing is written; the message lists the statuses that would do."""
    with pytest.raises(Exception, match="cannot be written") as raised:
        run_leads(reset_emulator, [{"id": GUIDS[0], "last": "Ng"}], **stream)
    assert problem in str(raised.value)
    if stream:
        assert "'No Longer Interested' (6)" in str(raised.value)
    assert reset_emulator.admin.snapshot().get("lead", []) == []
