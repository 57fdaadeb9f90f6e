"""Query options, row application and ``Prefer`` (§2.2, §3.1, §3.9, §5.4, §5.5, §8)."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import quote, urlsplit

import pytest
import requests

from dataverse_emulator.wire.query_options import (
    DEFAULT_PAGE_SIZE,
    Prefer,
    QueryOptionError,
    next_link_query,
    order,
    page,
    parse_prefer,
    parse_query,
    project,
    top,
)

ANNOTATIONS = "OData.Community.Display.V1.FormattedValue,Microsoft.Dynamics.CRM.lookuplogicalname"


def sent_query(params: dict[str, str]) -> str:
    """The raw query string `requests` puts on the wire for `params=`."""
    url = requests.Request("GET", "https://h/api/data/v9.2/x", params=params).prepare().url
    return urlsplit(url).query


def test_microsoft_sdk_table_lookup() -> None:
    """§3.9: the SDK's first call, spaces sent as `+`, `$` and `,` percent-encoded."""
    query = sent_query(
        {
            "$select": "LogicalName,EntitySetName,PrimaryIdAttribute",
            "$filter": "LogicalName eq 'account'",
        }
    )
    assert "+eq+" in query
    options = parse_query(query)
    assert options.select == ["LogicalName", "EntitySetName", "PrimaryIdAttribute"]
    assert options.filter is not None
    assert options.filter.text == "LogicalName eq 'account'"
    assert options.filter.matches({"LogicalName": "account"})


def test_plus_is_space_and_encoded_plus_is_plus() -> None:
    """§5.5: decode `+` as a space (requests `params=`) and `%2B` as a plus."""
    query = sent_query({"$filter": "createdon ge 2024-01-01T00:00:00+01:00"})
    options = parse_query(query)
    assert options.filter is not None
    assert options.filter.text == "createdon ge 2024-01-01T00:00:00+01:00"
    assert parse_query("$filter=name%20eq%20'a+b'").filter.text == "name eq 'a b'"


def test_picklist_cast_query_with_nested_expand() -> None:
    """§3.9: `$expand=OptionSet($select=Options)`."""
    options = parse_query("$select=LogicalName&$expand=OptionSet($select=Options)")
    assert options.select == ["LogicalName"]
    assert options.expand["OptionSet"].select == ["Options"]


def test_airbyte_expand_and_nested_filter() -> None:
    """§3.9: airbyte's `$expand=Attributes($select=…)`, plus a nested `$filter` with `;`."""
    options = parse_query(
        "$select=LogicalName,EntitySetName"
        "&$expand=Attributes($select=LogicalName,AttributeType;"
        "$filter=AttributeType eq 'String' or LogicalName eq 'a;b'),Keys"
    )
    attributes = options.expand["Attributes"]
    assert attributes.select == ["LogicalName", "AttributeType"]
    assert attributes.filter is not None
    assert attributes.filter.matches({"AttributeType": "string"})
    assert attributes.filter.matches({"LogicalName": "a;b"})
    assert not attributes.filter.matches({"LogicalName": "a"})
    assert options.expand["Keys"] == parse_query("")


def test_dataverse_api_sdkmessagefilter_probe() -> None:
    """§3.9: nested expand on a lookup and a filter through it."""
    options = parse_query(
        sent_query(
            {
                "$select": "sdkmessagefilterid",
                "$expand": "sdkmessageid($select=name)",
                "$filter": "(sdkmessageid/name eq 'CreateMultiple' or sdkmessageid/name eq "
                "'UpdateMultiple') and primaryobjecttypecode eq 'account'",
            }
        )
    )
    assert options.expand["sdkmessageid"].select == ["name"]
    assert options.filter is not None
    assert options.filter.properties() == {"sdkmessageid", "primaryobjecttypecode"}


def test_parameter_aliases_feed_the_filter() -> None:
    """§6.5: the documented bulk-availability probe uses `@message` and `@table`."""
    options = parse_query(
        "$select=sdkmessagefilterid&$filter=sdkmessageid/name eq @message and "
        "primaryobjecttypecode eq @table&@message='CreateMultiple'&@table='sample_example'"
    )
    assert options.filter is not None
    assert options.filter.matches(
        {"sdkmessageid": {"name": "CreateMultiple"}, "primaryobjecttypecode": "sample_example"}
    )
    assert not options.filter.matches(
        {"sdkmessageid": {"name": "UpdateMultiple"}, "primaryobjecttypecode": "sample_example"}
    )


