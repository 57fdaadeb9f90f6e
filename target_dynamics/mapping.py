r"""Record -> Dataverse row: convert and check every value as Dataverse would (pure, §4.6).

A record that fails any check raises :class:`RecordRejected` with the reason (field, column and
value) and the code Dataverse would have answered; it is never sent. Rules:

- Strings (String, Memo): JSON strings, at most ``MaxLength`` characters (``0x80044331``);
  numbers become their text (``5`` -> ``"5"``, so an integer id fits a text key). Objects and
  arrays become JSON text only for the fields a stream lists in ``json_text_fields``.
- Integer/BigInt/Decimal/Money/Double: numbers, or strings holding one (``"55000"``, ``"2.5"``,
  ``"-1e3"``; no thousands separators), within ``MinValue``..``MaxValue``. Decimal, Money and
  Double are sent with every decimal place given: the service rounds to the column's precision
  (§4.6; money precision may come from the currency, ``PrecisionSource``). NaN and infinities
  are rejected. Integers accept integral values (``3.0``, ``"3"``).
- Choices (Picklist, State, Status, MultiSelectPicklist, Boolean): the integer value (also as a
  string) or the label, case-insensitive (``0x8004431A`` otherwise). A JSON number is always a
  value. A string that is both an option's value and another option's label (labels that are
  digits: value 2 labelled ``"1"``) is rejected naming both readings, never guessed. Booleans
  also accept ``true``/``false``, ``yes``/``no`` and ``1``/``0``; multi-select takes a list or a
  comma/semicolon-separated string and is sent as ``"1,2"``.
- DateTime: the column's behaviour alone decides (§4.6): DateOnly behaviour gets ``YYYY-MM-DD``
  (a date-time value keeps its own calendar date); UserLocal and TimeZoneIndependent get UTC
  ``YYYY-MM-DDTHH:MM:SSZ`` whatever their ``Format`` (display only), a value without offset taken
  as UTC and a date as midnight UTC (so a date into a DateOnly-format UserLocal column is that
  date at 00:00 UTC, which apps show in the user's time zone). Dates before 1753-01-01 are
  rejected.
- Uniqueidentifier: a GUID string, sent in canonical lower-case form.
- Lookups: ``<navigation property>@odata.bind`` to ``/<entity set>(<guid>)`` or
  ``/<entity set>(<key>='<value>')`` (see :class:`LookupRule`), the key rendered as every key
  URL is (:func:`webapi.key_segment`); a number into a text key column is quoted as text. A key
  value a URL cannot carry (``/ < > * % & : \ ? +``, §3.6) leaves a :class:`KeyBind` instead:
  the sink finds the row by ``$filter`` and binds it by GUID (:mod:`binds`).
- Empty strings (also whitespace only) are null for every column that is not text.
- Nulls: omitted on create (the column keeps its default); sent as ``null`` on update and upsert,
  which clears the column, except ``SystemRequired`` columns (rejected). A null lookup clears the
  reference. A null or missing ID field rejects the record.
- Nested values: a field may be a path into objects (``name.first``); a null on the way is a null
  value; a key missing from its object, like a field absent from the record, is not sent at all.
- ``_sdc_*`` fields, ``_dead_letter`` and fields the setup dropped are never sent.
- Delete and deactivate convert only the ID field (the row's other values do not matter).
- State and status (§4.10): labels or values; the pair must agree with the status metadata (each
  status belongs to one state: a mismatch is rejected naming both labels), a status alone
  implies its state and a state alone takes its default status, and both are always sent
  together. A create in the initial state (0) sends only the status; any other create, and every
  upsert, leaves the pair to an update once the row exists (:attr:`MappedRecord.state`), since
  ``statecode`` is not valid for create.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import re
import sys
import typing as t
import uuid
from dataclasses import dataclass, field, replace
from functools import cached_property

from target_dynamics import webapi
from target_dynamics.errors import DataverseError
from target_dynamics.identity import IdMode, content_guid

if t.TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from target_dynamics.metadata import ColumnInfo, TableInfo

CODE_TOO_LONG = "0x80044331"
CODE_OUT_OF_RANGE = "0x8004431A"
CODE_INVALID = "0x80040203"  # InvalidArgument
CODE_STATE_MISMATCH = "0x80048408"  # "<status> is not a valid status code for state code ..."
REMOVALS = frozenset({"delete", "deactivate"})
"""Operations that address a row and send none of the record's values."""
INITIAL_STATE = 0
"""The state a created row starts in (Active, Open)."""
EARLIEST = dt.date(1753, 1, 1)
TEXT_TYPES = frozenset({"StringType", "MemoType", "EntityNameType"})
"""Column types whose empty string is a value, not a null."""
_NUMBER_TEXT = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0"})
_SHOWN_CHARS = 60
_LARGEST_EXPONENT = 40
"""Beyond every numeric column's range (BigInt ends near 9.2e18); never expanded."""
_INT_BOUNDS = {"IntegerType": (-(2**31), 2**31 - 1), "BigIntType": (-(2**63), 2**63 - 1)}


