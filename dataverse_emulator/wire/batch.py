"""``POST $batch``: run operations in order, change sets atomically (§5).

- At most 1,000 operations (change-set operations count one each); more is rejected whole.
- Without ``Prefer: odata.continue-on-error`` the batch stops at the first failure; the
  top-level status becomes that failure's status and earlier parts are kept (§5.4, §11 #3).
- With it, every part is answered and the top-level status is 200.
- A failing change set rolls back and answers with only the failing operation's part.
- ``Content-ID: n`` makes ``$n`` stand for the created record inside the same change set, in
  URLs (``PATCH $1``) and in ``@odata.bind`` / ``@odata.id`` values (§5.2).
- A batch with a part addressed to another host, or whose ``Content-Length`` differs from its
  body, is refused whole before anything runs (§2.6).

Unsupported: JSON batches (§11 #6), nested batches.
"""

from __future__ import annotations

import re
import typing as t
from urllib.parse import urlsplit

from dataverse_emulator.http import Request, Response
from dataverse_emulator.state.error_catalogue import (
    batch_too_large,
    content_id_missing,
    foreign_batch_url,
    invalid_batch_url,
    malformed_batch,
    unparsable_request,
)
from dataverse_emulator.state.errors import DataverseFault
from dataverse_emulator.wire.call import Call
from dataverse_emulator.wire.errors import fault_response
from dataverse_emulator.wire.multipart import (
    ChangeSet,
    ChangeSetResponse,
    MultipartError,
    Operation,
    PartResponse,
    encode_batch_response,
    parse_batch,
    relative_url,
)
from dataverse_emulator.wire.query_options import parse_prefer

Dispatch = t.Callable[[Call, str], Response]

MAX_OPERATIONS = 1000
_REFERENCE = re.compile(rb'"\$(\d+)"')
_STREAMING = "application/json; odata.metadata=minimal; odata.streaming=true"


class _Rollback(Exception):
    """Raised inside a change set's transaction to undo it."""

    def __init__(self, part: PartResponse) -> None:
        super().__init__("change set failed")
        self.part = part


def execute(call: Call, dispatch: Dispatch) -> Response:
    """Run a ``$batch`` request and encode the multipart response (§5.3).

    Args:
        call: The ``$batch`` call.
        dispatch: Routes one operation (the router's ``dispatch``).

    Returns:
        The multipart response, or a JSON error for a malformed or oversized batch (§5.4).
    """
    request = call.request
    try:
        items = parse_batch(request.headers.get("content-type", ""), request.body)
    except MultipartError as exc:
        return fault_response(malformed_batch(exc.message))
    foreign = _foreign_url(items, request.base_url)
    if foreign is not None:
        return fault_response(foreign_batch_url(foreign))
    total = sum(len(i.operations) if isinstance(i, ChangeSet) else 1 for i in items)
    request.context["operation_count"] = total
    if total > MAX_OPERATIONS:
        return fault_response(batch_too_large(total, MAX_OPERATIONS))
    runner = _Runner(call, dispatch)
    parts: list[PartResponse | ChangeSetResponse] = []
    status = 200
    result: PartResponse | ChangeSetResponse
    for item in items:
        if isinstance(item, ChangeSet):
            result, failed = runner.change_set(item)
        else:
            single = runner.operation(item, {})
            result, failed = single, single.status >= 400
        parts.append(result)
        if failed and not call.prefer.continue_on_error:
            status = _status_of(result)
            break
    content_type, body = encode_batch_response(parts)
    return Response(
        status=status,
        headers=[("Content-Type", content_type), ("OData-Version", "4.0")],
        body=body,
    )


def _foreign_url(items: list[Operation | ChangeSet], base_url: str) -> str | None:
    """The first absolute part URL whose scheme or host is not the batch's own (§2.6)."""
    own = _origin(base_url)
    for item in items:
        for operation in item.operations if isinstance(item, ChangeSet) else (item,):
            if "://" in operation.url and _origin(operation.url) != own:
                return operation.url
    return None


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    try:
        port = parts.port or {"https": 443, "http": 80}.get(parts.scheme.lower())
    except ValueError:  # a port that is not a number: never this service
        return "", url
    return parts.scheme.lower(), f"{(parts.hostname or '').lower()}:{port}"


