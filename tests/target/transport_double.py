"""A double for the client's one seam (:class:`target_dynamics.transport.Transport`).

It answers what a test scripts for a method and URL, or what a test's ``answer`` function
returns, and passes every other request to the real transport it wraps (the emulator over
HTTPS). Every answered request is kept in :attr:`TransportDouble.sent`.
"""

from __future__ import annotations

import contextlib
import json as jsonlib
import typing as t
from dataclasses import dataclass
from urllib.parse import urlsplit

from requests.structures import CaseInsensitiveDict

from target_dynamics.webapi import WebResponse

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from target_dynamics.transport import Transport


@dataclass
class Sent:
    """One request as the client handed it to the transport."""

    method: str
    url: str
    headers: CaseInsensitiveDict[str]
    body: bytes | None
    timeout: float

    @property
    def path(self) -> str:
        """The URL's path, as sent (percent-encoded)."""
        return urlsplit(self.url).path

    def json(self) -> t.Any:
        """The body decoded as JSON."""
        return jsonlib.loads(self.body or b"null")


Reply = WebResponse | Exception
Answer = t.Callable[[Sent], Reply | None]


def reply(
    status: int = 200,
    *,
    json: t.Any = None,
    text: str = "",
    headers: Mapping[str, str] | None = None,
) -> WebResponse:
    """An answer: ``json`` (with its content type) or ``text`` as the body."""
    head = dict(headers or {})
    body = text.encode()
    if json is not None:
        head.setdefault("Content-Type", "application/json; odata.metadata=minimal")
        body = jsonlib.dumps(json).encode()
    return WebResponse(status, head, body)


class TransportDouble:
    """Scripted answers by method and URL, an ``answer`` function, else the wrapped transport.

    :attr:`sent` keeps each request scripted or answered by the wrapped transport (a request
    the wrapped transport got no answer to is left out, as if never seen).
    """

    def __init__(
        self, inner: Transport | None = None, watch: Callable[[WebResponse], None] | None = None
    ) -> None:
        """Wrap ``inner`` (None: every request must be scripted); ``watch`` sees its answers."""
        self.sent: list[Sent] = []
        self._inner = inner
        self._watch = watch
        self._routes: dict[tuple[str, str], list[Reply]] = {}
        self._answer: tuple[Answer, list[Sent]] | None = None

    def on(self, method: str, url: str, *replies: Reply) -> None:
        """Answer ``method url`` with ``replies`` in turn; the last one repeats."""
        self._routes[(method, url)] = list(replies)

    @contextlib.contextmanager
    def answering(self, answer: Answer) -> Iterator[list[Sent]]:
        """While inside, ``answer(request)`` answers each request it returns a reply for.

        Yields:
            The requests ``answer`` answered, filled in as they come.
        """
        answered: list[Sent] = []
        self._answer = (answer, answered)
        try:
            yield answered
        finally:
            self._answer = None

    @property
    def last(self) -> Sent:
        """The last request kept."""
        return self.sent[-1]

    def send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, timeout: float
    ) -> WebResponse:
        """See :meth:`target_dynamics.transport.Transport.send`."""
        request = Sent(method, url, CaseInsensitiveDict(headers), body, timeout)
        scripted = self._scripted(request)
        if scripted is None:
            if self._inner is None:
                raise AssertionError(f"no answer scripted for {method} {url}")
            response = self._inner.send(method, url, headers, body, timeout)
            self.sent.append(request)
            if self._watch is not None:
                self._watch(response)
            return response
        self.sent.append(request)
        if isinstance(scripted, Exception):
            raise scripted
        return scripted

    def _scripted(self, request: Sent) -> Reply | None:
        if self._answer is not None:
            answer, answered = self._answer
            scripted = answer(request)
            if scripted is not None:
                answered.append(request)
                return scripted
        replies = self._routes.get((request.method, request.url))
        if not replies:
            return None
        return replies.pop(0) if len(replies) > 1 else replies[0]
