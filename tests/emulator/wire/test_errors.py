from __future__ import annotations

import orjson
import pytest

from dataverse_emulator.state.errors import DataverseFault, Kind
from dataverse_emulator.wire.errors import error_response, fault_response


def test_error_response_shape() -> None:
    """§4.8: body is {"error":{"code","message"}}; §2.3: OData-Version, JSON type, REQ_ID."""
    resp = error_response(429, "0x80072322", "Number of requests exceeded", [("Retry-After", "5")])
    assert resp.status == 429
    assert orjson.loads(resp.body) == {
        "error": {"code": "0x80072322", "message": "Number of requests exceeded"}
    }
    assert resp.header("OData-Version") == "4.0"
    assert resp.header("Content-Type") == "application/json; odata.metadata=minimal"
    assert resp.header("Retry-After") == "5"
    assert resp.header("REQ_ID")


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        (Kind.BAD_REQUEST, 400),
        (Kind.FORBIDDEN, 403),
        (Kind.NOT_FOUND, 404),
        (Kind.METHOD_NOT_ALLOWED, 405),
        (Kind.PRECONDITION_FAILED, 412),
        (Kind.TOO_LARGE, 413),
        (Kind.SERVER_ERROR, 500),
    ],
)
def test_fault_status_by_kind(kind: Kind, status: int) -> None:
    """§2.5: each domain kind maps to the status Dataverse uses."""
    resp = fault_response(DataverseFault(kind, "0x80040216", "An unexpected error occurred."))
    assert resp.status == status
    assert orjson.loads(resp.body)["error"]["code"] == "0x80040216"
