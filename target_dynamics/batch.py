"""``$batch`` multipart codec (§5): encode :class:`WebRequest` parts, decode part answers (pure).

Requests go out as independent operations (no change sets, so one failing part never rolls
back another), with CRLF line endings and root-relative URLs. Responses are read leniently: CRLF
or bare LF, quoted or unquoted boundary, preamble and epilogue, change-set responses flattened
in order.
"""

from __future__ import annotations

import re
import typing as t

from target_dynamics.webapi import (
    CONTINUE_ON_ERROR,
    MAX_BATCH_OPERATIONS,
    WebRequest,
    WebResponse,
    find_header,
    prefer,
)

_CRLF = "\r\n"
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_BOUNDARY = re.compile(r'boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))', re.IGNORECASE)
_STATUS_LINE = re.compile(rb"^HTTP/\d(?:\.\d)?\s+(\d{3})")


def encode(
    requests: t.Sequence[WebRequest],
    *,
    boundary: str,
    service_root: str,
    continue_on_error: bool = True,
) -> WebRequest:
    """Pack ``requests`` into one ``POST $batch`` request.

    Args:
        requests: Operations, sent in order as independent parts (1 to 1,000).
        boundary: Multipart boundary; the caller draws it (this module reads no randomness).
        service_root: Root-relative service path, e.g. ``/api/data/v9.2/``.
        continue_on_error: Send ``Prefer: odata.continue-on-error`` (§5.4).

    Returns:
        The ``$batch`` request, its ``Content-Type`` naming the boundary.

    Raises:
        ValueError: for an empty batch or more than 1,000 operations.
    """
    if not 0 < len(requests) <= MAX_BATCH_OPERATIONS:
        raise ValueError(f"A $batch holds 1 to {MAX_BATCH_OPERATIONS} operations.")
    root = "/" + service_root.strip("/") + "/"
    chunks: list[bytes] = []
    for request in requests:
        lines = [
            f"--batch_{boundary}",
            "Content-Type: application/http",
            "Content-Transfer-Encoding: binary",
            "",
            f"{request.method} {root}{request.path} HTTP/1.1",
        ]
        if request.body is not None:
            lines.append("Content-Type: application/json; type=entry")
        lines.extend(f"{name}: {value}" for name, value in request.headers.items())
        lines.extend(["", ""])
        chunks.append(_CRLF.join(lines).encode())
        if request.body is not None:
            chunks.append(request.body + _CRLF.encode())
    chunks.append(f"--batch_{boundary}--{_CRLF}".encode())
    headers = {"Content-Type": f'multipart/mixed; boundary="batch_{boundary}"'}
    if continue_on_error:
        headers.update(prefer(CONTINUE_ON_ERROR))
    return WebRequest("POST", "$batch", b"".join(chunks), headers)


def boundary_of(content_type: str) -> str | None:
    """The boundary of a ``multipart/mixed`` content type, or None for anything else."""
    if not content_type.lower().lstrip().startswith("multipart/"):
        return None
    match = _BOUNDARY.search(content_type)
    return (match.group(1) or match.group(2)) if match else None


def decode(content_type: str, body: bytes) -> list[WebResponse]:
    """Read the part answers of a ``$batch`` response, in order (change sets flattened).

    Raises:
        ValueError: when ``content_type`` is not multipart or a part is not an HTTP response.
    """
    boundary = boundary_of(content_type)
    if boundary is None:
        raise ValueError(f"Not a multipart $batch response: {content_type!r}.")
    responses: list[WebResponse] = []
    for part in _parts(body, boundary.encode()):
        headers, content = _head(part)
        inner_type = find_header(headers, "Content-Type") or ""
        if boundary_of(inner_type):
            responses.extend(decode(inner_type, content))
        else:
            responses.append(_http_response(content))
    return responses


def _parts(body: bytes, boundary: bytes) -> list[bytes]:
    delimiter = re.compile(rb"(?:^|\r?\n)--" + re.escape(boundary) + rb"(--)?[ \t]*(?:\r?\n|$)")
    parts: list[bytes] = []
    start: int | None = None
    for match in delimiter.finditer(body):
        if start is not None:
            parts.append(body[start : match.start()])
        if match.group(1):
            break
        start = match.end()
    return parts


def _head(data: bytes) -> tuple[dict[str, str], bytes]:
    """Split header lines from content at the first blank line."""
    match = _BLANK_LINE.search(data)
    if match is None:
        head, content = data, b""
    else:
        head, content = data[: match.start()], data[match.end() :]
    headers: dict[str, str] = {}
    for line in head.decode("utf-8", "replace").splitlines():
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip()] = value.strip()
    return headers, content


def _http_response(data: bytes) -> WebResponse:
    data = data.lstrip(b"\r\n")
    line_end = data.find(b"\n")
    status_line = data if line_end < 0 else data[:line_end]
    match = _STATUS_LINE.match(status_line.strip())
    if match is None:
        raise ValueError("A $batch part does not start with an HTTP status line.")
    rest = b"" if line_end < 0 else data[line_end + 1 :]
    headers: dict[str, str]
    if rest.startswith((b"\r\n", b"\n")):
        headers, body = {}, rest.lstrip(b"\r\n")
    else:
        headers, body = _head(rest)
    return WebResponse(int(match.group(1)), headers, body.strip(b"\r\n"))
