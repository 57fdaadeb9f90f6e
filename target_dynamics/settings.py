"""Settings: the config schema's cross-field rules, parsed once into typed values.

The settings are declared in :mod:`~target_dynamics.settings_schema` (which generates the
target's JSON Schema); this module reads their defaults and known keys from there.
``parse_settings`` reports every problem at once (what, where, how to fix) and never echoes a
secret; the target and its sinks read only the typed :class:`Settings`, ``streams.<stream>``
included (parsed at load time into :class:`StreamOverrides`).
"""

from __future__ import annotations

import json
import os
import re
import typing as t
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit

from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.plugin_base import JSONSchemaValidator

from target_dynamics.clouds import CLOUD_AUTHORITY_HOSTS, choose_cloud
from target_dynamics.errors import ConfigError
from target_dynamics.metadata import close_names
from target_dynamics.plans import Operation
from target_dynamics.settings_schema import (
    DEFAULT_OPERATION,
    DEFAULTS,
    LIST_MODES,
    LOAD_METHODS,
    LOOKUP_SETTINGS,
    OPERATIONS,
    SECRETS,
    SETTINGS,
    STATE_INTERVAL_PER_USER,
    STREAM_KEYS,
)

if t.TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from jsonschema import ValidationError


ASSOCIATION_KEYS = ("relationship", "key", "mode")
LOOKUP_KEYS = tuple(s.name for s in LOOKUP_SETTINGS)
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_DOMAIN = re.compile(r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$", re.IGNORECASE)
_THUMBPRINT = re.compile(r"^[0-9a-fA-F]{40}$")
_API_VERSION = re.compile(r"^v?(\d+\.\d+)$")
UNSUPPORTED_SDK_SETTINGS = {
    "add_record_metadata": "Dataverse tables take no _sdc_* columns, so the target never sends "
    "them; remove it (map a field you need into a column with `columns` or a stream map)",
}
"""Settings the SDK offers every target that this one leaves out, and why."""


class SettingsError(ConfigError, ConfigValidationError):
    """Every settings problem at once; each names what is wrong, where, and the fix."""

    def __init__(self, problems: list[str], schema: dict[str, t.Any] | None = None) -> None:
        text = "\n".join(f"- {p}" for p in problems)
        ConfigValidationError.__init__(
            self,
            f"Config validation failed ({len(problems)} problems):\n{text}",
            errors=problems,
            schema=schema,
        )


@dataclass(frozen=True)
class LookupSettings:
    """``lookups.<column>``: how a lookup column binds (see ``mapping.LookupRule``)."""

    table: str | None = None
    key: tuple[str, ...] = ()
    table_field: str | None = None


@dataclass(frozen=True)
class AssociationSettings:
    """``streams.<stream>.associations.<field>``: an N:N relationship the field fills."""

    relationship: str
    key: str | None = None
    mode: str = "add"


@dataclass(frozen=True)
class StreamSettings:
    """The effective settings of one stream (per-stream values over the top-level ones)."""

    entity: str
    operation: Operation
    id_field: tuple[str, ...]
    columns: Mapping[str, str]
    lookups: Mapping[str, LookupSettings]
    id_from_config: bool
    content_ids: bool = True
    """Keyless creates get content-derived primary ids (``keyless_create_ids: content``)."""
    all_matches: bool = False
    """A matched ID field writes every matching row (``multiple_matches: all``)."""
    marketing_list: str | None = None
    """Name or GUID of the marketing list every landed row joins."""
    marketing_list_field: str | None = None
    """Record field naming the list (or lists) each record's row joins."""
    marketing_list_mode: str = "add"
    """``sync``: after a complete run, members that were not sent leave the list."""
    associations: Mapping[str, AssociationSettings] = field(default_factory=dict)
    """Record field -> the N:N relationship its values fill."""
    json_text_fields: tuple[str, ...] = ()
    """Fields whose objects and arrays are written to their text column as JSON text."""
    operation_field: str | None = None
    """Record field naming each record's operation (see ``sinks.record_operation``)."""
    hard_delete: bool = False
    """Records deleted at the source (``_sdc_deleted_at``) are deleted, not deactivated."""
    mirror_scope: str | None = None
    """OData ``$filter`` naming the rows a full-table version owns (see :mod:`mirror`)."""
    inactive_status: int | str | None = None
    """Status (value or label) a deactivation sets, with its state; default: the table's."""

    @property
    def fills_lists(self) -> bool:
        """Whether landed rows join marketing lists."""
        return bool(self.marketing_list or self.marketing_list_field)


@dataclass(frozen=True)
class StreamOverrides:
    """``streams.<stream>``, parsed at load time: what one stream sets over the top level."""

    entity: str | None = None
    operation: Operation | None = None
    id_field: tuple[str, ...] = ()
    columns: Mapping[str, str] = field(default_factory=dict)
    lookups: Mapping[str, LookupSettings] = field(default_factory=dict)
    marketing_list: str | None = None
    marketing_list_mode: str | None = None
    marketing_list_field: str | None = None
    associations: Mapping[str, AssociationSettings] = field(default_factory=dict)
    json_text_fields: tuple[str, ...] = ()
    operation_field: str | None = None
    mirror_scope: str | None = None
    inactive_status: int | str | None = None


@dataclass(frozen=True)
class AppUser:
    """One more application user of ``app_users``: its client id and credentials."""

    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    certificate_private_key: str | None = field(default=None, repr=False)
    certificate_thumbprint: str | None = None


@dataclass(frozen=True)
class Settings:
    """The config, read and validated once; defaults are the declared ones (:data:`SETTINGS`)."""

    dynamics_url: str
    tenant_id: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    certificate_private_key: str | None = field(default=None, repr=False)
    certificate_thumbprint: str | None = None
    cloud: str = "public"
    """``cloud`` as set, else inferred from :attr:`dynamics_url` (§1.4), else ``public``."""
    authority_host: str | None = None
    cloud_warning: str | None = None
    """Why the login host in use contradicts :attr:`dynamics_url`'s cloud (logged once)."""
    api_version: str = DEFAULTS["api_version"]
    ca_bundle: str | None = None
    entity: str | None = None
    operation: Operation = DEFAULT_OPERATION
    id_field: tuple[str, ...] = ()
    streams: Mapping[str, StreamOverrides] = field(default_factory=dict)
    lookups: Mapping[str, LookupSettings] = field(default_factory=dict)
    max_concurrency: int | None = None
    app_users: tuple[AppUser, ...] = ()
    """Application users besides :attr:`client_id`, each with its own service protection limits."""
    extra_fields: str = DEFAULTS["extra_fields"]
    dead_letter_path: str | None = None
    max_errors: int = DEFAULTS["max_errors"]
    dry_run: bool = DEFAULTS["dry_run"]
    bypass_business_logic: bool = DEFAULTS["bypass_business_logic"]
    suppress_duplicate_detection: bool | None = None
    caller_object_id: str | None = None
    timeout_seconds: float = DEFAULTS["timeout_seconds"]
    outage_budget_seconds: float = DEFAULTS["outage_budget_seconds"]
    progress_interval_seconds: float = DEFAULTS["progress_interval_seconds"]
    state_interval_records: int = STATE_INTERVAL_PER_USER
    state_interval_seconds: float = DEFAULTS["state_interval_seconds"]
    keyless_create_ids: str = DEFAULTS["keyless_create_ids"]
    multiple_matches: str = DEFAULTS["multiple_matches"]
    marketing_list: str | None = None
    marketing_list_mode: str = DEFAULTS["marketing_list_mode"]
    hard_delete: bool = DEFAULTS["hard_delete"]

    @property
    def login_host(self) -> str:
        """The Entra host asked for tokens: ``authority_host``, else the cloud's (§1.4)."""
        return self.authority_host or CLOUD_AUTHORITY_HOSTS[self.cloud]

    def for_stream(self, stream: str, key_properties: list[str]) -> StreamSettings:
        """The settings that apply to ``stream`` (whose SCHEMA names ``key_properties``)."""
        own = self.streams.get(stream) or StreamOverrides()
        id_field = own.id_field or self.id_field or tuple(key_properties)
        return StreamSettings(
            entity=own.entity or self.entity or stream,
            operation=own.operation or self.operation,
            id_field=tuple(own.columns.get(f, f) for f in id_field),
            columns=own.columns,
            lookups={**self.lookups, **own.lookups},
            id_from_config=bool(own.id_field or self.id_field),
            content_ids=self.keyless_create_ids == "content",
            all_matches=self.multiple_matches == "all",
            marketing_list=own.marketing_list or self.marketing_list,
            marketing_list_field=own.marketing_list_field,
            marketing_list_mode=own.marketing_list_mode or self.marketing_list_mode,
            associations=own.associations,
            json_text_fields=own.json_text_fields,
            operation_field=own.operation_field,
            hard_delete=self.hard_delete,
            mirror_scope=own.mirror_scope,
            inactive_status=own.inactive_status,
        )


def _id_tuple(value: t.Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return ()


def _top_id_field(value: t.Any, problems: list[str]) -> tuple[str, ...]:
    """``id_field``, where a string holding a JSON list is that list.

    That is how Meltano passes a list given as ``TARGET_DYNAMICS_ID_FIELD='["a", "b"]'`` or by
    ``meltano config set`` (the setting's kind is string, so one plain name works there too);
    no column's logical name starts with ``[``.
    """
    if not (isinstance(value, str) and value.lstrip().startswith("[")):
        return _id_tuple(value)
    try:
        names = json.loads(value)
    except ValueError:
        names = None
    if isinstance(names, list) and names and all(isinstance(n, str) and n for n in names):
        return tuple(names)
    problems.append(
        f"id_field {value!r} is not a JSON list of column names: write one name, or a list "
        'such as ["firstname", "lastname"]'
    )
    return ()


def _unknown_keys(
    spec: Mapping[str, t.Any], known: Sequence[str], where: str, problems: list[str]
) -> None:
    """Name each key of ``spec`` not in ``known``, with the closest known one."""
    for unknown in sorted(set(spec) - set(known)):
        hint = close_names(unknown, known)
        fix = f"did you mean '{hint[0]}'?" if hint else f"use only {', '.join(known)}"
        problems.append(f"{where} has unknown key '{unknown}': {fix}")


def _lookups(
    raw: Mapping[str, t.Any], where: str, problems: list[str]
) -> dict[str, LookupSettings]:
    found: dict[str, LookupSettings] = {}
    if not isinstance(raw, dict):
        problems.append(f"{where} must be an object: lookup column -> binding")
        return found
    for column, spec in raw.items():
        if not isinstance(spec, dict):
            problems.append(f"{where}.{column} must be an object like {{'table': 'account'}}")
            continue
        _unknown_keys(spec, LOOKUP_KEYS, f"{where}.{column}", problems)
        key = _id_tuple(spec.get("key"))
        if key and not spec.get("table"):
            problems.append(
                f"{where}.{column}.key is set without table: name the table the key belongs to"
            )
        found[column] = LookupSettings(spec.get("table"), key, spec.get("table_field"))
    return found


def _associations(raw: t.Any, where: str, problems: list[str]) -> dict[str, AssociationSettings]:
    found: dict[str, AssociationSettings] = {}
    if not isinstance(raw, dict):
        problems.append(f"{where} must map record fields to relationships")
        return found
    for name, spec in raw.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("relationship"), str):
            problems.append(
                f"{where}.{name} must be an object naming its N:N relationship, e.g. "
                '{"relationship": "contactleads_association", "key": "emailaddress1"}'
            )
            continue
        _unknown_keys(spec, ASSOCIATION_KEYS, f"{where}.{name}", problems)
        mode = _choice(spec.get("mode") or "add", LIST_MODES, f"{where}.{name}.mode", problems)
        found[name] = AssociationSettings(spec["relationship"], spec.get("key"), mode or "add")
    return found


def _check_url(name: str, value: str, problems: list[str]) -> str:
    parts = urlsplit(value)
    if not parts.hostname:
        problems.append(f"{name} '{value}' is not a URL: use e.g. https://contoso.crm.dynamics.com")
    elif parts.scheme != "https":
        problems.append(
            f"{name} must use https (got '{parts.scheme}://'): Dataverse and Entra ID only "
            "accept TLS; use https://" + parts.netloc
        )
    elif parts.query or parts.fragment or parts.path.strip("/"):
        problems.append(
            f"{name} must be the environment root, without path or query (got '{value}'): "
            f"use https://{parts.netloc}"
        )
    return value.rstrip("/")


def _check_credentials(secret: t.Any, key: t.Any, thumb: t.Any, problems: list[str]) -> None:
    """A client secret, or a PEM key with its SHA-1 thumbprint; never both."""
    if secret and (key or thumb):
        problems.append(
            "client_secret and certificate_private_key/certificate_thumbprint are both set: "
            "choose one way to authenticate"
        )
    elif not secret and not (key and thumb):
        if key or thumb:
            missing = "certificate_thumbprint" if key else "certificate_private_key"
            problems.append(f"certificate authentication needs {missing} too")
        else:
            problems.append(
                "no credentials: set client_secret, or certificate_private_key (PEM) with "
                "certificate_thumbprint"
            )
    _check_certificate(key, thumb, problems)


def _check_certificate(key: t.Any, thumb: t.Any, problems: list[str]) -> None:
    """A PEM key and a SHA-1 thumbprint, each when given."""
    if key and isinstance(key, str) and "-----BEGIN" not in key:
        problems.append(
            "certificate_private_key is not PEM text (no '-----BEGIN' line): paste the key file's "
            "content, not its path"
        )
    if thumb and isinstance(thumb, str) and not _THUMBPRINT.match(thumb.replace(":", "")):
        problems.append(
            "certificate_thumbprint must be the certificate's SHA-1 thumbprint, 40 hex digits"
        )


def _app_users(value: t.Any, client_id: t.Any, problems: list[str]) -> tuple[AppUser, ...]:
    """Each further application user: a client id and its own credentials, never repeated."""
    users: list[AppUser] = []
    seen = {str(client_id).lower()}
    for n, entry in enumerate(value if isinstance(value, list) else []):
        if not isinstance(entry, dict):
            continue  # the schema reports it
        where: list[str] = []
        secret, key = entry.get("client_secret"), entry.get("certificate_private_key")
        thumb = entry.get("certificate_thumbprint")
        _check_credentials(secret, key, thumb, where)
        user_id = str(entry.get("client_id") or "")
        if user_id.lower() in seen:
            where.append(
                f"client_id {user_id} is already used in this config: each application user "
                "counts once (its limits are per user)"
            )
        seen.add(user_id.lower())
        problems.extend(f"app_users[{n}]: {problem}" for problem in where)
        users.append(
            AppUser(
                client_id=user_id,
                client_secret=secret,
                certificate_private_key=key,
                certificate_thumbprint=thumb.replace(":", "").upper() if thumb else None,
            )
        )
    return tuple(users)


def _check_tenant(tenant: t.Any, problems: list[str]) -> None:
    """A directory id (GUID) or one of the directory's domain names; never common/organizations."""
    if not isinstance(tenant, str) or _GUID.match(tenant):
        return
    if tenant.lower() in {"common", "organizations", "consumers"}:
        problems.append(
            f"tenant_id '{tenant}' cannot issue app-only tokens: use your directory's id (a GUID, "
            "Entra admin center > Overview > Tenant ID) or its domain, e.g. contoso.onmicrosoft.com"
        )
    elif not _DOMAIN.match(tenant):
        problems.append(
            f"tenant_id '{tenant}' is neither a GUID nor a domain name: use your directory's id "
            "(Entra admin center > Overview > Tenant ID) or its domain, e.g. "
            "contoso.onmicrosoft.com"
        )


def _check_paths(ca_bundle: t.Any, dead_letter_path: t.Any, problems: list[str]) -> None:
    """The CA bundle must exist; the dead-letter file's directory must be writable."""
    if ca_bundle and not Path(ca_bundle).is_file():
        problems.append(f"ca_bundle '{ca_bundle}' does not exist: give the path of a PEM file")
    if dead_letter_path:
        parent = Path(dead_letter_path).expanduser().resolve().parent
        if not parent.is_dir() or not os.access(parent, os.W_OK):
            problems.append(
                f"dead_letter_path '{dead_letter_path}': directory '{parent}' does not exist or "
                "is not writable"
            )


def _operation(operation: t.Any, load_method: t.Any, problems: list[str]) -> Operation:
    """``operation`` when set (it must agree with ``load_method``), else the load method's."""
    if operation in OPERATIONS:
        chosen = Operation(operation)
        wanted = LOAD_METHODS.get(load_method) if load_method else None
        if wanted and wanted is not chosen:
            problems.append(
                f"load_method '{load_method}' contradicts operation '{chosen}': "
                "append-only means create and upsert means upsert; drop one of them"
            )
        return chosen
    return LOAD_METHODS.get(load_method, DEFAULT_OPERATION)


def _text(value: t.Any) -> str | None:
    """A set text value, else ``None`` (the schema reports a value of another type)."""
    return value if isinstance(value, str) and value else None


def _choice(value: t.Any, allowed: Sequence[str], where: str, problems: list[str]) -> str | None:
    """``value`` when it is one of ``allowed``; unset is ``None``, anything else a problem."""
    if value and value not in allowed:
        problems.append(f"{where} '{value}' is not one of {', '.join(allowed)}")
        return None
    return _text(value)


def _columns(value: t.Any, where: str, problems: list[str]) -> dict[str, str]:
    """``streams.<stream>.columns``: record field -> column name."""
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        return value
    problems.append(f"{where} must map record fields to column names (strings)")
    return {}


def _stream(stream: str, spec: Mapping[str, t.Any], problems: list[str]) -> StreamOverrides:
    """One ``streams.<stream>`` entry: known keys, a valid operation, columns and lookups."""
    where = f"streams.{stream}"
    _unknown_keys(spec, STREAM_KEYS, where, problems)
    operation = _choice(spec.get("operation"), OPERATIONS, f"{where}.operation", problems)
    columns = _columns(spec.get("columns") or {}, f"{where}.columns", problems)
    lookups = _lookups(spec.get("lookups") or {}, f"{where}.lookups", problems)
    mode = _choice(
        spec.get("marketing_list_mode"), LIST_MODES, f"{where}.marketing_list_mode", problems
    )
    associations = _associations(spec.get("associations") or {}, f"{where}.associations", problems)
    texts, scope = spec.get("json_text_fields"), spec.get("mirror_scope")
    status = spec.get("inactive_status")
    return StreamOverrides(
        entity=_text(spec.get("entity")),
        operation=Operation(operation) if operation else None,
        id_field=_id_tuple(spec.get("id_field")),
        columns=columns,
        lookups=lookups,
        marketing_list=_text(spec.get("marketing_list")),
        marketing_list_mode=mode,
        marketing_list_field=_text(spec.get("marketing_list_field")),
        associations=associations,
        json_text_fields=tuple(texts) if isinstance(texts, list) else (),
        operation_field=_text(spec.get("operation_field")),
        mirror_scope=_text(scope.strip()) if isinstance(scope, str) else None,
        inactive_status=status if isinstance(status, int | str) else None,
    )


def _streams(value: t.Any, problems: list[str]) -> dict[str, StreamOverrides]:
    """Every ``streams.<stream>`` entry, parsed (an entry that is no object is reported)."""
    found: dict[str, StreamOverrides] = {}
    for stream, spec in (value if isinstance(value, dict) else {}).items():
        if isinstance(spec, dict):
            found[stream] = _stream(stream, spec, problems)
        else:
            problems.append(f"streams.{stream} must be an object with {', '.join(STREAM_KEYS)}")
    return found


@dataclass(frozen=True)
class _Connection:
    """Where and how the target signs in, checked."""

    dynamics_url: str
    authority_host: str | None
    cloud: str
    cloud_warning: str | None
    api_version: str
    certificate_thumbprint: str | None


def _endpoints(config: Mapping[str, t.Any], problems: list[str]) -> tuple[str, str | None]:
    """``dynamics_url`` and ``authority_host``: https roots, without a trailing slash."""
    url, authority = config.get("dynamics_url"), config.get("authority_host")
    return (
        _check_url("dynamics_url", str(url), problems) if url else "",
        _check_url("authority_host", str(authority), problems) if authority else None,
    )


def _check_identity(config: Mapping[str, t.Any], problems: list[str]) -> None:
    """The credentials, the tenant and the client id."""
    secret, key = config.get("client_secret"), config.get("certificate_private_key")
    _check_credentials(secret, key, config.get("certificate_thumbprint"), problems)
    _check_tenant(config.get("tenant_id"), problems)
    client_id = config.get("client_id")
    if isinstance(client_id, str) and (not client_id.strip() or "/" in client_id):
        problems.append(f"client_id must be a GUID or a domain name (got '{client_id}')")


def _api_version(value: t.Any, problems: list[str]) -> str:
    """``api_version`` as ``9.2`` (a leading ``v`` dropped)."""
    version = _API_VERSION.match(str(value or DEFAULTS["api_version"]))
    if version:
        return version.group(1)
    problems.append(f"api_version '{value}' is not like 'v9.2'")
    return str(DEFAULTS["api_version"])


def _check_caller(caller: t.Any, problems: list[str]) -> None:
    if caller and not _GUID.match(str(caller)):
        problems.append(
            f"caller_object_id '{caller}' is not a GUID: use the Entra object id of the user to "
            "impersonate"
        )


def _connection(config: Mapping[str, t.Any], problems: list[str]) -> _Connection:
    """Check where and how the target signs in: URLs, cloud, identity, version, caller, paths."""
    url, authority = _endpoints(config, problems)
    cloud = config.get("cloud")
    cloud, cloud_warning = (
        choose_cloud(cloud, authority, url)
        if cloud in (None, "", *CLOUD_AUTHORITY_HOSTS)
        else ("public", None)  # the schema reports the unknown cloud
    )
    _check_identity(config, problems)
    version = _api_version(config.get("api_version"), problems)
    _check_caller(config.get("caller_object_id"), problems)
    _check_paths(config.get("ca_bundle"), config.get("dead_letter_path"), problems)
    thumb = config.get("certificate_thumbprint")
    return _Connection(
        dynamics_url=url,
        authority_host=authority,
        cloud=cloud,
        cloud_warning=cloud_warning,
        api_version=version,
        certificate_thumbprint=thumb.replace(":", "").upper() if thumb else None,
    )


_DERIVED = frozenset(
    {
        *(f.name for f in fields(_Connection)),
        "operation",
        "id_field",
        "streams",
        "lookups",
        "app_users",
        "state_interval_records",
    }
)
"""Settings fields that :func:`parse_settings` derives instead of reading as declared."""
_PLAIN = tuple(s for s in SETTINGS if s.name in {f.name for f in fields(Settings)} - _DERIVED)
"""Settings read as they are, or their declared default (numbers as ``float``)."""


def parse_settings(config: Mapping[str, t.Any]) -> tuple[Settings | None, list[str]]:
    """Read ``config`` into :class:`Settings`, collecting every cross-field problem.

    JSON-Schema problems (types, required, enums) are reported by the caller; this checks what
    the schema cannot: URLs, credential combinations, cloud versus authority, load method versus
    operation, stream and lookup structure, paths. Secrets are never quoted.
    """
    problems: list[str] = []
    connection = _connection(config, problems)
    operation = _operation(config.get("operation"), config.get("load_method"), problems)
    id_field = _top_id_field(config.get("id_field"), problems)
    streams = _streams(config.get("streams"), problems)
    lookups = _lookups(config.get("lookups") or {}, "lookups", problems)
    app_users = _app_users(config.get("app_users"), config.get("client_id"), problems)
    if problems:
        return None, problems
    records = config.get("state_interval_records")
    return Settings(
        **{s.name: s.read(config) for s in _PLAIN},
        **{f.name: getattr(connection, f.name) for f in fields(_Connection)},
        operation=operation,
        id_field=id_field,
        streams=streams,
        lookups=lookups,
        app_users=app_users,
        state_interval_records=records or STATE_INTERVAL_PER_USER * (1 + len(app_users)),
    ), []


def check_schema(
    config: Mapping[str, t.Any], schema: Mapping[str, t.Any]
) -> tuple[list[str], dict[str, t.Any]]:
    """Check ``config`` against the settings' JSON Schema and name every unknown setting.

    Returns:
        The problems, and the config without the unknown settings and those whose value failed
        (so :func:`parse_settings` sees top-level values of the right type).
    """
    errors = list(JSONSchemaValidator(dict(schema)).iter_errors(dict(config)))
    problems = [format_error(e) for e in errors]
    known = schema.get("properties", {})
    for unknown in sorted(set(config) - set(known)):
        if unknown in UNSUPPORTED_SDK_SETTINGS:
            problems.append(
                f"setting '{unknown}' is not supported: {UNSUPPORTED_SDK_SETTINGS[unknown]}"
            )
            continue
        hint = close_names(unknown, known)
        fix = (
            f"did you mean '{hint[0]}'?"
            if hint
            else "remove it (`target-dynamics --about` lists every setting)"
        )
        problems.append(f"unknown setting '{unknown}': {fix}")
    failed = {str(e.path[0]) for e in errors if len(e.path) == 1} | set(config) - set(known)
    return problems, {k: v for k, v in config.items() if k not in failed}


def format_error(error: ValidationError) -> str:
    """Say where in the config a JSON Schema error is, without echoing a secret value."""
    where = "config" + "".join(f"[{p!r}]" for p in error.path)
    top = str(error.path[0]) if error.path else ""
    if top in SECRETS:
        return f"{where} is invalid ({error.validator} check failed); value not shown"
    return f"{error.message} in {where}"
