"""Security roles: which privileges an application user holds (reference §1.5, §1.7, §4.9, §8).

An application user "is associated with a custom security role which controls the kinds of data
and operations the application is allowed to perform" (§1.7). A :class:`Role` grants access
rights per table (``create``, ``read``, ``write``, ``delete``, ``append``, ``appendto``; table
``*`` means every table) plus named miscellaneous privileges (§8: bypass headers and
impersonation). A user without a role holds every privilege (System Administrator).

A missing privilege is 403 ``0x80040220`` (PrivilegeDenied, §4.9). The documented text is "The
user does not hold the necessary privileges."; at run time Dataverse names the privilege, in the
shape this module renders::

    Principal user (Id=<systemuserid>, type=8, roleCount=1, privilegeCount=<n>, accessMode=4),
    is missing prvCreateContact privilege (Id=<guid>) on OTC=2 for entity 'contact'.
    context.Caller=<systemuserid>

(type 8 is a systemuser, access mode 4 a non-interactive application user.) The exact wording
of that runtime text is recalled from Dataverse traces, not pinned by the reference.

A caller reads what it holds with the ``RetrieveUserPrivileges`` function (Microsoft Learn:
"RetrieveUserPrivileges Function", "RolePrivilege ComplexType"): :func:`held` lists each
privilege a role grants, at depth Global (a role here grants organization-wide access), and
:func:`table_privileges` the privileges a table defines (``EntityMetadata.Privileges``).
"""

from __future__ import annotations

import typing as t
import uuid
from dataclasses import dataclass, field

from dataverse_emulator.state.error_catalogue import privilege_denied

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from dataverse_emulator.state.catalog import Table
    from dataverse_emulator.state.errors import DataverseFault

ACCESS_RIGHTS = ("create", "read", "write", "delete", "append", "appendto")
PRIVILEGE_TYPES = {
    "create": "Create",
    "read": "Read",
    "write": "Write",
    "delete": "Delete",
    "append": "Append",
    "appendto": "AppendTo",
}
"""Access right -> its ``PrivilegeType`` member, also the verb of the privilege's name."""
ALL_TABLES = "*"
BYPASS_BUSINESS_LOGIC = "prvBypassCustomBusinessLogic"
"""§8: needed by ``MSCRM.BypassBusinessLogicExecution`` (and ``…StepIds``)."""
BYPASS_PLUGINS = "prvBypassCustomPlugins"
"""§8: needed by the legacy ``MSCRM.BypassCustomPluginExecution``."""
IMPERSONATE = "prvActOnBehalfOfAnotherUser"
"""§8: needed by ``CallerObjectId`` / ``MSCRMCallerID`` (CannotActOnBehalfOfAnotherUser)."""
MISCELLANEOUS = frozenset({BYPASS_BUSINESS_LOGIC, BYPASS_PLUGINS, IMPERSONATE})
_NAMESPACE = uuid.UUID("8d2f6a0e-4f6b-4c58-9f0a-7c1d2e3b4a50")


@dataclass(frozen=True, slots=True)
class Role:
    """A security role.

    Attributes:
        name: Display name.
        tables: Table logical name (or ``*``) → access rights granted on it.
        privileges: Miscellaneous privileges held (names from :data:`MISCELLANEOUS`).
    """

    name: str = "Restricted"
    tables: Mapping[str, frozenset[str]] = field(default_factory=dict)
    privileges: frozenset[str] = frozenset()

    @classmethod
    def from_json(cls, data: t.Any) -> Role:
        """Build a role from ``{"name"?, "tables": {table: [rights]}, "privileges"?: [...]}``.

        Raises:
            ValueError: on an unknown access right or privilege, or a malformed document.
        """
        if not isinstance(data, dict) or not isinstance(data.get("tables", {}), dict):
            msg = 'a role is {"tables": {"<table>": ["read", ...]}, "privileges": [...]}'
            raise ValueError(msg)  # noqa: TRY004 - a bad document, answered 400
        unknown_keys = set(data) - {"name", "tables", "privileges"}
        if unknown_keys:
            raise ValueError(f"unknown role members: {', '.join(sorted(unknown_keys))}")
        tables: dict[str, frozenset[str]] = {}
        for table, rights in data.get("tables", {}).items():
            if not isinstance(rights, list) or not all(isinstance(r, str) for r in rights):
                raise ValueError(f"access rights of {table!r} must be a list of strings")
            lowered = frozenset(r.lower() for r in rights)
            wrong = lowered - set(ACCESS_RIGHTS)
            if wrong:
                raise ValueError(
                    f"unknown access rights {sorted(wrong)} for {table!r}; "
                    f"use {', '.join(ACCESS_RIGHTS)}"
                )
            tables[str(table).lower()] = lowered
        privileges = data.get("privileges", [])
        if not isinstance(privileges, list) or not set(privileges) <= MISCELLANEOUS:
            raise ValueError(f"privileges must be a list drawn from {sorted(MISCELLANEOUS)}")
        return cls(str(data.get("name", "Restricted")), tables, frozenset(privileges))

    def to_json(self) -> dict[str, t.Any]:
        """The JSON :meth:`from_json` reads."""
        return {
            "name": self.name,
            "tables": {table: sorted(rights) for table, rights in sorted(self.tables.items())},
            "privileges": sorted(self.privileges),
        }

    def allows(self, table: str, access: str) -> bool:
        """Whether the role grants ``access`` on ``table`` (logical name)."""
        return access in self.tables.get(table, frozenset()) or access in self.tables.get(
            ALL_TABLES, frozenset()
        )

    @property
    def privilege_count(self) -> int:
        """How many privileges the role holds (table rights count one each)."""
        return sum(len(rights) for rights in self.tables.values()) + len(self.privileges)


