"""The record store: create, retrieve, update, upsert, delete, keys, binds, rules (§4)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from dataverse_emulator.state.environment import Environment
from dataverse_emulator.state.errors import DataverseFault, Kind
from dataverse_emulator.state.schema import Reference
from dataverse_emulator.state.store import RecordRule, etag

USER_ID = "11111111-1111-4111-8111-111111111111"
BU_ID = "22222222-2222-4222-8222-222222222222"


@dataclass(frozen=True)
class User:
    client_id: str = "app"
    systemuser_id: str = USER_ID
    business_unit_id: str = BU_ID


@pytest.fixture
def env() -> Environment:
    environment = Environment.create(seed=7, users=[User()])
    environment.store.clock = lambda: datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    return environment


def raises(call: object, *args: object, **kwargs: object) -> DataverseFault:
    with pytest.raises(DataverseFault) as info:
        call(*args, **kwargs)  # type: ignore[operator]
    return info.value


def test_create_fills_system_columns(env: Environment) -> None:
    """§4.1: createdon, ownerid (calling user), statecode/statuscode defaults, versionnumber."""
    row = env.store.create("account", {"name": "Contoso", "revenue": 5000000})
    assert row["accountid"]
    assert row["createdon"] == row["modifiedon"] == "2026-01-02T03:04:05Z"
    assert row["ownerid"] == USER_ID
    assert row["owningbusinessunit"] == BU_ID
    assert (row["statecode"], row["statuscode"]) == (0, 1)
    assert isinstance(row["versionnumber"], int)
    assert row["transactioncurrencyid"] == env.currency_id  # Money gets the base currency


def test_seeded_ids_are_reproducible() -> None:
    """Appendix A.3: same seed, same GUIDs."""
    first = Environment.create(seed=3).store.create("account", {"name": "a"})["accountid"]
    second = Environment.create(seed=3).store.create("account", {"name": "a"})["accountid"]
    assert first == second


def test_duplicate_primary_id_is_412(env: Environment) -> None:
    """§4.1: creating with an existing primary key -> 412 0x80040237."""
    row = env.store.create("account", {"name": "a"})
    err = raises(env.store.create, "account", {"accountid": row["accountid"], "name": "b"})
    assert (err.kind, err.code, err.message) == (
        Kind.PRECONDITION_FAILED,
        "0x80040237",
        "A record with matching key values already exists.",
    )


def test_duplicate_alternate_key_rejected(env: Environment) -> None:
    """§4.1, §11 #4: alternate-key uniqueness violation -> 412 0x80060892 (case-insensitive)."""
    env.store.create("account", {"name": "a", "accountnumber": "A-1"})
    err = raises(env.store.create, "account", {"name": "b", "accountnumber": "a-1"})
    assert (err.kind, err.code) == (Kind.PRECONDITION_FAILED, "0x80060892")
    assert err.message.startswith("Entity Key Account Number violated.")


def test_unknown_column(env: Environment) -> None:
    """§4.9: unknown body member -> 400 0x80048d19 naming the property and the type."""
    err = raises(env.store.create, "contact", {"ccl3016_NextofKinRequired": True})
    assert err.code == "0x80048d19"
    assert (
        "Invalid property 'ccl3016_NextofKinRequired' was found in entity "
        "'Microsoft.Dynamics.CRM.contact'." in err.message
    )


def test_lookup_by_logical_name_rejected(env: Environment) -> None:
    """§4.7: a lookup written through its logical name is an undeclared property (0x0)."""
    err = raises(
        env.store.create, "contact", {"parentcustomerid@odata.bind": Reference("accounts", "x")}
    )
    assert (err.kind, err.code) == (Kind.BAD_REQUEST, "0x0")
    assert "An undeclared property 'parentcustomerid'" in err.message
    err = raises(env.store.create, "contact", {"_parentcustomerid_value": USER_ID})
    assert "Use Navigation properties instead" in err.message


def test_not_valid_for_create(env: Environment) -> None:
    """§4.6: columns with IsValidForCreate false are rejected."""
    err = raises(env.store.create, "contact", {"lastname": "x", "createdon": "2020-01-01"})
    assert err.kind is Kind.BAD_REQUEST
    assert "createdon" in err.message


def test_bind_by_guid_and_key_polymorphic(env: Environment) -> None:
    """§4.6: @odata.bind by GUID or alternate key; Customer lookups take either target."""
    account = env.store.create("account", {"name": "a", "accountnumber": "A1"})
    contact = env.store.create(
        "contact",
        {
            "lastname": "x",
            "parentcustomerid_account@odata.bind": Reference(
                "accounts", key={"accountnumber": "A1"}
            ),
        },
    )
    assert contact["parentcustomerid"] == account["accountid"]
    assert contact["parentcustomerid@lookuplogicalname"] == "account"
    other = env.store.create(
        "contact",
        {
            "lastname": "y",
            "parentcustomerid_contact@odata.bind": Reference("contacts", contact["contactid"]),
        },
    )
    assert other["parentcustomerid@lookuplogicalname"] == "contact"


