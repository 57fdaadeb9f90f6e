"""``GET sdkmessagefilters``: the bulk-availability probe clients run at start-up (§6.5, §3.9).

The rows are derived from the catalog: every table has Create, Update, Delete and Retrieve;
tables with ``supports_bulk`` also CreateMultiple, UpdateMultiple and UpsertMultiple. A
non-empty ``value`` means the message is available. Supports ``$select``, ``$filter`` (including
``sdkmessageid/name`` and parameter aliases), ``$expand=sdkmessageid($select=name)`` and
``$top``; nothing else.
"""

from __future__ import annotations

import typing as t
import uuid

from dataverse_emulator.wire.call import Call, json_response
from dataverse_emulator.wire.query_options import parse_query, top

if t.TYPE_CHECKING:
    from dataverse_emulator.http import Response

ENTITY_SET = "sdkmessagefilters"
ALWAYS = ("Create", "Update", "Delete", "Retrieve")
BULK = ("CreateMultiple", "UpdateMultiple", "UpsertMultiple")
_NAMESPACE = uuid.UUID("5d1f0b1e-7c0a-4c39-9a57-3f0f6a2c0b11")


def _id(name: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, name))


def _rows(call: Call) -> list[dict[str, t.Any]]:
    rows = []
    for table in call.env.catalog.tables():
        names = ALWAYS + (BULK if table.supports_bulk else ())
        for name in names:
            message_id = _id(name)
            rows.append(
                {
                    "sdkmessagefilterid": str(
                        uuid.uuid5(_NAMESPACE, f"{table.logical_name}/{name}")
                    ),
                    "primaryobjecttypecode": table.logical_name,
                    "_sdkmessageid_value": message_id,
                    "sdkmessageid": {"sdkmessageid": message_id, "name": name},
                }
            )
    return rows


def query(call: Call) -> Response:
    """Answer ``GET sdkmessagefilters?...``."""
    options = parse_query(call.request.query)
    rows = _rows(call)
    if options.filter is not None:
        rows = [row for row in rows if options.filter.matches(row)]
    rows = top(rows, options.top)
    expand = "sdkmessageid" in options.expand
    select = options.select
    value = []
    for row in rows:
        item = {
            k: v for k, v in row.items() if k != "sdkmessageid" and (select is None or k in select)
        }
        item["sdkmessagefilterid"] = row["sdkmessagefilterid"]
        if expand:
            nested = options.expand["sdkmessageid"].select
            message = row["sdkmessageid"]
            item["sdkmessageid"] = {
                k: v
                for k, v in message.items()
                if nested is None or k in nested or k == "sdkmessageid"
            }
        value.append(item)
    projection = f"({','.join(select)})" if select else ""
    return json_response(
        200, {"@odata.context": f"{call.root}/$metadata#{ENTITY_SET}{projection}", "value": value}
    )
