r"""Requests and responses of the Dataverse Web API, as plain values (pure: no I/O).

Builders here return a frozen :class:`WebRequest` that the client sends alone or the ``batch``
codec packs into a ``$batch`` body; answers come back as :class:`WebResponse`, whether they
arrived alone or as one part of a ``$batch`` response.

Key rule (§3.6, §4.3): string key values are quoted with embedded ``'`` doubled and then
percent-encoded; GUIDs must parse; numbers, booleans and dates are rendered from typed values;
empty or null parts are refused. Values containing ``/ < > * % & : \ ? +`` cannot be carried by a
key URL at all (:func:`key_is_addressable` is false): the writer resolves them to the primary id
with a ``$filter`` query (where any value can be encoded) and writes by GUID.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import math
import re
import typing as t
import uuid
from dataclasses import dataclass, field
from urllib.parse import quote

import msgspec

from target_dynamics.errors import Throttled, WebApiError


@dataclass(frozen=True, slots=True)
class WebRequest:
    """One Web API request.

    Attributes:
        method: HTTP method.
        path: Relative to the service root ``/api/data/v9.2/``, e.g. ``contacts(<guid>)``;
            already percent-encoded.
        body: JSON body, already encoded, or None.
        headers: Extra headers for this request only (``If-Match``, ``Prefer``...).
    """

    method: str
    path: str
    body: bytes | None = None
    headers: t.Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WebResponse:
    """One Web API answer (alone, or one part of a ``$batch`` response)."""

    status: int
    headers: t.Mapping[str, str]
    body: bytes = b""

    @property
    def ok(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status < 300

    def header(self, name: str) -> str | None:
        """Return a header value by case-insensitive name, or None."""
        return find_header(self.headers, name)


def find_header(headers: t.Mapping[str, str], name: str) -> str | None:
    """The value of header ``name`` in ``headers`` (names compared case-insensitively), or None."""
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


MAX_BATCH_OPERATIONS = 1000
"""At most 1,000 operations per ``$batch`` (§5.1)."""

UNADDRESSABLE_KEY_CHARS = frozenset("/<>*%&:\\?+")
"""Characters that break GET / PATCH / upsert by alternate key (§3.6)."""

BULK_MESSAGES = frozenset({"CreateMultiple", "UpdateMultiple", "UpsertMultiple"})

NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
"""Table, entity-set and column names that may go into a URL (§4.6)."""
_QUOTED = re.compile(r"[^A-Za-z0-9_.~'-]+")
"""Runs of characters ``quote`` percent-encodes (all but the unreserved ones and ``'``)."""
_GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_FORBIDDEN_HEADER_CHARS = frozenset("\r\n\0")


@functools.lru_cache(maxsize=4096)
def check_name(name: str) -> str:
    """Return ``name`` if it is a valid table, entity-set or column name, else raise ValueError."""
    if not NAME_PATTERN.match(name):
        raise ValueError(f"Invalid Dataverse name {name!r}: expected letters, digits and '_'.")
    return name


def check_header_value(name: str, value: str) -> str:
    """Return ``value`` unless it carries CR, LF or NUL (header injection, §1.7)."""
    if _FORBIDDEN_HEADER_CHARS & set(value):
        raise ValueError(f"Header {name} must not contain CR, LF or NUL.")
    return value


def standard_headers(request: WebRequest) -> dict[str, str]:
    """Headers every call carries (§2.2), before the request's own headers.

    ``If-None-Match: null`` is left out when the request sets its own ``If-Match`` or
    ``If-None-Match`` (create-only / update-only upserts, §4.4).
    """
    headers = {"Accept": "application/json", "OData-MaxVersion": "4.0", "OData-Version": "4.0"}
    conditional = {k.lower() for k in request.headers} & {"if-match", "if-none-match"}
    if not conditional:
        headers["If-None-Match"] = "null"
    if request.body is not None:
        headers["Content-Type"] = "application/json; charset=utf-8"
    return headers


def option_headers(
    *,
    bypass_business_logic: bool = False,
    suppress_duplicate_detection: bool | None = None,
    caller_object_id: str | None = None,
) -> dict[str, str]:
    """The optional headers a run sends on every request and ``$batch`` part (§8).

    Args:
        bypass_business_logic: Skip custom synchronous and asynchronous logic.
        suppress_duplicate_detection: Sent as ``true``/``false`` when not None.
        caller_object_id: Entra object id of the user to impersonate.
    """
    headers: dict[str, str] = {}
    if bypass_business_logic:
        headers["MSCRM.BypassBusinessLogicExecution"] = "CustomSync,CustomAsync"
    if suppress_duplicate_detection is not None:
        headers["MSCRM.SuppressDuplicateDetection"] = str(suppress_duplicate_detection).lower()
    if caller_object_id:
        headers["CallerObjectId"] = caller_object_id
    return headers


def literal(value: t.Any) -> str:  # noqa: PLR0911 - one branch per OData literal type
    """Render ``value`` as an OData literal, unencoded (strings quoted, ``'`` doubled).

    Raises:
        ValueError: for None, NaN / infinity, or an unsupported type.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | decimal.Decimal):
        if not math.isfinite(value):
            raise ValueError(f"Cannot use {value} as a key or filter value.")
        return str(value)
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return aware.isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    raise ValueError(f"Cannot use a {type(value).__name__} value as a key or filter value.")


def _encode(text: str) -> str:
    """``quote(text, safe="'")``, calling it only for the runs of characters it changes."""
    return _QUOTED.sub(lambda run: quote(run[0], safe="'"), text)


def _is_id_column(column: str, primary_id: str) -> bool:
    """The primary id, or a lookup key part ``_x_value`` (§4.3): rendered as a bare GUID."""
    return column == primary_id or (column.startswith("_") and column.endswith("_value"))


def is_guid(value: t.Any) -> bool:
    """Whether ``value`` is a GUID in its usual text form."""
    return isinstance(value, str) and bool(_GUID.match(value))


def _guid(value: t.Any) -> str:
    text = str(value)
    if not _GUID.match(text):
        raise ValueError(f"{text!r} is not a GUID.")
    return text.lower()


def key_is_addressable(key: t.Mapping[str, t.Any]) -> bool:
    """Whether every value of ``key`` can travel in a key URL (§3.6)."""
    for value in key.values():
        if isinstance(value, str) and not UNADDRESSABLE_KEY_CHARS.isdisjoint(value):
            return False
    return True


class NotAddressable(ValueError):
    """A key value holds a character a key URL cannot carry (§3.6)."""

    def __init__(self) -> None:
        super().__init__("A key value contains one of / < > * % & : \\ ? + (not addressable).")


def key_segment(key: t.Mapping[str, t.Any], primary_id: str, *, encoded: bool = True) -> str:
    """Render the part between parentheses of a key URL, percent-encoded unless ``encoded=False``.

    ``{primary_id: guid}`` gives the bare GUID; anything else ``col='v',col2=1`` (§4.3).

    Raises:
        NotAddressable: A value a key URL cannot carry (see :func:`key_is_addressable`).
        ValueError: An empty key, an empty or null part, a bad GUID or column name.
    """
    if not key:
        raise ValueError("A key needs at least one column.")
    if len(key) == 1 and primary_id in key:
        return _guid(key[primary_id])
    if not key_is_addressable(key):
        raise NotAddressable
    parts = []
    for column, value in key.items():
        if type(value) is str and value and column[:1] != "_" and column != primary_id:
            rendered = "'" + value.replace("'", "''") + "'"  # text, the usual key: literal()'s
        elif value is None or value == "":
            raise ValueError(f"Key column {column!r} is empty.")
        else:
            rendered = _guid(value) if _is_id_column(column, primary_id) else literal(value)
        parts.append(f"{check_name(column)}={_encode(rendered) if encoded else rendered}")
    return ",".join(parts)


def entity_path(entity_set: str, key: t.Mapping[str, t.Any], primary_id: str) -> str:
    """``accounts(<guid>)`` or ``accounts(accountnumber='A%201')``."""
    return f"{check_name(entity_set)}({key_segment(key, primary_id)})"


_ENCODER = msgspec.json.Encoder(decimal_format="number")


def encode_json(payload: t.Any) -> bytes:
    """Encode a JSON-ready payload: datetimes in ISO 8601 (UTC as ``Z``), decimals as numbers.

    A decimal keeps every digit: as a float, a money value past 15 digits would be rounded.
    """
    return _ENCODER.encode(payload)


def create(entity_set: str, payload: t.Mapping[str, t.Any]) -> WebRequest:
    """``POST {set}``; a primary id in the payload turns a replay into 412, not a duplicate."""
    return WebRequest("POST", check_name(entity_set), encode_json(dict(payload)))


def upsert(
    entity_set: str, key: t.Mapping[str, t.Any], primary_id: str, payload: t.Mapping[str, t.Any]
) -> WebRequest:
    """``PATCH {set}({key})``: creates or updates (§4.3)."""
    return WebRequest("PATCH", entity_path(entity_set, key, primary_id), encode_json(dict(payload)))


def update(
    entity_set: str, key: t.Mapping[str, t.Any], primary_id: str, payload: t.Mapping[str, t.Any]
) -> WebRequest:
    """``PATCH {set}({key})`` with ``If-Match: *``: never creates; 404 when missing (§4.4)."""
    path = entity_path(entity_set, key, primary_id)
    return WebRequest("PATCH", path, encode_json(dict(payload)), {"If-Match": "*"})


def delete(entity_set: str, key: t.Mapping[str, t.Any], primary_id: str) -> WebRequest:
    """``DELETE {set}({key})``; 404 means already deleted (§4.5)."""
    return WebRequest("DELETE", entity_path(entity_set, key, primary_id))


def bulk(
    entity_set: str, message: str, logical_name: str, targets: t.Sequence[t.Mapping[str, t.Any]]
) -> WebRequest:
    """``POST {set}/Microsoft.Dynamics.CRM.{message}`` with ``Targets`` (§6.1 to §6.3).

    Every target gets ``@odata.type``; upsert targets name their key in ``@odata.id``.
    """
    if message not in BULK_MESSAGES:
        raise ValueError(f"Unknown bulk message {message!r}.")
    odata_type = f"Microsoft.Dynamics.CRM.{check_name(logical_name)}"
    body = {"Targets": [{**target, "@odata.type": odata_type} for target in targets]}
    path = f"{check_name(entity_set)}/Microsoft.Dynamics.CRM.{message}"
    return WebRequest("POST", path, encode_json(body))


LIST_MEMBER_NAVIGATION = {
    "account": "listaccount_association",
    "contact": "listcontact_association",
    "lead": "listlead_association",
}
"""The list's N:N navigation property to its members, by member table (the ``list`` table's
ManyToManyRelationships: listaccount_association, listcontact_association, listlead_association)."""


def add_list_members(list_id: str, member_table: str, member_ids: t.Sequence[str]) -> WebRequest:
    """``POST AddListMembersList``: add many members to a static marketing list at once.

    Microsoft Learn, "AddListMembersList Action": unbound, parameters ``List`` (list) and
    ``Members`` (a collection of entities), no return value.
    """
    table = check_name(member_table)
    primary_id = f"{table}id"
    body = {
        "List": {"@odata.type": "Microsoft.Dynamics.CRM.list", "listid": _guid(list_id)},
        "Members": [
            {"@odata.type": f"Microsoft.Dynamics.CRM.{table}", primary_id: _guid(member)}
            for member in member_ids
        ],
    }
    return WebRequest("POST", "AddListMembersList", encode_json(body))


def add_list_member(list_id: str, member_id: str) -> WebRequest:
    """``POST lists(<id>)/Microsoft.Dynamics.CRM.AddMemberList``: one member.

    Microsoft Learn, "AddMemberList Action": bound to list, parameter ``EntityId``; answers the
    list member's ``Id``.
    """
    body = {"EntityId": _guid(member_id)}
    path = f"lists({_guid(list_id)})/Microsoft.Dynamics.CRM.AddMemberList"
    return WebRequest("POST", path, encode_json(body))


def remove_list_member(list_id: str, member_id: str) -> WebRequest:
    """``POST lists(<id>)/Microsoft.Dynamics.CRM.RemoveMemberList``: one member leaves the list.

    Microsoft Learn, "RemoveMemberList Action": bound to list, parameter ``EntityId``.
    """
    body = {"EntityId": _guid(member_id)}
    path = f"lists({_guid(list_id)})/Microsoft.Dynamics.CRM.RemoveMemberList"
    return WebRequest("POST", path, encode_json(body))


def list_members(list_id: str, member_table: str) -> WebRequest:
    """``GET lists(<id>)/<member navigation>?$select=<member id>``: the list's members."""
    table = check_name(member_table)
    navigation = LIST_MEMBER_NAVIGATION[table]
    return WebRequest("GET", f"lists({_guid(list_id)})/{navigation}?$select={table}id")


