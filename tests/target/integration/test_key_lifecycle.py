"""A table whose alternate key is not Active yet (§3.6, EntityKeyIndexStatus).

Microsoft Learn, "Define alternate keys for a table": a key's index is built by a system job;
the key is Pending, then Active, or Failed (e.g. when existing rows hold duplicate values).
"""

from __future__ import annotations

import io
import json

import pytest
from singer_sdk.testing import target_sync_test

from target_dynamics.errors import MetadataError
from target_dynamics.target import TargetDynamics

MESSAGES = [
    {
        "type": "SCHEMA",
        "stream": "people",
        "key_properties": [],
        "schema": {"properties": {"first": {"type": "string"}, "last": {"type": "string"}}},
    },
    {"type": "RECORD", "stream": "people", "record": {"first": "Ada", "last": "Lovelace"}},
]


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


def sync(server) -> None:
    config = {
        **server.target_config,
        "entity": "contact",
        "id_field": ["firstname", "lastname"],
        "streams": {"people": {"columns": {"first": "firstname", "last": "lastname"}}},
    }
    lines = "".join(json.dumps(m) + "\n" for m in MESSAGES)
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
    emulator_factory, tmp_path, status, advice
):
    """§3.6: only Active keys can be used; the target says which key, its status, what to do,
    and writes nothing."""
    server = emulator_factory(latency="zero", entities_file=entities(tmp_path, status))
    with pytest.raises(MetadataError) as caught:
        sync(server)
    message = str(caught.value)
    assert "alternate key new_fullname_key of contact, which is " + status in message
    assert "not Active" in message
    assert advice in message
    assert "contact" not in server.admin.snapshot()


def test_active_key_is_used(emulator_factory, tmp_path):
    """§3.6: the same key, Active, addresses the row (an upsert by key creates it)."""
    server = emulator_factory(latency="zero", entities_file=entities(tmp_path, "Active"))
    sync(server)
    [row] = server.admin.snapshot()["contact"]
    assert (row["firstname"], row["lastname"]) == ("Ada", "Lovelace")
