"""Query options, their application to rows, and the ``Prefer`` header (§2.2, §3.1, §5.4, §8).

The raw query string is split on ``&`` and decoded with form rules (``+`` is a space, as
``requests`` sends ``params=``; a literal plus arrives as ``%2B``). Supported options:
``$select``, ``$filter``, ``$top``, ``$orderby``, ``$count``, ``$expand`` (nested
``Attributes($select=LogicalName;$filter=…)``) and ``$skiptoken``; any other ``$option``
(``$skip``, ``$search``, ``$apply``, …) raises :class:`QueryOptionError`. Parameter aliases
(``@p=…``) feed ``$filter``; other plain parameters (``tag``, ``partitionId``) are kept in
:attr:`QueryOptions.parameters`.

Paging (§2.7, Microsoft Learn "Page results"): a skiptoken is Dataverse's paging cookie,
``<cookie pagenumber="N" pagingcookie="…" istracking="False" />``, whose ``pagingcookie`` is the
URL-encoded ``<cookie page="N-1"><{primaryid} last="{GUID}" first="{GUID}" /></cookie>`` naming
the first and last rows of the page before. The next page starts after the ``last`` row (or,
when that row is gone, after ``N-1`` full pages). Wire puts it in ``@odata.nextLink`` with
:func:`next_link_query`. ``$top`` and paging are independent here; the caller decides how they
combine.

Example:
    >>> options = parse_query(
    ...     "$select=LogicalName,EntitySetName&$filter=LogicalName+eq+'account'"
    ...     "&$expand=Attributes($select=LogicalName;$top=1)"
    ... )
    >>> options.select, options.filter.text, options.expand["Attributes"].top
    (['LogicalName', 'EntitySetName'], "LogicalName eq 'account'", 1)
    >>> parse_prefer('return=representation,odata.maxpagesize=50')
    Prefer(return_representation=True, continue_on_error=False, maxpagesize=50, \
include_annotations=None)
"""

from __future__ import annotations

import functools
import re
import typing as t
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import quote, unquote, unquote_plus

from dataverse_emulator.state import collation
from dataverse_emulator.wire.errors import ParseError
from dataverse_emulator.wire.odata_filter import Filter, FilterSyntaxError, parse_filter
from dataverse_emulator.wire.segments import PathSyntaxError, split_top_level

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

DEFAULT_PAGE_SIZE = 5000
"""Rows per page when the client sends no ``odata.maxpagesize`` (Dataverse's default)."""

_PROPERTY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:/[A-Za-z_][A-Za-z0-9_]*)*")
_EXPAND_ITEM = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:\((.*)\))?", re.DOTALL)
_COOKIE = re.compile(
    r'<cookie pagenumber="(\d+)" pagingcookie="([^"<>]*)" istracking="(?:True|False)" />'
)
_PAGING_COOKIE = re.compile(
    r'<cookie page="(\d+)"><(\w+) last="\{([0-9A-Fa-f-]{36})\}" first="\{[0-9A-Fa-f-]{36}\}" />'
    r"</cookie>"
)
_ESCAPE = re.compile(r"%[0-9A-F]{2}")
_NESTED = frozenset({"$select", "$filter", "$top", "$orderby", "$expand"})
_TOP_LEVEL = _NESTED | {"$count", "$skiptoken"}
_R = t.TypeVar("_R")
_Row = t.TypeVar("_Row", bound="Mapping[str, t.Any]")
"""A row of any shape: the helpers below keep the caller's row type."""


class QueryOptionError(ParseError):
    """A query option that is unknown, repeated or malformed (wire answers 400)."""


@dataclass(frozen=True, slots=True)
class QueryOptions:
    """Parsed system query options.

    Attributes:
        select: Selected property names, or None for all.
        filter: The parsed ``$filter``, or None.
        top: ``$top``, or None.
        orderby: ``(property path, descending)`` pairs, in priority order.
        count: ``$count=true``.
        expand: Navigation property -> nested options.
        skiptoken: The raw ``$skiptoken``, or None.
        parameters: Plain parameters that are neither options nor aliases (``tag``, …).
    """

    select: list[str] | None = None
    filter: Filter | None = None
    top: int | None = None
    orderby: list[tuple[str, bool]] = field(default_factory=list)
    count: bool = False
    expand: dict[str, QueryOptions] = field(default_factory=dict)
    skiptoken: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Prefer:
    """The preferences of a ``Prefer`` header that change a response (§2.2, §5.4)."""

    return_representation: bool = False
    continue_on_error: bool = False
    maxpagesize: int | None = None
    include_annotations: str | None = None


