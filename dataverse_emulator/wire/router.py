"""The Web API route table under ``/api/data/v<major>.<minor>/`` (§2.1).

- ``WhoAmI`` / ``WhoAmI()`` (GET): :func:`who_am_i`
- ``$batch`` (POST): :mod:`~dataverse_emulator.wire.batch`
- ``$metadata`` (GET), the CSDL document: :mod:`~dataverse_emulator.wire.csdl`
- ``EntityDefinitions…``, ``RelationshipDefinitions…``, ``GlobalOptionSetDefinitions…``:
  :mod:`~dataverse_emulator.wire.metadata`
- ``sdkmessagefilters`` (GET): :mod:`~dataverse_emulator.wire.sdkmessages`
- ``{set}`` (GET, POST), ``{set}(key)`` (GET, PATCH, DELETE), ``{set}(key)/{property}``
  (GET, PUT, DELETE), ``{set}(key)/{collection-valued navigation}`` (GET):
  :mod:`~dataverse_emulator.wire.records`
- ``{set}/Microsoft.Dynamics.CRM.<Create|Update|Upsert|Delete>Multiple`` (POST):
  :mod:`~dataverse_emulator.wire.bulk`
- ``lists(key)/Microsoft.Dynamics.CRM.<AddMemberList|RemoveMemberList>`` and
  ``AddListMembersList`` (POST): :mod:`~dataverse_emulator.wire.lists`
- ``{set}(key)/{collection-valued navigation}[(key)]/$ref`` (POST, DELETE):
  :mod:`~dataverse_emulator.wire.references`
- ``systemusers(id)/Microsoft.Dynamics.CRM.RetrieveUserPrivileges()`` (GET):
  :mod:`~dataverse_emulator.wire.security`
- ``ReactivateEntityKey`` (POST): :mod:`~dataverse_emulator.wire.keys`

Before each request the environment's key index jobs move on (§3.6,
:mod:`~dataverse_emulator.state.key_jobs`).

Every answer carries ``OData-Version: 4.0``; errors are Dataverse error bodies (§4.8). The
handler records ``operation_kind`` and ``operation_count`` in ``request.context`` for the cost
model. Reads need the Read privilege on the addressed table; the §8 headers
``MSCRM.BypassBusinessLogicExecution`` (``…StepIds``), ``MSCRM.BypassCustomPluginExecution`` and
``CallerObjectId`` / ``MSCRMCallerID`` need their own privileges (bypass headers on data
writes only; :mod:`~dataverse_emulator.state.privileges`); an allowed impersonation still
writes as the caller. AddListMembersList is a ``bulk`` operation counting its members;
AddMemberList, RemoveMemberList and ``$ref`` writes are ``single``. Unsupported: functions and
actions other than the above, single-valued navigation paths
(``{set}(key)/{lookup navigation}``, their ``$ref``).
"""

from __future__ import annotations

import logging
import re
import typing as t
import uuid

from dataverse_emulator.state import privileges
from dataverse_emulator.state.error_catalogue import (
    method_not_allowed,
    property_not_found,
    segment_not_found,
    syntax_error,
    unexpected_server_error,
    unparsable_request,
    unsupported_version,
)
from dataverse_emulator.state.errors import DataverseFault
from dataverse_emulator.wire import (
    batch,
    bulk,
    csdl,
    keys,
    lists,
    metadata,
    navigation,
    optional_headers,
    records,
    references,
    sdkmessages,
    security,
)
from dataverse_emulator.wire.call import Call, json_response
from dataverse_emulator.wire.errors import (
    annotate_error,
    fault_response,
    stamp_request_id,
)
from dataverse_emulator.wire.multipart import MultipartError
from dataverse_emulator.wire.query_options import (
    QueryOptionError,
    QueryOptions,
    parse_prefer,
    parse_query,
)
from dataverse_emulator.wire.rows import plain_key
from dataverse_emulator.wire.segments import PathSyntaxError, Segment, crm_name, split_path

if t.TYPE_CHECKING:
    from dataverse_emulator.http import Request, Response
    from dataverse_emulator.state.catalog import Table
    from dataverse_emulator.state.environment import Environment

_log = logging.getLogger(__name__)
PREFIX = "/api/data/"
_VERSION = re.compile(r"v\d+\.\d+")
_REF = Segment("$ref")
_METADATA = frozenset(
    {"EntityDefinitions", "RelationshipDefinitions", "GlobalOptionSetDefinitions"}
)


def handle(request: Request, env: Environment) -> Response:
    """Answer one Web API request (sync; no I/O).

    Args:
        request: The request; ``request.context["user"]`` is the authenticated application user.
        env: The environment.

    Returns:
        The response, always with ``OData-Version: 4.0``, ``REQ_ID`` and
        ``x-ms-service-request-id`` (§2.3).
    """
    request.context.setdefault("operation_kind", "other")
    request.context.setdefault("operation_count", 1)
    try:
        env.key_jobs.advance()
        response = _route(request, env)
    except Exception:  # noqa: BLE001 - a bug must still answer in Dataverse's shape
        _log.exception("Unexpected error answering %s %s", request.method, request.path)
        response = fault_response(unexpected_server_error())
    if response.header("OData-Version") is None:
        response.headers.append(("OData-Version", "4.0"))
    return stamp_request_id(response)