def associate(  # noqa: PLR0913 - the row, the relationship, the related row and the root
    entity_set: str,
    row_id: str,
    navigation: str,
    related_set: str,
    related_id: str,
    *,
    service_root: str,
) -> WebRequest:
    """``POST {set}(<id>)/{navigation}/$ref``: relate two rows through an N:N relationship.

    Microsoft Learn, "Associate and disassociate table rows using the Web API": the body's
    ``@odata.id`` is the related row's URL (``service_root`` ends with ``/api/data/v9.2/``).
    """
    path = f"{check_name(entity_set)}({_guid(row_id)})/{check_name(navigation)}/$ref"
    body = {"@odata.id": f"{service_root}{check_name(related_set)}({_guid(related_id)})"}
    return WebRequest("POST", path, encode_json(body))


def disassociate(entity_set: str, row_id: str, navigation: str, related_id: str) -> WebRequest:
    """``DELETE {set}(<id>)/{navigation}(<related id>)/$ref``: remove one N:N association."""
    base = f"{check_name(entity_set)}({_guid(row_id)})/{check_name(navigation)}"
    return WebRequest("DELETE", f"{base}({_guid(related_id)})/$ref")


def related(entity_set: str, row_id: str, navigation: str, related_id_column: str) -> WebRequest:
    """``GET {set}(<id>)/{navigation}?$select=<related id>``: the rows associated with one row."""
    base = f"{check_name(entity_set)}({_guid(row_id)})/{check_name(navigation)}"
    return WebRequest("GET", f"{base}?$select={check_name(related_id_column)}")


