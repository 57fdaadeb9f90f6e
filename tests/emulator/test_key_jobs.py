"""Alternate keys created at run time are built by a system job (§3.6, EntityKeyIndexStatus).

Microsoft Learn, "Work with alternate keys"
(https://learn.microsoft.com/power-apps/developer/data-platform/define-alternate-keys-entity):
creating a key starts an asynchronous job that builds its index; the key is Pending until the
job ends Active, or Failed when existing rows hold duplicate values, and only an Active key can
be used. "ReactivateEntityKey Action"
(https://learn.microsoft.com/power-apps/developer/data-platform/webapi/reference/reactivateentitykey)
submits a new job for a key (``EntityLogicalName``, ``EntityKeyLogicalName``).
"""

from __future__ import annotations

import pytest

from dataverse_emulator.app import Emulator, Options
from dataverse_emulator.state.environment import Environment
from dataverse_emulator.state.users import Users
from dataverse_emulator.testing import api_session

KEYS = "EntityDefinitions(LogicalName='contact')/Keys"
KEY = {"SchemaName": "new_lastname_key", "KeyAttributes": ["lastname"]}


@pytest.fixture
def slow_jobs(emulator_factory):
    """An emulator whose key index jobs take an hour (they end only when told)."""
    return emulator_factory(latency="zero", key_index_seconds=3600)


def status(session, api: str) -> str:
    keys = session.get(f"{api}/{KEYS}?$select=SchemaName,EntityKeyIndexStatus", timeout=10)
    found = {k["SchemaName"]: k["EntityKeyIndexStatus"] for k in keys.json()["value"]}
    return found["new_lastname_key"]


def test_created_key_is_pending_until_its_job_ends_then_active(slow_jobs):
    """A new key is Pending, unenforced and unaddressable; when its job ends it is Active."""
    session, api = api_session(slow_jobs), slow_jobs.api_url
    assert session.post(f"{api}/{KEYS}", json=KEY, timeout=10).status_code == 204
    assert status(session, api) == "Pending"
    [job] = slow_jobs.admin.key_jobs()
    assert (job["table"], job["key"], job["status"]) == ("contact", "new_lastname_key", "Pending")
    response = session.get(f"{api}/contacts(lastname='Lovelace')", timeout=10)
    assert response.status_code == 400, response.text
    assert slow_jobs.admin.finish_key_jobs() == [
        {"table": "contact", "key": "new_lastname_key", "status": "Active"}
    ]
    assert status(session, api) == "Active"
    assert slow_jobs.admin.key_jobs() == []
    upsert = session.patch(f"{api}/contacts(lastname='Lovelace')", json={"firstname": "Ada"})
    assert upsert.status_code == 204, upsert.text
    assert session.get(f"{api}/contacts(lastname='Lovelace')", timeout=10).status_code == 200


def test_job_over_duplicate_rows_fails_until_reactivated_after_cleanup(slow_jobs):
    """Rows that are duplicates under the collation (§3.10) fail the job; the key reports
    Failed; ReactivateEntityKey after removing a duplicate submits a job that ends Active."""
    session, api = api_session(slow_jobs), slow_jobs.api_url
    ids = []
    for name in ("José", "jose"):
        created = session.post(f"{api}/contacts", json={"lastname": name}, timeout=10)
        assert created.status_code == 204, created.text
        ids.append(created.headers["OData-EntityId"])
    session.post(f"{api}/{KEYS}", json=KEY, timeout=10).raise_for_status()
    [job] = slow_jobs.admin.finish_key_jobs()
    assert job["status"] == "Failed"
    assert status(session, api) == "Failed"
    assert session.get(f"{api}/contacts(lastname='jose')", timeout=10).status_code == 400
    assert session.delete(ids[1], timeout=10).status_code == 204
    reactivate = {"EntityLogicalName": "contact", "EntityKeyLogicalName": "new_lastname_key"}
    response = session.post(f"{api}/ReactivateEntityKey", json=reactivate, timeout=10)
    assert response.status_code == 204, response.text
    assert status(session, api) == "Pending"
    [job] = slow_jobs.admin.finish_key_jobs()
    assert job["status"] == "Active"
    found = session.get(f"{api}/contacts(lastname='JOSE')?$select=lastname", timeout=10)
    assert found.json()["lastname"] == "José"


def test_job_without_delay_ends_before_the_next_request(emulator_factory):
    """``key_index_seconds=0``: the key is Active by the next request."""
    server = emulator_factory(latency="zero", key_index_seconds=0)
    session, api = api_session(server), server.api_url
    session.post(f"{api}/{KEYS}", json=KEY, timeout=10).raise_for_status()
    assert status(session, api) == "Active"


@pytest.mark.parametrize(
    ("body", "code", "status_code"),
    [
        ({"EntityLogicalName": "contact"}, "0x80040203", 400),
        ({"EntityLogicalName": "contact", "EntityKeyLogicalName": "nosuch"}, "0x80040217", 404),
        ({"EntityLogicalName": "nosuch", "EntityKeyLogicalName": "k"}, "0x80040217", 404),
    ],
)
def test_reactivate_refuses_missing_parameters_and_unknown_keys(
    api, reset_emulator, body, code, status_code
):
    """Both parameters are required (Nullable False); an unknown table or key is 404."""
    response = api.post(f"{reset_emulator.api_url}/ReactivateEntityKey", json=body, timeout=10)
    assert response.status_code == status_code, response.text
    assert response.json()["error"]["code"] == code


def test_delay_is_scaled_by_the_time_scale():
    """``--key-index-seconds`` is nominal; ``--time-scale`` multiplies it like every time."""
    emulator = Emulator(Options(time_scale=0.25, key_index_seconds=8), Users.default(0, b"", 1))
    assert emulator.env.key_jobs.delay == 2


def test_job_is_in_progress_half_way_then_done():
    """Pending, then InProgress, then Active as the clock moves (a fake clock, no waiting)."""
    now = [100.0]
    env = Environment.create(key_index_delay=10)
    env.key_jobs.clock = lambda: now[0]
    env.catalog.add_key("contact", "new_lastname_key", ["lastname"])
    env.key_jobs.submit("contact", "new_lastname_key")

    def current() -> str:
        env.key_jobs.advance()
        keys = env.catalog.table("contact").keys
        return next(k for k in keys if k.schema_name == "new_lastname_key").index_status

    assert current() == "Pending"
    now[0] = 105.0
    assert current() == "InProgress"
    now[0] = 110.0
    assert current() == "Active"
