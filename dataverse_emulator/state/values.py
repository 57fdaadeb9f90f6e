"""Validate and convert JSON values for a column as Dataverse does (reference §4.6, §4.9).

Each column gets one converter, built once per table and cached, so a record costs one dict
lookup and one call per value. Converters return the stored form: GUIDs lower-case, date-times
``YYYY-MM-DDTHH:MM:SSZ`` in UTC, date-only values ``YYYY-MM-DD``, multi-select choices ``"1,9"``,
numbers rounded to the column precision: Decimal and Money (``Edm.Decimal``) as exact
:class:`~decimal.Decimal` values, Double as ``float`` (§4.6).

Nested records (deep insert) never reach a converter: :mod:`dataverse_emulator.wire.navigation`
splits them off first. Not emulated: file and image columns, currency conversion.
"""

from __future__ import annotations

import typing as t
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal

from dataverse_emulator.state.error_catalogue import (
    choice_out_of_range,
    out_of_range,
    payload_error,
    text_too_long,
)

if t.TYPE_CHECKING:
    from dataverse_emulator.state.catalog import Column, Table
    from dataverse_emulator.state.errors import DataverseFault

Converter = t.Callable[[t.Any], t.Any]

EARLIEST = datetime(1753, 1, 1, tzinfo=UTC)
_EARLIEST_DATE = EARLIEST.date()
MAX_MULTISELECT = 150
LOOKUP_TYPES = frozenset({"Lookup", "Customer", "Owner"})

_EDM: dict[str, str] = {
    "String": "Edm.String",
    "Memo": "Edm.String",
    "EntityName": "Edm.String",
    "MultiSelectPicklist": "Edm.String",
    "Integer": "Edm.Int32",
    "Picklist": "Edm.Int32",
    "State": "Edm.Int32",
    "Status": "Edm.Int32",
    "BigInt": "Edm.Int64",
    "Decimal": "Edm.Decimal",
    "Money": "Edm.Decimal",
    "Double": "Edm.Double",
    "Boolean": "Edm.Boolean",
    "Uniqueidentifier": "Edm.Guid",
    "DateTime": "Edm.DateTimeOffset",
    "Image": "Edm.Binary",
}
_LIMITS: dict[str, tuple[float, float]] = {
    "Integer": (-2147483648, 2147483647),
    "BigInt": (-9223372036854775808, 9223372036854775807),
    "Decimal": (-100000000000, 100000000000),
    "Money": (-922337203685477, 922337203685477),
    "Double": (-100000000000, 100000000000),
}
_DEFAULT_PRECISION = {"Money": 2, "Decimal": 2, "Double": 5}


@dataclass(frozen=True, slots=True)
class _Context:
    table: Table
    column: Column

    def literal(self, value: t.Any) -> DataverseFault:
        edm = edm_type(self.column)
        if isinstance(value, dict | list):
            node = "StartObject" if isinstance(value, dict) else "StartArray"
            inner = (
                f"Microsoft.OData.ODataException: An unexpected '{node}' node was found when "
                "reading from the JSON reader. A 'PrimitiveValue' node was expected."
            )
        elif isinstance(value, str):
            inner = (
                f"Microsoft.OData.ODataException: Cannot convert the literal '{value}' "
                f"to the expected type '{edm}'."
            )
        else:
            inner = (
                "Microsoft.OData.ODataException: Cannot convert a primitive value to the "
                f"expected type '{edm}'. See the inner exception for more details."
            )
        return payload_error(self.table, inner)

    def choice(self, value: t.Any) -> DataverseFault:
        return choice_out_of_range(self.table, self.column, value)


def _string(ctx: _Context) -> Converter:
    limit = ctx.column.max_length
    table, column = ctx.table, ctx.column

    def convert(value: t.Any) -> t.Any:
        if value is None:
            return None
        if type(value) is not str:
            raise ctx.literal(value)
        if limit is not None and len(value) > limit:
            raise text_too_long(table, column, limit)
        return value

    return convert


def _integer(ctx: _Context) -> Converter:
    low, high = _LIMITS[ctx.column.type]
    edm_low, edm_high = low, high
    if ctx.column.min_value is not None:
        low = max(low, ctx.column.min_value)
    if ctx.column.max_value is not None:
        high = min(high, ctx.column.max_value)

    def convert(value: t.Any) -> t.Any:
        if value is None:
            return None
        kind = type(value)
        if (kind is float and value.is_integer()) or (
            kind is Decimal and value == value.to_integral_value()
        ):
            value = int(value)
        elif kind is not int:
            raise ctx.literal(value)
        if not edm_low <= value <= edm_high:
            raise ctx.literal(str(value))
        if not low <= value <= high:
            raise out_of_range(ctx.table, ctx.column, value)
        return value

    return convert


def _range(ctx: _Context) -> tuple[t.Any, t.Any, int]:
    """The column's ``MinValue``, ``MaxValue`` (type limits when unset) and ``Precision``."""
    low, high = _LIMITS[ctx.column.type]
    if ctx.column.min_value is not None:
        low = ctx.column.min_value
    if ctx.column.max_value is not None:
        high = ctx.column.max_value
    precision = ctx.column.precision
    if precision is None:
        precision = _DEFAULT_PRECISION[ctx.column.type]
    return low, high, precision


