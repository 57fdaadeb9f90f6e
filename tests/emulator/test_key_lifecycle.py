"""An alternate key held in its lifecycle by ``--entities`` (§3.6, EntityKeyIndexStatus).

Microsoft Learn, "Define alternate keys for a table": the index is built by a system job (key
Pending, then Active, or Failed); only Active keys can be used.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from dataverse_emulator.state.custom_tables import EntitiesFileError, load_catalog
from dataverse_emulator.testing import api_session


@pytest.fixture
def pending(emulator_factory, tmp_path):
    path = tmp_path / "entities.json"
    key = {
        "table": "contact",
        "schema_name": "new_lastname_key",
        "key_attributes": ["lastname"],
        "index_status": "Pending",
    }
    path.write_text(json.dumps({"keys": [key]}))
    return emulator_factory(latency="zero", entities_file=path)


def test_pending_key_is_listed_unenforced_and_unaddressable(pending):
    """§3.6: the key's status is served; duplicates are accepted; addressing by it is 400."""
    session = api_session(pending)
    api = pending.api_url
    keys = session.get(
        f"{api}/EntityDefinitions(LogicalName='contact')/Keys"
        "?$select=SchemaName,KeyAttributes,EntityKeyIndexStatus",
        timeout=10,
    ).json()["value"]
    statuses = {k["SchemaName"]: k["EntityKeyIndexStatus"] for k in keys}
    assert statuses["new_lastname_key"] == "Pending"
    for _ in range(2):
        response = session.post(f"{api}/contacts", json={"lastname": "Same"}, timeout=10)
        assert response.status_code == 204, response.text
    response = session.get(f"{api}/contacts(lastname='{quote('Same')}')", timeout=10)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "0x80060888"


def test_unknown_index_status_is_refused(tmp_path):
    """docs/emulator-entities.md: index_status is one of the four EntityKeyIndexStatus values."""
    path = tmp_path / "entities.json"
    key = {"table": "contact", "schema_name": "k", "key_attributes": ["lastname"]}
    path.write_text(json.dumps({"keys": [{**key, "index_status": "Building"}]}))
    with pytest.raises(EntitiesFileError, match="'index_status' must be one of Active, Pending"):
        load_catalog(path)