@pytest.mark.parametrize(
    ("query", "field", "expected"),
    [
        ("", "select", None),
        ("$select=*", "select", None),
        ("$select=name,%20accountnumber", "select", ["name", "accountnumber"]),
        ("$top=5", "top", 5),
        ("$top=0", "top", 0),
        ("$count=true", "count", True),
        ("$count=false", "count", False),
        ("$orderby=name", "orderby", [("name", False)]),
        (
            "$orderby=name desc,createdon asc,a/b",
            "orderby",
            [("name", True), ("createdon", False), ("a/b", False)],
        ),
        ("$orderby=name+DESC", "orderby", [("name", True)]),
        (
            "$skiptoken=%3Ccookie%20pagenumber=%222%22%20istracking=%22False%22%20/%3E",
            "skiptoken",
            '<cookie pagenumber="2" istracking="False" />',
        ),
        (
            "tag=A%20string%20value&partitionId=p1",
            "parameters",
            {"tag": "A string value", "partitionId": "p1"},
        ),
        ("$SELECT=name", "select", ["name"]),
        ("&&$top=1&", "top", 1),
    ],
)
def test_parse_query_fields(query: str, field: str, expected: object) -> None:
    assert getattr(parse_query(query), field) == expected


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("$skip=10", r"\$skip is not supported"),
        ("$search=x", r"\$search is not supported"),
        ("$top=1&$top=2", "more than once"),
        ("$top=-1", r"\$top"),
        ("$top=abc", r"\$top"),
        ("$count=yes", r"\$count"),
        ("$select=na-me", r"\$select"),
        ("$select=a,,b", r"\$select"),
        ("$orderby=name sideways", "direction"),
        ("$orderby=name desc extra", r"\$orderby"),
        ("$orderby=a,,b", r"\$orderby"),
        ("$filter=name eq", "end of"),
        ("$filter=name eq @nope", "alias"),
        ("$expand=Attributes($skiptoken=x)", "nested"),
        ("$expand=Attributes($select=a;$select=b)", "nested"),
        ("$expand=Attributes($select=a", "Unbalanced"),
        ("$expand=A,A", "repeated"),
        ("$expand=Attributes($filter=x eq)", "end of"),
    ],
)
def test_parse_query_rejects(query: str, message: str) -> None:
    with pytest.raises(QueryOptionError, match=message):
        parse_query(query)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("", Prefer()),
        ("return=representation", Prefer(return_representation=True)),
        ("return=minimal", Prefer()),
        ("odata.continue-on-error", Prefer(continue_on_error=True)),
        ("odata.maxpagesize=10", Prefer(maxpagesize=10)),
        ("odata.maxpagesize=0", Prefer()),
        ("odata.maxpagesize=ten", Prefer()),
        ('odata.include-annotations="*"', Prefer(include_annotations="*")),
        (
            f'odata.include-annotations="{ANNOTATIONS}", odata.maxpagesize=2',
            Prefer(
                maxpagesize=2,
                include_annotations=ANNOTATIONS,
            ),
        ),
        (
            "return=representation, odata.continue-on-error,odata.track-changes",
            Prefer(return_representation=True, continue_on_error=True),
        ),
        ("Return = representation", Prefer(return_representation=True)),
    ],
)
def test_parse_prefer(header: str, expected: Prefer) -> None:
    """§2.2 and §5.4: the preferences clients send."""
    assert parse_prefer(header) == expected


ROWS = [
    {"id": 1, "name": "beta", "revenue": Decimal(5), "extra": "x"},
    {"id": 2, "name": "Alpha", "revenue": None},
    {"id": 3, "name": "alpha", "revenue": 7.5},
    {"id": 4, "name": None, "revenue": 2},
]


@pytest.mark.parametrize(
    ("orderby", "ids"),
    [
        ([], [1, 2, 3, 4]),
        ([("name", False)], [4, 2, 3, 1]),  # nulls first, case-insensitive, stable
        ([("name", True)], [1, 2, 3, 4]),
        ([("revenue", False)], [2, 4, 1, 3]),
        ([("revenue", True)], [3, 1, 4, 2]),
        ([("name", False), ("id", True)], [4, 3, 2, 1]),
        ([("missing/path", False)], [1, 2, 3, 4]),
    ],
)
def test_order(orderby: list[tuple[str, bool]], ids: list[int]) -> None:
    assert [row["id"] for row in order(ROWS, orderby)] == ids


def test_order_nested_path() -> None:
    rows = [{"a": {"b": "z"}}, {"a": {"b": "Y"}}, {"a": None}]
    assert order(rows, [("a/b", False)]) == [rows[2], rows[1], rows[0]]


