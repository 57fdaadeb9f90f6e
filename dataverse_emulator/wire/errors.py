"""Dataverse error bodies: ``{"error": {"code": ..., "message": ...}}`` (reference §4.8).

Every room renders failures through :func:`error_response` so that authentication (401),
throttling (429) and record errors share one shape and one set of headers.
"""

from __future__ import annotations

import typing as t
import uuid

import orjson

from dataverse_emulator.http import Response
from dataverse_emulator.state.errors import DataverseFault, Kind

JSON_CONTENT_TYPE = "application/json; odata.metadata=minimal"

STATUS_BY_KIND: dict[Kind, int] = {
    Kind.BAD_REQUEST: 400,
    Kind.FORBIDDEN: 403,
    Kind.NOT_FOUND: 404,
    Kind.METHOD_NOT_ALLOWED: 405,
    Kind.PRECONDITION_FAILED: 412,
    Kind.TOO_LARGE: 413,
    Kind.SERVER_ERROR: 500,
}


class ParseError(Exception):
    """Request text the wire cannot parse; each parser raises its own subclass.

    ParseError
     ├─ PathSyntaxError      resource path, key predicate or literal (``segments``)
     ├─ FilterSyntaxError    ``$filter`` expression (``odata_filter``)
     ├─ QueryOptionError     system query option (``query_options``)
     └─ MultipartError       ``$batch`` body or ``Content-Type`` (``multipart``)

    Attributes:
        message: What is wrong, for the 400 the handler renders.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def error_body(code: str, message: str) -> bytes:
    """Encode the Dataverse error JSON (§4.8)."""
    return orjson.dumps({"error": {"code": code, "message": message}})


ERROR_ANNOTATIONS = (
    "Microsoft.PowerApps.CDS.ErrorDetails.OperationStatus",
    "Microsoft.PowerApps.CDS.ErrorDetails.SubErrorCode",
    "Microsoft.PowerApps.CDS.HelpLink",
    "Microsoft.PowerApps.CDS.InnerError.Message",
)
"""The ``@…`` members an error carries with ``Prefer: odata.include-annotations`` (§4.8)."""


def error_annotations(code: str, message: str) -> dict[str, str]:
    """The values of :data:`ERROR_ANNOTATIONS` for an error (§4.8 example)."""
    try:
        number = int(code, 16) if code else 0
    except ValueError:
        number = 0
    signed = number - (1 << 32) if number >= 1 << 31 else number
    link = "http://go.microsoft.com/fwlink/?LinkID=398563&error=Microsoft.Crm.CrmException"
    values = ("0", str(signed), f"{link}%3a{number:x}&client=platform", message)
    return dict(zip(ERROR_ANNOTATIONS, values, strict=True))


def annotate_error(response: Response, wanted: t.Callable[[str], bool]) -> Response:
    """Add the error annotations ``wanted`` accepts to an error response's ``error`` (§4.8)."""
    if response.status < 400 or not response.body:
        return response
    try:
        body = orjson.loads(response.body)
        error = body["error"]
        extra = error_annotations(error["code"], error["message"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return response
    error.update({f"@{name}": value for name, value in extra.items() if wanted(name)})
    response.body = orjson.dumps(body)
    return response


def error_response(
    status: int,
    code: str,
    message: str,
    headers: list[tuple[str, str]] | None = None,
) -> Response:
    """Build a Dataverse-shaped error response.

    Args:
        status: HTTP status.
        code: Dataverse error code, e.g. ``"0x80040237"`` (may be empty).
        message: The error message.
        headers: Extra headers appended after the standard ones (e.g. ``Retry-After``).

    Returns:
        A response with ``REQ_ID``, ``Content-Type`` and ``OData-Version`` headers (§2.3).
    """
    base = [
        ("REQ_ID", str(uuid.uuid4())),
        ("Content-Type", JSON_CONTENT_TYPE),
        ("OData-Version", "4.0"),
    ]
    return Response(status=status, headers=base + (headers or []), body=error_body(code, message))


def stamp_request_id(response: Response) -> Response:
    """Give ``response`` its request id: ``REQ_ID`` (kept if set) and ``x-ms-service-request-id``.

    Real Web API answers carry both, successes and errors alike, with the same id (§2.3).
    """
    request_id = response.header("REQ_ID")
    if request_id is None:
        request_id = str(uuid.uuid4())
        response.headers.append(("REQ_ID", request_id))
    response.headers.append(("x-ms-service-request-id", request_id))
    return response


def fault_response(fault: DataverseFault) -> Response:
    """Render a domain fault with the status its kind maps to."""
    return error_response(STATUS_BY_KIND[fault.kind], fault.code, fault.message)