def parse_query(query: str) -> QueryOptions:
    """Parse a raw query string (without ``?``).

    Raises:
        QueryOptionError: Unknown or repeated ``$`` option, or a malformed value.
    """
    options: dict[str, str] = {}
    aliases: list[tuple[str, str]] = []
    parameters: dict[str, str] = {}
    for pair in query.split("&"):
        if not pair:
            continue
        raw_name, _, raw_value = pair.partition("=")
        name, value = unquote_plus(raw_name).strip(), unquote_plus(raw_value)
        if name.startswith("$"):
            lowered = name.lower()
            if lowered not in _TOP_LEVEL:
                raise QueryOptionError(f"The query parameter {name} is not supported")
            if lowered in options:
                raise QueryOptionError(f"The query parameter {name} is specified more than once.")
            options[lowered] = value
        elif name.startswith("@"):
            aliases.append((name, value))
        else:
            parameters[name] = value
    return _build(options, tuple(aliases), parameters)


def parse_prefer(header: str) -> Prefer:
    """Parse a ``Prefer`` header (several headers joined with commas are fine)."""
    values: dict[str, str] = {}
    for item in _split_quoted(header):
        name, _, value = item.partition("=")
        values[name.strip().lower()] = value.strip().strip('"')
    size = values.get("odata.maxpagesize", "")
    return Prefer(
        return_representation=values.get("return") == "representation",
        continue_on_error="odata.continue-on-error" in values,
        maxpagesize=int(size) if size.isdigit() and int(size) > 0 else None,
        include_annotations=values.get("odata.include-annotations"),
    )


def project(
    rows: Iterable[Mapping[str, t.Any]], select: Sequence[str] | None, always: Sequence[str] = ()
) -> list[dict[str, t.Any]]:
    """Keep the ``always`` keys present in each row, then the selected ones (null if absent)."""
    if select is None:
        return [dict(row) for row in rows]
    return [
        {**{k: row[k] for k in always if k in row}, **{k: row.get(k) for k in select}}
        for row in rows
    ]


def order(
    rows: Iterable[_R],
    orderby: Sequence[tuple[str, bool]],
    view: t.Callable[[_R], Mapping[str, t.Any]] | None = None,
) -> list[_R]:
    """Sort rows like Dataverse: strings by the collation (§3.10), nulls first when ascending.

    ``view`` maps a row to the OData properties the paths name (the row itself when None).
    """
    result = list(rows)
    if not orderby:
        return result
    views = {id(row): view(row) for row in result} if view is not None else None
    for path, descending in reversed(orderby):
        parts = path.split("/")
        if views is None:
            result.sort(key=functools.partial(_path_key, parts), reverse=descending)
        else:
            keys = {key: _sort_key(_lookup(seen, parts)) for key, seen in views.items()}
            result.sort(key=functools.partial(_seen_key, keys), reverse=descending)
    return result


def top(rows: Sequence[_R], count: int | None) -> list[_R]:
    """Return the first ``count`` rows (all when None)."""
    return list(rows if count is None else rows[:count])


def page(
    rows: Sequence[_Row],
    maxpagesize: int | None,
    skiptoken: str | None,
    primary_id: str,
) -> tuple[list[_Row], str | None]:
    """Return one page of ``rows`` and the skiptoken of the next page (None on the last page).

    Args:
        rows: Every row of the query, in its order.
        maxpagesize: Rows per page (:data:`DEFAULT_PAGE_SIZE` when None).
        skiptoken: The ``$skiptoken`` of the request, or None for the first page.
        primary_id: The column holding each row's id, named in the paging cookie.

    Raises:
        QueryOptionError: The skiptoken is not a paging cookie of this table.
    """
    size = maxpagesize or DEFAULT_PAGE_SIZE
    number, start = _position(rows, skiptoken, size, primary_id) if skiptoken else (1, 0)
    end = start + size
    chosen = list(rows[start:end])
    if end >= len(rows):
        return chosen, None
    first, last = (str(chosen[i][primary_id]).upper() for i in (0, -1))
    inner = (
        f'<cookie page="{number}"><{primary_id} last="{{{last}}}" first="{{{first}}}" /></cookie>'
    )
    encoded = _ESCAPE.sub(lambda m: m.group().lower(), quote(inner, safe=""))
    return (
        chosen,
        f'<cookie pagenumber="{number + 1}" pagingcookie="{encoded}" istracking="False" />',
    )


def _position(
    rows: Sequence[Mapping[str, t.Any]], token: str, size: int, primary_id: str
) -> tuple[int, int]:
    """The page number a skiptoken asks for and the index of its first row."""
    outer = _COOKIE.fullmatch(token.strip())
    inner = _PAGING_COOKIE.fullmatch(unquote(outer.group(2))) if outer else None
    if outer is None or inner is None or inner.group(2) != primary_id:
        raise QueryOptionError("The $skiptoken is not valid.")
    number, last = int(outer.group(1)), inner.group(3).lower()
    for index, row in enumerate(rows):
        if str(row.get(primary_id, "")).lower() == last:
            return number, index + 1
    return number, (number - 1) * size


