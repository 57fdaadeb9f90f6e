"""Test connection: what the configured run needs, checked before anything is written.

:func:`check_connection` gets a token (Entra), asks the environment ``WhoAmI`` (§2.4), reads
the metadata of every configured table (the default ``entity``, each ``streams.<s>.entity``,
the tables of lookups, associations and marketing lists) and compares the privileges the
configured operations need with those the application user holds. It reports every problem
at once, each naming the privilege and the fix, and never quotes a secret.

Privileges: the user's own come from ``RetrieveUserPrivileges`` (Microsoft Learn:
"RetrieveUserPrivileges Function", bound to the ``systemuser`` WhoAmI names); each table names
its privileges in ``EntityMetadata.Privileges`` (Learn: "SecurityPrivilegeMetadata
ComplexType", ``PrivilegeType`` Create, Read, Write, Delete, Append, AppendTo). What needs what:

- create: Create; upsert: Create and Write; update: Write; delete: Delete (on the table).
- a lookup bound to a table: Append on the written table, AppendTo on the referenced one.
- an association: Append on the written table, AppendTo (and Read, with ``key``) on the other.
- marketing list membership: Read and AppendTo on ``list``, Read and Append on the member
  table, Create on ``list`` when the named list does not exist yet (Learn: "AddMemberList
  message privileges").
- ``bypass_business_logic``: prvBypassCustomBusinessLogic; ``caller_object_id``:
  prvActOnBehalfOfAnotherUser (§8).

Meltano's ``meltano config test`` sends one stream, ``meltano_test_stream``, and fails on any
output line holding "error"; the target answers that stream with this check instead of writing
it (:data:`MELTANO_TEST_STREAM`).
"""

from __future__ import annotations

import typing as t
from collections import defaultdict
from dataclasses import dataclass, field

from target_dynamics.errors import (
    AuthError,
    DataverseError,
    MetadataError,
    ServiceUnreachable,
    WebApiError,
)
from target_dynamics.membership import find_list
from target_dynamics.plans import Operation

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from target_dynamics.metadata import MetadataCache, TableInfo
    from target_dynamics.settings import Settings, StreamSettings
    from target_dynamics.writer import Transport

MELTANO_TEST_STREAM = "meltano_test_stream"
"""The stream ``meltano config test`` sends to a loader (SCHEMA, one RECORD, STATE)."""
LIST_TABLE = "list"
OPERATION_RIGHTS: Mapping[Operation, tuple[str, ...]] = {
    Operation.CREATE: ("Create",),
    Operation.UPSERT: ("Create", "Write"),
    Operation.UPDATE: ("Write",),
    Operation.DELETE: ("Delete",),
}
"""PrivilegeType members each operation needs on the written table."""
BYPASS_PRIVILEGE = "prvBypassCustomBusinessLogic"
IMPERSONATE_PRIVILEGE = "prvActOnBehalfOfAnotherUser"
ROLE_HINT = (
    "security roles are in the Power Platform admin center > Environments > <environment> > "
    "Settings > Users + permissions > Security roles"
)


class ConnectionFailed(DataverseError):
    """The connection test found problems; the message lists each with its fix."""

    def __init__(self, problems: list[str], hint: str | None = None) -> None:
        text = "\n".join(f"- {p}" for p in problems)
        count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
        super().__init__(f"Connection test failed ({count}{f'; {hint}' if hint else ''}):\n{text}")
        self.problems = problems


@dataclass(frozen=True, order=True)
class Need:
    """One privilege a configured operation needs: ``right`` (a PrivilegeType) on ``table``."""

    table: str
    right: str
    why: str = field(compare=False)


