"""The ``$filter`` subset (§3.1, §3.9, Appendix A.3 table)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from dataverse_emulator.wire.odata_filter import FilterSyntaxError, parse_filter

CRM = "Microsoft.Dynamics.CRM."
GUID = "7eb682f1-ca75-e511-80d4-00155d2a68d1"

ACCOUNT = {
    "accountid": GUID.upper(),
    "name": "Contoso Corp",
    "accountnumber": "A-1",
    "revenue": Decimal("250000.0000"),
    "numberofemployees": 12,
    "address1_latitude": 47.63958,
    "creditonhold": False,
    "description": None,
    "createdon": "2024-03-01T10:00:00Z",
    "birthdate": "1990-05-17",
    "_parentaccountid_value": GUID,
}

ENTITY = {
    "LogicalName": "account",
    "OwnershipType": "UserOwned",
    "IsCustomEntity": False,
    "CanCreateAttributes": {"Value": True, "CanBeChanged": False},
    "RequiredLevel": {"Value": "ApplicationRequired"},
    "AttributeTypeName": {"Value": "StringType"},
}


@pytest.mark.parametrize(
    ("text", "row", "expected"),
    [
        # §3.9: the calls independent clients make.
        ("LogicalName eq 'account'", ENTITY, True),
        ("LogicalName eq 'contact'", ENTITY, False),
        ("LogicalName eq 'ACCOUNT'", ENTITY, True),  # SQL collation: case-insensitive
        ("CanCreateAttributes/Value eq true", ENTITY, True),
        ("AttributeTypeName/Value eq 'StringType'", ENTITY, True),
        ("OwnershipType eq Microsoft.Dynamics.CRM.OwnershipTypes'UserOwned'", ENTITY, True),
        ("OwnershipType eq Microsoft.Dynamics.CRM.OwnershipTypes'TeamOwned'", ENTITY, False),
        (
            f"RequiredLevel/Value eq {CRM}AttributeRequiredLevel'ApplicationRequired'",
            ENTITY,
            True,
        ),
        ("IsCustomEntity eq false", ENTITY, True),
        ("IsCustomEntity", ENTITY, False),
        ("not IsCustomEntity", ENTITY, True),
        ("Missing/Value eq true", ENTITY, False),
        ("LogicalName/Value eq 'x'", ENTITY, False),
        # Appendix A.3 table.
        ("contains(name,'Corp') and revenue gt 100000", ACCOUNT, True),
        ("contains(name,'corp')", ACCOUNT, True),
        ("contains(name,'Fabrikam')", ACCOUNT, False),
        ("startswith(name,'CONTOSO')", ACCOUNT, True),
        ("endswith(name,'corp')", ACCOUNT, True),
        ("endswith(name,'Contoso')", ACCOUNT, False),
        ("contains(description,'x')", ACCOUNT, False),
        (f"_parentaccountid_value eq {GUID}", ACCOUNT, True),
        (f"accountid eq {GUID}", ACCOUNT, True),  # GUIDs compare by value
        ("accountid eq 00000000-0000-0000-0000-000000000001", ACCOUNT, False),
        ("createdon ge 2024-01-01T00:00:00Z", ACCOUNT, True),
        ("createdon lt 2024-03-01T10:00:00Z", ACCOUNT, False),
        ("createdon eq 2024-03-01T11:00:00+01:00", ACCOUNT, True),  # same instant
        ("birthdate eq 1990-05-17", ACCOUNT, True),
        ("birthdate gt 1990-05-17", ACCOUNT, False),
        ("createdon ge 2024-03-01", ACCOUNT, True),
        ("accountnumber in ('A-1','A-2')", ACCOUNT, True),
        ("accountnumber in ('a-1')", ACCOUNT, True),
        ("accountnumber in ('A-3')", ACCOUNT, False),
        (
            f"{CRM}In(PropertyName='accountnumber',PropertyValues=['A-1','B'])",
            ACCOUNT,
            True,
        ),
        (
            f"{CRM}In(PropertyName='accountnumber',PropertyValues=['B'])",
            ACCOUNT,
            False,
        ),
        (
            f"{CRM}NotIn(PropertyName='accountnumber',PropertyValues=['B'])",
            ACCOUNT,
            True,
        ),
        ("numberofemployees in (10, 12)", ACCOUNT, True),
        # Numbers across int / float / Decimal.
        ("revenue eq 250000", ACCOUNT, True),
        ("revenue eq 250000.00", ACCOUNT, True),
        ("revenue le 249999.99", ACCOUNT, False),
        ("numberofemployees gt 11.5", ACCOUNT, True),
        ("address1_latitude eq 47.63958", ACCOUNT, True),
        ("numberofemployees ne 12", ACCOUNT, False),
        ("numberofemployees eq -12", ACCOUNT, False),
        ("numberofemployees eq 'twelve'", ACCOUNT, False),
        ("name eq 5", ACCOUNT, False),
        # null semantics: a missing property is null; null never orders.
        ("description eq null", ACCOUNT, True),
        ("description ne null", ACCOUNT, False),
        ("nosuchcolumn eq null", ACCOUNT, True),
        ("name ne null", ACCOUNT, True),
        ("name eq null", ACCOUNT, False),
        ("description gt null", ACCOUNT, False),
        ("description eq 'x'", ACCOUNT, False),
        ("description ne 'x'", ACCOUNT, True),
        ("description lt 'x'", ACCOUNT, False),
        ("description in ('x', null)", ACCOUNT, True),
        # Boolean logic and precedence: and binds tighter than or; not tighter than and.
        ("creditonhold eq true or name eq 'Contoso Corp'", ACCOUNT, True),
        ("creditonhold eq true or name eq 'x' and revenue gt 0", ACCOUNT, False),
        ("name eq 'x' and revenue gt 0 or creditonhold eq false", ACCOUNT, True),
        ("name eq 'x' and (revenue gt 0 or creditonhold eq false)", ACCOUNT, False),
        ("not name eq 'x'", ACCOUNT, True),
        ("not (name eq 'Contoso Corp' and creditonhold eq false)", ACCOUNT, False),
        ("not contains(name,'Corp')", ACCOUNT, False),
        ("((numberofemployees eq 12))", ACCOUNT, True),
        # Literal on the left, and property against property.
        ("100000 lt revenue", ACCOUNT, True),
        ("'contoso corp' eq name", ACCOUNT, True),
        ("accountid eq _parentaccountid_value", ACCOUNT, True),
        ("name eq accountnumber", ACCOUNT, False),
        ("description eq nosuchcolumn", ACCOUNT, True),
        # Strings: doubled quotes, spaces, ordering is case-insensitive.
        ("name eq 'O''Neil'", {"name": "o'neil"}, True),
        ("name gt 'b'", {"name": "Apple"}, False),
        ("name lt 'B'", {"name": "apple"}, True),
    ],
)
def test_matches(text: str, row: dict, expected: bool) -> None:
    assert parse_filter(text).matches(row) is expected


def test_sdkmessagefilter_probe_with_aliases() -> None:
    """§6.5 / §3.9: the bulk-availability probes, with and without parameter aliases."""
    row = {"sdkmessageid": {"name": "CreateMultiple"}, "primaryobjecttypecode": "account"}
    probe = parse_filter(
        "sdkmessageid/name eq @message and primaryobjecttypecode eq @table",
        (("@message", "'CreateMultiple'"), ("@table", "'account'")),
    )
    assert probe.matches(row)
    assert not probe.matches({**row, "primaryobjecttypecode": "contact"})
    both = parse_filter(
        "(sdkmessageid/name eq 'CreateMultiple' or sdkmessageid/name eq 'UpdateMultiple') "
        "and primaryobjecttypecode eq 'account'"
    )
    assert both.matches(row)
    assert both.matches({**row, "sdkmessageid": {"name": "UpdateMultiple"}})
    assert not both.matches({**row, "sdkmessageid": {"name": "DeleteMultiple"}})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("LogicalName eq 'account'", {"LogicalName"}),
        (
            "sdkmessageid/name eq 'x' and primaryobjecttypecode eq 'y'",
            {"sdkmessageid", "primaryobjecttypecode"},
        ),
        ("contains(name,'x') or not IsCustomEntity", {"name", "IsCustomEntity"}),
        ("Microsoft.Dynamics.CRM.In(PropertyName='a',PropertyValues=['1'])", {"a"}),
        ("1 eq revenue", {"revenue"}),
        ("a eq b", {"a", "b"}),
    ],
)
def test_properties(text: str, expected: set[str]) -> None:
    assert parse_filter(text).properties() == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "name eq",
        "name eq 'x",
        "name eq 'x' and",
        "name eq 'x' extra",
        "(name eq 'x'",
        "name eq 'x')",
        "name = 'x'",
        "name eq 'x' && a eq 1",
        "'a' eq 'b'",
        "1 eq 1",
        "contains(name)",
        "contains('x', name)",
        "contains(name, 5)",
        "tolower(name) eq 'x'",
        "Microsoft.Dynamics.CRM.Today(PropertyName='createdon')",
        "Microsoft.Dynamics.CRM.In(PropertyName='a')",
        "Microsoft.Dynamics.CRM.In(PropertyValues=['a'],Other='b')",
        "name in ()",
        "name in ('a' 'b')",
        "name in (other)",
        "name eq @missing",
        "createdon ge 2024-13-01T00:00:00Z",
    ],
)
def test_syntax_errors(text: str) -> None:
    with pytest.raises(FilterSyntaxError):
        parse_filter(text)


def test_parses_are_cached() -> None:
    assert parse_filter("name eq 'cached'") is parse_filter("name eq 'cached'")
