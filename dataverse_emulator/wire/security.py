"""``systemusers(id)/Microsoft.Dynamics.CRM.RetrieveUserPrivileges()`` (GET).

Microsoft Learn, "RetrieveUserPrivileges Function": bound to a systemuser, no parameters; it
returns ``RetrieveUserPrivilegesResponse`` whose ``RolePrivileges`` is a collection of
``RolePrivilege`` (``BusinessUnitId``, ``Depth`` (PrivilegeDepth, rendered by member name as
OData enums are), ``PrivilegeId``, ``PrivilegeName``, ``RecordFilterId``,
``RecordFilterUniqueName``). Like every GET on a table it needs Read on ``systemuser``
(prvReadUser). Every privilege a role grants here is Global (roles are organization-wide).

Unsupported: another user's privileges (the emulator knows only the caller's current role);
such an id answers 404 as an unknown segment would.
"""

from __future__ import annotations

import typing as t
import uuid

from dataverse_emulator.state.error_catalogue import segment_not_found
from dataverse_emulator.state.privileges import held, privilege_id
from dataverse_emulator.wire.call import json_response

if t.TYPE_CHECKING:
    from dataverse_emulator.http import Response
    from dataverse_emulator.wire.call import Call

FUNCTION = "RetrieveUserPrivileges"
_NO_FILTER = str(uuid.UUID(int=0))


def retrieve_user_privileges(call: Call, systemuser_id: str) -> Response:
    """The privileges the caller (``systemuser_id`` must be the caller's own) holds.

    Raises:
        DataverseFault: 404 for another user's id (unsupported).
    """
    caller = call.caller
    if caller is None or systemuser_id.strip("{}").lower() != caller.systemuser_id.lower():
        raise segment_not_found(f"Microsoft.Dynamics.CRM.{FUNCTION}")
    business_unit = caller.business_unit_id or call.env.business_unit_id
    granted = [
        {
            "BusinessUnitId": business_unit,
            "Depth": "Global",
            "PrivilegeId": privilege_id(name),
            "PrivilegeName": name,
            "RecordFilterId": _NO_FILTER,
            "RecordFilterUniqueName": None,
        }
        for name in held(caller.role, call.env.catalog.tables())
    ]
    return json_response(
        200,
        {
            "@odata.context": f"{call.root}/$metadata#Microsoft.Dynamics.CRM.{FUNCTION}Response",
            "RolePrivileges": granted,
        },
    )
