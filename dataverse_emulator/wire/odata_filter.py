"""The ``$filter`` subset Dataverse clients send (§3.1, §3.9, Appendix A.3), parsed and evaluated.

Supported: ``eq ne gt ge lt le``, ``and or not``, parentheses, ``contains``, ``startswith``,
``endswith``, ``x in ('a','b')``, ``Microsoft.Dynamics.CRM.In`` / ``NotIn``
(``PropertyName='x',PropertyValues=['a','b']``), a bare boolean property, property paths
``a/b`` (nested dicts, e.g. ``CanCreateAttributes/Value eq true``), parameter aliases ``@p``
(values passed to :func:`parse_filter`), and the literals of
:func:`~dataverse_emulator.wire.segments.parse_literal` (strings with ``''``, integers,
decimals, GUIDs, datetimes, dates, ``null``, ``true``/``false``, enum members such as
``Microsoft.Dynamics.CRM.OwnershipTypes'UserOwned'``).

Comparison follows Dataverse's SQL collation (§3.10): strings compare case- and
accent-insensitively (``eq`` as well as ``contains``), GUIDs by value, datetimes as instants (ISO
strings in rows are parsed), numbers across ``int``/``float``/``Decimal``. A missing property is
``null``; ``null`` equals only ``null`` and never orders. Parses are cached
(:func:`functools.lru_cache`).

Parentheses and ``not`` nest at most :data:`MAX_DEPTH` deep (deeper: "The recursion limit has been
exceeded.", §2.6); chains of ``and`` / ``or`` are flat, so their length costs no stack.

Example:
    >>> f = parse_filter("LogicalName eq 'ACCOUNT' and contains(name,'corp')")
    >>> f.matches({"LogicalName": "account", "name": "Contoso Corp"})
    True
    >>> sorted(f.properties())
    ['LogicalName', 'name']
    >>> parse_filter("sdkmessageid/name eq @m", (("@m", "'CreateMultiple'"),)).matches(
    ...     {"sdkmessageid": {"name": "CreateMultiple"}}
    ... )
    True
"""

from __future__ import annotations

import functools
import re
import typing as t
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from uuid import UUID

from dataverse_emulator.state import collation
from dataverse_emulator.wire.errors import ParseError
from dataverse_emulator.wire.segments import PathSyntaxError, Value, parse_literal

