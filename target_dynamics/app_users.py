"""Several application users in one run: every Web API request spread over them (§7.1).

Dataverse's service protection limits are per user (and per web server), so each application
user of ``app_users`` adds a whole budget. Each user has its own :class:`DataverseClient`: its
token, its :class:`~target_dynamics.client.ConcurrencyLimit` and its ``Retry-After`` gate. A
request goes to the user with the most room (its limit minus the requests given to it), passing
over a user that a ``Retry-After`` holds while another is free.

A user that cannot work is dropped, with one warning, and its request goes to another user: no
token (:class:`AuthError`), a 401 even with a fresh token, or access blocked for the app
(``0x80095ffc``, §1.5). None of these requests was executed, so sending it again is safe. The
last user working is never dropped: its errors are the run's, as with one user.
"""

from __future__ import annotations

import logging
import threading
import typing as t
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from target_dynamics.errors import AuthError, WebApiError

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from target_dynamics.client import ClientStats, DataverseClient
    from target_dynamics.webapi import WebRequest, WebResponse

LOGGER = logging.getLogger(__name__)
_T = t.TypeVar("_T")
APP_ACCESS_CODE = "0x80095ffc"
"""403: the environment blocks this application id (§1.5)."""
_RECHECK_SECONDS = 0.05
"""How often a request waiting for room looks again (limits also rise without a release)."""


@dataclass
class _User:
    name: str
    client: DataverseClient
    assigned: int = 0
    dropped: Exception | None = None

    @property
    def room(self) -> int:
        return self.client.in_flight.limit - self.assigned


def _unusable(error: Exception) -> bool:
    """Whether ``error`` says the user cannot work at all (not that the request was wrong)."""
    if isinstance(error, AuthError):
        return True
    if isinstance(error, WebApiError):
        return error.status == 401 or error.code == APP_ACCESS_CODE
    return False


class AppUsers:
    """The run's application users, used as one client by the writer; thread-safe."""

    def __init__(self, users: Sequence[tuple[str, DataverseClient]]) -> None:
        """Take ``(name, client)`` per user; the first is the one the settings name first."""
        self._users = [_User(name, client) for name, client in users]
        self._cond = threading.Condition()
        self._probed = False

    @property
    def service_root(self) -> str:
        """``https://<host>/api/data/v<version>/``, the same for every user."""
        return self._users[0].client.service_root

    @property
    def count(self) -> int:
        """Users still working."""
        with self._cond:
            return sum(user.dropped is None for user in self._users)

    def capacity(self) -> int:
        """Requests the working users may have in flight now (at least one).

        The first call asks every user ``WhoAmI`` (in parallel), so each client learns its
        ``x-ms-dop-hint`` and remaining budgets, and users that cannot work are dropped at once.
        """
        self._probe()
        with self._cond:
            return max(1, sum(u.client.in_flight.limit for u in self._users if u.dropped is None))

    def ceiling(self) -> int:
        """The most requests the working users may ever have in flight together."""
        with self._cond:
            return max(1, sum(u.client.in_flight.ceiling for u in self._users if u.dropped is None))

    def stats(self) -> list[tuple[str, ClientStats]]:
        """Each user's counters (dropped users too), in the order of the settings."""
        return [(user.name, user.client.stats) for user in self._users]

    def send(self, request: WebRequest) -> WebResponse:
        """:meth:`DataverseClient.send` through the user with the most room."""
        return self._route(lambda client: client.send(request))

    def send_batch(
        self, requests: Sequence[WebRequest], *, continue_on_error: bool = True
    ) -> list[WebResponse]:
        """:meth:`DataverseClient.send_batch` through the user with the most room."""
        return self._route(
            lambda client: client.send_batch(requests, continue_on_error=continue_on_error)
        )

    def get_json(self, path: str, headers: Mapping[str, str] | None = None) -> dict[str, t.Any]:
        """:meth:`DataverseClient.get_json` through the user with the most room."""
        return self._route(lambda client: client.get_json(path, headers))

    def get_all(
        self, path: str, headers: Mapping[str, str] | None = None
    ) -> Iterator[dict[str, t.Any]]:
        """Every record of a collection, page by page, all pages read by one user."""
        while True:
            user = self._acquire()
            started = False
            try:
                for record in user.client.get_all(path, headers):
                    started = True
                    yield record
            except (AuthError, WebApiError) as error:
                if started or not _unusable(error) or not self._drop(user, error):
                    raise
            else:
                return
            finally:
                self._release(user)

    def _probe(self) -> None:
        with self._cond:
            if self._probed:
                return
            self._probed = True
            users = list(self._users)
        with ThreadPoolExecutor(len(users), thread_name_prefix="whoami") as pool:
            outcomes = list(pool.map(_who_am_i, users))
        for user, error in zip(users, outcomes, strict=True):
            if error is None:
                continue
            if _unusable(error):
                self._drop(user, error)
            else:
                LOGGER.warning("WhoAmI for application user %s failed: %s", user.name, error)

    def _route(self, call: Callable[[DataverseClient], _T]) -> _T:
        """Run ``call`` with a user's client; move it to another user if that one is dropped."""
        while True:
            user = self._acquire()
            try:
                return call(user.client)
            except (AuthError, WebApiError) as error:
                if not _unusable(error) or not self._drop(user, error):
                    raise
            finally:
                self._release(user)

    def _acquire(self) -> _User:
        with self._cond:
            while True:
                working = [user for user in self._users if user.dropped is None]
                free = [user for user in working if user.room > 0]
                ready = [user for user in free if not user.client.paused]
                if not ready and all(user.client.paused for user in working):
                    ready = free  # every user is held: wait in the first gate to open
                if ready:
                    user = max(ready, key=lambda u: u.room)
                    user.assigned += 1
                    return user
                self._cond.wait(_RECHECK_SECONDS)

    def _release(self, user: _User) -> None:
        with self._cond:
            user.assigned -= 1
            self._cond.notify_all()

    def _drop(self, user: _User, error: Exception) -> bool:
        """Stop using ``user``, unless it is the last one working (its errors are the run's).

        Returns:
            Whether ``user`` is out (now or before).
        """
        with self._cond:
            if user.dropped is not None:
                return True
            others = sum(u.dropped is None for u in self._users) - 1
            if not others:
                return False
            user.dropped = error
            self._cond.notify_all()
        LOGGER.warning(
            "Application user %s dropped for this run (%s); %d other user%s go%s on",
            user.name,
            error,
            others,
            "s" if others > 1 else "",
            "" if others > 1 else "es",
        )
        return True


def _who_am_i(user: _User) -> Exception | None:
    try:
        user.client.get_json("WhoAmI")
    except (AuthError, WebApiError) as error:
        return error
    return None
