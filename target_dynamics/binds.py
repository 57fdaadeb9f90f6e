"""Lookups by an alternate key a URL cannot carry, bound by GUID before writing (§3.6).

The mapper, which does no I/O, leaves a :class:`~target_dynamics.mapping.KeyBind` where such a
bind goes. :func:`resolve` finds the rows of a whole batch the way the writer finds rows it
cannot address by key (:meth:`Writer.find_rows`: one ``$filter`` per 25 keys, sent in parallel,
values compared as the environment's collation does) and binds each by its primary id. A key no
row holds rejects its record as Dataverse rejects a bind to a missing key (404 ``0x80060891``,
§4.9), naming the lookup, the table and the key.
"""

from __future__ import annotations

import typing as t

from target_dynamics.errors import KEY_NOT_FOUND_CODE, WebApiError
from target_dynamics.mapping import KeyBind
from target_dynamics.plans import Row

if t.TYPE_CHECKING:
    from collections.abc import Sequence

    from target_dynamics.collation import KeyId
    from target_dynamics.writer import Writer

_Group = tuple[str, str, tuple[str, ...]]
"""Keys looked up together: entity set, primary id and key columns."""


def _group(bind: KeyBind) -> _Group:
    return bind.target.entity_set, bind.target.primary_id, tuple(sorted(bind.key))


def _missing(bind: KeyBind) -> WebApiError:
    """What Dataverse answers a bind to a key no row holds (§4.9), naming lookup and key."""
    values = ", ".join(f"{column} = {value!r}" for column, value in bind.key.items())
    return WebApiError(
        404,
        KEY_NOT_FOUND_CODE,
        f"lookup '{bind.column}': A record with the specified key values does not exist in "
        f"{bind.target.table} entity ({values})",
    )


def resolve(
    writer: Writer, rows: Sequence[Row]
) -> tuple[dict[int, Row], list[tuple[int, WebApiError]]]:
    """Bind the :class:`KeyBind` values in ``rows`` by GUID.

    Returns:
        The rows that held one, by index, bound by GUID; and the records rejected: a key no
        row holds, or the error of the query that looked for it.
    """
    pending: dict[int, list[tuple[str, KeyBind]]] = {}
    for row in rows:
        for name, value in row.payload.items():
            if type(value) is KeyBind:
                pending.setdefault(row.index, []).append((name, value))
    if not pending:
        return {}, []
    found = _find(writer, [bind for binds in pending.values() for _, bind in binds])
    bound: dict[int, Row] = {}
    rejected: list[tuple[int, WebApiError]] = []
    for row in rows:
        if row.index not in pending:
            continue
        payload = dict(row.payload)
        for name, bind in pending[row.index]:
            ids = found[_group(bind)]
            if isinstance(ids, WebApiError):
                rejected.append((row.index, ids))
                break
            # An alternate key is unique (§3.6): at most one row holds its values.
            guids = ids.get(writer.collation.key_id(bind.key))
            if not guids:
                rejected.append((row.index, _missing(bind)))
                break
            payload[name] = bind.path(guids[0])
        else:
            bound[row.index] = Row(row.index, payload, row.key, writer.collation)
    return bound, rejected


def _find(
    writer: Writer, binds: Sequence[KeyBind]
) -> dict[_Group, dict[KeyId, list[str]] | WebApiError]:
    """The primary ids of the rows ``binds`` name, by group and key; or why they are unknown."""
    groups: dict[_Group, dict[KeyId, KeyBind]] = {}
    for bind in binds:
        groups.setdefault(_group(bind), {})[writer.collation.key_id(bind.key)] = bind
    found: dict[_Group, dict[KeyId, list[str]] | WebApiError] = {}
    for group, unique in groups.items():
        entity_set, primary_id, _ = group
        try:
            found[group] = writer.find_rows(
                entity_set, primary_id, [bind.key for bind in unique.values()]
            )
        except WebApiError as error:
            found[group] = error
    return found
