"""Security roles in state (reference §1.7, §4.9, §8): no HTTP, faults only."""

from __future__ import annotations

import pytest

from dataverse_emulator.state.environment import Environment
from dataverse_emulator.state.errors import DataverseFault, Kind
from dataverse_emulator.state.privileges import (
    BYPASS_BUSINESS_LOGIC,
    READER,
    Caller,
    Role,
    privilege_id,
    require_privilege,
)
from dataverse_emulator.wire.rows import prepare

USER = "11111111-2222-4333-8444-555555555555"


def caller(role: Role | None) -> Caller:
    return Caller(USER, None, role)


def denied(call) -> DataverseFault:
    with pytest.raises(DataverseFault) as caught:
        call()
    assert caught.value.kind is Kind.FORBIDDEN
    assert caught.value.code == "0x80040220"
    return caught.value


@pytest.fixture
def env() -> Environment:
    return Environment.create(seed=3)


def test_role_from_json_round_trip_and_validation():
    role = Role.from_json({"tables": {"Contact": ["READ", "create"]}, "privileges": []})
    assert role.to_json() == {
        "name": "Restricted",
        "tables": {"contact": ["create", "read"]},
        "privileges": [],
    }
    assert role.allows("contact", "create")
    assert not role.allows("contact", "write")
    assert not role.allows("account", "read")
    assert READER.allows("account", "read")
    assert not READER.allows("account", "create")
    for bad in (
        {"tables": {"contact": ["upsert"]}},
        {"tables": {"contact": "read"}},
        {"privileges": ["prvEverything"]},
        {"tables": {}, "extra": 1},
        ["contact"],
    ):
        with pytest.raises(ValueError, match=r"\w"):
            Role.from_json(bad)


def test_missing_create_names_the_privilege(env):
    """§4.9: 403 0x80040220; the runtime text names prvCreateContact, the entity and its OTC."""
    role = Role.from_json({"tables": {"contact": ["read"]}})
    fault = denied(lambda: env.store.create("contact", {"lastname": "X"}, caller=caller(role)))
    assert fault.message == (
        f"Principal user (Id={USER}, type=8, roleCount=1, privilegeCount=1, accessMode=4), is "
        f"missing prvCreateContact privilege (Id={privilege_id('prvCreateContact')}) on OTC=2 "
        f"for entity 'contact'. context.Caller={USER}"
    )
    assert env.store.count("contact") == 0


def test_upsert_needs_create_when_new_and_write_when_present(env):
    creator = caller(Role.from_json({"tables": {"contact": ["create"]}}))
    outcome = env.store.upsert("contact", {"contactid": USER}, {"lastname": "A"}, caller=creator)
    assert outcome.created
    fault = denied(lambda: env.store.upsert("contact", USER, {"lastname": "B"}, caller=creator))
    assert "prvWriteContact" in fault.message
    fault = denied(lambda: env.store.delete("contact", USER, caller=creator))
    assert "prvDeleteContact" in fault.message
    env.store.delete("contact", USER, caller=caller(None))


def test_binding_a_lookup_needs_append_and_appendto(env):
    """§1.7: Append on the written table, AppendTo on the referenced one."""
    account = env.store.create("account", {"name": "A"})
    body = {
        "lastname": "L",
        "parentcustomerid_account@odata.bind": f"/accounts({account['accountid']})",
    }

    only_create = caller(Role.from_json({"tables": {"contact": ["create"]}}))
    fault = denied(lambda: env.store.create("contact", prepare(body), caller=only_create))
    assert "prvAppendContact" in fault.message
    append = caller(Role.from_json({"tables": {"contact": ["create", "append"]}}))
    fault = denied(lambda: env.store.create("contact", prepare(body), caller=append))
    assert "prvAppendToAccount" in fault.message
    assert "for entity 'account'" in fault.message
    full = caller(
        Role.from_json({"tables": {"contact": ["create", "append"], "account": ["appendto"]}})
    )
    row = env.store.create("contact", prepare(body), caller=full)
    assert row["parentcustomerid"] == account["accountid"]


def test_miscellaneous_privilege():
    """§8: bypass and impersonation need their own privileges."""
    require_privilege(caller(None), BYPASS_BUSINESS_LOGIC)
    require_privilege(
        caller(Role(privileges=frozenset({BYPASS_BUSINESS_LOGIC}))), BYPASS_BUSINESS_LOGIC
    )
    fault = denied(lambda: require_privilege(caller(READER), BYPASS_BUSINESS_LOGIC))
    assert "is missing prvBypassCustomBusinessLogic privilege" in fault.message
    assert "for entity" not in fault.message
