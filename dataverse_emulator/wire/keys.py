"""``POST ReactivateEntityKey``: submit a new index job for an alternate key (§3.6).

Microsoft Learn, "ReactivateEntityKey Action"
(https://learn.microsoft.com/power-apps/developer/data-platform/webapi/reference/reactivateentitykey):
an unbound action with ``EntityLogicalName`` and ``EntityKeyLogicalName`` (both required
strings) that submits a new asynchronous system job to create the key's index. The key is
``Pending`` again; the job ends ``Active``, or ``Failed`` while duplicates remain
(:mod:`~dataverse_emulator.state.key_jobs`). Answers 204 (the action returns nothing). The codes
for a missing parameter (``0x80040203``) and an unknown key (404 ``0x80040217``) are not
documented for this action; they are the ones the metadata endpoints use.
"""

from __future__ import annotations

import typing as t

import orjson

from dataverse_emulator.state.error_catalogue import action_parameters_missing
from dataverse_emulator.wire.call import empty_response

if t.TYPE_CHECKING:
    from dataverse_emulator.http import Response
    from dataverse_emulator.wire.call import Call

ACTION = "ReactivateEntityKey"
_PARAMETERS = ("EntityLogicalName", "EntityKeyLogicalName")


def reactivate(call: Call) -> Response:
    """Run ``POST ReactivateEntityKey``; 204.

    Raises:
        DataverseFault: 400 a body that is not an object with both parameters as strings;
            404 an unknown table or key.
    """
    try:
        body = orjson.loads(call.request.body or b"{}")
    except orjson.JSONDecodeError:
        body = None
    values = [body.get(name) for name in _PARAMETERS] if isinstance(body, dict) else [None]
    if not all(isinstance(value, str) and value for value in values):
        raise action_parameters_missing(ACTION, _PARAMETERS)
    table, key = (str(value) for value in values)
    call.env.key_jobs.submit(table, key)
    return empty_response()
