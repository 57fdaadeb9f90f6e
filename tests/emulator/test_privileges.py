"""Security roles over HTTPS (reference §1.7, §4.9 Missing privilege, §5.4, §6.5, §8).

The default users include a reader (read-only role); ``PUT /_emulator/users/{id}/role`` gives
any user a role, and ``POST /_emulator/reset`` takes it away again.
"""

from __future__ import annotations

import pytest

from dataverse_emulator.testing import api_session, https_session

pytestmark = pytest.mark.usefixtures("reset_emulator")

CONTACT = "Microsoft.Dynamics.CRM.contact"


def assert_denied(response, privilege: str) -> str:
    """§4.9: 403, code 0x80040220, the runtime text naming the privilege."""
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["code"] == "0x80040220"
    assert f"is missing {privilege} privilege" in error["message"]
    return error["message"]


def test_reader_reads_but_may_not_write(emulator):
    """§1.7: a role limits what an application user may do; §4.9: 403 0x80040220."""
    reader = emulator.users.reader
    assert reader is not None
    assert reader.role is not None
    with api_session(emulator, reader) as session:
        assert session.get(f"{emulator.api_url}/contacts", timeout=30).status_code == 200
        created = session.post(f"{emulator.api_url}/contacts", json={"lastname": "X"}, timeout=30)
        message = assert_denied(created, "prvCreateContact")
    assert message.startswith(f"Principal user (Id={reader.systemuser_id}, type=8, roleCount=1,")
    assert "on OTC=2 for entity 'contact'." in message
    assert emulator.admin.snapshot().get("contact", []) == []


def test_role_set_through_the_control_api(emulator):
    """Control API: {"tables": {"contact": ["read", "create"]}} allows create, denies update
    (prvWriteContact) and delete; reset restores every privilege."""
    user = emulator.user(1)
    admin = emulator.admin
    shown = admin.set_role(user.client_id, {"tables": {"contact": ["read", "create"]}})
    assert shown["role"]["tables"] == {"contact": ["create", "read"]}
    url = f"{emulator.api_url}/contacts"
    with api_session(emulator, user) as session:
        created = session.post(url, json={"lastname": "A"}, timeout=30)
        assert created.status_code == 204, created.text
        entity = created.headers["OData-EntityId"]
        assert_denied(session.patch(entity, json={"lastname": "B"}, timeout=30), "prvWriteContact")
        assert_denied(session.delete(entity, timeout=30), "prvDeleteContact")
        assert_denied(session.get(f"{emulator.api_url}/accounts", timeout=30), "prvReadAccount")
        admin.set_role(user.client_id, None)
        assert session.patch(entity, json={"lastname": "B"}, timeout=30).status_code == 204
        admin.set_role(user.client_id, {"tables": {"*": ["read"]}})
        admin.reset()
        assert session.post(url, json={"lastname": "C"}, timeout=30).status_code == 204


def test_bulk_denial_fails_the_whole_request(emulator):
    """§6.5: a bulk request fails as a whole: 403 and nothing written."""
    with api_session(emulator, emulator.users.reader) as session:
        response = session.post(
            f"{emulator.api_url}/contacts/Microsoft.Dynamics.CRM.CreateMultiple",
            json={"Targets": [{"@odata.type": CONTACT, "lastname": f"L{i}"} for i in range(3)]},
            timeout=30,
        )
    assert_denied(response, "prvCreateContact")
    assert emulator.admin.snapshot().get("contact", []) == []
    assert emulator.admin.counters()["requests"]["bulk"] == {"403": 1}