Row: t.TypeAlias = t.Mapping[str, t.Any]
Predicate: t.TypeAlias = t.Callable[[Row], bool]
Getter: t.TypeAlias = t.Callable[[Row], t.Any]

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>'(?:[^']|'')*')
    | (?P<enum>(?:[A-Za-z_]\w*\.)+[A-Za-z_]\w*'(?:[^']|'')*')
    | (?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b)
    | (?P<datetime>\d{4}-\d{2}-\d{2}T[0-9:.]+(?:Z|[+-]\d{2}:\d{2})?)
    | (?P<date>\d{4}-\d{2}-\d{2}\b)
    | (?P<number>[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    | (?P<alias>@[A-Za-z_]\w*)
    | (?P<name>[A-Za-z_$][\w.$]*(?:/[A-Za-z_$][\w.$]*)*)
    | (?P<punct>[(),\[\]=])
    )""",
    re.VERBOSE,
)
_LITERALS = frozenset({"string", "enum", "guid", "datetime", "date", "number"})
_CONSTANTS = frozenset({"null", "true", "false"})
_COMPARISONS = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})
_STRING_FUNCTIONS = frozenset({"contains", "startswith", "endswith"})
_CRM = "Microsoft.Dynamics.CRM."
_MISSING = object()  # a value that cannot be compared with the literal
MAX_DEPTH = 100
"""§2.6: nesting of parentheses and ``not`` beyond this is refused (OData's own limit is 800)."""


class FilterSyntaxError(ParseError):
    """A ``$filter`` expression outside the supported subset, or malformed."""


@dataclass(frozen=True, slots=True)
class Filter:
    """A parsed ``$filter``.

    Attributes:
        text: The expression as given.
    """

    text: str
    _predicate: Predicate
    _properties: frozenset[str]

    def matches(self, row: Row) -> bool:
        """Return whether ``row`` satisfies the filter."""
        return self._predicate(row)

    def properties(self) -> set[str]:
        """Return the top-level property names the filter reads (``a`` for ``a/b``)."""
        return set(self._properties)


@functools.lru_cache(maxsize=512)
def parse_filter(text: str, aliases: tuple[tuple[str, str], ...] = ()) -> Filter:
    """Parse a percent-decoded ``$filter`` expression.

    Args:
        text: The expression.
        aliases: Parameter aliases from the query string, e.g. ``(("@m", "'CreateMultiple'"),)``.

    Raises:
        FilterSyntaxError: The expression is malformed or uses something unsupported.
    """
    parser = _Parser(_tokenize(text), dict(aliases))
    predicate = parser.expression()
    if (extra := parser.peek()) is not None:
        raise FilterSyntaxError(f"Syntax error at '{extra[1]}' in $filter '{text}'.")
    return Filter(text, predicate, frozenset(parser.properties))


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    end = len(text.rstrip())
    while pos < end:
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise FilterSyntaxError(f"Syntax error at position {pos} in $filter '{text}'.")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


class _Parser:
    """Recursive descent over tokens, building a predicate closure directly."""

    def __init__(self, tokens: list[tuple[str, str]], aliases: dict[str, str]) -> None:
        self.tokens = tokens
        self.index = 0
        self.aliases = aliases
        self.properties: set[str] = set()
        self.depth = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise FilterSyntaxError("Unexpected end of $filter.")
        self.index += 1
        return token

    def expect(self, text: str) -> None:
        _, value = self.take()
        if value != text:
            raise FilterSyntaxError(f"Expected '{text}' but found '{value}' in $filter.")

    def at_word(self, word: str) -> bool:
        token = self.peek()
        return token is not None and token == ("name", word)

    def expression(self) -> Predicate:
        terms = [self.conjunction()]
        while self.at_word("or"):
            self.index += 1
            terms.append(self.conjunction())
        return _any(terms)

    def conjunction(self) -> Predicate:
        terms = [self.negation()]
        while self.at_word("and"):
            self.index += 1
            terms.append(self.negation())
        return _all(terms)

    def negation(self) -> Predicate:
        if self.at_word("not"):
            self.index += 1
            inner = self.nested(self.negation)
            return lambda row: not inner(row)
        return self.comparison()

    def nested(self, parse: t.Callable[[], Predicate]) -> Predicate:
        """Parse one level deeper, refusing more than :data:`MAX_DEPTH` levels (§2.6)."""
        if self.depth >= MAX_DEPTH:
            raise FilterSyntaxError("The recursion limit has been exceeded.")
        self.depth += 1
        try:
            return parse()
        finally:
            self.depth -= 1

    def comparison(self) -> Predicate:
        if self.peek() == ("punct", "("):
            self.index += 1
            inner = self.nested(self.expression)
            self.expect(")")
            return inner
        left = self.operand()
        token = self.peek()
        if token is not None and token[0] == "name" and token[1] in _COMPARISONS:
            self.index += 1
            return _compare(token[1], left, self.operand())
        if self.at_word("in"):
            self.index += 1
            return _member(left, self.literal_list("(", ")"))
        if isinstance(left, _Bool):
            return left.predicate
        if isinstance(left, _Path):
            getter = left.getter
            return lambda row: getter(row) is True
        raise FilterSyntaxError("A $filter term must be a comparison or a boolean property.")

    def operand(self) -> _Path | _Literal | _Bool:
        kind, value = self.take()
        if kind == "name" and value in _CONSTANTS:
            return _Literal(_literal(value))
        if kind in _LITERALS:
            return _Literal(_literal(value))
        if kind == "alias":
            if value not in self.aliases:
                raise FilterSyntaxError(f"The parameter alias '{value}' has no value.")
            return _Literal(_literal(self.aliases[value].strip()))
        if kind == "name" and self.peek() == ("punct", "("):
            self.index += 1
            return _Bool(self.call(value))
        if kind == "name" and value not in _COMPARISONS:
            return self.path(value)
        raise FilterSyntaxError(f"Unexpected '{value}' in $filter.")

    def path(self, text: str) -> _Path:
        parts = text.split("/")
        self.properties.add(parts[0])
        return _Path(_getter(parts))

    def call(self, name: str) -> Predicate:
        if name in _STRING_FUNCTIONS:
            subject = self.operand()
            self.expect(",")
            needle = self.operand()
            self.expect(")")
            if not isinstance(subject, _Path) or not isinstance(needle, _Literal):
                raise FilterSyntaxError(f"{name}() takes a property and a string literal.")
            return _string_function(name, subject.getter, needle.value)
        if name in (f"{_CRM}In", f"{_CRM}NotIn"):
            return self.crm_in(negate=name.endswith("NotIn"))
        raise FilterSyntaxError(f"The $filter function '{name}' is not supported.")

    def crm_in(self, *, negate: bool) -> Predicate:
        arguments: dict[str, Value | list[Value]] = {}
        while self.peek() != ("punct", ")"):
            if arguments:
                self.expect(",")
            _, name = self.take()
            self.expect("=")
            if name == "PropertyValues":
                arguments[name] = self.literal_list("[", "]")
            else:
                arguments[name] = _literal(self.take()[1])
        self.index += 1
        prop, values = arguments.get("PropertyName"), arguments.get("PropertyValues")
        if (
            set(arguments) != {"PropertyName", "PropertyValues"}
            or not isinstance(prop, str)
            or not isinstance(values, list)
        ):
            raise FilterSyntaxError("In/NotIn need PropertyName='x' and PropertyValues=[...].")
        inner = _member(self.path(prop), values)
        return (lambda row: not inner(row)) if negate else inner

    def literal_list(self, opening: str, closing: str) -> list[Value]:
        self.expect(opening)
        values: list[Value] = []
        while True:
            operand = self.operand()
            if not isinstance(operand, _Literal):
                raise FilterSyntaxError("A value list may hold only literals.")
            values.append(operand.value)
            _, value = self.take()
            if value == closing:
                return values
            if value != ",":
                raise FilterSyntaxError(f"Expected ',' or '{closing}' but found '{value}'.")


@dataclass(frozen=True, slots=True)
class _Path:
    getter: Getter


@dataclass(frozen=True, slots=True)
class _Literal:
    value: Value


@dataclass(frozen=True, slots=True)
class _Bool:
    predicate: Predicate


def _literal(text: str) -> Value:
    try:
        return parse_literal(text)
    except PathSyntaxError as exc:
        raise FilterSyntaxError(exc.message) from exc


def _getter(parts: list[str]) -> Getter:
    if len(parts) == 1:
        [name] = parts
        return lambda row: row.get(name)

    def nested(row: Row) -> t.Any:
        value: t.Any = row
        for part in parts:
            if not isinstance(value, t.Mapping):
                return None
            value = value.get(part)
        return value

    return nested


def _any(terms: list[Predicate]) -> Predicate:
    if len(terms) == 1:
        return terms[0]
    return lambda row: any(term(row) for term in terms)


def _all(terms: list[Predicate]) -> Predicate:
    if len(terms) == 1:
        return terms[0]
    return lambda row: all(term(row) for term in terms)


def _compare(op: str, left: _Path | _Literal | _Bool, right: _Path | _Literal | _Bool) -> Predicate:
    if isinstance(left, _Literal) and isinstance(right, _Path):
        op = {"gt": "lt", "ge": "le", "lt": "gt", "le": "ge"}.get(op, op)
        left, right = right, left
    if not isinstance(left, _Path) or isinstance(right, _Bool):
        raise FilterSyntaxError(f"'{op}' needs a property on at least one side.")
    getter = left.getter
    if isinstance(right, _Path):
        other = right.getter
        return lambda row: _holds(op, getter(row), other(row))
    literal = right.value
    if literal is None:
        return (lambda row: getter(row) is None) if op == "eq" else _null_test(op, getter)
    key = _normalizer(literal)
    target = key(literal)
    test = _ORDER[op]
    return lambda row: _test(test, op, key(getter(row)), target)


def _null_test(op: str, getter: Getter) -> Predicate:
    if op == "ne":
        return lambda row: getter(row) is not None
    return lambda _row: False


def _holds(op: str, left: t.Any, right: t.Any) -> bool:
    """Compare two row values (a property-to-property comparison)."""
    if left is None or right is None:
        both = left is None and right is None
        return both if op == "eq" else (not both if op == "ne" else False)
    key = _normalizer(right)
    return _test(_ORDER[op], op, key(left), key(right))


def _test(test: t.Callable[[t.Any, t.Any], bool], op: str, value: t.Any, target: t.Any) -> bool:
    if value is _MISSING:
        return op == "ne"
    try:
        return test(value, target)
    except TypeError:
        return op == "ne"


def _member(path: _Path | _Literal | _Bool, values: list[Value]) -> Predicate:
    if not isinstance(path, _Path):
        raise FilterSyntaxError("'in' needs a property on its left.")
    getter = path.getter
    normalized = [(_normalizer(v), v) for v in values if v is not None]
    keyed = {(key, key(value)) for key, value in normalized}
    with_null = None in values

    def member(row: Row) -> bool:
        value = getter(row)
        if value is None:
            return with_null
        return any(key(value) == target for key, target in keyed)

    return member


def _string_function(name: str, getter: Getter, needle: Value) -> Predicate:
    if not isinstance(needle, str):
        raise FilterSyntaxError(f"{name}() needs a string literal.")
    folded = collation.fold(needle)
    method = {"contains": str.__contains__, "startswith": str.startswith}.get(name, str.endswith)

    def test(row: Row) -> bool:
        value = getter(row)
        return isinstance(value, str) and method(collation.fold(value), folded)

    return test


def _normalizer(literal: t.Any) -> t.Callable[[t.Any], t.Any]:
    """Return the function mapping values into the comparison domain of ``literal``."""
    if isinstance(literal, bool):
        return _as_bool
    if isinstance(literal, int | float | Decimal):
        return _as_number
    if isinstance(literal, UUID):
        return _as_guid
    if isinstance(literal, datetime):
        return _as_datetime
    if isinstance(literal, date):
        return _as_date
    return _as_text


def _as_bool(value: t.Any) -> t.Any:
    return value if isinstance(value, bool) else _MISSING


def _as_number(value: t.Any) -> t.Any:
    if isinstance(value, bool) or value is None:
        return _MISSING
    if isinstance(value, int | Decimal):
        return value
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return _MISSING


def _as_guid(value: t.Any) -> t.Any:
    if value is None:
        return _MISSING
    return str(value).lower()


def _as_text(value: t.Any) -> t.Any:
    if value is None:
        return _MISSING
    return collation.fold(value if isinstance(value, str) else str(value))


def _as_datetime(value: t.Any) -> t.Any:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return _MISSING
    if not isinstance(value, datetime):
        return _MISSING
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _as_date(value: t.Any) -> t.Any:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return _MISSING
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else _MISSING


_ORDER: dict[str, t.Callable[[t.Any, t.Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
}
