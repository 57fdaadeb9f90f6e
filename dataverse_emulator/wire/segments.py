"""Resource paths: segments, key predicates, literals and ``@odata.bind`` values (§2.1, §3.1, §4.3).

A path relative to the service root is percent-decoded once, like Dataverse does per segment,
except that ``%2F`` never splits a segment: ``accounts(name='a%2Fb')`` addresses the value
``a/b``. Splitting respects quotes and parentheses; string literals use ``''`` for a quote, so a
client that doubles and percent-encodes (``'O%27%27Neil'``) addresses ``O'Neil``.

Literals (:func:`parse_literal`): ``'text'``, integers, decimals (:class:`~decimal.Decimal`),
``true``/``false``, ``null``, bare GUIDs (:class:`~uuid.UUID`), ``2024-01-01T00:00:00Z``
(aware :class:`~datetime.datetime`, UTC when no offset), ``2024-01-01`` (:class:`~datetime.date`)
and enum members ``Microsoft.Dynamics.CRM.OwnershipTypes'UserOwned'`` (the member name, ``str``).

Example:
    >>> split_path("contacts(emailaddress1='a%40b.c')/parentcustomerid_account")
    [Segment(name='contacts', key={'emailaddress1': 'a@b.c'}), \
Segment(name='parentcustomerid_account', key=None)]
    >>> split_path("accounts(00000000-0000-0000-0000-00000000000A)")[0].key
    '00000000-0000-0000-0000-00000000000a'
    >>> parse_bind("/accounts(accountnumber='A1')")
    ('accounts', {'accountnumber': 'A1'})
    >>> crm_name("Microsoft.Dynamics.CRM.CreateMultiple")
    'CreateMultiple'
"""

from __future__ import annotations

import itertools
import re
import typing as t
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from urllib.parse import unquote
from uuid import UUID

from dataverse_emulator.wire.errors import ParseError

Value: t.TypeAlias = str | int | Decimal | bool | datetime | date | UUID | None
"""A typed OData literal."""

NAMESPACE = "Microsoft.Dynamics.CRM."
"""The namespace of Dataverse casts (``…AttributeMetadata``) and actions (``…CreateMultiple``)."""

_SLASH = "\x00"  # stands for %2F until the path is split
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_INT = re.compile(r"[+-]?\d+")
_DECIMAL = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?")
_ENUM = re.compile(r"(?:[A-Za-z_][A-Za-z0-9_]*\.)+[A-Za-z_][A-Za-z0-9_]*'[^']*'")
_NAME = re.compile(r"[A-Za-z_$][A-Za-z0-9_.$]*")
_PROPERTY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ROOT = re.compile(r"(?:https?://[^/]+)?/api/data/v\d+\.\d+/")
_SIMPLE_KEYED = re.compile(
    r"([A-Za-z_][A-Za-z0-9_]*)\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*'([^'()/]*)'\s*\)"
)
"""One segment keyed by one string literal without quotes (``contacts(emailaddress1='a')``)."""
_CONSTANTS: dict[str, Value] = {"null": None, "true": True, "false": False}


class PathSyntaxError(ParseError):
    """A resource path, key predicate or literal that cannot be parsed."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One path segment.

    Attributes:
        name: The segment name, e.g. ``contacts``, ``Attributes``, ``$1``, ``$ref``,
            ``Microsoft.Dynamics.CRM.CreateMultiple``.
        key: ``None`` without a key; the lower-cased GUID for ``contacts(<guid>)``; a dict of
            typed values for ``contacts(emailaddress1='a')``, composite keys and function
            parameters (``EntityDefinitions(LogicalName='contact')``). ``WhoAmI()`` has key None.
    """

    name: str
    key: str | dict[str, Value] | None = None


def split_path(path: str) -> list[Segment]:
    """Split a raw (percent-encoded) path relative to the service root into segments.

    A leading ``/`` is ignored; an empty path has no segments.

    Raises:
        PathSyntaxError: Unbalanced quotes or parentheses, empty segments, bad keys or literals.
    """
    text = _decode(path.removeprefix("/"))
    if not text:
        return []
    simple = _SIMPLE_KEYED.fullmatch(text)
    if simple is not None:  # fast path for UpsertMultiple's @odata.id values
        name, column, value = simple.groups()
        return [Segment(name, {column: value.replace(_SLASH, "/")})]
    return [_segment(raw) for raw in split_top_level(text, "/", "path")]


def parse_literal(text: str) -> Value:
    """Parse one OData literal that has already been percent-decoded.

    Raises:
        PathSyntaxError: The text is not a literal of a supported type.
    """
    if text.startswith("'"):
        if len(text) < 2 or not text.endswith("'") or "'" in text[1:-1].replace("''", ""):
            raise PathSyntaxError(f"Unterminated or malformed string literal {text}.")
        return text[1:-1].replace("''", "'")
    if text in _CONSTANTS:
        return _CONSTANTS[text]
    for pattern, convert in _TYPED:
        if pattern.fullmatch(text):
            return convert(text)
    raise PathSyntaxError(f"Unrecognized literal {text}.")


