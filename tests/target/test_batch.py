"""The `$batch` codec (§5): CRLF requests out, lenient responses in."""

from __future__ import annotations

import pytest

from target_dynamics import batch
from target_dynamics.webapi import WebRequest

ROOT = "/api/data/v9.2/"


def test_encode_independent_parts_crlf_root_relative():
    """§5.1: one application/http part per operation, CRLF, root-relative URLs, no change sets."""
    request = batch.encode(
        [
            WebRequest("POST", "tasks", b'{"subject":"x"}'),
            WebRequest("DELETE", "tasks(1)", None, {"If-Match": "*"}),
        ],
        boundary="b1",
        service_root=ROOT,
    )
    assert (request.method, request.path) == ("POST", "$batch")
    assert request.headers == {
        "Content-Type": 'multipart/mixed; boundary="batch_b1"',
        "Prefer": "odata.continue-on-error",
    }
    assert request.body == (
        b"--batch_b1\r\n"
        b"Content-Type: application/http\r\n"
        b"Content-Transfer-Encoding: binary\r\n"
        b"\r\n"
        b"POST /api/data/v9.2/tasks HTTP/1.1\r\n"
        b"Content-Type: application/json; type=entry\r\n"
        b"\r\n"
        b'{"subject":"x"}\r\n'
        b"--batch_b1\r\n"
        b"Content-Type: application/http\r\n"
        b"Content-Transfer-Encoding: binary\r\n"
        b"\r\n"
        b"DELETE /api/data/v9.2/tasks(1) HTTP/1.1\r\n"
        b"If-Match: *\r\n"
        b"\r\n"
        b"--batch_b1--\r\n"
    )


def test_encode_without_continue_on_error_and_limits():
    """§5.1: at most 1,000 operations; §5.4: continue-on-error is opt-in."""
    one = batch.encode(
        [WebRequest("GET", "WhoAmI")], boundary="x", service_root=ROOT, continue_on_error=False
    )
    assert "Prefer" not in one.headers
    with pytest.raises(ValueError, match="1 to 1000"):
        batch.encode([], boundary="x", service_root=ROOT)
    with pytest.raises(ValueError, match="1 to 1000"):
        batch.encode([WebRequest("GET", "WhoAmI")] * 1001, boundary="x", service_root=ROOT)


DOC_RESPONSE = (
    "--batchresponse_f27e\r\n"
    "Content-Type: multipart/mixed; boundary=changesetresponse_64cc\r\n"
    "\r\n"
    "--changesetresponse_64cc\r\n"
    "Content-Type: application/http\r\n"
    "Content-Transfer-Encoding: binary\r\n"
    "Content-ID: 1\r\n"
    "\r\n"
    "HTTP/1.1 204 No Content\r\n"
    "OData-Version: 4.0\r\n"
    "OData-EntityId: https://org/api/data/v9.2/tasks(e73f)\r\n"
    "\r\n"
    "\r\n"
    "--changesetresponse_64cc--\r\n"
    "--batchresponse_f27e\r\n"
    "Content-Type: application/http\r\n"
    "Content-Transfer-Encoding: binary\r\n"
    "\r\n"
    "HTTP/1.1 400 Bad Request\r\n"
    "REQ_ID: 5ecd\r\n"
    "Content-Type: application/json; odata.metadata=minimal\r\n"
    "OData-Version: 4.0\r\n"
    "\r\n"
    '{"error":{"code":"0x80044331","message":"A validation error occurred."}}\r\n'
    "--batchresponse_f27e--\r\n"
)


@pytest.mark.parametrize("newline", ["\r\n", "\n"])
@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/mixed; boundary=batchresponse_f27e",
        'multipart/mixed;boundary="batchresponse_f27e"',
    ],
)
def test_decode_crlf_and_lf_with_change_sets(newline, content_type):
    """§5.3 documented response (CRLF) and the recorded bare-LF form; change sets flattened."""
    body = ("preamble" + newline + DOC_RESPONSE.replace("\r\n", newline) + "epilogue").encode()
    parts = batch.decode(content_type, body)
    assert [p.status for p in parts] == [204, 400]
    assert parts[0].header("odata-entityid") == "https://org/api/data/v9.2/tasks(e73f)"
    assert parts[0].body == b""
    assert (
        parts[1].body == b'{"error":{"code":"0x80044331","message":"A validation error occurred."}}'
    )
    assert parts[1].header("REQ_ID") == "5ecd"


def test_decode_part_without_headers_or_body():
    body = b"--b\nContent-Type: application/http\n\nHTTP/1.1 204 No Content\n--b--"
    (part,) = batch.decode("multipart/mixed; boundary=b", body)
    assert (part.status, dict(part.headers), part.body) == (204, {}, b"")


def test_decode_rejects_non_multipart_and_garbage_parts():
    with pytest.raises(ValueError, match="Not a multipart"):
        batch.decode("application/json", b'{"error":{}}')
    with pytest.raises(ValueError, match="status line"):
        batch.decode("multipart/mixed; boundary=b", b"--b\r\n\r\nnot http\r\n--b--\r\n")


def test_round_trip_count_of_parts():
    """A body of n parts decodes to n answers, whatever the bodies contain (no false boundaries)."""
    parts = "".join(
        f"--r\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"
        f'{{"text":"--r-- inside json {i}"}}\r\n'
        for i in range(5)
    )
    decoded = batch.decode("multipart/mixed; boundary=r", (parts + "--r--\r\n").encode())
    assert len(decoded) == 5
    assert decoded[4].body == b'{"text":"--r-- inside json 4"}'
