"""Transport against the emulator: real MSAL token, real HTTPS, real $batch and bulk messages.

Records are checked through the emulator's own authorized session (``api``), never through the
client under test.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import trustme

from target_dynamics.app_users import AppUsers
from target_dynamics.auth import Credentials, TokenProvider
from target_dynamics.client import DataverseClient
from target_dynamics.collation import DEFAULT
from target_dynamics.plans import Operation, Row, WritePlan
from target_dynamics.transport import HttpsTransport, make_session, trust_context
from target_dynamics.writer import Writer

EXAMPLE_ENTITIES = (
    Path(__file__).parents[3] / "dataverse_emulator" / "data" / "examples" / "custom-entities.json"
)
CONTACTS = WritePlan("contacts", "contact", "contactid", Operation.UPSERT, ("contactid",))


def transport(server, credentials: Credentials | None = None) -> tuple[DataverseClient, Writer]:
    config = server.target_config
    trust = trust_context(config["ca_bundle"])
    tokens = TokenProvider(
        credentials
        or Credentials(config["tenant_id"], config["client_id"], config["client_secret"]),
        authority_host=config["authority_host"],
        resource_url=config["dynamics_url"],
        session=make_session(trust),
    )
    client = DataverseClient(
        dynamics_url=config["dynamics_url"],
        api_version="9.2",
        tokens=tokens,
        transport=HttpsTransport(trust),
        timeout=30,
        backoff_base=0.05,
    )
    return client, Writer(AppUsers([("loader", client)]), collation=DEFAULT, sleep=lambda _: None)


def gid(n: int) -> str:
    return str(uuid.UUID(int=n))


def contacts(api, emulator, select="contactid,firstname,lastname,emailaddress1") -> list[dict]:
    response = api.get(f"{emulator.api_url}/contacts?$select={select}", timeout=30)
    response.raise_for_status()
    return response.json()["value"]


def test_bulk_upsert_by_id(reset_emulator, api):
    """§6.3: one UpsertMultiple per chunk; the records are there with their ids."""
    client, writer = transport(reset_emulator)
    rows = [
        Row(i, {"firstname": f"f{i}", "lastname": "l"}, {"contactid": gid(i + 1)}, DEFAULT)
        for i in range(120)
    ]
    before = {c["contactid"] for c in contacts(api, reset_emulator)}
    result = writer.write(CONTACTS, rows)
    assert result.landed == list(range(120))
    assert result.upserted == 120
    after = {c["contactid"]: c for c in contacts(api, reset_emulator)}
    assert {gid(i + 1) for i in range(120)} <= set(after) - before
    assert after[gid(7)]["firstname"] == "f6"
    assert client.dop_hint is not None
    assert client.stats.requests == 2  # WhoAmI + one UpsertMultiple (chunk of 500)


def test_alternate_keys_escaped_and_unaddressable(reset_emulator, api):
    """§4.3 escaping; §3.6 values a key URL cannot carry are resolved by $filter; reruns merge."""
    _, writer = transport(reset_emulator)
    plan = WritePlan("contacts", "contact", "contactid", Operation.UPSERT, ("emailaddress1",))
    emails = ["O'Neil a+b@x.com", "plain@x.com", "a/b&c?d@x.com"]
    rows = [
        Row(i, {"firstname": "one", "lastname": "l"}, {"emailaddress1": e}, DEFAULT)
        for i, e in enumerate(emails)
    ]
    assert writer.write(plan, rows).landed == [0, 1, 2]
    again = [
        Row(i, {"firstname": "two"}, {"emailaddress1": e}, DEFAULT) for i, e in enumerate(emails)
    ]
    assert writer.write(plan, again).landed == [0, 1, 2]
    found = [c for c in contacts(api, reset_emulator) if c["emailaddress1"] in emails]
    assert sorted(c["emailaddress1"] for c in found) == sorted(emails)
    assert {c["firstname"] for c in found} == {"two"}


def test_bad_record_isolated(reset_emulator, api):
    """§6.5: the bulk request rolls back; $batch continue-on-error lands the rest (§5.4)."""
    _, writer = transport(reset_emulator)
    rows = [Row(i, {"lastname": "ok"}, {"contactid": gid(500 + i)}, DEFAULT) for i in range(5)]
    rows[2] = Row(2, {"lastname": "x" * 500}, {"contactid": gid(502)}, DEFAULT)
    result = writer.write(CONTACTS, rows)
    assert result.landed == [0, 1, 3, 4]
    [(index, error)] = result.rejected
    assert (index, error.status, error.code) == (2, 400, "0x80044331")
    assert "lastname" in error.message
    ids = {c["contactid"] for c in contacts(api, reset_emulator)}
    assert gid(502) not in ids
    assert {gid(500), gid(501), gid(503), gid(504)} <= ids
    assert not writer.bulk_disabled("contacts")


def test_fallback_to_batch_on_table_without_bulk(emulator_factory):
    """§6.5 F13: the example entities file switches bulk off for leads; $batch takes over."""
    server = emulator_factory(latency="zero", entities_file=EXAMPLE_ENTITIES)
    client, writer = transport(server)
    plan = WritePlan("leads", "lead", "leadid", Operation.CREATE, ("leadid",))
    rows = [
        Row(i, {"lastname": "l", "subject": "s"}, {"leadid": gid(i + 1)}, DEFAULT) for i in range(4)
    ]
    result = writer.write(plan, rows)
    assert (result.landed, result.created) == ([0, 1, 2, 3], 4)
    assert writer.bulk_disabled("leads")
    more = writer.write(
        plan, [Row(0, {"lastname": "m", "subject": "s"}, {"leadid": gid(9)}, DEFAULT)]
    )
    assert more.created == 1
    value = client.get_json("leads?$select=leadid")["value"]
    assert {gid(n) for n in (1, 2, 3, 4, 9)} <= {v["leadid"] for v in value}


def test_throttle_storm_is_waited_out(reset_emulator):
    """§7.1, §7.8: 429 with Retry-After pauses the senders; every row lands."""
    client, writer = transport(reset_emulator)
    reset_emulator.admin.set_faults(
        [{"action": "throttle", "operation": "bulk", "times": 2, "retry_after": 1}]
    )
    result = writer.write(CONTACTS, [Row(0, {"lastname": "t"}, {"contactid": gid(900)}, DEFAULT)])
    assert result.landed == [0]
    assert client.stats.throttled == 2
    assert client.stats.throttled_seconds >= 2


def test_lost_answer_of_create_does_not_duplicate(reset_emulator, api):
    """§10.2: CreateMultiple landed but the answer was lost; the retry counts 412s as done."""
    _, writer = transport(reset_emulator)
    before = len(contacts(api, reset_emulator, "contactid"))
    reset_emulator.admin.set_faults([{"action": "drop", "operation": "bulk", "times": 1}])
    plan = WritePlan("contacts", "contact", "contactid", Operation.CREATE, ("contactid",))
    rows = [Row(i, {"lastname": "c"}, {"contactid": gid(700 + i)}, DEFAULT) for i in range(3)]
    result = writer.write(plan, rows)
    assert result.landed == [0, 1, 2]
    assert result.rejected == []
    assert len(contacts(api, reset_emulator, "contactid")) == before + 3


def test_revoked_token_is_refreshed_once(reset_emulator):
    """§1.5, §10 F2: a 401 makes the client fetch a fresh token and send again."""
    client, writer = transport(reset_emulator)
    client.get_json("WhoAmI")
    reset_emulator.admin.set_faults([{"action": "revoke_tokens", "times": 1}])
    result = writer.write(CONTACTS, [Row(0, {"lastname": "r"}, {"contactid": gid(800)}, DEFAULT)])
    assert result.landed == [0]
    assert client.stats.token_refreshes == 1


@pytest.mark.parametrize("present", [True, False])
def test_delete_through_batch(reset_emulator, api, present):
    """§4.5: deletes go through $batch; 404 means already deleted."""
    _, writer = transport(reset_emulator)
    if present:
        writer.write(CONTACTS, [Row(0, {"lastname": "d"}, {"contactid": gid(600)}, DEFAULT)])
    plan = WritePlan("contacts", "contact", "contactid", Operation.DELETE, ("contactid",))
    result = writer.write(plan, [Row(0, {}, {"contactid": gid(600)}, DEFAULT)])
    assert result.landed == [0]
    assert result.deleted == (1 if present else 0)
    assert gid(600) not in {c["contactid"] for c in contacts(api, reset_emulator, "contactid")}


def test_certificate_credential(reset_emulator):
    """§1.7: MSAL signs a client assertion with the PEM key and thumbprint."""
    users = json.loads((reset_emulator.data_dir / "users.json").read_text())
    [cert_user] = [u for u in users["users"] if "thumbprint" in u]
    credentials = Credentials(
        users["tenant_id"],
        cert_user["client_id"],
        certificate_private_key=Path(cert_user["private_key"]).read_text(),
        certificate_thumbprint=cert_user["thumbprint"],
    )
    client, _ = transport(reset_emulator, credentials)
    who = client.get_json("WhoAmI")
    assert who["UserId"] == reset_emulator.user(2).systemuser_id


def test_requests_ca_bundle_in_environment_is_harmless(reset_emulator, monkeypatch, tmp_path):
    """§1.6 pitfall: REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override Session.verify, not our trust."""
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(tmp_path / "missing.pem"))
    _, writer = transport(reset_emulator)
    result = writer.write(CONTACTS, [Row(0, {"lastname": "env"}, {"contactid": gid(950)}, DEFAULT)])
    assert result.landed == [0]