class RecordRejected(DataverseError):
    """One record cannot be written; it is reported and never sent.

    Attributes:
        reason: What is wrong and where, for the log and the dead-letter file.
        code: The Dataverse error code the service would answer, when there is one.
    """

    def __init__(self, reason: str, code: str | None = CODE_INVALID) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


@dataclass(frozen=True)
class LookupTarget:
    """One table a lookup column can point to.

    Attributes:
        table: Logical name.
        entity_set: URL segment of the table.
        navigation: The referencing navigation property, case-sensitive (§4.7).
        keys: The table's active alternate keys (column tuples).
        text_columns: Its key columns that hold text (a number bound to one is quoted).
        primary_id: Its primary id column (what a :class:`KeyBind` is resolved to).
    """

    table: str
    entity_set: str
    navigation: str
    keys: tuple[tuple[str, ...], ...] = ()
    text_columns: frozenset[str] = frozenset()
    primary_id: str = ""


@dataclass(frozen=True, slots=True)
class KeyBind:
    """A bind by an alternate key a URL cannot carry (§3.6): the row's GUID is found first.

    Left by the mapper as the value of ``<nav>@odata.bind``; the sink replaces it with
    :meth:`path` of the primary id ``$filter`` finds (:mod:`binds`), before anything is sent.

    Attributes:
        column: The lookup column (named when no row has the key).
        target: The table the lookup points to.
        key: The alternate-key values, by column.
    """

    column: str
    target: LookupTarget
    key: Mapping[str, t.Any]

    def path(self, guid: str) -> str:
        """``/<entity set>(<guid>)``: the bind once the row is found."""
        primary_id = self.target.primary_id
        return f"/{webapi.entity_path(self.target.entity_set, {primary_id: guid}, primary_id)}"


@dataclass(frozen=True)
class LookupRule:
    """How one lookup column binds.

    A string (or number) value is a GUID, or, when ``key`` is set, the value of that single-column
    alternate key of ``default_table``. An object value may name the table
    (``{"table": "contact", "id": "<guid>"}``, or ``{"table": "account", "accountnumber": "A1"}``
    for a key); ``table_field`` names a record field that carries the table per record.

    Attributes:
        column: The lookup column.
        targets: Logical name -> target.
        default_table: The target used when the value does not name one.
        key: Alternate-key columns of ``default_table`` the value refers to; () for GUIDs.
        table_field: Record field holding the target table, if any.
    """

    column: str
    targets: Mapping[str, LookupTarget]
    default_table: str | None = None
    key: tuple[str, ...] = ()
    table_field: str | None = None


