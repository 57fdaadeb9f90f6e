r"""The ``$batch`` codec: ``multipart/mixed`` requests in, ``multipart/mixed`` responses out.

Reference §5.1-§5.5 and Appendix A.3 ("Multipart"). The parser accepts every dialect real clients
send (§5.5): quoted or bare boundaries, CRLF or bare-LF line endings, a preamble and an epilogue,
extra blank lines before a body, change sets with ``Content-ID`` in the part headers or in the
inner request headers, and absolute, root-relative, service-relative or ``$n`` URLs.

A ``GET`` inside a change set is rejected here (§5.2); the 1,000-operation limit and ``$n``
resolution belong to the executor.

Example:
    >>> body = (
    ...     b"--b\r\nContent-Type: application/http\r\n\r\n"
    ...     b"POST https://h/api/data/v9.2/accounts HTTP/1.1\r\n"
    ...     b"Content-Type: application/json\r\n\r\n"
    ...     b'{"name":"x"}\r\n--b--\r\n'
    ... )
    >>> [op] = parse_batch('multipart/mixed; boundary="b"', body)
    >>> op.method, relative_url(op.url), op.body
    ('POST', 'accounts', b'{"name":"x"}')
    >>> ctype, _ = encode_batch_response([PartResponse(204, [("OData-Version", "4.0")])])
    >>> ctype.startswith("multipart/mixed; boundary=batchresponse_")
    True
"""

from __future__ import annotations

import re
import typing as t
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus

from dataverse_emulator.wire.errors import ParseError

if t.TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

_CRLF = "\r\n"
_BOUNDARY = re.compile(r'boundary\s*=\s*(?:"([^"]+)"|([^";\s]+))', re.IGNORECASE)
_ROOTED = re.compile(r"/api/data/v\d+\.\d+(?:/|$)")
_METHOD = re.compile(r"[A-Z]+")


class MultipartError(ParseError):
    """A ``$batch`` body or ``Content-Type`` that cannot be parsed (rendered as a 400)."""


@dataclass(frozen=True, slots=True)
class Operation:
    """One request inside a ``$batch``.

    Attributes:
        method: Upper-case HTTP method.
        url: The URL exactly as written in the request line (see :func:`relative_url`).
        headers: Inner request headers; names lower-cased, repeats joined with ``", "``.
        body: The request body without surrounding blank lines (``b""`` when absent).
        content_id: The ``Content-ID`` of the part, if any.
    """

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    content_id: str | None = None


@dataclass(frozen=True, slots=True)
class ChangeSet:
    """An atomic group of operations (§5.2)."""

    operations: tuple[Operation, ...]


@dataclass(frozen=True, slots=True)
class PartResponse:
    """One HTTP response inside a batch response.

    Attributes:
        status: HTTP status code; the reason phrase is added by the encoder.
        headers: Header pairs written verbatim, in order (include ``OData-Version``).
        body: The encoded body, usually JSON; ``b""`` for none.
        content_id: Echoed as the part's ``Content-ID`` (change-set parts).
    """

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    content_id: str | None = None


@dataclass(frozen=True, slots=True)
class ChangeSetResponse:
    """The responses of one change set, nested as their own ``multipart/mixed`` part."""

    parts: list[PartResponse]


def boundary_of(content_type: str) -> str:
    """Return the boundary of a ``multipart/mixed`` content type.

    Raises:
        MultipartError: The type is not ``multipart/mixed`` or has no boundary.
    """
    media, _, params = content_type.partition(";")
    if media.strip().lower() != "multipart/mixed":
        raise MultipartError(f"Expected a multipart/mixed content type, got '{content_type}'.")
    match = _BOUNDARY.search(params)
    if match is None:
        raise MultipartError(f"The content type '{content_type}' has no boundary parameter.")
    return match.group(1) or match.group(2)


def parse_batch(content_type: str, body: bytes) -> list[Operation | ChangeSet]:
    """Parse a ``$batch`` request body into operations and change sets, in order.

    Raises:
        MultipartError: The body is malformed.
    """
    items: list[Operation | ChangeSet] = []
    for part in _split(body, boundary_of(content_type)):
        headers, pos = _read_headers(part, 0)
        part_type = headers.get("content-type", "application/http")
        if part_type.lower().startswith("multipart/mixed"):
            items.append(_parse_change_set(part_type, part[pos:]))
        else:
            items.append(_parse_operation(headers, part, pos))
    return items


def relative_url(url: str) -> str:
    """Return an operation URL relative to the service root, query included.

    ``https://h/api/data/v9.2/accounts?$top=1`` and ``/api/data/v9.2/accounts?$top=1`` both give
    ``accounts?$top=1``; service-relative URLs and ``$n`` references come back unchanged.

    Raises:
        MultipartError: An absolute or rooted URL outside ``/api/data/v<major>.<minor>/``.
    """
    if url.startswith(("http://", "https://")):
        slash = url.find("/", url.find("//") + 2)
        path = url[slash:] if slash != -1 else "/"
    elif url.startswith("/"):
        path = url
    else:
        return url
    match = _ROOTED.match(path)
    if match is None:
        raise MultipartError(f"The URL '{url}' is not under the service root /api/data/v9.2/.")
    return path[match.end() :]


