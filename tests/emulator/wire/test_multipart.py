"""The ``$batch`` codec against the dialects real clients send (§5.1-§5.5)."""

from __future__ import annotations

import pytest

from dataverse_emulator.wire.multipart import (
    ChangeSet,
    ChangeSetResponse,
    MultipartError,
    Operation,
    PartResponse,
    boundary_of,
    encode_batch_response,
    parse_batch,
    relative_url,
)

ORG = "https://org.crm.dynamics.com"
GUID = "00000000-0000-0000-0000-000000000001"


def crlf(*lines: str) -> bytes:
    return "\r\n".join(lines).encode()


def lf(*lines: str) -> bytes:
    return "\n".join(lines).encode()


# §5.1: Microsoft's documented request, verbatim (CRLF, quoted boundary, root-relative URLs).
DOC_51 = crlf(
    "--batch_80dd1615-2a10-428a-bb6f-0e559792721f",
    "Content-Type: application/http",
    "Content-Transfer-Encoding: binary",
    "",
    "POST /api/data/v9.2/tasks HTTP/1.1",
    "Content-Type: application/json; type=entry",
    "",
    "{",
    '  "subject": "Task 1 in batch",',
    f'  "regardingobjectid_account_task@odata.bind": "accounts({GUID})"',
    "}",
    "--batch_80dd1615-2a10-428a-bb6f-0e559792721f",
    "Content-Type: application/http",
    "Content-Transfer-Encoding: binary",
    "",
    f"GET /api/data/v9.2/accounts({GUID})/Account_Tasks?$select=subject HTTP/1.1",
    "",
    "",
    "--batch_80dd1615-2a10-428a-bb6f-0e559792721f--",
    "",
)

# §5.5: Microsoft Python SDK 1.1.0 (`_batch_base.py`): CRLF, absolute URLs, change set with
# Content-ID in the part headers, `PATCH $1`, a blank epilogue after the change set.
SDK = crlf(
    "--batch_s",
    "Content-Type: application/http",
    "Content-Transfer-Encoding: binary",
    "",
    f"POST {ORG}/api/data/v9.2/accounts HTTP/1.1",
    "Content-Type: application/json; type=entry",
    "",
    '{"name": "b1"}',
    "--batch_s",
    'Content-Type: multipart/mixed; boundary="changeset_c"',
    "",
    "--changeset_c",
    "Content-Type: application/http",
    "Content-Transfer-Encoding: binary",
    "Content-ID: 1",
    "",
    f"POST {ORG}/api/data/v9.2/accounts HTTP/1.1",
    "Content-Type: application/json; type=entry",
    "",
    '{"name": "cs1"}',
    "--changeset_c",
    "Content-Type: application/http",
    "Content-Transfer-Encoding: binary",
    "Content-ID: 2",
    "",
    "PATCH $1 HTTP/1.1",
    "Content-Type: application/json; type=entry",
    "If-Match: *",
    "",
    '{"name": "cs1-upd"}',
    "--changeset_c--",
    "",
    "--batch_s",
    "Content-Type: application/http",
    "Content-Transfer-Encoding: binary",
    "",
    f"GET {ORG}/api/data/v9.2/accounts({GUID})?$select=name HTTP/1.1",
    "",
    "--batch_s--",
    "",
)

# §5.5: dataverse-api 1.4.3 (`utils/batching.py`): bare LF, absolute URLs, an extra blank line
# before each body, `null` body on DELETE, and "\n\n--batch--\n " at the end.
DATAVERSE_API = lf(
    "--batch_d",
    "Content-Type: application/http",
    "Content-Transfer-Encoding: binary",
    "",
    "POST https://127.0.0.1:44077/api/data/v9.2/accounts HTTP/1.1",
    "Content-Type: application/json; type=entry",
    "",
    "",
    '{"name": "x1"}',
    "--batch_d",
    "Content-Type: application/http",
    "Content-Transfer-Encoding: binary",
    "",
    f"DELETE https://127.0.0.1:44077/api/data/v9.2/accounts({GUID}) HTTP/1.1",
    "Content-Type: application/json",
    "",
    "",
    "null",
    "",
    "",
    "--batch_d--",
    " ",
)