def _decimal(ctx: _Context) -> Converter:
    """Decimal and Money (``Edm.Decimal``): exact, rounded to the column's precision (§4.6).

    Dataverse keeps these as ``System.Decimal``: "decimal numbers are stored in the database
    exactly as specified" (Microsoft Learn, *Types of columns*). More places than ``Precision``
    are rounded half to even, as .NET's ``Math.Round(Decimal, Int32)`` does (Microsoft Learn,
    *Math.Round Method*); Dataverse documents no rounding mode (§11).
    """
    low, high, precision = _range(ctx)
    step = Decimal(1).scaleb(-precision)

    def convert(value: t.Any) -> t.Any:
        if value is None:
            return None
        kind = type(value)
        if kind is Decimal:
            number = value
        elif kind is int or kind is float:
            number = Decimal(str(value))
        else:
            raise ctx.literal(value)
        if not low <= number <= high:
            raise out_of_range(ctx.table, ctx.column, value)
        return number.quantize(step, rounding=ROUND_HALF_EVEN)

    return convert


def _double(ctx: _Context) -> Converter:
    """Double (``Edm.Double``): a float, rounded to the column's precision (§4.6)."""
    low, high, precision = _range(ctx)

    def convert(value: t.Any) -> t.Any:
        if value is None:
            return None
        kind = type(value)
        if kind is not int and kind is not float and kind is not Decimal:
            raise ctx.literal(value)
        if not low <= value <= high:
            raise out_of_range(ctx.table, ctx.column, value)
        return round(float(value), precision)

    return convert


def _boolean(ctx: _Context) -> Converter:
    def convert(value: t.Any) -> t.Any:
        if value is None or type(value) is bool:
            return value
        raise ctx.literal(value)

    return convert


def _choice(ctx: _Context) -> Converter:
    allowed = frozenset(o.value for o in ctx.column.options)

    def convert(value: t.Any) -> t.Any:
        if value is None:
            return None
        if type(value) is not int:
            raise ctx.literal(value)
        if allowed and value not in allowed:
            raise ctx.choice(value)
        return value

    return convert


def _multi_choice(ctx: _Context) -> Converter:
    allowed = frozenset(o.value for o in ctx.column.options)

    def convert(value: t.Any) -> t.Any:
        if value is None:
            return None
        if type(value) is not str:
            raise ctx.literal(value)
        if not value.strip():
            return None
        try:
            chosen = [int(part) for part in value.split(",")]
        except ValueError:
            raise ctx.literal(value) from None
        for item in chosen:
            if allowed and item not in allowed:
                raise ctx.choice(item)
        if len(chosen) > MAX_MULTISELECT:
            raise out_of_range(ctx.table, ctx.column, value)
        return ",".join(str(item) for item in chosen)

    return convert


def _guid(ctx: _Context) -> Converter:
    def convert(value: t.Any) -> t.Any:
        if value is None:
            return None
        if type(value) is not str:
            raise ctx.literal(value)
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise ctx.literal(value) from None

    return convert


def _date_only(ctx: _Context) -> Converter:
    def convert(value: t.Any) -> t.Any:
        if value is None:
            return None
        if type(value) is not str or len(value) != 10:
            raise ctx.literal(value)
        try:
            parsed = date.fromisoformat(value)
        except ValueError:
            raise ctx.literal(value) from None
        if parsed < _EARLIEST_DATE:
            raise out_of_range(ctx.table, ctx.column, value)
        return parsed.isoformat()

    return convert


def _date_time(ctx: _Context) -> Converter:
    def convert(value: t.Any) -> t.Any:
        if value is None:
            return None
        if type(value) is not str or len(value) < 10:
            raise ctx.literal(value)
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ctx.literal(value) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        if parsed < EARLIEST:
            raise out_of_range(ctx.table, ctx.column, value)
        return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    return convert


_SHADOW_TYPES = frozenset({"String", "EntityName", "Virtual"})


def is_property(column: Column) -> bool:
    """Whether a column is a property of the Web API entity type.

    Lookup shadows (``…name``, ``…yominame``, ``…type``) and virtual columns are not: the Web
    API shows them only as annotations. ``…_base`` money columns are.
    """
    if column.type == "Virtual":
        return False
    return not (column.attribute_of and column.type in _SHADOW_TYPES)


def edm_type(column: Column) -> str:
    """The Edm type of a (non-lookup) column's Web API property (§4.6)."""
    if column.type == "DateTime" and is_date_only(column):
        return "Edm.Date"
    return _EDM.get(column.type, "Edm.String")


def is_date_only(column: Column) -> bool:
    """Whether a DateTime column is exposed as ``Edm.Date`` (§4.6).

    The behaviour decides: only ``DateOnly`` behaviour is ``Edm.Date``. UserLocal and
    TimeZoneIndependent columns are ``Edm.DateTimeOffset`` whatever their ``Format``, which is
    display only (a ``DateOnly``-format column keeps its time portion).
    """
    return column.datetime_behavior == "DateOnly"


def converter(table: Table, column: Column) -> Converter:
    """Return the function that validates and converts a JSON value for ``column``.

    Raises:
        DataverseFault: (from the returned function) for a wrong JSON type, a malformed literal,
            a value out of range, an unknown choice or a string over ``MaxLength``.
    """
    kind = column.type
    if kind == "DateTime" and is_date_only(column):
        return _date_only(_Context(table, column))
    return _FACTORIES.get(kind, _string)(_Context(table, column))


_FACTORIES: dict[str, t.Callable[[_Context], Converter]] = {
    "String": _string,
    "Memo": _string,
    "EntityName": _string,
    "Integer": _integer,
    "BigInt": _integer,
    "Decimal": _decimal,
    "Money": _decimal,
    "Double": _double,
    "Boolean": _boolean,
    "Picklist": _choice,
    "State": _choice,
    "Status": _choice,
    "MultiSelectPicklist": _multi_choice,
    "Uniqueidentifier": _guid,
    "DateTime": _date_time,
}