class MappedRecord(t.NamedTuple):
    """A converted record.

    Attributes:
        payload: JSON-ready body (logical names and ``@odata.bind`` entries); on a delete, empty.
        key: The ID field's values by column (primary id, alternate key or matched column);
            for a keyless create the content-derived primary id (see :mod:`identity`), or None
            when the writer is to choose a random one.
    """

    payload: dict[str, t.Any]
    key: dict[str, t.Any] | None
    state: dict[str, int] | None = None
    """``statecode`` and ``statuscode`` to set by an update once the row exists (§4.10)."""


def _shown(value: t.Any) -> str:
    """``value`` for a reason: strings quoted and cut short, numbers as they are, else its kind."""
    if isinstance(value, str):
        text = repr(value)
        return text if len(text) <= _SHOWN_CHARS else f"{text[: _SHOWN_CHARS - 4]}...'"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, decimal.Decimal)):
        return str(value)
    kinds: dict[type[object], str] = {dict: "an object", list: "an array"}
    return kinds.get(type(value), type(value).__name__)


def _reject_type(column: ColumnInfo, value: t.Any, wanted: str) -> t.NoReturn:
    raise RecordRejected(
        f"column '{column.name}' ({column.type_name}) needs {wanted}, got {_shown(value)}"
    )


def _number(column: ColumnInfo, value: t.Any) -> decimal.Decimal:
    if isinstance(value, str) and _NUMBER_TEXT.fullmatch(value.strip()):
        number = decimal.Decimal(value.strip())
    elif isinstance(value, bool) or not isinstance(value, (int, float, decimal.Decimal)):
        _reject_type(column, value, "a number")
    else:
        number = decimal.Decimal(str(value)) if isinstance(value, float) else decimal.Decimal(value)
    if not number.is_finite() or number.adjusted() > _LARGEST_EXPONENT:
        raise RecordRejected(f"column '{column.name}' cannot hold {_shown(value)}")
    least, most = _INT_BOUNDS.get(column.type_name, (None, None))
    low = column.min_value if column.min_value is not None else least
    high = column.max_value if column.max_value is not None else most
    if (low is not None and number < decimal.Decimal(str(low))) or (
        high is not None and number > decimal.Decimal(str(high))
    ):
        raise RecordRejected(
            f"column '{column.name}' value {value} is outside {low}..{high}", CODE_OUT_OF_RANGE
        )
    return number


def _json_number(number: decimal.Decimal) -> int | float | decimal.Decimal:
    if number == number.to_integral_value():
        return int(number)
    as_float = float(number)
    return as_float if decimal.Decimal(repr(as_float)) == number else number


def _integer(column: ColumnInfo, value: t.Any) -> int:
    number = _number(column, value)
    if number != number.to_integral_value():
        _reject_type(column, value, "a whole number")
    return int(number)


def _decimal(column: ColumnInfo, value: t.Any) -> int | float | decimal.Decimal:
    return _json_number(_number(column, value))


def _string(column: ColumnInfo, value: object) -> str:
    if type(value) is str:
        pass
    elif isinstance(value, (int, float, decimal.Decimal)) and not isinstance(value, bool):
        value = str(value)
    elif not isinstance(value, str):
        _reject_type(column, value, "a string (or a number)")
    if column.max_length is not None and len(value) > column.max_length:
        raise RecordRejected(
            f"column '{column.name}' is {len(value)} characters long; "
            f"the maximum is {column.max_length}",
            CODE_TOO_LONG,
        )
    return value


def _option(column: ColumnInfo, value: t.Any) -> int:
    if isinstance(value, str):
        wanted = value.strip().casefold()
        by_label = [n for n, label in column.options.items() if label.casefold() == wanted]
        by_value = int(wanted) if wanted.lstrip("-").isdigit() else None
        if (
            by_label
            and by_value is not None
            and by_value in column.options
            and (by_value not in by_label)
        ):
            raise RecordRejected(
                f"column '{column.name}' value {value!r} is ambiguous: it is option {by_value} "
                f"({column.options[by_value]!r}) and the label of option {by_label[0]}; "
                "send the option value as a number, or map the field to the intended value"
            )
        if by_label:
            return by_label[0]
        value = by_value if by_value is not None else value
    numeric = isinstance(value, (int, decimal.Decimal, float)) and not isinstance(value, bool)
    if numeric and value == int(value) and int(value) in column.options:
        return int(value)
    known = ", ".join(f"{k}={v}" for k, v in sorted(column.options.items()))
    raise RecordRejected(
        f"column '{column.name}' has no option {value!r} (known: {known})", CODE_OUT_OF_RANGE
    )