# §5.5: dynamics-web-api 2.5.0 (`convertToBatch`): CRLF, leading CRLF preamble, unquoted boundary
# without a space, change-set Content-ID 100001..., absolute URLs, GET without a blank line.
DWA = crlf(
    "",
    "--dwa_batch_w",
    "Content-Type: multipart/mixed;boundary=changeset_x",
    "",
    "--changeset_x",
    "Content-Type: application/http",
    "Content-Transfer-Encoding: binary",
    "Content-ID: 100001",
    "",
    f"POST {ORG}/api/data/v9.2/contacts HTTP/1.1",
    "Content-Type: application/json",
    "",
    '{"firstname":"Joe"}',
    "",
    "--changeset_x",
    "Content-Type: application/http",
    "Content-Transfer-Encoding: binary",
    "Content-ID: 100002",
    "",
    "PATCH $100001 HTTP/1.1",
    "Content-Type: application/json",
    "",
    '{"lastname":"Bloggs"}',
    "",
    "--changeset_x--",
    "",
    "--dwa_batch_w",
    "Content-Type: application/http",
    "Content-Transfer-Encoding: binary",
    "",
    f"GET {ORG}/api/data/v9.2/contacts?$select=fullname HTTP/1.1",
    "Accept: application/json",
    "",
    "--dwa_batch_w--",
    "",
)

# §5.5: airbyte source: GET-only, CRLF, root-relative URLs.
AIRBYTE = crlf(
    "--batch_a",
    "Content-Type: application/http",
    "Content-Transfer-Encoding: binary",
    "",
    "GET /api/data/v9.2/EntityDefinitions(LogicalName='x')/Attributes/"
    "Microsoft.Dynamics.CRM.DateTimeAttributeMetadata?$select=LogicalName,DateTimeBehavior"
    " HTTP/1.1",
    "",
    "",
    "--batch_a--",
)


def flatten(items: list[Operation | ChangeSet]) -> list[tuple]:
    """Describe parsed items as (change set index or None, method, relative URL, id, body)."""
    rows: list[tuple] = []
    for index, item in enumerate(items):
        ops = item.operations if isinstance(item, ChangeSet) else (item,)
        cs = index if isinstance(item, ChangeSet) else None
        rows.extend((cs, op.method, relative_url(op.url), op.content_id, op.body) for op in ops)
    return rows


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        pytest.param(
            'multipart/mixed; boundary="batch_80dd1615-2a10-428a-bb6f-0e559792721f"',
            DOC_51,
            [
                (
                    None,
                    "POST",
                    "tasks",
                    None,
                    (
                        b'{\r\n  "subject": "Task 1 in batch",\r\n'
                        b'  "regardingobjectid_account_task@odata.bind": '
                        b'"accounts(00000000-0000-0000-0000-000000000001)"\r\n}'
                    ),
                ),
                (None, "GET", f"accounts({GUID})/Account_Tasks?$select=subject", None, b""),
            ],
            id="doc-5.1",
        ),
        pytest.param(
            'multipart/mixed; boundary="batch_s"',
            SDK,
            [
                (None, "POST", "accounts", None, b'{"name": "b1"}'),
                (1, "POST", "accounts", "1", b'{"name": "cs1"}'),
                (1, "PATCH", "$1", "2", b'{"name": "cs1-upd"}'),
                (None, "GET", f"accounts({GUID})?$select=name", None, b""),
            ],
            id="microsoft-sdk-crlf",
        ),
        pytest.param(
            'multipart/mixed; boundary="batch_d"',
            DATAVERSE_API,
            [
                (None, "POST", "accounts", None, b'{"name": "x1"}'),
                (None, "DELETE", f"accounts({GUID})", None, b"null"),
            ],
            id="dataverse-api-lf",
        ),
        pytest.param(
            "multipart/mixed;boundary=dwa_batch_w",
            DWA,
            [
                (0, "POST", "contacts", "100001", b'{"firstname":"Joe"}'),
                (0, "PATCH", "$100001", "100002", b'{"lastname":"Bloggs"}'),
                (None, "GET", "contacts?$select=fullname", None, b""),
            ],
            id="dynamics-web-api-preamble",
        ),
        pytest.param(
            "multipart/mixed; boundary=batch_a",
            AIRBYTE,
            [
                (
                    None,
                    "GET",
                    (
                        "EntityDefinitions(LogicalName='x')/Attributes/Microsoft.Dynamics.CRM."
                        "DateTimeAttributeMetadata?$select=LogicalName,DateTimeBehavior"
                    ),
                    None,
                    b"",
                ),
            ],
            id="airbyte-get-only",
        ),
    ],
)
def test_parse_batch_accepts_client_dialects(
    content_type: str, body: bytes, expected: list
) -> None:
    """§5.5: every dialect real clients send parses to the same operations."""
    assert flatten(parse_batch(content_type, body)) == expected