def odata_id(entity_set: str, segment: str) -> str:
    """The ``@odata.id`` of an UpsertMultiple target (§6.3), as Microsoft's own SDK writes it.

    A JSON string, not a request URL: ``segment`` is :func:`key_segment` unencoded (quotes
    doubled, nothing percent-encoded: ``contacts(emailaddress1='ann o''neil@x.org')``).
    """
    return f"{check_name(entity_set)}({segment})"


def filter_any(column: str, values: t.Iterable[t.Any]) -> str:
    """``col eq 'a' or col eq 'b'`` (unencoded; :func:`query` encodes it)."""
    name = check_name(column)
    return " or ".join(f"{name} eq {literal(v)}" for v in values)


def filter_keys(columns: t.Sequence[str], keys: t.Iterable[t.Mapping[str, t.Any]]) -> str:
    """``(a eq 1 and b eq 'x') or (...)``: rows matching any of ``keys`` on ``columns``."""
    names = [check_name(c) for c in columns]
    clauses = (" and ".join(f"{c} eq {literal(key[c])}" for c in names) for key in keys)
    return " or ".join(f"({clause})" for clause in clauses)


def query(entity_set: str, select: t.Sequence[str], filter_: str | None = None) -> WebRequest:
    """``GET {set}?$select=…&$filter=…``, percent-encoded."""
    params = [f"$select={','.join(check_name(c) for c in select)}"]
    if filter_:
        params.append(f"$filter={_encode(filter_)}")
    return WebRequest("GET", f"{check_name(entity_set)}?{'&'.join(params)}")


