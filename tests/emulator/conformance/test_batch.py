"""Conformance: ``$batch`` requests, change sets, failures and dialects (§5)."""

from __future__ import annotations

import json
import re

from conformance_support import GUID, JSON_CONTENT_TYPE, new_boundary

TOO_LONG = "A validation error occurred.  The length of the 'firstname' attribute of the 'contact' entity exceeded the maximum allowed length of '50'."  # noqa: E501 - quoted verbatim


def operation(method, url, body=None, *, content_id=None, eol="\r\n", entry=True):
    """One ``application/http`` part without its delimiter (§5.1)."""
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id is not None:
        lines.append(f"Content-ID: {content_id}")
    lines += ["", f"{method} {url} HTTP/1.1"]
    if body is not None:
        lines.append("Content-Type: application/json" + ("; type=entry" if entry else ""))
    lines += ["", "" if body is None else json.dumps(body)]
    return eol.join(lines)


def multipart(boundary, parts, eol="\r\n"):
    """Join parts with ``--boundary`` delimiters and the closing ``--boundary--``."""
    body = "".join(f"--{boundary}{eol}{part}{eol}" for part in parts)
    return f"{body}--{boundary}--{eol}"


def changeset(boundary, parts, eol="\r\n"):
    """A change-set part (§5.2): a nested ``multipart/mixed``."""
    header = f'Content-Type: multipart/mixed; boundary="{boundary}"{eol}{eol}'
    return header + multipart(boundary, parts, eol)


def create(entity_set, body, **kwargs):
    return operation("POST", f"/api/data/v9.2/{entity_set}", body, **kwargs)


def entity_id(part, entity_set):
    match = re.fullmatch(rf".*/{entity_set}\(([0-9a-f-]{{36}})\)", part.headers["OData-EntityId"])
    assert match, part.headers
    return match.group(1)


def assert_create_part(dv, part, entity_set):
    """§5.3: create parts are ``HTTP/1.1 204 No Content`` with ``Location`` and
    ``OData-EntityId``."""
    assert (part.status, part.reason) == (204, "No Content"), part
    assert part.headers["OData-Version"] == "4.0"
    assert part.headers["Location"] == part.headers["OData-EntityId"]
    assert part.headers["OData-EntityId"].startswith(f"{dv.api_url}/{entity_set}(")
    assert GUID.match(entity_id(part, entity_set))


def test_response_format(dv):
    """§5.1 / §5.3: CRLF, root-relative and absolute part URLs; 200 + OData-Version; a
    ``batchresponse_<guid>`` boundary unlike the request's; parts in request order; a GET part
    answers 200 JSON and sees the earlier creates (sequential)."""
    boundary = new_boundary("batch")
    body = multipart(
        boundary,
        [
            create("contacts", {"lastname": "One"}),
            operation("POST", f"{dv.api_url}/contacts", {"lastname": "Two"}),
            operation("GET", "/api/data/v9.2/contacts?$select=lastname&$orderby=lastname"),
        ],
    )
    response = dv.batch(body, boundary)
    assert response.status_code == 200, response.text
    assert response.headers["OData-Version"] == "4.0"
    match = re.fullmatch(
        r'multipart/mixed; ?boundary="?(batchresponse_[0-9a-f-]{36})"?',
        response.headers["Content-Type"],
    )
    assert match, response.headers["Content-Type"]
    assert match.group(1) != boundary
    parts = dv.parts(response)
    assert len(parts) == 3
    assert_create_part(dv, parts[0], "contacts")
    assert_create_part(dv, parts[1], "contacts")
    get = parts[2]
    assert (get.status, get.reason) == (200, "OK")
    assert get.headers["Content-Type"] == f"{JSON_CONTENT_TYPE}; odata.streaming=true"  # §2.3
    assert get.headers["OData-Version"] == "4.0"
    assert [row["lastname"] for row in get.json()["value"]] == ["One", "Two"]


def test_lf_dialect_of_dataverse_api(dv):
    """§5.5: ``dataverse-api`` sends bare LF, absolute URLs and an extra blank line before the
    body; §11 #13: accept."""
    boundary = new_boundary("batch")
    parts = [
        operation("POST", f"{dv.api_url}/contacts", {"lastname": name}, eol="\n").replace(
            "\n\n{", "\n\n\n{"
        )
        for name in ("Lf1", "Lf2")
    ]
    response = dv.batch(multipart(boundary, parts, eol="\n"), boundary)
    assert response.status_code == 200, response.text
    assert [part.status for part in dv.parts(response)] == [204, 204]
    assert sorted(row["lastname"] for row in dv.rows("contacts")) == ["Lf1", "Lf2"]