def _boolean(column: ColumnInfo, value: t.Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().casefold()
        labels = {label.casefold() for label in column.options.values()}
        if word in _TRUE - labels:
            return True
        if word in _FALSE - labels:
            return False
    options = column.options or {1: "Yes", 0: "No"}
    number = _option(replace(column, options=options), value)
    return bool(number)


def _multi(column: ColumnInfo, value: t.Any) -> str:
    items: Sequence[t.Any]
    if isinstance(value, str):
        items = [p for p in value.replace(";", ",").split(",") if p.strip()]
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        items = [value]
    numbers = [_option(column, item) for item in items]
    if len(numbers) > 150:
        raise RecordRejected(f"column '{column.name}' has {len(numbers)} choices; at most 150")
    return ",".join(str(n) for n in dict.fromkeys(numbers))


def _parse_datetime(column: ColumnInfo, value: t.Any) -> dt.date | dt.datetime:
    if isinstance(value, (dt.datetime, dt.date)):
        return value
    if not isinstance(value, str):
        _reject_type(column, value, "an ISO 8601 date or date-time string")
    text = value.strip()
    try:
        if len(text) == 10:
            return dt.date.fromisoformat(text)
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise RecordRejected(
            f"column '{column.name}' value {value!r} is not an ISO 8601 date or date-time"
        ) from None


def _datetime(column: ColumnInfo, value: t.Any) -> str:
    parsed = _parse_datetime(column, value)
    day = parsed.date() if isinstance(parsed, dt.datetime) else parsed
    if day < EARLIEST:
        raise RecordRejected(
            f"column '{column.name}' date {day.isoformat()} is before 1753-01-01", CODE_OUT_OF_RANGE
        )
    if column.date_only:
        return day.isoformat()
    if not isinstance(parsed, dt.datetime):
        parsed = dt.datetime.combine(parsed, dt.time(), tzinfo=dt.UTC)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _guid(column_name: str, value: t.Any) -> str:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value.strip()))
        except ValueError:
            pass
    raise RecordRejected(f"column '{column_name}' value {value!r} is not a GUID")


def _plain(value: t.Any) -> t.Any:
    """JSON-ready copy of a decoded value (the SDK reads JSON numbers as ``Decimal``)."""
    if isinstance(value, decimal.Decimal):
        return _json_number(value) if value.is_finite() else str(value)
    return str(value)


def json_text(column: ColumnInfo, value: t.Any) -> str:
    """An object or array as compact JSON text for a text column (``json_text_fields``)."""
    if isinstance(value, (dict, list)):
        value = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_plain)
    return _string(column, value)


_CONVERTERS: dict[str, t.Callable[[ColumnInfo, t.Any], t.Any]] = {
    "StringType": _string,
    "MemoType": _string,
    "EntityNameType": _string,
    "IntegerType": _integer,
    "BigIntType": _integer,
    "DecimalType": _decimal,
    "MoneyType": _decimal,
    "DoubleType": _decimal,
    "BooleanType": _boolean,
    "PicklistType": _option,
    "StateType": _option,
    "StatusType": _option,
    "MultiSelectPicklistType": _multi,
    "DateTimeType": _datetime,
    "UniqueidentifierType": lambda c, v: _guid(c.name, v),
}