def test_bind_to_missing_record(env: Environment) -> None:
    """§11 #4: bind to a missing GUID -> 404 0x80040217; to a missing key -> 404 0x80060891."""
    missing = "00000000-0000-0000-0000-000000000001"
    err = raises(
        env.store.create,
        "contact",
        {"parentcustomerid_account@odata.bind": Reference("accounts", missing)},
    )
    assert (err.kind, err.code) == (Kind.NOT_FOUND, "0x80040217")
    assert err.message == f"account With Id = {missing} Does Not Exist"
    err = raises(
        env.store.create,
        "contact",
        {
            "parentcustomerid_account@odata.bind": Reference(
                "accounts", key={"accountnumber": "nope"}
            )
        },
    )
    assert (err.kind, err.code) == (Kind.NOT_FOUND, "0x80060891")


def test_owner_bind_to_systemuser(env: Environment) -> None:
    """§3.5: Owner lookups accept systemuser (seeded for the application user)."""
    row = env.store.create(
        "account", {"name": "a", "ownerid@odata.bind": Reference("systemusers", USER_ID)}
    )
    assert row["ownerid"] == USER_ID
    assert row["owneridtype"] == "systemuser"


def test_upsert_by_key_creates_then_updates(env: Environment) -> None:
    """§4.3: upsert by key applies URL key values on create, ignores body keys on update."""
    created = env.store.upsert("account", {"accountnumber": "K1"}, {"name": "first"})
    assert created.created
    assert created.row["accountnumber"] == "K1"
    updated = env.store.upsert(
        "account", {"accountnumber": "K1"}, {"name": "second", "accountnumber": "K1"}
    )
    assert not updated.created
    assert updated.row["accountid"] == created.row["accountid"]
    assert env.store.count("account") == 1


def test_upsert_by_id_creates_with_that_id(env: Environment) -> None:
    """§4.3: PATCH set(<guid>) creates the record with that GUID when missing."""
    rid = "7eb682f1-ca75-e511-80d4-00155d2a68d1"
    outcome = env.store.upsert("account", rid, {"name": "x"})
    assert outcome.created
    assert env.store.retrieve("account", rid)["name"] == "x"


def test_conditional_headers(env: Environment) -> None:
    """§4.4: If-Match * on missing -> 404; If-None-Match * on present -> 412; stale ETag -> 412."""
    rid = "00000000-0000-0000-0000-000000000001"
    err = raises(env.store.upsert, "account", rid, {"name": "x"}, if_match="*")
    assert (err.kind, err.code, err.message) == (
        Kind.NOT_FOUND,
        "0x80040217",
        f"account With Id = {rid} Does Not Exist",
    )
    row = env.store.create("account", {"name": "a"})
    err = raises(env.store.upsert, "account", row["accountid"], {"name": "x"}, if_none_match="*")
    assert (err.kind, err.code) == (Kind.PRECONDITION_FAILED, "0x80040237")
    err = raises(env.store.update, "account", row["accountid"], {"name": "x"}, if_match='W/"1"')
    assert (
        err.message
        == "The version of the existing record doesn't match the RowVersion property provided."
    )
    updated = env.store.update("account", row["accountid"], {"name": "y"}, if_match=etag(row))
    assert updated["versionnumber"] > row["versionnumber"]


def test_invalid_key_properties(env: Environment) -> None:
    """§4.3: a non-key column in the URL key is rejected."""
    err = raises(env.store.retrieve, "account", {"name": "x"})
    assert err.kind is Kind.BAD_REQUEST
    assert (
        "The key in the request URI is not valid for resource 'Microsoft.Dynamics.CRM.account'"
        in err.message
    )


def test_delete(env: Environment) -> None:
    """§4.5: delete; missing -> 404."""
    row = env.store.create("account", {"name": "a"})
    env.store.delete("account", row["accountid"])
    assert raises(env.store.delete, "account", row["accountid"]).kind is Kind.NOT_FOUND


def test_statecode_without_statuscode_takes_default(env: Environment) -> None:
    """§4.2: setting statecode without statuscode picks the state's default status."""
    row = env.store.create("account", {"name": "a"})
    row = env.store.update("account", row["accountid"], {"statecode": 1})
    assert (row["statecode"], row["statuscode"]) == (1, 2)


