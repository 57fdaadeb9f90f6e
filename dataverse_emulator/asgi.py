"""The emulator as a raw ASGI 3 app: bytes in, :class:`Request`; :class:`Response`, bytes out.

:class:`~dataverse_emulator.server.EmulatorServer` runs it on uvicorn (httptools) over loopback
HTTPS. Bodies over the size limit are refused with 413 before the handler chain sees them; a
response the fault rules cut off (``Abort.RESET``) goes out half-sent.
"""

from __future__ import annotations

import logging
import typing as t

from typing_extensions import override

from dataverse_emulator.http import Request, Response
from dataverse_emulator.state.error_catalogue import body_too_large
from dataverse_emulator.wire.errors import fault_response

if t.TYPE_CHECKING:
    from dataverse_emulator.app import Emulator

_INCOMPLETE = "ASGI callable returned without completing response."
_NO_BODY = {204, 304}

Scope = dict[str, t.Any]
Receive = t.Callable[[], t.Awaitable[dict[str, t.Any]]]
Send = t.Callable[[dict[str, t.Any]], t.Awaitable[None]]


class _DeliberateResets(logging.Filter):
    """Hide uvicorn's complaint about the responses we cut off on purpose (``Abort.RESET``)."""

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != _INCOMPLETE


logging.getLogger("uvicorn.error").addFilter(_DeliberateResets())


class AsgiApp:
    """Raw ASGI 3 adapter: bytes in, :class:`Request`; :class:`Response`, bytes out."""

    def __init__(self, emulator: Emulator, max_body_bytes: int) -> None:
        self.emulator = emulator
        self._max_body = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one HTTP request (other scope types are ignored)."""
        if scope["type"] != "http":
            return
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        host = headers.get("host") or "{}:{}".format(*scope["server"])
        body = await self._body(receive)
        if body is None:
            response = fault_response(body_too_large(self._max_body))
        else:
            raw_path = scope.get("raw_path") or scope["path"].encode()
            request = Request(
                method=scope["method"],
                path=raw_path.decode("latin-1"),
                query=scope["query_string"].decode("latin-1"),
                headers=headers,
                body=body,
                base_url=f"https://{host}",
                context={"connection": scope.get("client")},
            )
            response = await self.emulator.handle(request)
        await _send(send, response, head=scope["method"] == "HEAD")

    async def _body(self, receive: Receive) -> bytes | None:
        """Read the whole body; None once it exceeds the limit."""
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body:
                return None
            chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks)


async def _send(send: Send, response: Response, *, head: bool) -> None:
    body = response.body
    raw_headers = [(k.encode("latin-1"), v.encode("utf-8")) for k, v in response.headers]
    if response.status not in _NO_BODY:
        raw_headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": raw_headers})
    if response.abort is not None:
        # Abort.RESET: half the promised body, then return; uvicorn closes the connection.
        await send(
            {"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True}
        )
        return
    await send({"type": "http.response.body", "body": b"" if head else body})