def test_dialect_of_dynamics_web_api(dv):
    """§5.5: ``dynamics-web-api`` sends an unquoted boundary without a space, a leading CRLF
    preamble, change-set ``Content-ID: 100001…`` and ``application/json`` without
    ``type=entry``."""
    boundary, inner = new_boundary("dwa_batch"), new_boundary("dwa_changeset")
    body = "\r\n" + multipart(
        boundary,
        [
            changeset(
                inner,
                [
                    create("accounts", {"name": "Dwa"}, content_id="100001", entry=False),
                    create("contacts", {"lastname": "Dwa"}, content_id="100002", entry=False),
                ],
            )
        ],
    )
    response = dv.post(
        "$batch",
        data=body.encode(),
        headers={"Content-Type": f"multipart/mixed;boundary={boundary}"},
    )
    assert response.status_code == 200, response.text
    parts = dv.parts(response)
    assert [(part.status, part.content_id) for part in parts] == [
        (204, "100001"),
        (204, "100002"),
    ]


def test_change_set_with_content_id_reference(dv):
    """§5.2: ``Content-ID: n`` makes ``$n`` usable in later bodies of the same change set;
    §5.3: change sets come back as ``changesetresponse_<guid>`` parts echoing Content-ID."""
    boundary, inner = new_boundary("batch"), new_boundary("changeset")
    body = multipart(
        boundary,
        [
            changeset(
                inner,
                [
                    create("accounts", {"name": "Parent"}, content_id="1"),
                    create(
                        "contacts",
                        {"lastname": "Child", "parentcustomerid_account@odata.bind": "$1"},
                        content_id="2",
                    ),
                ],
            )
        ],
    )
    response = dv.batch(body, boundary)
    assert response.status_code == 200, response.text
    assert "boundary=changesetresponse_" in response.text.replace('"', "")
    parts = dv.parts(response)
    assert [(part.content_id, part.changeset) for part in parts] == [("1", 0), ("2", 0)]
    assert_create_part(dv, parts[0], "accounts")
    assert_create_part(dv, parts[1], "contacts")
    account_id, contact_id = entity_id(parts[0], "accounts"), entity_id(parts[1], "contacts")
    body = dv.get(f"contacts({contact_id})?$select=_parentcustomerid_value").json()
    assert body["_parentcustomerid_value"] == account_id


def test_content_id_as_url(dv):
    """§5.2 / §5.5: a later part whose whole URL is ``$1`` (``PATCH $1``, Microsoft's Python
    SDK)."""
    boundary, inner = new_boundary("batch"), new_boundary("changeset")
    body = multipart(
        boundary,
        [
            changeset(
                inner,
                [
                    create("accounts", {"name": "cs1"}, content_id="1"),
                    operation("PATCH", "$1", {"name": "cs1-upd"}, content_id="2"),
                ],
            )
        ],
    )
    response = dv.batch(body, boundary)
    assert response.status_code == 200, response.text
    assert [part.status for part in dv.parts(response)] == [204, 204]
    assert [row["name"] for row in dv.rows("accounts", "$select=name")] == ["cs1-upd"]


def test_undeclared_content_id_is_400(dv):
    """§5.2: referencing a Content-ID before it is declared → 400 "Content-ID Reference: '$1'
    does not exist in the batch context."."""
    boundary, inner = new_boundary("batch"), new_boundary("changeset")
    body = multipart(
        boundary,
        [
            changeset(
                inner,
                [
                    create(
                        "contacts",
                        {"lastname": "X", "parentcustomerid_account@odata.bind": "$1"},
                        content_id="2",
                    ),
                    create("accounts", {"name": "Late"}, content_id="1"),
                ],
            )
        ],
    )
    response = dv.batch(body, boundary)
    assert response.status_code == 400, response.text
    assert "Content-ID Reference: '$1' does not exist in the batch context." in response.text
    assert dv.rows("accounts") == []
    assert dv.rows("contacts") == []


def test_change_set_is_atomic(dv):
    """§5.2 / §5.4: one failure rolls back the completed operations of the change set; the
    top-level status is 400 and the change-set response holds the failing operation's error
    part (``HTTP/1.1 400 Bad Request`` with ``REQ_ID``)."""
    boundary, inner = new_boundary("batch"), new_boundary("changeset")
    body = multipart(
        boundary,
        [
            changeset(
                inner,
                [
                    create("accounts", {"name": "Rolled back"}, content_id="1"),
                    create("contacts", {"lastname": "X", "firstname": "x" * 51}, content_id="2"),
                ],
            )
        ],
    )
    response = dv.batch(body, boundary)
    assert response.status_code == 400, response.text
    failed = [part for part in dv.parts(response) if part.status >= 400]
    assert len(failed) == 1
    part = failed[0]
    assert part.changeset is not None  # inside the changesetresponse
    assert (part.status, part.reason) == (400, "Bad Request")
    assert GUID.match(part.headers["REQ_ID"])
    dv.assert_error(part, 400, "0x80044331", TOO_LONG)
    assert dv.rows("accounts") == []
    assert dv.rows("contacts") == []