def _status_of(result: PartResponse | ChangeSetResponse) -> int:
    if isinstance(result, ChangeSetResponse):
        return result.parts[-1].status
    return result.status


class _Runner:
    def __init__(self, call: Call, dispatch: Dispatch) -> None:
        self.call = call
        self.dispatch = dispatch

    def change_set(self, change_set: ChangeSet) -> tuple[ChangeSetResponse, bool]:
        ids: dict[str, str] = {}
        parts: list[PartResponse] = []
        try:
            with self.call.env.store.transaction():
                for operation in change_set.operations:
                    part = self.operation(operation, ids)
                    _raise_if_failed(part)
                    parts.append(part)
                    if operation.content_id is not None:
                        address = _header(part.headers, "OData-EntityId")
                        if address is not None:
                            ids[operation.content_id] = address
        except _Rollback as failure:
            return ChangeSetResponse([failure.part]), True
        return ChangeSetResponse(parts), False

    def operation(self, operation: Operation, ids: dict[str, str]) -> PartResponse:
        try:
            request = self._request(operation, ids)
        except DataverseFault as fault:
            response = fault_response(fault)
        except MultipartError as exc:
            response = fault_response(unparsable_request(exc.message))
        else:
            inner = Call(
                request=request,
                env=self.call.env,
                root=self.call.root,
                caller=self.call.caller,
                prefer=parse_prefer(request.headers.get("prefer", "")),
            )
            response = self.dispatch(inner, request.path[len(_root_path(self.call)) :])
        return PartResponse(
            status=response.status,
            headers=_part_headers(operation, response),
            body=response.body,
            content_id=operation.content_id,
        )

    def _request(self, operation: Operation, ids: dict[str, str]) -> Request:
        url = operation.url
        if url.startswith("$"):
            reference, _, tail = url.partition("/")
            target = ids.get(reference[1:].split("?", 1)[0])
            if target is None:
                raise content_id_missing(reference)
            url = target + ("/" + tail if tail else "")
        relative = relative_url(url) if not url.startswith("$") else url
        if relative.startswith(("http://", "https://")):
            raise invalid_batch_url(url)
        path, _, query = relative.partition("?")
        body = operation.body
        if ids and b'"$' in body:
            body = _REFERENCE.sub(lambda m: _substitute(m, ids), body)
        outer = self.call.request
        return Request(
            method=operation.method,
            path=_root_path(self.call) + path,
            query=query,
            headers=dict(operation.headers),
            body=body,
            base_url=outer.base_url,
            context={"user": outer.context.get("user")},
        )


def _raise_if_failed(part: PartResponse) -> None:
    if part.status >= 400:
        raise _Rollback(part)


def _root_path(call: Call) -> str:
    return call.root[len(call.request.base_url) :] + "/"


def _substitute(match: re.Match[bytes], ids: dict[str, str]) -> bytes:
    address = ids.get(match.group(1).decode())
    return match.group(0) if address is None else b'"' + address.encode() + b'"'


def _header(headers: t.Sequence[tuple[str, str]], name: str) -> str | None:
    lowered = name.lower()
    return next((v for k, v in headers if k.lower() == lowered), None)


def _part_headers(operation: Operation, response: Response) -> list[tuple[str, str]]:
    headers = [(k, v) for k, v in response.headers if k.lower() != "x-ms-service-request-id"]
    entity_id = _header(headers, "OData-EntityId")
    if entity_id is not None and response.status == 204 and operation.method == "POST":
        position = next(i for i, (k, _) in enumerate(headers) if k == "OData-EntityId")
        headers.insert(position, ("Location", entity_id))  # §5.3: Location, then OData-EntityId
    if operation.method == "GET" and response.status == 200 and b'"value"' in response.body[:4096]:
        headers = [
            ("Content-Type", _STREAMING) if k.lower() == "content-type" else (k, v)
            for k, v in headers
        ]
    return headers