def parse_bind(value: str) -> tuple[str, str | dict[str, Value] | None]:
    """Parse an ``@odata.bind`` / ``@odata.id`` value into entity set and key (§4.6).

    Accepts ``/accounts(<guid>)``, ``accounts(<guid>)``, ``/accounts(accountnumber='A1')``,
    absolute ``https://host/api/data/v9.2/accounts(<guid>)`` and ``/api/data/v9.2/…`` forms, and
    a change-set reference ``$1`` (returned as ``("$1", None)``).

    Raises:
        PathSyntaxError: Not a single keyed segment.
    """
    match = _ROOT.match(value)
    rest = value[match.end() :] if match else value.removeprefix("/")
    segments = split_path(rest)
    if len(segments) != 1:
        raise PathSyntaxError(f"The reference '{value}' does not address one record.")
    [segment] = segments
    if segment.key is None and not segment.name.startswith("$"):
        raise PathSyntaxError(f"The reference '{value}' has no key.")
    return segment.name, segment.key


def crm_name(name: str) -> str | None:
    """Return ``name`` without the ``Microsoft.Dynamics.CRM.`` namespace, or None if unqualified.

    Casts (``Microsoft.Dynamics.CRM.StringAttributeMetadata``) and bound actions
    (``Microsoft.Dynamics.CRM.CreateMultiple``) both carry it; the caller knows which is which.
    """
    if not name.startswith(NAMESPACE) or name == NAMESPACE:
        return None
    return name[len(NAMESPACE) :]


def split_top_level(text: str, separator: str, what: str) -> list[str]:
    """Split on ``separator`` outside single-quoted strings and parentheses.

    Args:
        text: Percent-decoded text.
        separator: One character.
        what: Names the text in error messages (``"path"``, ``"key"``, ``"$expand"``).

    Raises:
        PathSyntaxError: Unbalanced quotes or parentheses.
    """
    if "'" not in text and "(" not in text:
        return text.split(separator)
    bounds = [-1, *_top_level_separators(text, separator, what), len(text)]
    return [text[start + 1 : end] for start, end in itertools.pairwise(bounds)]


def _top_level_separators(text: str, separator: str, what: str) -> list[int]:
    """The positions of ``separator`` outside quotes and parentheses.

    Raises:
        PathSyntaxError: Unbalanced quotes or parentheses.
    """
    found: list[int] = []
    depth = 0
    quoted = False
    for index, char in enumerate(text):
        if char == "'":
            quoted = not quoted  # '' inside a string toggles twice
        elif quoted:
            continue
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise PathSyntaxError(f"Unbalanced parentheses in {what} '{text}'.")
        elif char == separator and depth == 0:
            found.append(index)
    if quoted or depth:
        raise PathSyntaxError(f"Unbalanced quotes or parentheses in {what} '{text}'.")
    return found


def _decode(path: str) -> str:
    if "\x00" in path or "%00" in path:
        raise PathSyntaxError("The path contains a NUL character.")
    if "%" not in path:
        return path
    protected = path.replace("%2F", _SLASH).replace("%2f", _SLASH)
    try:
        return unquote(protected, errors="strict")
    except UnicodeDecodeError as exc:
        raise PathSyntaxError("The path is not valid percent-encoded UTF-8.") from exc


def _segment(raw: str) -> Segment:
    open_at = raw.find("(")
    name = (raw if open_at == -1 else raw[:open_at]).replace(_SLASH, "/")
    if not _NAME.fullmatch(name):
        raise PathSyntaxError(f"Invalid segment '{raw.replace(_SLASH, '/')}'.")
    if open_at == -1:
        return Segment(name)
    if not raw.endswith(")"):
        raise PathSyntaxError(f"Unexpected text after the key in segment '{raw}'.")
    inner = raw[open_at + 1 : -1].strip()
    return Segment(name, _key(inner.replace(_SLASH, "/")) if inner else None)


def _key(inner: str) -> str | dict[str, Value]:
    items = split_top_level(inner, ",", "key")
    if len(items) == 1 and not _is_named(items[0]):
        value = items[0].strip()
        if _GUID.fullmatch(value):
            return value.lower()
        raise PathSyntaxError(f"The key value {value} is not a GUID; name the key property.")
    key: dict[str, Value] = {}
    for item in items:
        if not _is_named(item):
            raise PathSyntaxError(f"Key part '{item}' has no property name.")
        name, _, literal = item.partition("=")
        name = name.strip()
        if not _PROPERTY.fullmatch(name) or name in key:
            raise PathSyntaxError(f"Invalid or repeated key property '{name}'.")
        key[name] = parse_literal(literal.strip())
    return key


def _enum_member(text: str) -> str:
    return text[text.index("'") + 1 : -1]


def _is_named(item: str) -> bool:
    equals = item.find("=")
    quote = item.find("'")
    return equals > 0 and (quote == -1 or equals < quote)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise PathSyntaxError(f"Invalid date literal {text}.") from exc


def _datetime(text: str) -> datetime:
    """Parse an ISO 8601 datetime; one without offset is UTC (§4.6)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise PathSyntaxError(f"Invalid datetime literal {text}.") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


_TYPED: tuple[tuple[re.Pattern[str], t.Callable[[str], Value]], ...] = (
    (_GUID, UUID),
    (_INT, int),
    (_DATETIME, _datetime),
    (_DATE, _date),
    (_DECIMAL, Decimal),
    (_ENUM, _enum_member),
)
