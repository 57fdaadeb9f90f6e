"""Resource-path segments, keys, literals and ``@odata.bind`` values (§2.1, §3.1, §4.3, §4.6)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID

import pytest

from dataverse_emulator.wire.segments import (
    PathSyntaxError,
    Segment,
    crm_name,
    parse_bind,
    parse_literal,
    split_path,
)

GUID = "7eb682f1-ca75-e511-80d4-00155d2a68d1"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("", []),
        ("accounts", [Segment("accounts")]),
        ("/accounts", [Segment("accounts")]),
        ("$batch", [Segment("$batch")]),
        ("WhoAmI()", [Segment("WhoAmI")]),
        (f"accounts({GUID})", [Segment("accounts", GUID)]),
        (f"accounts({GUID.upper()})", [Segment("accounts", GUID)]),
        (f"accounts({GUID})/name", [Segment("accounts", GUID), Segment("name")]),
        (
            f"accounts({GUID})/primarycontactid/$ref",
            [Segment("accounts", GUID), Segment("primarycontactid"), Segment("$ref")],
        ),
        ("$1/lastname", [Segment("$1"), Segment("lastname")]),
        # §4.3: alternate keys, strings percent-encoded, composite and numeric.
        ("contacts(emailaddress1='a%40b.c')", [Segment("contacts", {"emailaddress1": "a@b.c"})]),
        (
            "contacts(firstname='Joe',emailaddress1='abc@example.com')",
            [Segment("contacts", {"firstname": "Joe", "emailaddress1": "abc@example.com"})],
        ),
        (
            "sample_things(sample_key1=1,sample_key2=1)",
            [Segment("sample_things", {"sample_key1": 1, "sample_key2": 1})],
        ),
        (
            f"accounts(_primarycontactid_value={GUID})",
            [Segment("accounts", {"_primarycontactid_value": UUID(GUID)})],
        ),
        # Quotes: doubled, doubled and encoded, encoded delimiters.
        ("accounts(name='O''Neil')", [Segment("accounts", {"name": "O'Neil"})]),
        ("accounts(name='O%27%27Neil')", [Segment("accounts", {"name": "O'Neil"})]),
        ("accounts(name=%27A1%27)", [Segment("accounts", {"name": "A1"})]),
        # %2F never splits; a raw / inside quotes neither; other escapes decode once.
        ("accounts(name='a%2Fb')/x", [Segment("accounts", {"name": "a/b"}), Segment("x")]),
        ("accounts(name='a/b')", [Segment("accounts", {"name": "a/b"})]),
        ("accounts(name='100%25')", [Segment("accounts", {"name": "100%"})]),
        ("accounts(name='%252F')", [Segment("accounts", {"name": "%2F"})]),
        ("accounts(name='a,b=c)(')", [Segment("accounts", {"name": "a,b=c)("})]),
        ("accounts(name='Z%C3%BCrich')", [Segment("accounts", {"name": "Zürich"})]),
        # §3.1 metadata addressing and casts.
        (
            "EntityDefinitions(LogicalName='account')/Attributes(LogicalName='emailaddress1')",
            [
                Segment("EntityDefinitions", {"LogicalName": "account"}),
                Segment("Attributes", {"LogicalName": "emailaddress1"}),
            ],
        ),
        (
            (
                "EntityDefinitions(LogicalName='account')/Attributes/"
                "Microsoft.Dynamics.CRM.PicklistAttributeMetadata"
            ),
            [
                Segment("EntityDefinitions", {"LogicalName": "account"}),
                Segment("Attributes"),
                Segment("Microsoft.Dynamics.CRM.PicklistAttributeMetadata"),
            ],
        ),
        (
            "sample_examples/Microsoft.Dynamics.CRM.CreateMultiple",
            [Segment("sample_examples"), Segment("Microsoft.Dynamics.CRM.CreateMultiple")],
        ),
    ],
)
def test_split_path(path: str, expected: list[Segment]) -> None:
    assert split_path(path) == expected


@pytest.mark.parametrize(
    "path",
    [
        "accounts(",
        "accounts)",
        "accounts(name='x)",
        "accounts(name='x'",
        "accounts(name='x')y",
        "accounts//x",
        "accounts/",
        "ac counts",
        "accounts('A1')",
        "accounts(1)",
        "accounts(name='a',name='b')",
        "accounts(name=)",
        "accounts(name=abc)",
        "accounts(na me='x')",
        f"accounts({GUID},name='x')",
        "accounts(name='O'Neil')",
        "accounts(name='%FF')",
        "accounts%00",
    ],
)
def test_split_path_rejects_malformed(path: str) -> None:
    """§4.3: a malformed key segment is a query-syntax error."""
    with pytest.raises(PathSyntaxError):
        split_path(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("'x'", "x"),
        ("''", ""),
        ("'It''s'", "It's"),
        ("null", None),
        ("true", True),
        ("false", False),
        ("42", 42),
        ("-7", -7),
        ("1.50", Decimal("1.50")),
        ("1e3", Decimal("1e3")),
        (GUID, UUID(GUID)),
        ("2024-01-01", date(2024, 1, 1)),
        ("2024-01-01T00:00:00Z", datetime(2024, 1, 1, tzinfo=UTC)),
        ("2024-01-01T10:30:00", datetime(2024, 1, 1, 10, 30, tzinfo=UTC)),
        (
            "2021-04-04T12:00:00-08:00",
            datetime(2021, 4, 4, 12, tzinfo=timezone(timedelta(hours=-8))),
        ),
        ("2016-09-28T22:57:53.1234567Z", datetime(2016, 9, 28, 22, 57, 53, 123456, tzinfo=UTC)),
        ("Microsoft.Dynamics.CRM.OwnershipTypes'UserOwned'", "UserOwned"),
    ],
)
def test_parse_literal(text: str, expected: object) -> None:
    value = parse_literal(text)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    "text", ["", "'", "'''", "abc", "True", "NULL", "2024-13-01", "2024-01-01T25:00:00Z", "1.2.3"]
)
def test_parse_literal_rejects(text: str) -> None:
    with pytest.raises(PathSyntaxError):
        parse_literal(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"/accounts({GUID})", ("accounts", GUID)),
        (f"accounts({GUID})", ("accounts", GUID)),
        ("/accounts(accountnumber='A1')", ("accounts", {"accountnumber": "A1"})),
        (f"https://org.crm.dynamics.com/api/data/v9.2/accounts({GUID})", ("accounts", GUID)),
        (f"/api/data/v9.2/contacts({GUID})", ("contacts", GUID)),
        ("$1", ("$1", None)),
        (
            "sample_examples(sample_keyattribute='0000001')",
            ("sample_examples", {"sample_keyattribute": "0000001"}),
        ),
    ],
)
def test_parse_bind(value: str, expected: tuple) -> None:
    """§4.6: the lookup reference forms clients write."""
    assert parse_bind(value) == expected


@pytest.mark.parametrize("value", ["/accounts", "accounts(1)", f"/accounts({GUID})/x", ""])
def test_parse_bind_rejects(value: str) -> None:
    with pytest.raises(PathSyntaxError):
        parse_bind(value)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Microsoft.Dynamics.CRM.CreateMultiple", "CreateMultiple"),
        ("Microsoft.Dynamics.CRM.StringAttributeMetadata", "StringAttributeMetadata"),
        ("Microsoft.Dynamics.CRM.", None),
        ("CreateMultiple", None),
        ("microsoft.dynamics.crm.CreateMultiple", None),
    ],
)
def test_crm_name(name: str, expected: str | None) -> None:
    assert crm_name(name) == expected


@pytest.mark.parametrize(
    "keyed",
    [
        "contacts(emailaddress1='a@b.c')",
        "contacts( emailaddress1 = 'a b' )",
        "accounts(accountnumber='A,1')",
        "accounts(accountnumber='')",
        "accounts(name='a%2Fb')",
        "accounts(name='%C3%A9t%C3%A9')",
    ],
)
def test_simple_key_fast_path_agrees_with_the_general_parser(keyed: str) -> None:
    """§4.3: a one-segment ``key='v'`` path (fast path) parses like the same segment in a longer
    path (general parser)."""
    [fast] = split_path(keyed)
    general, _ = split_path(f"{keyed}/x")
    assert fast == general
    assert isinstance(fast.key, dict)