def test_inner_headers_are_lower_cased_and_kept() -> None:
    """§5.1: each part is split into request line, headers and body."""
    items = parse_batch('multipart/mixed; boundary="batch_s"', SDK)
    change_set = items[1]
    assert isinstance(change_set, ChangeSet)
    patch = change_set.operations[1]
    assert patch.headers == {"content-type": "application/json; type=entry", "if-match": "*"}


def test_content_id_in_inner_headers_is_accepted() -> None:
    """§5.2: a Content-ID written among the request headers still names the operation."""
    body = crlf(
        "--b",
        "Content-Type: multipart/mixed; boundary=c",
        "",
        "--c",
        "Content-Type: application/http",
        "",
        "POST accounts HTTP/1.1",
        "Content-ID: 7",
        "",
        "{}",
        "--c--",
        "--b--",
    )
    [change_set] = parse_batch("multipart/mixed; boundary=b", body)
    assert isinstance(change_set, ChangeSet)
    assert change_set.operations[0].content_id == "7"


def test_empty_batch_has_no_items() -> None:
    assert parse_batch("multipart/mixed; boundary=b", b"--b--\r\n") == []


def test_delimiter_lookalike_inside_body_is_not_a_delimiter() -> None:
    """Only a whole delimiter line ends a part; `--b2` or `--b text` does not."""
    body = lf("--b", "Content-Type: application/http", "", "POST a HTTP/1.1", "", "--bx", "--b--")
    [op] = parse_batch("multipart/mixed; boundary=b", body)
    assert isinstance(op, Operation)
    assert op.body == b"--bx"