def test_project() -> None:
    """§4.9: selected columns come back, null when the row has no value."""
    assert project(ROWS[:2], ["name", "nosuch"], always=["id"]) == [
        {"id": 1, "name": "beta", "nosuch": None},
        {"id": 2, "name": "Alpha", "nosuch": None},
    ]
    everything = project(ROWS[:1], None)
    assert everything == [ROWS[0]]
    assert everything[0] is not ROWS[0]


def test_top() -> None:
    assert top(ROWS, 2) == ROWS[:2]
    assert top(ROWS, None) == ROWS
    assert top(ROWS, 0) == []


def ids(count: int) -> list[dict[str, str]]:
    """Rows of a table whose primary id is ``rowid``."""
    return [{"rowid": f"00000000-0000-0000-0000-{n:012x}"} for n in range(count)]


def test_page_walks_all_rows_once() -> None:
    rows = ids(7)
    seen: list[dict[str, str]] = []
    token = None
    pages = 0
    while True:
        chunk, token = page(rows, 3, token, "rowid")
        seen += chunk
        pages += 1
        if token is None:
            break
        assert pages < 10
    assert seen == rows
    assert pages == 3


def test_page_token_is_the_paging_cookie() -> None:
    """§2.7 (Learn "Page results"): the token is ``<cookie pagenumber="2" pagingcookie="…"
    istracking="False" />``; the paging cookie, URL-encoded with lower-case escapes, names the
    first and last ids of the page in braces, upper-case."""
    rows = ids(4)
    first, token = page(rows, 2, None, "rowid")
    assert first == rows[:2]
    inner = (
        '<cookie page="1"><rowid last="{00000000-0000-0000-0000-000000000001}" '
        'first="{00000000-0000-0000-0000-000000000000}" /></cookie>'
    )
    encoded = quote(inner, safe="").replace("%3C", "%3c").replace("%3E", "%3e")
    encoded = encoded.replace("%3D", "%3d").replace("%7B", "%7b").replace("%7D", "%7d")
    encoded = encoded.replace("%2F", "%2f")
    assert token == f'<cookie pagenumber="2" pagingcookie="{encoded}" istracking="False" />'
    assert page(rows, 2, token, "rowid") == (rows[2:], None)


def test_page_continues_after_the_last_row_even_when_rows_change() -> None:
    """The next page starts after the cookie's ``last`` row: a row created before it does not
    repeat a row; a deleted ``last`` row falls back to whole pages."""
    rows = ids(6)
    _, token = page(rows, 2, None, "rowid")
    assert token is not None
    grown = [{"rowid": "ffffffff-0000-0000-0000-000000000000"}, *rows]
    assert page(grown, 2, token, "rowid")[0] == rows[2:4]
    shrunk = [row for row in rows if row is not rows[1]]
    assert page(shrunk, 2, token, "rowid")[0] == shrunk[2:4]


def test_page_default_size() -> None:
    rows = ids(DEFAULT_PAGE_SIZE + 1)
    first, token = page(rows, None, None, "rowid")
    assert len(first) == DEFAULT_PAGE_SIZE
    assert token is not None
    assert page([], 5, None, "rowid") == ([], None)


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        '<cookie pagenumber="2" offset="2" />',
        '<cookie pagenumber="x" pagingcookie="" istracking="False" />',
        (
            '<cookie pagenumber="2" pagingcookie="%3ccookie%20page%3d%221%22%3e%3c%2fcookie%3e" '
            'istracking="False" />'
        ),
    ],
)
def test_page_rejects_foreign_tokens(token: str) -> None:
    with pytest.raises(QueryOptionError, match="skiptoken"):
        page(ids(2), 1, token, "rowid")


def test_page_rejects_a_cookie_of_another_table() -> None:
    _, token = page(ids(3), 1, None, "rowid")
    assert token is not None
    with pytest.raises(QueryOptionError, match="skiptoken"):
        page(ids(3), 1, token, "accountid")


def test_next_link_query_round_trips() -> None:
    """The next link carries the same options and a fresh skiptoken that parses back."""
    query = "$select=name&$skiptoken=old&$filter=name+ne+null"
    token = (
        '<cookie pagenumber="3" pagingcookie="%3ccookie%20page%3d%222%22%3e" istracking="False" />'
    )
    link = next_link_query(query, token)
    assert link.startswith("$select=name&$filter=name+ne+null&$skiptoken=%3Ccookie")
    assert parse_query(link).skiptoken == token
    alone = next_link_query("", token)
    assert alone.startswith("$skiptoken=%3Ccookie")
    assert parse_query(alone).skiptoken == token