def encode_batch_response(
    parts: Sequence[PartResponse | ChangeSetResponse],
    new_uuid: Callable[[], object] = uuid.uuid4,
) -> tuple[str, bytes]:
    """Encode batch results in the documented response format (§5.3), CRLF line endings.

    Headers are written verbatim (the caller includes ``OData-Version: 4.0``); the reason phrase
    comes from the status; the body ends with a line break after the close delimiter, like the
    response captured from a real org (§5.3). The top-level status is the caller's choice (§5.4).

    Args:
        parts: The responses, in request order.
        new_uuid: Source of the boundary GUIDs (inject for deterministic output).

    Returns:
        The response ``Content-Type`` (with a fresh ``batchresponse_<guid>`` boundary) and body.
    """
    boundary = f"batchresponse_{new_uuid()}"
    chunks: list[bytes] = []
    for part in parts:
        chunks.append(f"--{boundary}{_CRLF}".encode())
        if isinstance(part, ChangeSetResponse):
            inner = f"changesetresponse_{new_uuid()}"
            head = f"Content-Type: multipart/mixed; boundary={inner}{_CRLF}{_CRLF}"
            chunks.append(head.encode())
            for sub in part.parts:
                chunks.append(f"--{inner}{_CRLF}".encode())
                chunks.extend(_encode_part(sub))
            chunks.append(f"--{inner}--{_CRLF}".encode())
        else:
            chunks.extend(_encode_part(part))
    chunks.append(f"--{boundary}--{_CRLF}".encode())
    return f"multipart/mixed; boundary={boundary}", b"".join(chunks)


def _encode_part(part: PartResponse) -> list[bytes]:
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if part.content_id is not None:
        lines.append(f"Content-ID: {part.content_id}")
    lines.extend(("", f"HTTP/1.1 {part.status} {_reason(part.status)}"))
    lines.extend(f"{name}: {value}" for name, value in part.headers)
    lines.extend(("", ""))
    return [_CRLF.join(lines).encode(), part.body, _CRLF.encode()]


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _split(body: bytes, boundary: str) -> list[bytes]:
    """Return the parts between delimiter lines; the line break before a delimiter is its own."""
    dash = b"--" + boundary.encode("latin-1")
    close = dash + b"--"
    parts: list[bytes] = []
    current: list[bytes] | None = None  # None while in the preamble
    for line in body.split(b"\n"):
        if line.startswith(dash):
            bare = line.rstrip(b" \t\r")
            if bare in (dash, close):
                if current is not None:
                    parts.append(_join(current))
                if bare == close:
                    return parts
                current = []
                continue
        if current is not None:
            current.append(line)
    if current is None:
        raise MultipartError(f"The batch body contains no boundary delimiter '--{boundary}'.")
    raise MultipartError(f"The batch body does not end with the close delimiter '--{boundary}--'.")


def _join(lines: list[bytes]) -> bytes:
    data = b"\n".join(lines)
    return data[:-1] if data.endswith(b"\r") else data


def _read_headers(data: bytes, pos: int) -> tuple[dict[str, str], int]:
    """Read header lines from ``pos`` up to a blank line; return them and the next position."""
    headers: dict[str, str] = {}
    last = ""
    size = len(data)
    while pos < size:
        end = data.find(b"\n", pos)
        if end == -1:
            end = size
        line = data[pos:end].rstrip(b"\r")
        pos = end + 1
        if not line:
            break
        text = line.decode("latin-1")
        if text[0] in " \t" and last:
            headers[last] = f"{headers[last]} {text.strip()}"
            continue
        name, sep, value = text.partition(":")
        name = name.strip().lower()
        if not sep or not name or " " in name:
            raise MultipartError(f"Malformed header line '{text}' in the batch body.")
        value = value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
        last = name
    return headers, min(pos, size)


def _parse_change_set(content_type: str, data: bytes) -> ChangeSet:
    operations: list[Operation] = []
    for part in _split(data, boundary_of(content_type)):
        headers, pos = _read_headers(part, 0)
        if headers.get("content-type", "application/http").lower().startswith("multipart/"):
            raise MultipartError("A change set cannot contain another change set.")
        operation = _parse_operation(headers, part, pos)
        if operation.method == "GET":
            raise MultipartError("A change set cannot contain a GET request.")
        operations.append(operation)
    return ChangeSet(tuple(operations))


def _parse_operation(part_headers: dict[str, str], data: bytes, pos: int) -> Operation:
    part_type = part_headers.get("content-type", "application/http")
    if part_type.split(";", 1)[0].strip().lower() != "application/http":
        raise MultipartError(f"Unsupported batch part Content-Type '{part_type}'.")
    size = len(data)
    while pos < size and data[pos] in b"\r\n":  # tolerate blank lines before the request line
        pos += 1
    end = data.find(b"\n", pos)
    if end == -1:
        end = size
    try:
        line = data[pos:end].rstrip(b"\r").decode()
    except UnicodeDecodeError as exc:
        raise MultipartError("A batch request line is not valid UTF-8.") from exc
    method, _, rest = line.partition(" ")
    url, _, version = rest.strip().rpartition(" ")
    if not _METHOD.fullmatch(method) or not url or not version.startswith("HTTP/"):
        raise MultipartError(f"Malformed request line '{line}' in the batch body.")
    headers, pos = _read_headers(data, end + 1)
    content_id = part_headers.get("content-id") or headers.get("content-id")
    body = data[pos:].strip(b"\r\n")
    _check_length(headers.get("content-length"), data[pos:], body, line)
    return Operation(method, url.strip(), headers, body, content_id)


def _check_length(declared: str | None, raw: bytes, body: bytes, line: str) -> None:
    """Refuse a part whose ``Content-Length`` differs from its body (§2.6).

    The raw body (up to the delimiter's line break) or the body without surrounding line
    breaks may match: clients differ in whether the break before the delimiter counts.
    """
    if declared is None:
        return
    if not declared.isdigit():
        raise MultipartError(f"Invalid Content-Length '{declared}' for '{line}' in the batch.")
    if int(declared) not in {len(raw), len(body)}:
        raise MultipartError(
            f"The Content-Length {declared} of '{line}' does not match its body of "
            f"{len(body)} bytes."
        )