READER = Role("Reader", {ALL_TABLES: frozenset({"read"})})
"""The role of the emulator's default restricted user: read every table, write nothing."""


_PRIVILEGE_NOUNS = {"systemuser": "User", "annotation": "Note"}
"""Tables whose privileges are not named after their schema name (Learn: "SystemUser (user)
entity privileges": prvReadUser); activity tables share the ``Activity`` privileges."""


def privilege_name(access: str, table: Table) -> str:
    """``prv<Verb><SchemaName>``, e.g. ``prvWriteContact`` (also ``prvReadUser``, ``…Activity``)."""
    noun = "Activity" if table.is_activity else table.schema_name
    return f"prv{PRIVILEGE_TYPES[access]}{_PRIVILEGE_NOUNS.get(table.logical_name, noun)}"


def table_privileges(table: Table) -> list[tuple[str, str]]:
    """The privileges ``table`` defines: ``(PrivilegeType, name)`` for each access right.

    Only the six modelled access rights (no Assign or Share).
    """
    return [(PRIVILEGE_TYPES[right], privilege_name(right, table)) for right in ACCESS_RIGHTS]


def held(role: Role | None, tables: Iterable[Table]) -> list[str]:
    """The names of the privileges ``role`` grants (None: every privilege, System Administrator).

    ``tables`` is the catalog; ``*`` in a role expands to every table in it.
    """
    names = [
        privilege_name(right, table)
        for table in tables
        for right in ACCESS_RIGHTS
        if role is None or role.allows(table.logical_name, right)
    ]
    names.extend(sorted(MISCELLANEOUS if role is None else role.privileges))
    return list(dict.fromkeys(names))  # activity tables share their privileges


def privilege_id(name: str) -> str:
    """A stable id for a privilege name (real ids differ per privilege, too)."""
    return str(uuid.uuid5(_NAMESPACE, name))


@dataclass(frozen=True, slots=True)
class Caller:
    """Who writes: stamped into ownerid, createdby and modifiedby.

    ``role`` limits what it may do (see :class:`Role`); None: all.
    """

    systemuser_id: str
    business_unit_id: str | None = None
    role: Role | None = None


def require(caller: Caller | None, table: Table, access: str) -> None:
    """Raise 403 ``0x80040220`` unless ``caller`` may ``access`` ``table``.

    Raises:
        DataverseFault: the caller's role lacks the right.
    """
    role = caller.role if caller is not None else None
    if role is None or role.allows(table.logical_name, access):
        return
    name = privilege_name(access, table)
    otc = f" on OTC={table.object_type_code}" if table.object_type_code is not None else ""
    assert caller is not None  # noqa: S101 - a role implies a caller
    raise _denied(caller, role, name, f"{otc} for entity '{table.logical_name}'")


def require_privilege(caller: Caller | None, privilege: str) -> None:
    """Raise 403 ``0x80040220`` unless ``caller`` holds the miscellaneous ``privilege`` (§8).

    Raises:
        DataverseFault: the caller's role lacks the privilege.
    """
    role = caller.role if caller is not None else None
    if role is None or privilege in role.privileges:
        return
    assert caller is not None  # noqa: S101 - a role implies a caller
    raise _denied(caller, role, privilege, "")


def _denied(caller: Caller, role: Role, privilege: str, scope: str) -> DataverseFault:
    return privilege_denied(
        caller.systemuser_id, role.privilege_count, privilege, privilege_id(privilege), scope
    )
