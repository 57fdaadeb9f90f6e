"""Marketing-list membership and many-to-many associations in the state room (no HTTP)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from dataverse_emulator.state import associations, lists
from dataverse_emulator.state.environment import Environment
from dataverse_emulator.state.errors import DataverseFault, Kind
from dataverse_emulator.state.privileges import Caller, Role

USER_ID = "11111111-1111-4111-8111-111111111111"


@dataclass(frozen=True)
class User:
    client_id: str = "app"
    systemuser_id: str = USER_ID
    business_unit_id: str = "22222222-2222-4222-8222-222222222222"


@pytest.fixture
def env() -> Environment:
    return Environment.create(seed=3, users=[User()])


def new_list(env: Environment, code: int = 2, **extra: object) -> str:
    return env.store.create("list", {"listname": "L", "createdfromcode": code, **extra})["listid"]


def contact(env: Environment, name: str = "C") -> str:
    return env.store.create("contact", {"lastname": name})["contactid"]


def members(env: Environment, list_id: str) -> list[tuple[str, str]]:
    return [
        (row["entitytype"], row["entityid"])
        for row in env.store.rows("listmember")
        if row["listid"] == list_id
    ]


def test_add_member_writes_one_listmember_and_counts(env: Environment) -> None:
    list_id, contact_id = new_list(env), contact(env)
    member_id = lists.add_member(env.store, list_id, "contact", contact_id, None)
    again = lists.add_member(env.store, list_id, "contact", contact_id, None)
    assert again == member_id
    assert members(env, list_id) == [("contact", contact_id)]
    assert env.store.retrieve("list", list_id)["membercount"] == 1
    [row] = env.store.rows("listmember")
    assert row["listid@lookuplogicalname"] == "list"
    assert row["entityid@lookuplogicalname"] == "contact"
    assert row["createdby"] == USER_ID


def test_add_members_skips_existing_and_rolls_back_on_failure(env: Environment) -> None:
    list_id = new_list(env)
    first, second = contact(env, "A"), contact(env, "B")
    lists.add_member(env.store, list_id, "contact", first, None)
    lists.add_members(env.store, list_id, [("contact", first), ("contact", second)], None)
    assert members(env, list_id) == [("contact", first), ("contact", second)]
    account = env.store.create("account", {"name": "X"})["accountid"]
    third = contact(env, "C")
    with pytest.raises(DataverseFault) as raised:
        lists.add_members(env.store, list_id, [("contact", third), ("account", account)], None)
    assert raised.value.code == "0x80040203"
    assert members(env, list_id) == [("contact", first), ("contact", second)]
    assert env.store.retrieve("list", list_id)["membercount"] == 2


@pytest.mark.parametrize(
    ("extra", "words"),
    [({"type": True}, "dynamic"), ({"lockstatus": True}, "locked")],
)
def test_dynamic_and_locked_lists_refuse_members(
    env: Environment, extra: dict[str, object], words: str
) -> None:
    list_id, contact_id = new_list(env, **extra), contact(env)
    with pytest.raises(DataverseFault) as raised:
        lists.add_member(env.store, list_id, "contact", contact_id, None)
    assert (raised.value.kind, raised.value.code) == (Kind.BAD_REQUEST, "0x80040203")
    assert words in raised.value.message
    assert env.store.rows("listmember") == []


def test_wrong_member_type_is_refused(env: Environment) -> None:
    list_id = new_list(env, code=1)
    with pytest.raises(DataverseFault) as raised:
        lists.add_member(env.store, list_id, "contact", contact(env), None)
    assert "'contact'" in raised.value.message
    assert "'account'" in raised.value.message


def test_missing_list_or_member_is_404(env: Environment) -> None:
    missing = "00000000-0000-0000-0000-0000000000aa"
    with pytest.raises(DataverseFault) as raised:
        lists.add_member(env.store, missing, "contact", contact(env), None)
    assert (raised.value.kind, raised.value.code) == (Kind.NOT_FOUND, "0x80040217")
    with pytest.raises(DataverseFault) as raised:
        lists.add_member(env.store, new_list(env), "contact", missing, None)
    assert raised.value.message == f"contact With Id = {missing} Does Not Exist"


def test_missing_privilege_names_it(env: Environment) -> None:
    list_id, contact_id = new_list(env), contact(env)
    role = Role("Lists", {"*": frozenset({"read"}), "list": frozenset({"read", "appendto"})})
    caller = Caller(USER_ID, role=role)
    with pytest.raises(DataverseFault) as raised:
        lists.add_member(env.store, list_id, "contact", contact_id, caller)
    assert raised.value.kind is Kind.FORBIDDEN
    assert "prvAppendContact" in raised.value.message


def test_remove_member_by_member_or_listmember_id(env: Environment) -> None:
    list_id, first, second = new_list(env), contact(env, "A"), contact(env, "B")
    lists.add_member(env.store, list_id, "contact", first, None)
    member_id = lists.add_member(env.store, list_id, "contact", second, None)
    lists.remove_member(env.store, list_id, first, None)
    lists.remove_member(env.store, list_id, member_id, None)
    lists.remove_member(env.store, list_id, first, None)  # not a member: no-op
    assert members(env, list_id) == []
    assert env.store.retrieve("list", list_id)["membercount"] == 0


def test_list_association_is_membership(env: Environment) -> None:
    list_id, contact_id = new_list(env), contact(env)
    catalog = env.catalog
    on_list = associations.navigations(catalog, catalog.table("list"))["listcontact_association"]
    on_contact = associations.navigations(catalog, catalog.table("contact"))[
        "listcontact_association"
    ]
    associations.associate(env.store, on_contact, contact_id, list_id, None)
    assert associations.related_ids(env.store, on_list, list_id) == [contact_id]
    assert associations.related_ids(env.store, on_contact, contact_id) == [list_id]
    associations.disassociate(env.store, on_list, list_id, contact_id, None)
    assert env.store.rows("listmember") == []


def test_plain_association_pairs_duplicates_and_rollback(env: Environment) -> None:
    contact_id = contact(env)
    lead_id = env.store.create("lead", {"lastname": "L"})["leadid"]
    catalog = env.catalog
    nav = associations.navigations(catalog, catalog.table("lead"))["contactleads_association"]
    associations.associate(env.store, nav, lead_id, contact_id, None)
    with pytest.raises(DataverseFault) as raised:
        associations.associate(env.store, nav, lead_id, contact_id, None)
    assert (raised.value.kind, raised.value.code) == (Kind.PRECONDITION_FAILED, "0x80040237")
    assert env.snapshot()["contactleads"] == [{"contactid": contact_id, "leadid": lead_id}]

    def disassociate_then_fail() -> None:
        with env.store.transaction():
            associations.disassociate(env.store, nav, lead_id, contact_id, None)
            raise RuntimeError

    with pytest.raises(RuntimeError):
        disassociate_then_fail()
    assert associations.related_ids(env.store, nav, lead_id) == [contact_id]
    associations.disassociate(env.store, nav, lead_id, contact_id, None)
    assert "contactleads" not in env.snapshot()