@dataclass
class ConnectionReport:
    """What the check saw: the application user, the tables read, what it could not check."""

    user_id: str = ""
    tables: list[str] = field(default_factory=list)
    privileges_checked: int | None = None
    """How many (table, privilege) pairs the settings need, all held; None: not checked."""
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the log (never holding the word Meltano's test looks for)."""
        tables = ", ".join(self.tables) or "none configured (each stream's own, at SCHEMA)"
        held = self.privileges_checked
        privileges = "not checked" if held is None else f"the {held} needed are held"
        return (
            f"Connection test passed: token and WhoAmI (application user {self.user_id}); "
            f"tables: {tables}; privileges: {privileges}"
        )


def configured_streams(settings: Settings) -> list[tuple[str, StreamSettings]]:
    """The default table (when ``entity`` is set) and each ``streams`` entry, as a run sees them."""
    scopes = [(f"stream '{name}'", settings.for_stream(name, [])) for name in settings.streams]
    if settings.entity:
        scopes.insert(0, ("entity", settings.for_stream("", [])))
    return scopes


def reach(client: Transport) -> str:
    """Get a token and ask ``WhoAmI``; return the application user's ``systemuserid``.

    Raises:
        ConnectionFailed: naming the token or the environment as what failed.
    """
    try:
        return str(client.get_json("WhoAmI")["UserId"])
    except AuthError as exc:
        problem = f"token: {exc}"
    except (WebApiError, ServiceUnreachable) as exc:
        problem = f"environment: WhoAmI failed ({exc}); check dynamics_url and that an "
        problem += "application user exists for client_id in that environment"
    raise ConnectionFailed([problem])


def check_connection(
    client: Transport, metadata: MetadataCache, settings: Settings
) -> ConnectionReport:
    """Check token, environment, configured tables and privileges; report every problem.

    Raises:
        ConnectionFailed: every problem found, each with its fix.
    """
    report = ConnectionReport(user_id=reach(client))
    problems: list[str] = []
    tables: dict[str, TableInfo | None] = {}

    def table(name: str, where: str) -> TableInfo | None:
        if name not in tables:
            try:
                tables[name] = metadata.table(name)
            except MetadataError as exc:
                tables[name] = None
                problems.append(f"{where}: {exc}")
        return tables[name]

    needs: list[Need] = []
    for where, stream in configured_streams(settings):
        own = table(stream.entity, where)
        if own is not None:
            needs += _stream_needs(where, stream, own, table)
            needs += _list_needs(client, where, stream, own, problems)
    report.tables = sorted({info.logical_name for info in tables.values() if info})
    missing: list[tuple[str, str, str]] = []
    held = _held(client, report, problems)
    if held is not None:
        missing = _missing(client, needs, held, problems)
        missing += [p for p in _miscellaneous(settings) if p[0] not in held]
        report.privileges_checked = len({(n.table, n.right) for n in needs})
    problems += [f"the application user lacks {name} ({why}): {fix}" for name, why, fix in missing]
    if problems:
        raise ConnectionFailed(problems, ROLE_HINT if missing else None)
    return report


def _stream_needs(
    where: str,
    stream: StreamSettings,
    own: TableInfo,
    table: t.Callable[[str, str], TableInfo | None],
) -> list[Need]:
    """Privileges of the stream's operation, lookups and associations (metadata read on the way)."""
    name = own.logical_name
    needs = [
        Need(name, right, f"operation {stream.operation.value} ({where})")
        for right in OPERATION_RIGHTS[stream.operation]
    ]
    for column, lookup in sorted(stream.lookups.items()):
        why = f"lookup {column} ({where})"
        needs.append(Need(name, "Append", why))
        target = table(lookup.table, f"{where}: lookups.{column}") if lookup.table else None
        if target is not None:
            needs.append(Need(target.logical_name, "AppendTo", why))
    for field_name, spec in sorted(stream.associations.items()):
        why = f"association {field_name} ({where})"
        found = own.many_to_many.get(spec.relationship)
        related = table(found[0], f"{where}: associations.{field_name}") if found else None
        needs.append(Need(name, "Append", why))
        if related is not None:
            needs.append(Need(related.logical_name, "AppendTo", why))
            if spec.key:
                needs.append(Need(related.logical_name, "Read", why))
    return needs


def _list_needs(
    client: Transport,
    where: str,
    stream: StreamSettings,
    own: TableInfo,
    problems: list[str],
) -> list[Need]:
    """Privileges of marketing list membership; the named list is looked up, never created."""
    if not stream.fills_lists:
        return []
    why = f"marketing list membership ({where})"
    needs = [
        Need(LIST_TABLE, "Read", why),
        Need(LIST_TABLE, "AppendTo", why),
        Need(own.logical_name, "Read", why),
        Need(own.logical_name, "Append", why),
    ]
    if stream.marketing_list:
        try:
            found = find_list(client, stream.marketing_list, own.logical_name)
        except (MetadataError, WebApiError) as exc:
            problems.append(f"{where}: {exc}")
        else:
            if found is None:
                needs.append(Need(LIST_TABLE, "Create", f"creating list {stream.marketing_list!r}"))
    return needs


def _held(client: Transport, report: ConnectionReport, problems: list[str]) -> set[str] | None:
    """The names of the privileges the application user holds, or None when unreadable."""
    path = f"systemusers({report.user_id})/Microsoft.Dynamics.CRM.RetrieveUserPrivileges()"
    try:
        body = client.get_json(path)
    except WebApiError as exc:
        if exc.status == 403:
            problems.append(
                f"the application user cannot read its own privileges ({exc.message}): give its "
                "security role Read on User (prvReadUser), as the Basic User role does"
            )
            return None
        report.notes.append(f"privileges not checked: RetrieveUserPrivileges failed ({exc})")
        return None
    return {str(p.get("PrivilegeName")) for p in body.get("RolePrivileges") or []}


def _missing(
    client: Transport, needs: Iterable[Need], held: set[str], problems: list[str]
) -> list[tuple[str, str, str]]:
    """``(privilege name, why, fix)`` for each need the user lacks, named from table metadata."""
    whys: dict[tuple[str, str], list[str]] = defaultdict(list)
    for need in sorted(needs):
        if need.why not in whys[need.table, need.right]:
            whys[need.table, need.right].append(need.why)
    names: dict[str, dict[str, str]] = {}
    missing: list[tuple[str, str, str]] = []
    for (logical, right), reasons in whys.items():
        if logical not in names:
            names[logical] = _privilege_names(client, logical, problems)
        name = names[logical].get(right)
        if name is not None and name not in held:
            why = f"{right} on {logical}, needed by {'; '.join(reasons)}"
            missing.append((name, why, f"give its security role {right} on {logical}"))
    return missing


def _privilege_names(client: Transport, logical: str, problems: list[str]) -> dict[str, str]:
    """PrivilegeType -> privilege name of ``logical`` (``EntityMetadata.Privileges``)."""
    try:
        body = client.get_json(f"EntityDefinitions(LogicalName='{logical}')?$select=Privileges")
    except WebApiError as exc:
        problems.append(f"could not read the privileges of table '{logical}': {exc}")
        return {}
    return {str(p["PrivilegeType"]): str(p["Name"]) for p in body.get("Privileges") or []}


def _miscellaneous(settings: Settings) -> list[tuple[str, str, str]]:
    """``(privilege name, why, fix)`` for the §8 headers the settings send."""
    needed = []
    if settings.bypass_business_logic:
        fix = "give its security role that privilege, or set bypass_business_logic to false"
        needed.append((BYPASS_PRIVILEGE, "bypass_business_logic: true", fix))
    if settings.caller_object_id:
        fix = "give its security role that privilege, or drop caller_object_id"
        needed.append((IMPERSONATE_PRIVILEGE, "impersonation: caller_object_id", fix))
    return needed
