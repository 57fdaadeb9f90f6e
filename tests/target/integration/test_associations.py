"""Many-to-many associations from a record field, against the emulator over HTTPS."""

from __future__ import annotations

import typing as t

import pytest

from dataverse_emulator.testing import api_session
from target_dynamics.target import TargetDynamics

if t.TYPE_CHECKING:
    from target_dynamics.reporting import LoadFailed

pytestmark = pytest.mark.usefixtures("reset_emulator")

RELATIONSHIP = "contactleads_association"


def stream(records: list[dict]) -> list[dict]:
    schema = {
        "properties": {
            "email": {"type": "string"},
            "leads": {"type": ["array", "string", "null"], "items": {"type": "string"}},
        }
    }
    messages = [{"type": "SCHEMA", "stream": "people", "schema": schema, "key_properties": []}]
    return messages + [{"type": "RECORD", "stream": "people", "record": r} for r in records]


def load(
    singer, emulator, records: list[dict], **association: t.Any
) -> tuple[TargetDynamics, LoadFailed | None]:
    spec = {"relationship": RELATIONSHIP, **association}
    config = {
        **emulator.target_config,
        "entity": "contact",
        "id_field": "emailaddress1",
        "progress_interval_seconds": 0,
        "streams": {
            "people": {"columns": {"email": "emailaddress1"}, "associations": {"leads": spec}}
        },
    }
    target = TargetDynamics(config=config)
    _, failure = singer.run(target, stream(records))
    return target, failure


def seed_leads(api, emulator, *emails: str) -> dict[str, str]:
    ids = {}
    for email in emails:
        answer = api.post(f"{emulator.api_url}/leads", json={"emailaddress1": email})
        assert answer.status_code == 204, answer.text
        ids[email] = answer.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
    return ids


def associated(api, emulator, contact_email: str) -> list[str]:
    contacts = api.get(
        f"{emulator.api_url}/contacts?$select=contactid&$filter=emailaddress1 eq '{contact_email}'"
    ).json()["value"]
    [contact] = contacts
    url = f"{emulator.api_url}/contacts({contact['contactid']})/{RELATIONSHIP}"
    answer = api.get(f"{url}?$select=emailaddress1")
    assert answer.ok, answer.text
    return sorted(row["emailaddress1"] for row in answer.json()["value"])


def test_a_field_of_keys_associates_and_a_rerun_adds_nothing(reset_emulator, api, singer):
    seed_leads(api, reset_emulator, "l1@x.org", "l2@x.org", "l3@x.org")
    records = [
        {"email": "a@x.org", "leads": ["l1@x.org", "L2@x.org"]},
        {"email": "b@x.org", "leads": "l3@x.org"},
        {"email": "c@x.org", "leads": None},
    ]
    target, failure = load(singer, reset_emulator, records, key="emailaddress1")
    assert failure is None
    assert associated(api, reset_emulator, "a@x.org") == ["l1@x.org", "l2@x.org"]
    assert associated(api, reset_emulator, "b@x.org") == ["l3@x.org"]
    assert associated(api, reset_emulator, "c@x.org") == []
    assert f"Association '{RELATIONSHIP}': 3 added, 0 removed, 0 records rejected" in (
        target.report.summary()
    )
    _, failure = load(singer, reset_emulator, records, key="emailaddress1")
    assert failure is None  # associating an existing pair is done, not an error
    assert associated(api, reset_emulator, "a@x.org") == ["l1@x.org", "l2@x.org"]


def test_guid_values_and_sync_removes_what_the_record_no_longer_names(reset_emulator, api, singer):
    leads = seed_leads(api, reset_emulator, "l1@x.org", "l2@x.org")
    load(singer, reset_emulator, [{"email": "a@x.org", "leads": list(leads.values())}])
    assert associated(api, reset_emulator, "a@x.org") == ["l1@x.org", "l2@x.org"]
    target, failure = load(
        singer, reset_emulator, [{"email": "a@x.org", "leads": [leads["l2@x.org"]]}], mode="sync"
    )
    assert failure is None
    assert associated(api, reset_emulator, "a@x.org") == ["l2@x.org"]
    assert f"Association '{RELATIONSHIP}': 0 added, 1 removed, 0 records rejected" in (
        target.report.summary()
    )


def test_a_value_naming_no_row_rejects_only_that_record(reset_emulator, api, singer):
    seed_leads(api, reset_emulator, "l1@x.org")
    records = [
        {"email": "a@x.org", "leads": ["l1@x.org"]},
        {"email": "b@x.org", "leads": ["nobody@x.org"]},
    ]
    target, failure = load(singer, reset_emulator, records, key="emailaddress1")
    assert failure is not None
    assert "no lead row has emailaddress1 = 'nobody@x.org'" in str(failure)
    assert associated(api, reset_emulator, "a@x.org") == ["l1@x.org"]
    assert (target.report.totals.landed, target.report.totals.rejected) == (1, 1)


@pytest.mark.parametrize(
    ("association", "words"),
    [
        ({"relationship": "contactlead_association"}, "close: contactleads_association"),
        ({"key": "emailadress1"}, "'emailadress1' is not a column of lead (close: emailaddress1"),
    ],
    ids=["relationship", "key"],
)
def test_unknown_relationship_or_key_fails_at_schema(reset_emulator, association, words, singer):
    with pytest.raises(Exception, match=words.replace("(", r"\(")):
        load(singer, reset_emulator, [{"email": "a@x.org", "leads": []}], **association)
    assert "contact" not in reset_emulator.admin.snapshot()


def test_keys_naming_accent_variants_are_different_rows_when_accents_matter(
    emulator_factory, singer
):
    """§3.10 ``_CI_AS`` (1035 Finnish): "jose@x.org" names the "jose" lead only and
    "José@x.org" the "josé" lead only, though both are found by one query."""
    finnish = emulator_factory(latency="zero", language_code=1035)
    with api_session(finnish) as api:
        seed_leads(api, finnish, "josé@x.org", "jose@x.org")
        records = [
            {"email": "a@x.org", "leads": "jose@x.org"},
            {"email": "b@x.org", "leads": "José@x.org"},
        ]
        _, failure = load(singer, finnish, records, key="emailaddress1")
        assert failure is None
        assert associated(api, finnish, "a@x.org") == ["jose@x.org"]
        assert associated(api, finnish, "b@x.org") == ["josé@x.org"]