def _route(request: Request, env: Environment) -> Response:
    path = request.path
    if not path.startswith(PREFIX):
        first = path.strip("/").split("/", 1)[0]
        return not_found_response(first)
    version, _, rest = path[len(PREFIX) :].partition("/")
    if not _VERSION.fullmatch(version):
        return fault_response(unsupported_version(version))
    user = request.context.get("user")
    call = Call(
        request=request,
        env=env,
        root=f"{request.base_url}{PREFIX}{version}",
        caller=env.caller(user),
        prefer=parse_prefer(request.headers.get("prefer", "")),
    )
    return dispatch(call, rest)


def dispatch(call: Call, rest: str) -> Response:
    """Route a path relative to the service root and render any failure (§4.8).

    ``$batch`` uses this for each operation it runs, metadata GETs included (§3.9). Errors
    carry the ``@Microsoft.PowerApps.CDS`` members ``Prefer: odata.include-annotations`` asks
    for (§4.8).
    """
    try:
        response = _dispatch(call, rest)
    except DataverseFault as fault:
        response = fault_response(fault)
    except PathSyntaxError:
        response = fault_response(syntax_error())
    except (QueryOptionError, MultipartError) as exc:
        response = fault_response(unparsable_request(exc.message))
    if call.prefer.include_annotations and response.status >= 400:
        return annotate_error(response, call.wants)
    return response


def not_found_response(segment: str) -> Response:
    """404 "Resource not found for the segment '<x>'." (§2.1)."""
    return fault_response(segment_not_found(segment))


_IMPERSONATION_HEADERS = ("callerobjectid", "mscrmcallerid")
_BYPASS_HEADERS = (
    ("mscrm.bypassbusinesslogicexecution", privileges.BYPASS_BUSINESS_LOGIC),
    ("mscrm.bypassbusinesslogicexecutionstepids", privileges.BYPASS_BUSINESS_LOGIC),
    ("mscrm.bypasscustompluginexecution", privileges.BYPASS_PLUGINS),
)
"""§8: headers needing a privilege of their own (``MSCRM.SuppressDuplicateDetection`` does not)."""


def _check_headers(call: Call, rest: str) -> None:
    """Impersonation needs its privilege on every request; bypass headers on data writes.

    Bypass headers skip business logic of writes, so reads, metadata and the ``$batch``
    envelope (whose parts are checked one by one) need no privilege for them; their values
    are checked everywhere (:mod:`~dataverse_emulator.wire.optional_headers`).
    """
    optional_headers.check_values(call.request.headers)
    if any(call.header(name) is not None for name in _IMPERSONATION_HEADERS):
        privileges.require_privilege(call.caller, privileges.IMPERSONATE)
    if call.request.method == "GET" or rest.split("?", 1)[0] == "$batch":
        return
    for header, privilege in _BYPASS_HEADERS:
        value = call.header(header)
        if value is None or (header == "mscrm.bypasscustompluginexecution" and value != "true"):
            continue
        privileges.require_privilege(call.caller, privilege)


def _dispatch(call: Call, rest: str) -> Response:
    request = call.request
    _check_headers(call, rest)
    if rest.split("/", 1)[0].split("(", 1)[0] in _METADATA:
        request.context["operation_kind"] = "metadata"
        return metadata.handle(request, rest, call.env.catalog, call.env.key_jobs)
    method = request.method
    segments = split_path(rest)
    if not segments:
        return not_found_response("")
    head = segments[0]
    if len(segments) == 1 and head.name in _SERVICE:
        allowed, kind, run = _SERVICE[head.name]
        _require(method, allowed)
        request.context["operation_kind"] = kind
        return run(call)
    table = call.env.catalog.table_by_set(head.name)
    return _resource(call, table, segments, rest)


def _resource(call: Call, table: Table, segments: list[Segment], rest: str) -> Response:
    head = segments[0]
    if len(segments) == 1:
        return _entity_set(call, table, head, rest)
    if len(segments) == 2:
        return _second(call, table, head, segments[1], rest)
    if segments[2:] == [_REF] and head.key is not None:
        return _reference(call, table, head, segments[1])
    return not_found_response(segments[2].name)


