"""Email lists land in marketing lists: membership from the CLI's path down, over HTTPS.

Every test runs the target on Singer messages against the emulator and reads the list back
through the Web API (``lists(id)/listcontact_association``), as a user would.
"""

from __future__ import annotations

import typing as t

import pytest

from target_dynamics.target import TargetDynamics

if t.TYPE_CHECKING:
    import requests

    from target_dynamics.reporting import LoadFailed

pytestmark = pytest.mark.usefixtures("reset_emulator")

MEMBER_NAV = {
    "contact": "listcontact_association",
    "lead": "listlead_association",
    "account": "listaccount_association",
}
SETS = {"contact": "contacts", "lead": "leads", "account": "accounts"}
SYNC = {"marketing_list": "Newsletter", "marketing_list_mode": "sync"}


def people(count: int, start: int = 0, **extra: t.Any) -> list[dict]:
    return [
        {"email": f"p{i}@x.org", "last": f"Last{i}", **extra} for i in range(start, start + count)
    ]


def stream(records: list[dict], fields: t.Sequence[str] = ("email", "last")) -> str:
    schema = {"properties": {f: {"type": ["string", "null"]} for f in fields}}
    if "lists" in fields:
        schema["properties"]["lists"] = {
            "type": ["array", "string", "null"],
            "items": {"type": "string"},
        }
    messages = [{"type": "SCHEMA", "stream": "people", "schema": schema, "key_properties": []}]
    return messages + [{"type": "RECORD", "stream": "people", "record": r} for r in records]


def load(
    singer, emulator, messages: list[dict] | str, **config: t.Any
) -> tuple[TargetDynamics, LoadFailed | None]:
    """Run the target in-process on ``messages`` (or a file's text); return it with the run's
    failure, if any."""
    columns = {"email": "emailaddress1", "last": "lastname"}
    if "streams" not in config:
        config["streams"] = {"people": {"columns": columns}}
    settings = {
        **emulator.target_config,
        "entity": "contact",
        "id_field": "emailaddress1",
        "progress_interval_seconds": 0,
        **config,
    }
    target = TargetDynamics(config=settings)
    _, failure = singer.run(target, messages)
    return target, failure


def find_lists(api: requests.Session, emulator, name: str) -> list[dict]:
    url = f"{emulator.api_url}/lists?$filter=listname eq '{name}'"
    answer = api.get(url)
    assert answer.ok, answer.text
    return answer.json()["value"]


def members(api: requests.Session, emulator, name: str, table: str = "contact") -> list[str]:
    """The member rows' emails (or names) of the one list called ``name``."""
    [found] = find_lists(api, emulator, name)
    url = f"{emulator.api_url}/lists({found['listid']})/{MEMBER_NAV[table]}"
    answer = api.get(url)
    assert answer.ok, answer.text
    column = "name" if table == "account" else "emailaddress1"
    return sorted(str(row.get(column)) for row in answer.json()["value"])


def member_count(api: requests.Session, emulator, name: str) -> int:
    [found] = find_lists(api, emulator, name)
    return int(found["membercount"])


def make_list(api: requests.Session, emulator, name: str, **values: t.Any) -> str:
    body = {"listname": name, "createdfromcode": 2, "type": False, **values}
    answer = api.post(f"{emulator.api_url}/lists", json=body)
    assert answer.status_code == 204, answer.text
    return answer.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")


def test_an_email_list_lands_on_a_new_marketing_list_once(reset_emulator, api, singer):
    """2,000 contacts land; each is a member exactly once; a rerun changes nothing."""
    text = stream(people(2000))
    target, failure = load(singer, reset_emulator, text, marketing_list="Newsletter")
    assert failure is None
    [created] = find_lists(api, reset_emulator, "Newsletter")
    assert (created["createdfromcode"], created["type"]) == (2, False)
    emails = sorted(r["email"] for r in people(2000))
    assert members(api, reset_emulator, "Newsletter") == emails
    assert member_count(api, reset_emulator, "Newsletter") == 2000
    assert "List 'Newsletter': 2000 added, 0 already members, 0 removed, 0 rejected" in (
        target.report.summary()
    )
    again, failure = load(singer, reset_emulator, text, marketing_list="Newsletter")
    assert failure is None
    assert members(api, reset_emulator, "Newsletter") == emails
    assert len(find_lists(api, reset_emulator, "Newsletter")) == 1
    assert "List 'Newsletter': 0 added, 2000 already members, 0 removed, 0 rejected" in (
        again.report.summary()
    )


def test_rejected_rows_never_join(reset_emulator, api, singer):
    records = [*people(3), {"email": "long@x.org", "last": "L" * 60}]
    _, failure = load(singer, reset_emulator, stream(records), marketing_list="Newsletter")
    assert failure is not None
    assert members(api, reset_emulator, "Newsletter") == ["p0@x.org", "p1@x.org", "p2@x.org"]


def test_an_existing_list_by_name_or_guid(reset_emulator, api, singer):
    guid = make_list(api, reset_emulator, "Spring")
    load(singer, reset_emulator, stream(people(2)), marketing_list="Spring")
    load(singer, reset_emulator, stream(people(2, start=2)), marketing_list=guid.upper())
    assert members(api, reset_emulator, "Spring") == [f"p{i}@x.org" for i in range(4)]


def test_sync_removes_exactly_the_members_not_sent(reset_emulator, api, singer):
    load(singer, reset_emulator, stream(people(10)), marketing_list="Newsletter")
    target, failure = load(singer, reset_emulator, stream(people(7, start=3)), **SYNC)
    assert failure is None
    assert members(api, reset_emulator, "Newsletter") == [f"p{i}@x.org" for i in range(3, 10)]
    assert len(reset_emulator.admin.snapshot()["contact"]) == 10  # rows stay; only membership goes
    assert "List 'Newsletter': 0 added, 7 already members, 3 removed, 0 rejected" in (
        target.report.summary()
    )