JSON_TYPES_FOR: dict[str, frozenset[str]] = {
    "StringType": frozenset({"string", "integer", "number"}),
    "MemoType": frozenset({"string", "integer", "number"}),
    "EntityNameType": frozenset({"string"}),
    "IntegerType": frozenset({"integer", "number", "string"}),
    "BigIntType": frozenset({"integer", "number", "string"}),
    "DecimalType": frozenset({"integer", "number", "string"}),
    "MoneyType": frozenset({"integer", "number", "string"}),
    "DoubleType": frozenset({"integer", "number", "string"}),
    "BooleanType": frozenset({"boolean", "integer", "string"}),
    "PicklistType": frozenset({"integer", "string"}),
    "StateType": frozenset({"integer", "string"}),
    "StatusType": frozenset({"integer", "string"}),
    "MultiSelectPicklistType": frozenset({"array", "integer", "string"}),
    "DateTimeType": frozenset({"string"}),
    "UniqueidentifierType": frozenset({"string"}),
    "LookupType": frozenset({"string", "integer", "number", "object"}),
    "CustomerType": frozenset({"string", "integer", "number", "object"}),
    "OwnerType": frozenset({"string", "integer", "number", "object"}),
}
"""JSON Schema types that can carry each attribute type (checked once, at SCHEMA).

Strings reach every column: each value is converted, or its record rejected (a CSV tap types
every column as string). Objects and arrays reach text columns only through ``json_text_fields``.
"""


def convert_value(column: ColumnInfo, value: t.Any) -> t.Any:
    """Convert one non-null value for ``column`` (not a lookup).

    Raises:
        RecordRejected: The value cannot be written to the column.
    """
    converter = _CONVERTERS.get(column.type_name)
    if converter is None:
        raise RecordRejected(f"column '{column.name}' ({column.type_name}) cannot be written")
    return converter(column, value)


def bind_value(
    rule: LookupRule, value: t.Any, record: Mapping[str, t.Any]
) -> tuple[str, str | KeyBind]:
    """``(navigation@odata.bind, path)`` for one non-null lookup value.

    The path is a :class:`KeyBind` for an alternate-key value a URL cannot carry (§3.6).
    """
    table, parts = _bind_parts(rule, value, record)
    target = _bind_target(rule, table)
    if set(parts) == {"id"}:
        return (
            f"{target.navigation}@odata.bind",
            f"/{target.entity_set}({_guid(rule.column, parts['id'])})",
        )
    key = _bind_key(rule, target, parts)
    return f"{target.navigation}@odata.bind", _key_path(rule, target, key, parts)


def _bind_parts(
    rule: LookupRule, value: t.Any, record: Mapping[str, t.Any]
) -> tuple[str | None, dict[str, t.Any]]:
    """The table a lookup value names (else the record's or the rule's) and its id or key parts."""
    table = rule.default_table
    if rule.table_field and record.get(rule.table_field):
        table = str(record[rule.table_field])
    if isinstance(value, dict):
        parts = {k: v for k, v in value.items() if k != "table"}
        return str(value.get("table") or table or ""), parts
    if rule.key:
        return table, ({rule.key[0]: value} if len(rule.key) == 1 else {})
    return table, {"id": value}


def _bind_target(rule: LookupRule, table: str | None) -> LookupTarget:
    """The target named ``table``, else the rule's only target when no table is named.

    Raises:
        RecordRejected: No table named and several targets, or a table that is no target.
    """
    target = rule.targets.get(table) if table else None
    if target is not None:
        return target
    if len(rule.targets) == 1 and not table:
        return next(iter(rule.targets.values()))
    raise RecordRejected(
        f"lookup '{rule.column}' needs a target table among "
        f"{', '.join(sorted(rule.targets))}"
        f"{f' (got {table!r})' if table else ''}: set lookups.{rule.column}.table or send "
        '{"table": ..., "id": ...}'
    )