def test_transaction_rolls_back(env: Environment) -> None:
    """§5.2: a failing change set rolls back completed operations, indexes included."""
    kept = env.store.create("account", {"name": "kept", "accountnumber": "K"})

    def change_set() -> None:
        with env.store.transaction():
            env.store.create("account", {"name": "new", "accountnumber": "N"})
            env.store.update("account", kept["accountid"], {"name": "new", "accountnumber": "K2"})
            env.store.create("account", {"name": "x" * 1000})

    assert raises(change_set).code == "0x80044331"
    assert env.store.count("account") == 1
    assert env.store.retrieve("account", {"accountnumber": "K"})["name"] == "kept"
    env.store.create("account", {"name": "again", "accountnumber": "N"})  # index was freed


def test_record_rule_injects_error(env: Environment) -> None:
    """§4.9, F10: a plug-in error (400 0x80040265) on chosen records."""
    env.store.record_rules.append(
        RecordRule("account", {"name": "bad"}, Kind.BAD_REQUEST, "0x80040265", "Plug-in says no.")
    )
    env.store.create("account", {"name": "good"})
    err = raises(env.store.create, "account", {"name": "bad"})
    assert (err.code, err.message) == ("0x80040265", "Plug-in says no.")


def test_snapshot_and_reset(env: Environment) -> None:
    """Control API needs: snapshot is JSON-able by table; reset clears records."""
    env.store.create("account", {"name": "a"})
    assert [r["name"] for r in env.snapshot()["account"]] == ["a"]
    env.reset()
    assert "account" not in env.snapshot()
    assert env.snapshot()["systemuser"][0]["systemuserid"] == USER_ID


def test_statecode_ignored_on_create(env: Environment) -> None:
    """§4.10: statecode is not valid for create: the row starts Active with its default status."""
    row = env.store.create("account", {"name": "a", "statecode": 1})
    assert (row["statecode"], row["statuscode"]) == (0, 1)


def test_users_get_systemuser_and_business_unit_rows(env: Environment) -> None:
    """§2.4: WhoAmI's UserId and BusinessUnitId exist as records (binds to them resolve)."""
    assert env.store.retrieve("systemuser", USER_ID)["businessunitid"] == BU_ID
    assert env.store.retrieve("businessunit", BU_ID)["businessunitid"] == BU_ID
    assert env.store.retrieve("businessunit", env.business_unit_id)


def test_lookup_shadow_column_is_no_property(env: Environment) -> None:
    """§3.3, §4.9: `…name` shadows (AttributeOf set) are not writable properties."""
    err = raises(env.store.create, "contact", {"lastname": "x", "parentcustomeridname": "n"})
    assert err.code == "0x80048d19"
    assert "Invalid property 'parentcustomeridname'" in err.message


def test_system_required_cannot_be_cleared(env: Environment) -> None:
    """§4.6: JSON null is not allowed for SystemRequired columns."""
    row = env.store.create("account", {"name": "a"})
    err = raises(env.store.update, "account", row["accountid"], {"statecode": None})
    assert err.kind is Kind.BAD_REQUEST
    assert "statecode" in err.message


def test_not_valid_for_update(env: Environment) -> None:
    """§4.6: columns with IsValidForUpdate false are rejected on update (the primary id is not)."""
    row = env.store.create("account", {"name": "a"})
    rid = row["accountid"]
    err = raises(env.store.update, "account", rid, {"createdon": "2020-01-01T00:00:00Z"})
    assert "is not valid for update" in err.message
    assert env.store.update("account", rid, {"accountid": rid, "name": "b"})["name"] == "b"


def test_upsert_by_lookup_key_column(env: Environment) -> None:
    """§4.3: a lookup key column is addressed by its `_x_value` property."""
    env.catalog.add_key("account", "primarycontact_key", ["primarycontactid"])
    contact = env.store.create("contact", {"lastname": "c"})["contactid"]
    key = {"_primarycontactid_value": contact}
    created = env.store.upsert("account", key, {"name": "x"})
    assert created.created
    assert created.row["primarycontactid"] == contact
    assert created.row["primarycontactid@lookuplogicalname"] == "contact"
    again = env.store.upsert("account", key, {"name": "y"})
    assert not again.created
    assert env.store.count("account") == 1


def test_delete_cascade_rolls_back_with_its_transaction(env: Environment) -> None:
    """§4.11, §5.2: the rows a delete's cascade removed come back when the change set fails."""
    account = env.store.create("account", {"name": "a"})["accountid"]
    contact = env.store.create(
        "contact",
        {"lastname": "c", "parentcustomerid_account@odata.bind": Reference("accounts", account)},
    )["contactid"]

    def change_set() -> None:
        with env.store.transaction():
            env.store.delete("account", account)
            assert env.store.find("contact", contact) is None
            env.store.delete("account", account)

    assert raises(change_set).code == "0x80040217"
    assert env.store.retrieve("contact", contact)["parentcustomerid"] == account
