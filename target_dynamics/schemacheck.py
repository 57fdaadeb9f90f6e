"""A compiled yes/no check that a record matches its stream's JSON Schema (the fast path).

``jsonschema`` walks the schema for every record and builds a validator per nested value, which
cost the target more CPU than everything else it does with a record. :func:`compile_check`
turns a schema into nested closures that answer only "valid or not" for the keywords Singer taps
use (``type``, ``properties``, ``additionalProperties``, ``required``, ``items``, ``anyOf``,
``minLength``, ``maxLength``; ``format`` asserts nothing, as in the SDK's default validator).
A schema with any other validation keyword (``$ref``, ``enum``, ``pattern``...) gets no check,
and ``jsonschema`` validates each of its records.

The check is never more lenient than ``jsonschema``'s Draft 2020-12 validator: a record it
accepts is valid, and a record it refuses is validated again by ``jsonschema``, which names the
field and the problem (and has the last word).
"""

from __future__ import annotations

import numbers
import typing as t

from jsonschema.validators import Draft202012Validator

if t.TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    Check = Callable[[t.Any], bool]

_IMPLEMENTED = frozenset(
    {
        "type",
        "properties",
        "additionalProperties",
        "required",
        "items",
        "anyOf",
        "minLength",
        "maxLength",
        "format",
    }
)
"""Validation keywords the check implements (``format`` only annotates without a checker)."""
_VALIDATING = frozenset(Draft202012Validator.VALIDATORS) - {"format"}
"""Keywords that can make a value invalid (``format`` cannot, without a format checker)."""
_OTHER_KEYWORDS = _VALIDATING - _IMPLEMENTED
_PLAIN_TYPES: dict[str, type] = {
    "string": str,
    "object": dict,
    "array": list,
    "boolean": bool,
    "null": type(None),
}


class _Unsupported(Exception):
    """The schema uses a keyword the check does not implement."""


def compile_check(schema: Mapping[str, t.Any] | bool) -> Check | None:
    """A function telling whether a value is valid under ``schema``; None when it cannot.

    Args:
        schema: A JSON Schema that ``jsonschema`` has already checked (``check_schema``).
    """
    try:
        return _node(schema) or _always
    except _Unsupported:
        return None


def _always(_value: t.Any) -> bool:
    return True


def _never(_value: t.Any) -> bool:
    return False


def _node(schema: t.Any) -> Check | None:
    """The check of one (sub)schema; None when every value is valid."""
    if schema is True:
        return None
    if schema is False:
        return _never
    if not isinstance(schema, dict) or _OTHER_KEYWORDS.intersection(schema):
        raise _Unsupported
    types = schema.get("type")
    objects_only = types in ("object", ["object"])
    members = _object(schema, objects_only=objects_only)
    checks = [
        check
        for check in (
            None if members is not None and objects_only else _type(types),
            members,
            _items(schema.get("items", True)),
            _any_of(schema.get("anyOf")),
            _length(schema.get("minLength"), schema.get("maxLength")),
        )
        if check is not None
    ]
    if not checks:
        return None
    combined = checks[0]
    for check in checks[1:]:
        combined = _both(combined, check)
    return combined


def _both(first: Check, second: Check) -> Check:
    return lambda value: first(value) and second(value)


def _type(names: str | list[str] | None) -> Check | None:
    if names is None:
        return None
    wanted = {names} if isinstance(names, str) else set(names)
    plain = tuple(_PLAIN_TYPES[name] for name in wanted if name in _PLAIN_TYPES)
    number, integer = "number" in wanted, "integer" in wanted

    def check(value: t.Any) -> bool:
        if isinstance(value, plain):
            return True
        if isinstance(value, bool):
            return False
        if number:
            return isinstance(value, numbers.Number)
        return integer and (
            isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        )

    return check


def _object(schema: Mapping[str, t.Any], *, objects_only: bool) -> Check | None:
    """The members' check; with ``objects_only`` it also refuses what is not an object."""
    properties = schema.get("properties") or {}
    # Properties whose schema is only a type without numbers: their Python types, checked inline.
    typed = {name: types for name, sub in properties.items() if (types := _plain(sub))}
    # Other properties' checks, None for any value; names not listed take additionalProperties.
    checks = {name: _node(sub) for name, sub in properties.items() if name not in typed}
    extra = _node(schema.get("additionalProperties", True))
    required = frozenset(schema.get("required") or ())
    if not typed and extra is None and not required and not any(checks.values()):
        return None
    return _members(typed, checks, extra, required, objects_only=objects_only)


def _members(
    typed: Mapping[str, tuple[type, ...]],
    checks: Mapping[str, Check | None],
    extra: Check | None,
    required: frozenset[str],
    *,
    objects_only: bool,
) -> Check:
    """An object's check: each member by its type or check (else ``extra``), then ``required``."""

    def check(value: t.Any) -> bool:
        if not isinstance(value, dict):
            return not objects_only
        for name, item in value.items():
            types = typed.get(name)
            if types is not None:
                if not isinstance(item, types):
                    return False
                continue
            item_check = checks.get(name, extra)
            if item_check is not None and not item_check(item):
                return False
        return required <= value.keys()

    return check


def _plain(schema: t.Any) -> tuple[type, ...] | None:
    """The Python types of a schema that only names types, none of them numeric; else None."""
    if not isinstance(schema, dict) or _VALIDATING.intersection(schema) != {"type"}:
        return None
    names = schema["type"]
    names = [names] if isinstance(names, str) else names
    if not all(name in _PLAIN_TYPES for name in names):
        return None
    return tuple(_PLAIN_TYPES[name] for name in names)


def _items(schema: t.Any) -> Check | None:
    item_check = _node(schema)
    if item_check is None:
        return None
    return lambda value: not isinstance(value, list) or all(item_check(i) for i in value)


def _any_of(schemas: list[t.Any] | None) -> Check | None:
    if schemas is None:
        return None
    checks = [check for check in map(_node, schemas) if check is not None]
    if len(checks) < len(schemas):
        return None
    return lambda value: any(check(value) for check in checks)


def _length(low: int | None, high: int | None) -> Check | None:
    if low is None and high is None:
        return None
    floor = low or 0
    ceiling = high if high is not None else float("inf")
    return lambda value: not isinstance(value, str) or floor <= len(value) <= ceiling