def prefer(*values: str) -> dict[str, str]:
    """A ``Prefer`` header joining ``values`` (§2.2)."""
    return {"Prefer": ",".join(values)}


CONTINUE_ON_ERROR = "odata.continue-on-error"


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header given in seconds (§7.1); None otherwise."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return max(seconds, 0.0) if math.isfinite(seconds) else None


def parse_error(response: WebResponse) -> WebApiError:
    """Turn a non-2xx answer into :class:`WebApiError` (:class:`Throttled` for 429), §4.8.

    Reads ``{"error": {"code", "message"}}``; an empty code becomes None. A body that is not
    Dataverse JSON contributes at most 300 characters of text.
    """
    code: str | None = None
    message = ""
    try:
        error = msgspec.json.decode(response.body).get("error") if response.body else None
    except (msgspec.DecodeError, AttributeError):
        error = None
    if isinstance(error, dict):
        code = str(error.get("code") or "") or None
        message = str(error.get("message") or "")
    elif response.body:
        message = response.body[:300].decode("utf-8", "replace").strip()
    message = message or f"HTTP {response.status} without an error message"
    retry_after = parse_retry_after(response.header("Retry-After"))
    cls = Throttled if response.status == 429 else WebApiError
    return cls(response.status, code, message, retry_after)