def next_link_query(query: str, skiptoken: str) -> str:
    """Return the raw query string with ``$skiptoken`` replaced by (or set to) ``skiptoken``."""
    kept = [p for p in query.split("&") if p and unquote_plus(p.partition("=")[0]) != "$skiptoken"]
    kept.append(f"$skiptoken={quote(skiptoken, safe='=/')}")  # as Learn's example encodes it
    return "&".join(kept)


def _build(
    options: Mapping[str, str], aliases: tuple[tuple[str, str], ...], parameters: dict[str, str]
) -> QueryOptions:
    filter_text = options.get("$filter")
    try:
        parsed = parse_filter(filter_text, aliases) if filter_text is not None else None
    except FilterSyntaxError as exc:
        raise QueryOptionError(exc.message) from exc
    return QueryOptions(
        select=_select(options["$select"]) if "$select" in options else None,
        filter=parsed,
        top=_top(options["$top"]) if "$top" in options else None,
        orderby=_orderby(options.get("$orderby", "")),
        count=_count(options.get("$count", "false")),
        expand=_expand(options.get("$expand", ""), aliases),
        skiptoken=options.get("$skiptoken"),
        parameters=parameters,
    )


def _select(text: str) -> list[str] | None:
    names = [name.strip() for name in text.split(",")]
    if names == ["*"]:
        return None
    for name in names:
        if not _PROPERTY.fullmatch(name):
            raise QueryOptionError(f"Invalid property name '{name}' in $select.")
    return names


def _top(text: str) -> int:
    if not (text.strip().isascii() and text.strip().isdigit()):
        raise QueryOptionError(f"Invalid value '{text}' for $top: expected a non-negative integer.")
    return int(text)


def _count(text: str) -> bool:
    if text not in ("true", "false"):
        raise QueryOptionError(f"Invalid value '{text}' for $count: expected true or false.")
    return text == "true"


def _orderby(text: str) -> list[tuple[str, bool]]:
    if not text.strip():
        return []
    result: list[tuple[str, bool]] = []
    for item in text.split(","):
        words = item.split()
        direction = words[1].lower() if len(words) == 2 else "asc"
        if not words or len(words) > 2 or not _PATH.fullmatch(words[0]):
            raise QueryOptionError(f"Invalid $orderby item '{item.strip()}'.")
        if direction not in ("asc", "desc"):
            raise QueryOptionError(f"Invalid $orderby direction '{words[1]}'.")
        result.append((words[0], direction == "desc"))
    return result


def _expand(text: str, aliases: tuple[tuple[str, str], ...]) -> dict[str, QueryOptions]:
    if not text.strip():
        return {}
    expand: dict[str, QueryOptions] = {}
    for item in _split(text, ",", "$expand"):
        match = _EXPAND_ITEM.fullmatch(item.strip())
        if match is None or match.group(1) in expand:
            raise QueryOptionError(f"Invalid or repeated $expand item '{item.strip()}'.")
        expand[match.group(1)] = _nested(match.group(2) or "", aliases)
    return expand


def _nested(text: str, aliases: tuple[tuple[str, str], ...]) -> QueryOptions:
    options: dict[str, str] = {}
    for item in _split(text, ";", "$expand") if text.strip() else []:
        name, sep, value = item.partition("=")
        name = name.strip().lower()
        if not sep or name not in _NESTED or name in options:
            raise QueryOptionError(f"Invalid nested query option '{item.strip()}' in $expand.")
        options[name] = value
    return _build(options, aliases, {})


def _split(text: str, separator: str, what: str) -> list[str]:
    try:
        return split_top_level(text, separator, what)
    except PathSyntaxError as exc:
        raise QueryOptionError(exc.message) from exc


def _split_quoted(header: str) -> list[str]:
    """Split a header on commas outside double quotes, dropping empty items."""
    items: list[str] = []
    quoted = False
    start = 0
    for index, char in enumerate(header):
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            items.append(header[start:index])
            start = index + 1
    items.append(header[start:])
    return [item.strip() for item in items if item.strip()]


def _lookup(row: Mapping[str, t.Any], parts: list[str]) -> t.Any:
    value: t.Any = row
    for part in parts:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _path_key(parts: list[str], row: Mapping[str, t.Any]) -> tuple[t.Any, ...]:
    return _sort_key(_lookup(row, parts))


def _seen_key(keys: Mapping[int, tuple[t.Any, ...]], row: object) -> tuple[t.Any, ...]:
    return keys[id(row)]


def _sort_key(value: t.Any) -> tuple[t.Any, ...]:
    """Nulls first, then booleans and numbers, then text (by the collation), then the rest."""
    if value is None:
        return (0, 0)
    if isinstance(value, bool | int | float | Decimal):
        return (1, value)
    if isinstance(value, str):
        return (2, collation.fold(value))
    return (3, str(value))