def _bind_key(
    rule: LookupRule, target: LookupTarget, parts: Mapping[str, t.Any]
) -> tuple[str, ...]:
    """The alternate key of ``target`` that ``parts`` fill, in key order.

    Raises:
        RecordRejected: The parts fill no active key of the target, or hold a null.
    """
    key = rule.key if target.table == rule.default_table and rule.key else tuple(parts)
    if (
        not parts
        or frozenset(parts) != frozenset(key)
        or tuple(sorted(key)) not in {tuple(sorted(k)) for k in target.keys}
    ):
        raise RecordRejected(
            f"lookup '{rule.column}' to '{target.table}' needs an id or the columns of one of its "
            f"alternate keys {[list(k) for k in target.keys]}, got {sorted(parts)}"
        )
    if any(v is None for v in parts.values()):
        raise RecordRejected(f"lookup '{rule.column}' has a null alternate-key value")
    return key


def _key_path(
    rule: LookupRule, target: LookupTarget, key: Sequence[str], parts: Mapping[str, t.Any]
) -> str | KeyBind:
    """``/<set>(col='v',...)`` in key order, or a :class:`KeyBind` when a URL cannot carry it.

    A number for a text key column is quoted as its text.

    Raises:
        RecordRejected: A value no key can hold (empty, not a GUID where one is due, NaN...).
    """
    values = {}
    for col in key:
        value = parts[col]
        text = col in target.text_columns and not isinstance(value, (bool, str, dict, list))
        values[col] = str(value) if text else value
    try:
        if webapi.key_is_addressable(values):
            return "/" + webapi.entity_path(target.entity_set, values, target.primary_id)
        for value in values.values():
            webapi.literal(value)  # the $filter that finds the row renders it
    except ValueError as exc:
        raise RecordRejected(f"lookup '{rule.column}' to '{target.table}': {exc}") from None
    return KeyBind(rule.column, target, values)


ABSENT: t.Final = object()
"""What :func:`nested_value` gives when a key of the path is missing from its object."""


def nested_value(path: Sequence[str], source: str, record: Mapping[str, t.Any]) -> t.Any:
    """The value at ``path`` (record keys, one per level) in ``record``.

    :data:`ABSENT` when a key is missing from its object (the column is then not written);
    None when a step on the way is null.

    Raises:
        RecordRejected: A step on the way is not an object.
    """
    value: t.Any = record
    for depth, key in enumerate(path):
        if value is None:
            return None
        if not isinstance(value, dict):
            where = ".".join(path[:depth])
            raise RecordRejected(f"field '{source}': '{where}' is {_shown(value)}, not an object")
        if key not in value:
            return ABSENT
        value = value[key]
    return value


@dataclass(frozen=True, slots=True)
class _FieldStep:
    """How one written field is converted, resolved once per stream (see ``RecordMapper``)."""

    source: str
    path: tuple[str, ...]
    """The record keys leading to the value: one for a top-level field."""
    key: str | None
    """The record key of a top-level field (read directly); None for a path into objects."""
    name: str
    column: ColumnInfo
    convert: t.Callable[[ColumnInfo, t.Any], t.Any] | None
    """Value converter; None for a lookup (bound through ``rule``)."""
    rule: LookupRule | None
    null_key: str
    """Payload key a null value clears: the column, or its ``nav@odata.bind``."""
    blank_is_null: bool
    """An empty (or whitespace-only) string is a null: the column is not text."""
    longest: int = -1
    """For a text column: the longest string passed on as it is (``convert`` checks the rest,
    and everything else); -1 otherwise."""


