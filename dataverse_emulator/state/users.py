"""Registered application users: the app registrations the emulated tenant knows.

Each user authenticates with a client secret or a certificate (reference §1.1, §1.7) and has its
own service-protection budget (§7.1: "Each authenticated user is limited independently"), an
optional security role (§1.7; none: every privilege) and a secret that may have expired (§1.3).
Roles and expiry change at run time through the control API; ``reset`` restores them.
"""

from __future__ import annotations

import dataclasses
import random
import secrets
import typing as t
import uuid
from dataclasses import dataclass

from typing_extensions import override

from dataverse_emulator.state.privileges import READER, Role


@dataclass(frozen=True, slots=True)
class ApplicationUser:
    """An application user (app registration + Dataverse systemuser).

    Attributes:
        client_id: Application (client) id.
        name: Display name.
        systemuser_id: The Dataverse ``systemuserid`` (``WhoAmI`` ``UserId``).
        business_unit_id: The user's business unit (``WhoAmI`` ``BusinessUnitId``); empty
            means the environment's root business unit.
        object_id: Entra object id of the service principal (the token's ``oid``).
        secret: Client secret, if the app authenticates with one.
        certificate_pem: Public certificate (PEM), if the app authenticates with a certificate.
        role: The security role limiting what it may do; None: every privilege.
        secret_expired: Whether its client secret has expired (AADSTS7000222, §1.3).
        api_restricted: Whether the environment blocks this app: it still gets tokens, but
            every Web API call answers 403 ``0x80095ffc`` (§1.5).
    """

    client_id: str
    name: str
    systemuser_id: str
    business_unit_id: str
    object_id: str
    secret: str | None = None
    certificate_pem: bytes | None = None
    role: Role | None = None
    secret_expired: bool = False
    api_restricted: bool = False

    @override
    def __repr__(self) -> str:
        return f"ApplicationUser(client_id={self.client_id!r}, name={self.name!r})"


class Users:
    """The registry of application users, looked up by client id."""

    def __init__(self, users: t.Iterable[ApplicationUser]) -> None:
        self._by_client_id = {user.client_id.lower(): user for user in users}
        self._initial = dict(self._by_client_id)

    @classmethod
    def default(cls, seed: int, certificate_pem: bytes, loaders: int = 3) -> Users:
        """Two loaders with secrets, one with ``certificate_pem``, a reader, more loaders.

        ``loaders`` counts the users that may write (every privilege): the first ``loaders`` of
        the two secret loaders, the certificate loader and further secret loaders (registered
        after the reader, so the first four users stay as they are). The reader authenticates
        with a secret and holds :data:`~.privileges.READER`: it may read every table and write
        none (403 ``0x80040220``, §4.9).

        Ids derive from ``seed`` (reproducible records); secrets are random per start. The
        business unit is left empty: the environment puts them in its root business unit.

        Raises:
            ValueError: if ``loaders`` is below 1.
        """
        if loaders < 1:
            raise ValueError(f"app_users must be at least 1, not {loaders}")
        rng = random.Random(f"users:{seed}")  # noqa: S311 - ids, not secrets; own stream

        def new_id() -> str:
            return str(uuid.UUID(int=rng.getrandbits(128), version=4))

        specs: list[tuple[str, bool, Role | None]] = [
            ("Loader (secret)", True, None),
            ("Second loader (secret)", True, None),
            ("Loader (certificate)", False, None),
            ("Reader (secret, read-only role)", True, READER),
        ]
        specs += [(f"Loader {n} (secret)", True, None) for n in range(4, loaders + 1)]
        users = [
            ApplicationUser(
                client_id=new_id(),
                name=name,
                systemuser_id=new_id(),
                business_unit_id="",
                object_id=new_id(),
                secret=secrets.token_urlsafe(30) if with_secret else None,
                certificate_pem=None if with_secret else certificate_pem,
                role=role,
            )
            for name, with_secret, role in specs
        ]
        writers = [user for user in users if user.role is None]
        return cls(user for user in users if user.role is not None or user in writers[:loaders])

    def get(self, client_id: str) -> ApplicationUser | None:
        """Return the user registered with ``client_id`` (case-insensitive), or None."""
        return self._by_client_id.get(client_id.lower())

    def update(self, client_id: str, **changes: t.Any) -> ApplicationUser:
        """Replace fields (``role``, ``secret_expired``, ``api_restricted``); return the new user.

        Raises:
            KeyError: no user has ``client_id``.
        """
        key = client_id.lower()
        user = dataclasses.replace(self._by_client_id[key], **changes)
        self._by_client_id[key] = user
        return user

    def restore(self) -> None:
        """Put back every user as registered at start (control API reset)."""
        self._by_client_id = dict(self._initial)

    @property
    def reader(self) -> ApplicationUser | None:
        """The first user registered with a role (the default restricted user), if any."""
        first = next((u for u in self._initial.values() if u.role is not None), None)
        return None if first is None else self._by_client_id[first.client_id.lower()]

    @property
    def first(self) -> ApplicationUser:
        """The primary user: the one ``target-config.json`` names."""
        return next(iter(self._by_client_id.values()))

    @property
    def loaders(self) -> list[ApplicationUser]:
        """The users registered without a role (they may write), primary first."""
        return [user for user in self._initial.values() if user.role is None]

    @property
    def with_certificate(self) -> ApplicationUser | None:
        """The first user that authenticates with a certificate, if any."""
        return next((u for u in self if u.certificate_pem), None)

    def __iter__(self) -> t.Iterator[ApplicationUser]:
        return iter(self._by_client_id.values())

    def __len__(self) -> int:
        return len(self._by_client_id)
