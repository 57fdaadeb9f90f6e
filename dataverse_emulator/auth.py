"""The Web API's bearer-token check (reference §1.5, §11 #1).

A missing, malformed, badly signed, expired, revoked or foreign-audience token gets 401 with
``WWW-Authenticate: Bearer authorization_uri=…/{tenant}/oauth2/authorize, resource_id={org}/``
(the header Microsoft's .NET ServiceClient parses to discover the authority) and the §11 #1
body. A valid token puts its :class:`ApplicationUser` into ``request.context["user"]``; an app
the environment blocks (``api_restricted``) gets 403 ``0x80095ffc`` instead (§1.5).

Both answers carry what every Web API answer carries (§2.3): ``REQ_ID`` and
``x-ms-service-request-id`` (one id) and the environment's ``x-ms-dop-hint`` (§7.3). They carry no
``x-ms-ratelimit-*`` headers: those count a caller's budget, and a 401 has no caller (§11 #1).
"""

from __future__ import annotations

import typing as t

from dataverse_emulator.tokens import TokenError
from dataverse_emulator.wire.errors import error_response, stamp_request_id

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from dataverse_emulator.counters import Counters
    from dataverse_emulator.http import Handler, Request, Response
    from dataverse_emulator.state.users import ApplicationUser, Users
    from dataverse_emulator.tokens import TokenService

UNAUTHENTICATED_CODE = "0x8005F101"
UNAUTHENTICATED_MESSAGE = "The requested resource requires authentication."
RESTRICTED_CODE = "0x80095ffc"


class BearerAuth:
    """Lets through only requests that carry a valid token of a registered user."""

    def __init__(
        self,
        tokens: TokenService,
        users: Users,
        counters: Counters,
        inner: Handler,
        *,
        dop_hint: Callable[[], int],
    ) -> None:
        self._tokens = tokens
        self._users = users
        self._counters = counters
        self._inner = inner
        self._dop_hint = dop_hint

    async def __call__(self, request: Request) -> Response:
        """Check the ``Authorization`` header, then delegate."""
        try:
            user = self._user(request)
        except TokenError:
            self._counters.unauthorized += 1
            return self.unauthorized(request.base_url)
        request.context["user"] = user
        request.context["client_id"] = user.client_id
        if user.api_restricted:
            return self._answer(
                error_response(
                    403,
                    RESTRICTED_CODE,
                    f"Access to Dataverse API is restricted for this application Id : "
                    f"'{user.client_id}'. Please contact your administrator for more information.",
                )
            )
        return await self._inner(request)

    def _user(self, request: Request) -> ApplicationUser:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise TokenError("missing token")
        claims = self._tokens.verify(token.strip(), request.base_url)
        user = self._users.get(claims["appid"])
        if user is None:
            raise TokenError("unknown application")
        return user

    def unauthorized(self, base_url: str) -> Response:
        """401 with the ``WWW-Authenticate`` challenge of §1.5."""
        challenge = (
            f"Bearer authorization_uri={base_url}/{self._tokens.tenant_id}/oauth2/authorize, "
            f"resource_id={base_url}/"
        )
        return self._answer(
            error_response(
                401,
                UNAUTHENTICATED_CODE,
                UNAUTHENTICATED_MESSAGE,
                [("WWW-Authenticate", challenge)],
            )
        )

    def _answer(self, response: Response) -> Response:
        """Add the headers of every Web API answer (§2.3, §7.3)."""
        response.headers.append(("x-ms-dop-hint", str(self._dop_hint())))
        return stamp_request_id(response)