def test_batch_denial_is_that_parts_error(emulator):
    """§5.4: inside $batch the denied operation's part carries the 403 (and, without
    continue-on-error, the top-level status is that of the first failing part)."""
    root = "/api/data/v9.2"
    body = (
        "--batch_p\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        f"GET {root}/contacts?$select=lastname HTTP/1.1\r\nAccept: application/json\r\n\r\n"
        "--batch_p\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        f"POST {root}/contacts HTTP/1.1\r\nContent-Type: application/json\r\n\r\n"
        '{"lastname": "X"}\r\n--batch_p--\r\n'
    )
    with api_session(emulator, emulator.users.reader) as session:
        response = session.post(
            f"{emulator.api_url}/$batch",
            data=body.encode(),
            headers={"Content-Type": 'multipart/mixed; boundary="batch_p"'},
            timeout=30,
        )
    assert response.status_code == 403, response.text
    text = response.text
    assert "HTTP/1.1 200 OK" in text
    assert "HTTP/1.1 403 Forbidden" in text
    assert '"code":"0x80040220"' in text.replace(" ", "")
    assert "is missing prvCreateContact privilege" in text


@pytest.mark.parametrize(
    ("header", "value", "privilege"),
    [
        ("MSCRM.BypassBusinessLogicExecution", "CustomSync", "prvBypassCustomBusinessLogic"),
        ("MSCRM.BypassCustomPluginExecution", "true", "prvBypassCustomPlugins"),
        ("CallerObjectId", "0b5e3b57-5b1c-4c55-9a52-9e1f3c6f1a11", "prvActOnBehalfOfAnotherUser"),
    ],
)
def test_privileged_headers(emulator, header, value, privilege):
    """§8: bypass headers and impersonation need their own privileges; a role holding the
    table rights but not those privileges gets 403; a role holding them is served."""
    user = emulator.user(1)
    rights = {"tables": {"contact": ["create"]}}
    emulator.admin.set_role(user.client_id, rights)
    url = f"{emulator.api_url}/contacts"
    with api_session(emulator, user) as session:
        denied = session.post(url, json={"lastname": "A"}, headers={header: value}, timeout=30)
        assert_denied(denied, privilege)
        plain = session.post(url, json={"lastname": "A"}, timeout=30)
        assert plain.status_code == 204
        suppress = {"MSCRM.SuppressDuplicateDetection": "true"}  # §8: no privilege needed
        assert session.post(url, json={"lastname": "B"}, headers=suppress, timeout=30).ok
        emulator.admin.set_role(user.client_id, {**rights, "privileges": [privilege]})
        allowed = session.post(url, json={"lastname": "C"}, headers={header: value}, timeout=30)
        assert allowed.status_code == 204, allowed.text


def test_users_endpoint_shows_roles_never_secrets(emulator):
    """Control API: GET users lists roles and expiry; bad documents 400, unknown users 404."""
    listed = emulator.admin.users()
    assert len(listed) == len(emulator.users) == 4
    roles = {entry["name"]: entry["role"] for entry in listed}
    assert roles["Reader (secret, read-only role)"]["tables"] == {"*": ["read"]}
    assert roles["Loader (secret)"] is None
    text = str(listed)
    assert all(user.secret not in text for user in emulator.users if user.secret)
    base = f"{emulator.base_url}/_emulator/users"
    client_id = emulator.user(0).client_id
    with https_session(emulator) as session:
        bad = session.put(f"{base}/{client_id}/role", json={"tables": {"x": ["upsert"]}})
        assert bad.status_code == 400
        assert "unknown access rights" in bad.json()["error"]
        assert session.put(f"{base}/nobody/role", json=None).status_code == 404
        assert session.get(f"{base}/{client_id}/role").status_code == 405
        assert session.put(f"{base}/{client_id}/colour", json={}).status_code == 404
        bad_secret = session.put(f"{base}/{client_id}/secret", json={"expired": "yes"})
        assert bad_secret.status_code == 400