def test_sync_is_refused_after_too_many_rejections(reset_emulator, api, singer):
    load(singer, reset_emulator, stream(people(5)), marketing_list="Newsletter")
    records = [*people(2), {"email": "long@x.org", "last": "L" * 60}]
    _, failure = load(singer, reset_emulator, stream(records), **SYNC)
    assert failure is not None
    assert members(api, reset_emulator, "Newsletter") == [f"p{i}@x.org" for i in range(5)]


@pytest.mark.parametrize("table", ["lead", "account"])
def test_leads_and_accounts_lists(reset_emulator, api, table, singer):
    column = "name" if table == "account" else "emailaddress1"
    records = [{"email": f"{table}{i}@x.org"} for i in range(3)]
    config = {
        "entity": table,
        "id_field": column,
        "streams": {"people": {"columns": {"email": column}}},
        "marketing_list": f"{table.title()}s",
    }
    _, failure = load(singer, reset_emulator, stream(records, ["email"]), **config)
    assert failure is None
    [found] = find_lists(api, reset_emulator, f"{table.title()}s")
    assert found["createdfromcode"] == {"account": 1, "lead": 4}[table]
    assert members(api, reset_emulator, f"{table.title()}s", table) == [r["email"] for r in records]


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"createdfromcode": 4}, "holds lead rows; this stream writes contact rows"),
        ({"type": True}, "is dynamic"),
        ({"lockstatus": True}, "is locked"),
    ],
    ids=["member-type", "dynamic", "locked"],
)
def test_a_list_the_stream_cannot_fill_fails_before_any_write(
    reset_emulator, api, values, words, singer
):
    make_list(api, reset_emulator, "Wrong", **values)
    with pytest.raises(Exception, match=words):
        load(singer, reset_emulator, stream(people(3)), marketing_list="Wrong")
    assert "contact" not in reset_emulator.admin.snapshot()


def test_two_lists_with_one_name_fail_naming_both(reset_emulator, api, singer):
    first = make_list(api, reset_emulator, "Twice")
    second = make_list(api, reset_emulator, "Twice")
    with pytest.raises(Exception, match="2 marketing lists are named 'Twice'") as caught:
        load(singer, reset_emulator, stream(people(1)), marketing_list="Twice")
    assert first in str(caught.value)
    assert second in str(caught.value)


def test_other_tables_cannot_fill_a_list(reset_emulator, singer):
    config = {"entity": "campaign", "id_field": "name"}
    config["streams"] = {"people": {"columns": {"email": "name"}}}
    with pytest.raises(Exception, match="lists hold account, contact, lead rows, not campaign"):
        load(singer, reset_emulator, stream(people(1), ["email"]), marketing_list="X", **config)


def test_lost_answers_and_throttling_during_membership_writes(reset_emulator, api, singer):
    reset_emulator.admin.set_faults(
        [
            {"action": "throttle", "path": "AddListMembersList", "times": 2, "retry_after": 1},
            {"action": "drop", "path": "AddListMembersList", "times": 1},
        ]
    )
    _, failure = load(
        singer,
        reset_emulator,
        stream(people(300)),
        marketing_list="Newsletter",
        batch_size_rows=100,
    )
    assert failure is None
    assert members(api, reset_emulator, "Newsletter") == sorted(r["email"] for r in people(300))
    assert member_count(api, reset_emulator, "Newsletter") == 300
    fired = {rule["action"]: rule["fired"] for rule in reset_emulator.admin.faults()["rules"]}
    assert fired == {"throttle": 2, "drop": 1}


def test_a_record_field_names_its_lists(reset_emulator, api, singer):
    records = [
        {"email": "a@x.org", "lists": ["Gold", "News"]},
        {"email": "b@x.org", "lists": "News"},
        {"email": "c@x.org", "lists": None},
    ]
    config = {
        "streams": {
            "people": {
                "columns": {"email": "emailaddress1"},
                "marketing_list_field": "lists",
            }
        }
    }
    _, failure = load(singer, reset_emulator, stream(records, ["email", "lists"]), **config)
    assert failure is None
    assert members(api, reset_emulator, "Gold") == ["a@x.org"]
    assert members(api, reset_emulator, "News") == ["a@x.org", "b@x.org"]


def test_dry_run_creates_no_list_and_reports_what_would_join(reset_emulator, api, singer):
    target, failure = load(
        singer, reset_emulator, stream(people(4)), marketing_list="Newsletter", dry_run=True
    )
    assert failure is None
    assert find_lists(api, reset_emulator, "Newsletter") == []
    assert (
        "List 'Newsletter': 4 would be added, 0 already members, 0 would be removed, 0 rejected"
        in (target.report.summary())
    )


def test_dry_run_reads_the_list_and_reports_adds_and_removals(reset_emulator, api, singer):
    """A dry run with sync: who would join, who is a member already, who would leave."""
    load(singer, reset_emulator, stream(people(5)), marketing_list="Newsletter")
    before = reset_emulator.admin.snapshot()
    target, failure = load(singer, reset_emulator, stream(people(4, start=2)), **SYNC, dry_run=True)
    assert failure is None
    assert reset_emulator.admin.snapshot() == before
    assert (
        "List 'Newsletter': 1 would be added, 3 already members, 2 would be removed, 0 rejected"
        in target.report.summary()
    )
