"""A table whose alternate key is not Active yet (§3.6, EntityKeyIndexStatus).

Microsoft Learn, "Define alternate keys for a table": a key's index is built by a system job;
the key is Pending, then Active, or Failed (e.g. when existing rows hold duplicate values).
"""

from __future__ import annotations

import io
import json

import pytest
from singer_sdk.testing import target_sync_test

from dataverse_emulator.testing import api_session
from target_dynamics.errors import MetadataError
from target_dynamics.target import TargetDynamics


def entities(tmp_path, status: str):
    path = tmp_path / "entities.json"
    key = {
        "table": "contact",
        "schema_name": "new_fullname_key",
        "key_attributes": ["firstname", "lastname"],
        "index_status": status,
    }
    path.write_text(json.dumps({"keys": [key]}))
    return path


def sync(server, singer) -> None:
    config = {
        **server.target_config,
        "entity": "contact",
        "id_field": ["firstname", "lastname"],
        "streams": {"people": {"columns": {"first": "firstname", "last": "lastname"}}},
    }
    lines = singer.lines(singer.read("test_key_lifecycle__ada"))
    target_sync_test(TargetDynamics(config=config), io.StringIO(lines))


@pytest.mark.parametrize(
    ("status", "advice"),
    [
        ("Pending", "Dataverse is still building its index"),
        ("InProgress", "Dataverse is still building its index"),
        ("Failed", "remove the duplicates, reactivate the key"),
    ],
)
def test_key_not_active_is_refused_naming_it_and_what_to_do(
    emulator_factory, tmp_path, status, advice, singer
):
    """§3.6: only Active keys can be used; the target says which key, its status, what to do,
    and writes nothing."""
    server = emulator_factory(latency="zero", entities_file=entities(tmp_path, status))
    with pytest.raises(MetadataError) as caught:
        sync(server, singer)
    message = str(caught.value)
    assert "alternate key new_fullname_key of contact, which is " + status in message
    assert "not Active" in message
    assert advice in message
    assert "contact" not in server.admin.snapshot()


def test_active_key_is_used(emulator_factory, tmp_path, singer):
    """§3.6: the same key, Active, addresses the row (an upsert by key creates it)."""
    server = emulator_factory(latency="zero", entities_file=entities(tmp_path, "Active"))
    sync(server, singer)
    [row] = server.admin.snapshot()["contact"]
    assert (row["firstname"], row["lastname"]) == ("Ada", "Lovelace")


def test_key_created_at_run_time_refuses_while_pending_then_lands_once_active(
    emulator_factory, singer
):
    """§3.6: a key created through the Web API is Pending while its index job runs: the run is
    refused and writes nothing; once the job ends Active, a rerun lands the row by that key."""
    server = emulator_factory(latency="zero", key_index_seconds=3600)
    created = api_session(server).post(
        f"{server.api_url}/EntityDefinitions(LogicalName='contact')/Keys",
        json={"SchemaName": "new_fullname_key", "KeyAttributes": ["firstname", "lastname"]},
        timeout=10,
    )
    assert created.status_code == 204, created.text
    with pytest.raises(MetadataError, match="new_fullname_key of contact, which is Pending"):
        sync(server, singer)
    assert "contact" not in server.admin.snapshot()
    assert server.admin.finish_key_jobs()[0]["status"] == "Active"
    sync(server, singer)
    [row] = server.admin.snapshot()["contact"]
    assert (row["firstname"], row["lastname"]) == ("Ada", "Lovelace")