@pytest.mark.parametrize(
    ("content_type", "body", "message"),
    [
        ("application/json", b"", "multipart/mixed"),
        ("multipart/mixed", b"", "no boundary"),
        ("multipart/mixed; boundary=b", b"no delimiter at all", "no boundary delimiter"),
        ("multipart/mixed; boundary=b", lf("--b", "", "GET a HTTP/1.1", ""), "close delimiter"),
        ("multipart/mixed; boundary=b", lf("--b", "", "GET a", "--b--"), "request line"),
        ("multipart/mixed; boundary=b", lf("--b", "", "get a HTTP/1.1", "--b--"), "request line"),
        ("multipart/mixed; boundary=b", lf("--b", "", "", "--b--"), "request line"),
        (
            "multipart/mixed; boundary=b",
            lf("--b", "Content-Type: text/plain", "", "GET a HTTP/1.1", "--b--"),
            "Content-Type 'text/plain'",
        ),
        (
            "multipart/mixed; boundary=b",
            lf("--b", "", "GET a HTTP/1.1", "not a header", "", "--b--"),
            "Malformed header",
        ),
        (
            "multipart/mixed; boundary=b",
            lf(
                "--b",
                "Content-Type: multipart/mixed; boundary=c",
                "",
                "--c",
                "",
                "GET accounts HTTP/1.1",
                "--c--",
                "--b--",
            ),
            "GET",
        ),
        (
            "multipart/mixed; boundary=b",
            lf(
                "--b",
                "Content-Type: multipart/mixed; boundary=c",
                "",
                "--c",
                "Content-Type: multipart/mixed; boundary=d",
                "",
                "--d--",
                "--c--",
                "--b--",
            ),
            "another change set",
        ),
        (
            "multipart/mixed; boundary=b",
            lf("--b", "Content-Type: multipart/mixed; boundary=c", "", "--c", "--b--"),
            "close delimiter '--c--'",
        ),
    ],
)
def test_malformed_input_raises(content_type: str, body: bytes, message: str) -> None:
    """§5.4: a malformed body is rejected as a whole (wire answers 400)."""
    with pytest.raises(MultipartError, match=message):
        parse_batch(content_type, body)


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ('multipart/mixed; boundary="batch_1"', "batch_1"),
        ("multipart/mixed;boundary=dwa_batch_2", "dwa_batch_2"),
        ("Multipart/Mixed; charset=utf-8; BOUNDARY=x-3", "x-3"),
        ('multipart/mixed; boundary="a b"', "a b"),
    ],
)
def test_boundary_of(content_type: str, expected: str) -> None:
    assert boundary_of(content_type) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"{ORG}/api/data/v9.2/accounts", "accounts"),
        ("http://127.0.0.1:5555/api/data/v9.0/accounts?$top=1", "accounts?$top=1"),
        ("/api/data/v9.2/EntityDefinitions(LogicalName='a')", "EntityDefinitions(LogicalName='a')"),
        ("/api/data/v9.2/", ""),
        ("accounts(accountnumber='A1')", "accounts(accountnumber='A1')"),
        ("$1", "$1"),
        ("$1/lastname", "$1/lastname"),
    ],
)
def test_relative_url(url: str, expected: str) -> None:
    """§5.1: part URLs may be absolute, root-relative, service-relative or `$n`."""
    assert relative_url(url) == expected


@pytest.mark.parametrize("url", [f"{ORG}/accounts", "/api/data/data/accounts", "https://h"])
def test_relative_url_outside_service_root(url: str) -> None:
    with pytest.raises(MultipartError, match="service root"):
        relative_url(url)


def guids(*values: str):
    it = iter(values)
    return lambda: next(it)


def test_encode_matches_documented_change_set_response() -> None:
    """§5.3: the documented success response, byte for byte (CRLF)."""
    org = "[Organization Uri]"
    task = f"{org}/api/data/v9.2/tasks(e73ffc82-e292-ed11-aad1-000d3a9933c9)"
    json_body = (
        f'{{ "@odata.context": "{org}/api/data/v9.2/$metadata#tasks(subject)", "value": [ … ] }}'
    )
    parts = [
        ChangeSetResponse(
            [
                PartResponse(
                    204,
                    [("OData-Version", "4.0"), ("Location", task), ("OData-EntityId", task)],
                    content_id="1",
                )
            ]
        ),
        PartResponse(
            200,
            [
                (
                    "Content-Type",
                    "application/json; odata.metadata=minimal; odata.streaming=true",
                ),
                ("OData-Version", "4.0"),
            ],
            json_body.encode(),
        ),
    ]
    content_type, body = encode_batch_response(
        parts,
        guids("f27ef42d-51b0-4685-bac9-f468f844de2f", "64cc3fff-023a-45b0-b29d-df21583ffa15"),
    )
    assert content_type == (
        "multipart/mixed; boundary=batchresponse_f27ef42d-51b0-4685-bac9-f468f844de2f"
    )
    assert body == crlf(
        "--batchresponse_f27ef42d-51b0-4685-bac9-f468f844de2f",
        "Content-Type: multipart/mixed; "
        "boundary=changesetresponse_64cc3fff-023a-45b0-b29d-df21583ffa15",
        "",
        "--changesetresponse_64cc3fff-023a-45b0-b29d-df21583ffa15",
        "Content-Type: application/http",
        "Content-Transfer-Encoding: binary",
        "Content-ID: 1",
        "",
        "HTTP/1.1 204 No Content",
        "OData-Version: 4.0",
        f"Location: {task}",
        f"OData-EntityId: {task}",
        "",
        "",
        "--changesetresponse_64cc3fff-023a-45b0-b29d-df21583ffa15--",
        "--batchresponse_f27ef42d-51b0-4685-bac9-f468f844de2f",
        "Content-Type: application/http",
        "Content-Transfer-Encoding: binary",
        "",
        "HTTP/1.1 200 OK",
        "Content-Type: application/json; odata.metadata=minimal; odata.streaming=true",
        "OData-Version: 4.0",
        "",
        json_body,
        "--batchresponse_f27ef42d-51b0-4685-bac9-f468f844de2f--",
        "",
    )