@dataclass(frozen=True)
class RecordMapper:
    """Converts records of one stream for one table and operation (built at SCHEMA time).

    Attributes:
        table: The table.
        operation: ``create``, ``upsert``, ``update`` or ``delete`` (``plans.Operation`` values).
        fields: Record field -> column, for the fields that are written.
        paths: Field -> the record keys leading to its value, for fields that are paths into
            objects (``name.first`` -> ``("name", "first")``); other fields are top-level keys.
        json_text: Fields whose objects and arrays are written as JSON text.
        id_columns: ID field columns (Dataverse names), () for none.
        id_mode: How the ID field names the row.
        lookups: Lookup column -> rule.
        stream: The stream's name (part of a keyless create's content-derived id).
        content_ids: Whether keyless creates get content-derived ids (else the writer's
            random ones).
    """

    table: TableInfo
    operation: str
    fields: Mapping[str, str]
    paths: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    json_text: frozenset[str] = frozenset()
    id_columns: tuple[str, ...] = ()
    id_mode: IdMode = IdMode.NONE
    lookups: Mapping[str, LookupRule] = field(default_factory=dict)
    stream: str = ""
    content_ids: bool = True

    @cached_property
    def _steps(self) -> tuple[_FieldStep, ...]:
        """Each field's column, converter and lookup rule, looked up once, not per record."""
        steps = []
        for source, name in self.fields.items():
            column = self.table.columns[name]
            path = self.paths.get(source, (source,))
            key = path[0] if len(path) == 1 else None
            blank = column.type_name not in TEXT_TYPES
            if not column.is_lookup:
                convert = _CONVERTERS.get(column.type_name, convert_value)
                if source in self.json_text:
                    convert = json_text
                longest = -1
                if convert is _string:
                    longest = column.max_length if column.max_length is not None else sys.maxsize
                steps.append(
                    _FieldStep(source, path, key, name, column, convert, None, name, blank, longest)
                )
                continue
            rule = self.lookups.get(name)
            nav = next(iter(rule.targets.values())).navigation if rule and rule.targets else name
            null_key = f"{nav}@odata.bind"
            steps.append(_FieldStep(source, path, key, name, column, None, rule, null_key, blank))
        return tuple(steps)

    @cached_property
    def _id_steps(self) -> tuple[_FieldStep, ...]:
        """The steps of the ID field: all a delete or deactivation converts."""
        return tuple(step for step in self._steps if step.name in self.id_columns)

    def map(self, record: Mapping[str, t.Any], operation: str | None = None) -> MappedRecord:
        """Convert ``record`` and name its row (see :class:`MappedRecord`).

        Args:
            record: The record.
            operation: This record's operation, when it is not the stream's.

        Raises:
            RecordRejected: The record cannot be written as it is.
        """
        operation = operation or self.operation
        creating = operation == "create"
        payload: dict[str, t.Any] = {}
        converted: dict[str, t.Any] = {}
        for step in self._id_steps if operation in REMOVALS else self._steps:
            field_key = step.key
            if field_key is None:
                value = nested_value(step.path, step.source, record)
            else:
                value = record.get(field_key, ABSENT)
            if value is ABSENT:
                continue
            name = step.name
            if step.blank_is_null and isinstance(value, str) and not value.strip():
                value = None
            if value is None:
                converted[name] = None
                self._clear(step, payload, creating=creating)
                continue
            if type(value) is str and len(value) <= step.longest:  # text that fits: as it is
                converted[name] = payload[name] = value
                continue
            convert = step.convert
            if convert is None:
                nav, path = _bound(step, value, record)
                payload[nav] = path
                converted[name] = value
                continue
            try:
                converted[name] = payload[name] = convert(step.column, value)
            except RecordRejected as exc:
                raise RecordRejected(f"field '{step.source}': {exc.reason}", exc.code) from None
        key = self._key(payload, converted, record, operation)
        if "statecode" in payload or "statuscode" in payload:
            return MappedRecord(payload, key, state_pair(self.table, payload, operation))
        return MappedRecord(payload, key)

    def _clear(self, step: _FieldStep, payload: dict[str, t.Any], *, creating: bool) -> None:
        """A null value clears its column, except in a create and for the ID field."""
        if not (creating or step.name in self.id_columns):
            payload[_clearing(step)] = None

    def _key(
        self,
        payload: dict[str, t.Any],
        converted: Mapping[str, t.Any],
        record: Mapping[str, t.Any],
        operation: str,
    ) -> dict[str, t.Any] | None:
        """The row's key (see :attr:`MappedRecord.key`); key columns leave a URL's payload."""
        if self.id_mode is IdMode.NONE:
            return self._keyless(payload, record, operation)
        key = {}
        for column in self.id_columns:
            value = converted.get(column)
            if value is None:
                missing = [c for c in self.id_columns if converted.get(c) is None]
                raise RecordRejected(f"ID field {', '.join(missing)} is null or missing")
            key[column] = value
        if operation in REMOVALS:
            payload.clear()
        elif operation != "create" and self.id_mode is not IdMode.MATCH:
            for column in key:  # the URL carries them (§4.3); a matched column stays
                payload.pop(column, None)
        return key

    def _keyless(
        self, payload: dict[str, t.Any], record: Mapping[str, t.Any], operation: str
    ) -> dict[str, t.Any] | None:
        """A create without an ID field: its given primary id, or one derived from content."""
        if operation != "create":
            raise RecordRejected(f"{operation} needs an ID field: set id_field (or key_properties)")
        primary = self.table.primary_id
        if payload.get(primary) is not None:
            return {primary: payload[primary]}
        if not self.content_ids:
            return None
        return {primary: content_guid(self.stream, self.table.logical_name, record)}


