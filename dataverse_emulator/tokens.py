"""Access tokens: signed JWTs issued by the emulated authority and checked by the Web API.

Tokens are RS256 JWTs shaped like Entra v1 app-only tokens for Dataverse (``aud`` = the org URL,
``appid``, ``oid``, ``tid``, ``uti``), signed with a key generated per server start, so tokens
of an earlier run never validate. Revocation is by token id (``uti``), for one user or all.
"""

from __future__ import annotations

import base64
import hashlib
import math
import time
import typing as t
import uuid

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

if t.TYPE_CHECKING:
    from dataverse_emulator.state.users import ApplicationUser

_CACHE_LIMIT = 10_000


class TokenError(Exception):
    """The bearer token is missing, malformed, badly signed, expired, revoked or for another org."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class TokenService:
    """Issues, verifies and revokes access tokens for one tenant."""

    def __init__(
        self, tenant_id: str, lifetime: int, clock: t.Callable[[], float] = time.time
    ) -> None:
        self.tenant_id = tenant_id
        self.lifetime = lifetime
        self._clock = clock
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._public = self._key.public_key()
        numbers = self._public.public_numbers()
        self.kid = _b64url(hashlib.sha256(str(numbers.n).encode()).digest()[:20])
        self._issued: dict[str, str] = {}
        self._revoked: set[str] = set()
        self._verified: dict[str, dict[str, t.Any]] = {}

    def issue(self, user: ApplicationUser, audience: str, *, certificate: bool) -> str:
        """Sign a token for ``user`` valid for ``lifetime`` seconds against ``audience``."""
        issued = self._clock()
        now = int(issued)
        token_id = _b64url(uuid.uuid4().bytes)
        claims = {
            "aud": audience,
            "iss": f"https://sts.windows.net/{self.tenant_id}/",
            "iat": now,
            "nbf": now,
            "exp": math.ceil(issued + self.lifetime),  # never shorter than expires_in
            "appid": user.client_id,
            "appidacr": "2" if certificate else "1",
            "idp": f"https://sts.windows.net/{self.tenant_id}/",
            "oid": user.object_id,
            "sub": user.object_id,
            "tid": self.tenant_id,
            "uti": token_id,
            "ver": "1.0",
        }
        self._issued[token_id] = user.client_id
        return jwt.encode(
            claims, self._key, algorithm="RS256", headers={"kid": self.kid, "x5t": self.kid}
        )

    def verify(self, token: str, audience: str) -> dict[str, t.Any]:
        """Return the claims of a valid token for ``audience``.

        Raises:
            TokenError: naming why the token is refused.
        """
        claims = self._verified.get(token)
        if claims is None:
            try:
                claims = jwt.decode(
                    token,
                    self._public,
                    algorithms=["RS256"],
                    options={"verify_exp": False, "verify_aud": False, "verify_iat": False},
                )
            except jwt.PyJWTError as exc:
                raise TokenError("invalid token") from exc
            if len(self._verified) >= _CACHE_LIMIT:
                self._verified.clear()
            self._verified[token] = claims
        if claims["exp"] <= self._clock():
            raise TokenError("expired token")
        if claims["uti"] in self._revoked:
            raise TokenError("revoked token")
        if claims["aud"].rstrip("/") != audience.rstrip("/"):
            raise TokenError("token for another audience")
        return claims

    def revoke(self, client_id: str | None = None) -> int:
        """Revoke every issued token of ``client_id`` (all users if None); return how many."""
        wanted = None if client_id is None else client_id.lower()
        ids = {
            token_id
            for token_id, owner in self._issued.items()
            if (wanted is None or owner.lower() == wanted) and token_id not in self._revoked
        }
        self._revoked.update(ids)
        return len(ids)

    def clear_revocations(self) -> None:
        """Make revoked tokens valid again (control API reset: back to the start-up state)."""
        self._revoked.clear()

    def jwks(self) -> dict[str, t.Any]:
        """The public signing key as a JWK Set (``/discovery/v2.0/keys``)."""
        numbers = self._public.public_numbers()

        def encode(value: int) -> str:
            return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))

        return {
            "keys": [
                {
                    "kty": "RSA",
                    "use": "sig",
                    "alg": "RS256",
                    "kid": self.kid,
                    "x5t": self.kid,
                    "n": encode(numbers.n),
                    "e": encode(numbers.e),
                    "issuer": f"https://login.microsoftonline.com/{self.tenant_id}/v2.0",
                }
            ]
        }


def peek_client_id(token: str) -> str | None:
    """Read ``appid`` from a token without verifying it (fault rules match on the caller)."""
    try:
        return jwt.decode(token, options={"verify_signature": False}).get("appid")
    except jwt.PyJWTError:
        return None