def test_stops_at_first_failure(dv):
    """§5.4: without ``odata.continue-on-error`` processing stops at the first failure, the
    top-level status is that failure's status; earlier operations stay committed; §11 #3: their
    parts precede the error part."""
    boundary = new_boundary("batch")
    body = multipart(
        boundary,
        [
            create("contacts", {"lastname": "Before"}),
            create("contacts", {"lastname": "Bad", "firstname": "x" * 51}),
            create("contacts", {"lastname": "After"}),
        ],
    )
    response = dv.batch(body, boundary)
    assert response.status_code == 400, response.text
    assert response.headers["OData-Version"] == "4.0"
    parts = dv.parts(response)
    assert [part.status for part in parts] == [204, 400]
    dv.assert_error(parts[1], 400, "0x80044331", TOO_LONG)
    assert GUID.match(parts[1].headers["REQ_ID"])
    assert [row["lastname"] for row in dv.rows("contacts", "$select=lastname")] == ["Before"]


def test_continue_on_error(dv):
    """§5.4: with ``Prefer: odata.continue-on-error`` the top-level status is 200, every part
    is present and failures are inline (400 with ``REQ_ID``)."""
    boundary = new_boundary("batch")
    body = multipart(
        boundary,
        [
            create("contacts", {"lastname": "Before"}),
            create("contacts", {"lastname": "Bad", "firstname": "x" * 51}),
            create("contacts", {"lastname": "After"}),
        ],
    )
    response = dv.batch(body, boundary, prefer="odata.continue-on-error")
    assert response.status_code == 200, response.text
    parts = dv.parts(response)
    assert [part.status for part in parts] == [204, 400, 204]
    dv.assert_error(parts[1], 400, "0x80044331", TOO_LONG)
    assert GUID.match(parts[1].headers["REQ_ID"])
    rows = dv.rows("contacts", "$select=lastname&$orderby=lastname")
    assert [row["lastname"] for row in rows] == ["After", "Before"]


def test_get_inside_change_set_is_rejected(dv):
    """§5.2: "GET is not allowed inside a change set"; nothing of the change set runs."""
    boundary, inner = new_boundary("batch"), new_boundary("changeset")
    body = multipart(
        boundary,
        [
            changeset(
                inner,
                [
                    create("contacts", {"lastname": "X"}, content_id="1"),
                    operation("GET", "/api/data/v9.2/contacts", content_id="2"),
                ],
            )
        ],
    )
    response = dv.batch(body, boundary)
    assert response.status_code == 400, response.text
    assert dv.rows("contacts") == []


def test_thousand_operations_are_accepted(dv):
    """§5.1: "At most 1,000 requests per batch"."""
    boundary = new_boundary("batch")
    body = multipart(boundary, [operation("GET", "/api/data/v9.2/WhoAmI")] * 1000)
    response = dv.batch(body, boundary)
    assert response.status_code == 200, response.text
    assert len(dv.parts(response)) == 1000


def test_more_than_thousand_operations_is_rejected(dv):
    """§5.1: more than 1,000 operations fault before any request runs; §5.4: a whole-request
    rejection is a plain JSON ``{"error":{…}}``, not multipart."""
    boundary = new_boundary("batch")
    body = multipart(boundary, [create("contacts", {"lastname": "X"})] * 1001)
    dv.assert_error(dv.batch(body, boundary), 400)
    assert dv.rows("contacts", "$top=1") == []


def test_json_batch_is_rejected(dv):
    """§5.1 / §11 #6: the OData 4.01 JSON ``$batch`` format is unsupported → 400."""
    body = {"requests": [{"id": "1", "method": "POST", "url": "contacts", "body": {}}]}
    dv.assert_error(dv.post("$batch", json=body), 400)
    assert dv.rows("contacts") == []


def test_multipart_without_boundary_is_rejected(dv):
    """§5.4: a malformed request is rejected whole with a plain JSON error."""
    response = dv.post(
        "$batch", data=b"--x\r\n\r\n--x--\r\n", headers={"Content-Type": "multipart/mixed"}
    )
    dv.assert_error(response, 400)


def test_preamble_epilogue_and_plus_in_part_query(dv):
    """§5.5: accept a preamble and an epilogue, and decode ``+`` as a space as well as
    ``%20`` in part query strings."""
    dv.create("contacts", {"lastname": "Plus"})
    boundary = new_boundary("batch")
    query = "/api/data/v9.2/contacts?$select=lastname&$filter="
    body = (
        "This is a preamble.\r\n"
        + multipart(
            boundary,
            [
                operation("GET", f"{query}lastname+eq+'Plus'"),
                operation("GET", f"{query}lastname%20eq%20'Plus'"),
            ],
        )
        + "This is an epilogue.\r\n"
    )
    response = dv.batch(body, boundary)
    assert response.status_code == 200, response.text
    parts = dv.parts(response)
    assert [[row["lastname"] for row in part.json()["value"]] for part in parts] == [
        ["Plus"],
        ["Plus"],
    ]