def _clearing(step: _FieldStep) -> str:
    """The payload key that clears ``step``'s column (a null value).

    Raises:
        RecordRejected: The column is required.
    """
    if step.column.required_level == "SystemRequired":
        raise RecordRejected(f"column '{step.name}' is required and cannot be cleared")
    return step.null_key


def _bound(
    step: _FieldStep, value: t.Any, record: Mapping[str, t.Any]
) -> tuple[str, str | KeyBind]:
    """``(navigation@odata.bind, path)`` for a lookup field's non-null value."""
    if step.rule is None:
        raise RecordRejected(f"lookup '{step.name}' has no binding (no relationship metadata)")
    return bind_value(step.rule, value, record)


def _named(column: ColumnInfo | None, value: int) -> str:
    label = column.options.get(value) if column else None
    return f"{label!r} ({value})" if label else str(value)


def state_pair(
    table: TableInfo, payload: dict[str, t.Any], operation: str
) -> dict[str, int] | None:
    """Complete and check ``payload``'s state and status (§4.10); the pair left to an update.

    Takes ``statecode`` and ``statuscode`` out of ``payload`` and puts back what the operation
    may carry (see the module docstring).

    Raises:
        RecordRejected: The status belongs to another state (both labels in the reason).
    """
    state = payload.pop("statecode", None)
    status = payload.pop("statuscode", None)
    if state is None and status is None:
        return None
    state, status = _completed(table, state, status)
    pair = {name: v for name, v in (("statecode", state), ("statuscode", status)) if v is not None}
    if operation == "update" or (operation == "create" and state in {None, INITIAL_STATE}):
        if operation == "create":
            pair.pop("statecode", None)  # not valid for create; a new row starts in state 0
        payload.update(pair)
        return None
    return pair


def _completed(
    table: TableInfo, state: int | None, status: int | None
) -> tuple[int | None, int | None]:
    """The state a status belongs to, or the default status of a state; checked to agree."""
    states, statuses = table.columns.get("statecode"), table.columns.get("statuscode")
    owner = statuses.status_state.get(status) if statuses and status is not None else None
    if state is None:
        state = owner
    elif owner is not None and status is not None and owner != state:
        raise RecordRejected(
            f"statuscode {_named(statuses, status)} belongs to statecode {_named(states, owner)}, "
            f"not {_named(states, state)}: send a status of that state, or leave statuscode out "
            "(the state's default status is taken)",
            CODE_STATE_MISMATCH,
        )
    if status is None and states is not None and state is not None:
        status = states.default_status.get(state)
    return state, status