def test_impersonation_checked_on_reads_bypass_only_on_writes(emulator):
    """§8: impersonation applies to every request; bypass headers only skip write logic, so a
    GET carrying one is served."""
    reader = emulator.users.reader
    url = f"{emulator.api_url}/contacts"
    with api_session(emulator, reader) as session:
        bypass = {"MSCRM.BypassBusinessLogicExecution": "CustomSync"}
        assert session.get(url, headers=bypass, timeout=30).status_code == 200
        impersonate = {"CallerObjectId": "0b5e3b57-5b1c-4c55-9a52-9e1f3c6f1a11"}
        denied = session.get(url, headers=impersonate, timeout=30)
    assert_denied(denied, "prvActOnBehalfOfAnotherUser")


def own_privileges(emulator, user) -> list[dict]:
    """Learn "RetrieveUserPrivileges Function": bound to the caller's systemuser (WhoAmI)."""
    with api_session(emulator, user) as session:
        me = session.get(f"{emulator.api_url}/WhoAmI", timeout=30).json()["UserId"]
        answer = session.get(
            f"{emulator.api_url}/systemusers({me})/Microsoft.Dynamics.CRM.RetrieveUserPrivileges()",
            timeout=30,
        )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["@odata.context"].endswith(
        "$metadata#Microsoft.Dynamics.CRM.RetrieveUserPrivilegesResponse"
    )
    return body["RolePrivileges"]


def test_retrieve_user_privileges_lists_what_the_role_grants(emulator):
    """Learn "RolePrivilege ComplexType": each held privilege with its name, id, depth and
    business unit; a role's table rights become prv<Verb><SchemaName>, misc privileges keep
    their names; a user without a role holds every privilege."""
    user = emulator.user(1)
    role = {"tables": {"contact": ["read", "create"], "systemuser": ["read"]}}
    emulator.admin.set_role(user.client_id, {**role, "privileges": ["prvBypassCustomPlugins"]})
    held = own_privileges(emulator, user)
    names = sorted(p["PrivilegeName"] for p in held)
    assert names == ["prvBypassCustomPlugins", "prvCreateContact", "prvReadContact", "prvReadUser"]
    first = held[0]
    assert set(first) == {
        "BusinessUnitId",
        "Depth",
        "PrivilegeId",
        "PrivilegeName",
        "RecordFilterId",
        "RecordFilterUniqueName",
    }
    assert first["Depth"] == "Global"
    everything = {p["PrivilegeName"] for p in own_privileges(emulator, emulator.user(0))}
    assert {"prvWriteContact", "prvAppendToAccount", "prvActOnBehalfOfAnotherUser"} <= everything


def test_retrieve_user_privileges_needs_read_on_users(emulator):
    """Like every GET on a table: without Read on systemuser, 403 naming prvReadUser."""
    user = emulator.user(1)
    emulator.admin.set_role(user.client_id, {"tables": {"contact": ["write"]}})
    with api_session(emulator, user) as session:
        me = session.get(f"{emulator.api_url}/WhoAmI", timeout=30).json()["UserId"]
        denied = session.get(
            f"{emulator.api_url}/systemusers({me})/Microsoft.Dynamics.CRM.RetrieveUserPrivileges()",
            timeout=30,
        )
    assert_denied(denied, "prvReadUser")


def test_table_metadata_names_its_privileges(emulator):
    """Learn "SecurityPrivilegeMetadata ComplexType": EntityMetadata.Privileges names each
    privilege with its PrivilegeType, the names RetrieveUserPrivileges reports."""
    with api_session(emulator) as session:
        answer = session.get(
            f"{emulator.api_url}/EntityDefinitions(LogicalName='contact')?$select=Privileges",
            timeout=30,
        )
    assert answer.status_code == 200, answer.text
    by_type = {p["PrivilegeType"]: p["Name"] for p in answer.json()["Privileges"]}
    assert by_type == {
        "Create": "prvCreateContact",
        "Read": "prvReadContact",
        "Write": "prvWriteContact",
        "Delete": "prvDeleteContact",
        "Append": "prvAppendContact",
        "AppendTo": "prvAppendToContact",
    }
