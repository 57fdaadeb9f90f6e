"""Pure builders of the Web API: key segments, literals, headers, bodies, error parsing."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid

import pytest

from target_dynamics import webapi
from target_dynamics.errors import Throttled, WebApiError
from target_dynamics.webapi import WebRequest, WebResponse

GUID = "7EB682F1-CA75-E511-80D4-00155D2A68D1"


@pytest.mark.parametrize(
    ("key", "segment"),
    [
        ({"accountid": GUID}, GUID.lower()),
        ({"accountnumber": "ABC123"}, "accountnumber='ABC123'"),
        ({"accountnumber": "O'Brien"}, "accountnumber='O''Brien'"),
        ({"name": "A B#1"}, "name='A%20B%231'"),
        ({"name": "café"}, "name='caf%C3%A9'"),
        ({"k1": 1, "k2": "x"}, "k1=1,k2='x'"),
        ({"flag": True}, "flag=true"),
        ({"_primarycontactid_value": GUID}, f"_primarycontactid_value={GUID.lower()}"),
        ({"day": dt.date(2024, 2, 29)}, "day=2024-02-29"),
    ],
)
def test_key_segment_quotes_escapes_and_encodes(key, segment):
    """§4.3: strings quoted, `'` doubled, then percent-encoded; GUIDs and numbers bare."""
    assert webapi.key_segment(key, "accountid") == segment


@pytest.mark.parametrize(
    "key",
    [
        {},
        {"accountid": "not-a-guid"},
        {"accountnumber": ""},
        {"accountnumber": None},
        {"accountnumber": "a/b"},
        {"accountnumber": "50%"},
        {"accountnumber": "x:y"},
        {"accountnumber": "a+b"},
        {"bad name": "x"},
    ],
)
def test_key_segment_refuses_what_a_key_url_cannot_carry(key):
    """§3.6: `/ < > * % & : \\ ? +` break key URLs; empty, null and bad GUID parts are refused."""
    with pytest.raises(ValueError, match=r"."):
        webapi.key_segment(key, "accountid")


@pytest.mark.parametrize(
    ("value", "addressable"),
    [
        ("plain", True),
        ("O'Neil & Sons", False),
        ("a\\b", False),
        ("a<b", False),
        ("a*", False),
        ("what?", False),
        ("ok-value_1.2", True),
        (12, True),
    ],
)
def test_key_is_addressable(value, addressable):
    """§3.6 character list."""
    assert webapi.key_is_addressable({"k": value}) is addressable


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        ("O'Neil", "'O''Neil'"),
        (5, "5"),
        (decimal.Decimal("1.50"), "1.50"),
        (False, "false"),
        (uuid.UUID(GUID), GUID.lower()),
        (dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "2024-01-02T03:04:05Z"),
        (dt.datetime(2024, 1, 2, 3, 4, 5), "2024-01-02T03:04:05Z"),  # noqa: DTZ001 - naive is UTC
    ],
)
def test_literal(value, rendered):
    assert webapi.literal(value) == rendered


@pytest.mark.parametrize("value", [None, float("nan"), object()])
def test_literal_refuses(value):
    with pytest.raises(ValueError, match="Cannot use"):
        webapi.literal(value)


def test_query_encodes_filter_literals():
    """§4.3: the same escaping rules apply to `$filter` literals; the query is percent-encoded."""
    request = webapi.query(
        "accounts",
        ["accountid", "accountnumber"],
        webapi.filter_any("accountnumber", ["O'Neil & Sons", "a/b"]),
    )
    assert request.method == "GET"
    assert request.path == (
        "accounts?$select=accountid,accountnumber&$filter="
        "accountnumber%20eq%20'O''Neil%20%26%20Sons'%20or%20accountnumber%20eq%20'a%2Fb'"
    )


def test_filter_keys_matches_any_composite_key():
    """§3.6: rows by alternate-key values a key URL cannot carry, found with one `$filter`."""
    keys = [{"a": "x/y", "n": 1}, {"a": "O'Neil", "n": 2}]
    expected = "(a eq 'x/y' and n eq 1) or (a eq 'O''Neil' and n eq 2)"
    assert webapi.filter_keys(["a", "n"], keys) == expected
    with pytest.raises(ValueError, match="Invalid Dataverse name"):
        webapi.filter_keys(["a b"], [{"a b": 1}])


def test_write_builders():
    """§4.1 to §4.5: method, path and conditional headers of each write."""
    payload = {"name": "x"}
    assert webapi.create("accounts", payload) == WebRequest("POST", "accounts", b'{"name":"x"}')
    up = webapi.upsert("accounts", {"accountnumber": "A1"}, "accountid", payload)
    assert (up.method, up.path, up.headers) == ("PATCH", "accounts(accountnumber='A1')", {})
    upd = webapi.update("accounts", {"accountid": GUID}, "accountid", payload)
    assert (upd.method, upd.headers) == ("PATCH", {"If-Match": "*"})
    dele = webapi.delete("accounts", {"accountid": GUID}, "accountid")
    assert (dele.method, dele.path, dele.body) == ("DELETE", f"accounts({GUID.lower()})", None)


def test_bulk_adds_odata_type_to_every_target():
    """§6: `@odata.type` is required on every item of `Targets`."""
    request = webapi.bulk(
        "contacts",
        "UpsertMultiple",
        "contact",
        [
            {"firstname": "a", "@odata.id": "contacts(emailaddress1='a%40b.c')"},
            {"firstname": "b"},
        ],
    )
    assert request.path == "contacts/Microsoft.Dynamics.CRM.UpsertMultiple"
    targets = json.loads(request.body)["Targets"]
    assert [t["@odata.type"] for t in targets] == ["Microsoft.Dynamics.CRM.contact"] * 2
    assert targets[0]["@odata.id"] == "contacts(emailaddress1='a%40b.c')"
    with pytest.raises(ValueError, match="Unknown bulk"):
        webapi.bulk("contacts", "DeleteMultiple", "contact", [])


def test_encode_json_handles_decimal_and_datetime():
    body = webapi.encode_json(
        {"revenue": decimal.Decimal("5.25"), "on": dt.datetime(2024, 1, 1, tzinfo=dt.UTC)}
    )
    assert json.loads(body) == {"revenue": 5.25, "on": "2024-01-01T00:00:00Z"}


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (WebRequest("GET", "WhoAmI"), {"If-None-Match": "null"}),
        (
            WebRequest("POST", "accounts", b"{}"),
            {"If-None-Match": "null", "Content-Type": "application/json; charset=utf-8"},
        ),
        (
            WebRequest("PATCH", "a(1)", b"{}", {"If-Match": "*"}),
            {"Content-Type": "application/json; charset=utf-8"},
        ),
    ],
)
def test_standard_headers(request_, expected):
    """§2.2: Accept, OData versions, If-None-Match: null, Content-Type only with a body."""
    base = {"Accept": "application/json", "OData-MaxVersion": "4.0", "OData-Version": "4.0"}
    assert webapi.standard_headers(request_) == base | expected


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, {}),
        ({"suppress_duplicate_detection": None}, {}),
        ({"suppress_duplicate_detection": True}, {"MSCRM.SuppressDuplicateDetection": "true"}),
        (
            {"bypass_business_logic": True, "suppress_duplicate_detection": False},
            {
                "MSCRM.BypassBusinessLogicExecution": "CustomSync,CustomAsync",
                "MSCRM.SuppressDuplicateDetection": "false",
            },
        ),
        ({"caller_object_id": GUID}, {"CallerObjectId": GUID}),
    ],
)
def test_option_headers(options, expected):
    """§8: bypass, duplicate detection and impersonation headers only when asked for."""
    assert webapi.option_headers(**options) == expected


def test_check_header_value_refuses_injection():
    """§1.7: CR / LF / NUL in header values built from configuration are rejected."""
    with pytest.raises(ValueError, match="CR, LF"):
        webapi.check_header_value("CallerObjectId", "x\r\nAuthorization: y")


def test_parse_error_reads_dataverse_body():
    """§4.8 error body; empty code becomes None."""
    body = (
        b'{"error":{"code":"0x80040237",'
        b'"message":"A record with matching key values already exists."}}'
    )
    error = webapi.parse_error(WebResponse(412, {}, body))
    assert type(error) is WebApiError
    assert (error.status, error.code) == (412, "0x80040237")
    assert error.already_exists
    assert not error.is_transient
    empty = webapi.parse_error(WebResponse(404, {}, b'{"error":{"code":"","message":"gone"}}'))
    assert empty.code is None
    assert empty.not_found


def test_parse_error_throttled_with_retry_after():
    """§7.8: 429 with Retry-After in seconds."""
    body = b'{"error":{"code":"0x80072322","message":"Number of requests exceeded"}}'
    error = webapi.parse_error(WebResponse(429, {"retry-after": "30"}, body))
    assert isinstance(error, Throttled)
    assert error.retry_after == 30.0
    assert error.is_transient


def test_parse_error_non_json_body_is_truncated():
    error = webapi.parse_error(WebResponse(502, {}, b"<html>" + b"x" * 1000))
    assert len(error.message) == 300
    assert error.is_transient
    assert webapi.parse_error(WebResponse(503, {}, b"")).message == (
        "HTTP 503 without an error message"
    )


@pytest.mark.parametrize(
    ("status", "code", "transient"),
    [
        (500, "0x80040333", False),
        (500, "0x80040216", True),
        (400, "0x80044151", True),
        (400, "0x80044331", False),
        (0, None, True),
        (408, None, True),
        (404, None, False),
    ],
)
def test_transient_classification(status, code, transient):
    """§4.9, §7.7: classify by code before status (duplicate detection may arrive as 500)."""
    assert WebApiError(status, code, "m").is_transient is transient


@pytest.mark.parametrize("value", ["abc", "", None, "inf"])
def test_parse_retry_after_ignores_garbage(value):
    assert webapi.parse_retry_after(value) is None


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ({"emailaddress1": "ann o'neil@x.org"}, "contacts(emailaddress1='ann o''neil@x.org')"),
        ({"emailaddress1": "café#1@x.org"}, "contacts(emailaddress1='café#1@x.org')"),
        ({"contactid": GUID}, f"contacts({GUID.lower()})"),
    ],
)
def test_odata_id_is_quoted_not_percent_encoded(key, expected):
    """§6.3: `@odata.id` carries the key as Microsoft's SDK writes it, in a JSON string."""
    segment = webapi.key_segment(key, "contactid", encoded=False)
    assert webapi.odata_id("contacts", segment) == expected


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (decimal.Decimal("99999999999999.99"), b"99999999999999.99"),  # a float: ...98
        (decimal.Decimal("123456789.1234567891"), b"123456789.1234567891"),
        (dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC), b'"2024-01-02T03:04:05Z"'),
        (dt.date(2024, 1, 2), b'"2024-01-02"'),
        (uuid.UUID(int=5), b'"00000000-0000-0000-0000-000000000005"'),
        (10**20, b"100000000000000000000"),
    ],
)
def test_encode_json_keeps_every_digit(value, encoded):
    """Decimals go out exactly as the record gave them (Edm.Decimal, §4.6)."""
    assert webapi.encode_json({"v": value}) == b'{"v":' + encoded + b"}"