def test_encode_matches_documented_error_response() -> None:
    """§5.4: the documented failure part, byte for byte, with reason phrase `Bad Request`."""
    error = (
        '{"error":{"code":"0x80044331","message":"A validation error occurred.  The length of '
        "the 'subject' attribute of the 'task' entity exceeded the maximum allowed length of "
        "'200'.\"}}"
    )
    part = PartResponse(
        400,
        [
            ("REQ_ID", "5ecd1cb3-1730-4ffc-909c-d44c22270026"),
            ("Content-Type", "application/json; odata.metadata=minimal"),
            ("OData-Version", "4.0"),
        ],
        error.encode(),
    )
    _, body = encode_batch_response([part], guids("156da4b8-cd2c-4862-a911-4aaab97c001a"))
    assert body == crlf(
        "--batchresponse_156da4b8-cd2c-4862-a911-4aaab97c001a",
        "Content-Type: application/http",
        "Content-Transfer-Encoding: binary",
        "",
        "HTTP/1.1 400 Bad Request",
        "REQ_ID: 5ecd1cb3-1730-4ffc-909c-d44c22270026",
        "Content-Type: application/json; odata.metadata=minimal",
        "OData-Version: 4.0",
        "",
        error,
        "--batchresponse_156da4b8-cd2c-4862-a911-4aaab97c001a--",
        "",
    )


@pytest.mark.parametrize(
    ("status", "line"),
    [
        (201, "HTTP/1.1 201 Created"),
        (404, "HTTP/1.1 404 Not Found"),
        (412, "HTTP/1.1 412 Precondition Failed"),
        (429, "HTTP/1.1 429 Too Many Requests"),
        (599, "HTTP/1.1 599 Unknown"),
    ],
)
def test_status_lines_carry_reason_phrases(status: int, line: str) -> None:
    _, body = encode_batch_response([PartResponse(status)], guids("g"))
    assert f"\r\n{line}\r\n".encode() in body


def test_default_boundaries_are_fresh() -> None:
    first, _ = encode_batch_response([])
    second, _ = encode_batch_response([])
    assert first != second
    assert first.startswith("multipart/mixed; boundary=batchresponse_")


def test_encoded_response_parses_back_with_stdlib_email() -> None:
    """The encoder's output is valid MIME: the stdlib parser finds the same structure."""
    from email.parser import BytesParser  # noqa: PLC0415

    content_type, body = encode_batch_response(
        [
            ChangeSetResponse([PartResponse(204, [("OData-Version", "4.0")], content_id="1")]),
            PartResponse(200, [("OData-Version", "4.0")], b'{"value":[]}'),
        ]
    )
    message = BytesParser().parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    outer = message.get_payload()
    assert [p.get_content_type() for p in outer] == ["multipart/mixed", "application/http"]
    [inner] = outer[0].get_payload()
    assert inner["Content-ID"] == "1"
    assert outer[1].get_payload().endswith('{"value":[]}')