def _entity_set(call: Call, table: Table, head: Segment, rest: str) -> Response:
    request = call.request
    method = request.method
    options = parse_query(request.query) if request.query else QueryOptions()
    if method == "GET":
        request.context["operation_kind"] = "read"
        privileges.require(call.caller, table, "read")
    if head.key is None:
        if method == "GET":
            return records.query(call, table)
        _require(method, "POST")
        request.context["operation_kind"] = "single"
        return records.create(call, table, options)
    locator = head.key if isinstance(head.key, str) else plain_key(head.key)
    if method == "GET":
        return records.retrieve(call, table, locator, options)
    request.context["operation_kind"] = "single"
    if method == "PATCH":
        return records.upsert(call, table, locator, rest, options)
    _require(method, "DELETE")
    return records.delete(call, table, locator)


def _second(call: Call, table: Table, head: Segment, second: Segment, rest: str) -> Response:
    request = call.request
    method = request.method
    if method == "GET":
        request.context["operation_kind"] = "read"
        privileges.require(call.caller, table, "read")
    message = crm_name(second.name)
    if message is not None:
        return _action(call, table, head, second, message)
    if head.key is None or second.key is not None or second.name.startswith("$"):
        return not_found_response(second.name)
    locator = head.key if isinstance(head.key, str) else plain_key(head.key)
    related = _collection(call, table, second.name)
    if related is not None:
        _require(method, "GET")
        return records.related(call, table, locator, related, rest)
    if method == "GET":
        return records.property_value(call, table, locator, second.name)
    if method not in ("PUT", "DELETE"):
        raise method_not_allowed(method)
    request.context["operation_kind"] = "single"
    return records.write_property(call, table, locator, second.name)


def _action(call: Call, table: Table, head: Segment, second: Segment, message: str) -> Response:
    """Bound actions and functions of a table or a row.

    ``{set}/Microsoft.Dynamics.CRM.<bulk message>``, ``lists(key)/…<list action>`` and
    ``systemusers(id)/…RetrieveUserPrivileges()``.
    """
    method = call.request.method
    if message == security.FUNCTION and isinstance(head.key, str) and second.key is None:
        if table.logical_name != "systemuser":
            return not_found_response(second.name)
        _require(method, "GET")
        return security.retrieve_user_privileges(call, head.key)
    if second.key is None and head.key is None and message in bulk.MESSAGES:
        _require(method, "POST")
        call.request.context["operation_kind"] = "bulk"
        return bulk.handle(call, table, message)
    if second.key is None and head.key is not None and message in lists.BOUND:
        _require(method, "POST")
        call.request.context["operation_kind"] = "single"
        locator = head.key if isinstance(head.key, str) else plain_key(head.key)
        record_id = call.env.store.retrieve(table.logical_name, locator)[table.primary_id]
        return lists.bound(call, table, record_id, message, second.name)
    return not_found_response(second.name)


def _collection(call: Call, table: Table, name: str) -> navigation.Collection | None:
    """What backs a collection-valued navigation property (one-to-many or many-to-many)."""
    return navigation.collection_valued(call, table).get(name) or navigation.many_to_many(
        call, table
    ).get(name)


def _reference(call: Call, table: Table, head: Segment, nav: Segment) -> Response:
    """``{set}(key)/{collection-valued navigation}[(key)]/$ref``: associate, disassociate."""
    related = _collection(call, table, nav.name)
    if related is None:
        raise property_not_found(nav.name, table.logical_name)
    if nav.key is not None and not isinstance(nav.key, str):
        return not_found_response(nav.name)
    call.request.context["operation_kind"] = "single"
    locator = head.key if isinstance(head.key, str) else plain_key(head.key or {})
    record_id = call.env.store.retrieve(table.logical_name, locator)[table.primary_id]
    return references.handle(call, table, record_id, related, nav.key)


def _require(method: str, allowed: str) -> None:
    if method != allowed:
        raise method_not_allowed(method)


def who_am_i(call: Call) -> Response:
    """``GET WhoAmI``: the caller's BusinessUnitId, UserId and OrganizationId (§2.4)."""
    env = call.env
    caller = call.caller
    return json_response(
        200,
        {
            "@odata.context": f"{call.root}/$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse",
            "BusinessUnitId": (caller.business_unit_id if caller else None) or env.business_unit_id,
            "UserId": caller.systemuser_id if caller else str(uuid.UUID(int=0)),
            "OrganizationId": env.organization_id,
        },
    )


_SERVICE: dict[str, tuple[str, str, t.Callable[[Call], Response]]] = {
    "$batch": ("POST", "batch", lambda call: batch.execute(call, dispatch)),
    "$metadata": ("GET", "metadata", lambda call: csdl.handle(call.env.catalog)),
    "WhoAmI": ("GET", "other", who_am_i),
    sdkmessages.ENTITY_SET: ("GET", "read", sdkmessages.query),
    lists.UNBOUND: ("POST", "bulk", lists.add_list_members),
    f"Microsoft.Dynamics.CRM.{lists.UNBOUND}": ("POST", "bulk", lists.add_list_members),
    keys.ACTION: ("POST", "other", keys.reactivate),
    f"Microsoft.Dynamics.CRM.{keys.ACTION}": ("POST", "other", keys.reactivate),
}
