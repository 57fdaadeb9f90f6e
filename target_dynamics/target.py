"""The target: settings, their validation, and the resources every sink shares."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import sys
import threading
import typing as t
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers.capabilities import PluginCapabilities, TargetCapabilities
from singer_sdk.plugin_base import JSONSchemaValidator
from singer_sdk.target_base import Target

from target_dynamics.deadletter import DeadLetterFile
from target_dynamics.errors import ConfigError
from target_dynamics.metadata import MetadataCache, close_names
from target_dynamics.reporting import RunReport
from target_dynamics.sinks import DataverseSink
from target_dynamics.writer import Operation, Writer

if t.TYPE_CHECKING:
    from collections.abc import Mapping

    from jsonschema import ValidationError

    from target_dynamics.client import DataverseClient

CLOUDS = ("public", "gcc", "gcc_high", "dod", "china")
SECRETS = frozenset({"client_secret", "certificate_private_key"})
LOAD_METHODS = {"upsert": Operation.UPSERT, "append-only": Operation.CREATE}
STREAM_KEYS = ("entity", "operation", "id_field", "columns", "lookups")
LOOKUP_KEYS = ("table", "key", "table_field")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_THUMBPRINT = re.compile(r"^[0-9a-fA-F]{40}$")
_API_VERSION = re.compile(r"^v?(\d+\.\d+)$")
_ID_FIELD = th.CustomType(
    {"type": ["string", "array"], "items": {"type": "string"}, "minItems": 1, "minLength": 1}
)
_OPERATIONS = [op.value for op in Operation]


class SettingsError(ConfigError, ConfigValidationError):
    """Every settings problem at once; each names what is wrong, where, and the fix."""

    def __init__(self, problems: list[str], schema: dict | None = None) -> None:
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
class StreamSettings:
    """The effective settings of one stream (per-stream values over the top-level ones)."""

    entity: str
    operation: Operation
    id_field: tuple[str, ...]
    columns: Mapping[str, str]
    lookups: Mapping[str, LookupSettings]
    id_from_config: bool


@dataclass(frozen=True)
class Settings:
    """The config, read and validated once."""

    dynamics_url: str
    tenant_id: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    certificate_private_key: str | None = field(default=None, repr=False)
    certificate_thumbprint: str | None = None
    cloud: str = "public"
    authority_host: str | None = None
    api_version: str = "9.2"
    ca_bundle: str | None = None
    entity: str | None = None
    operation: Operation = Operation.UPSERT
    id_field: tuple[str, ...] = ()
    streams: Mapping[str, Mapping[str, t.Any]] = field(default_factory=dict)
    lookups: Mapping[str, LookupSettings] = field(default_factory=dict)
    max_concurrency: int | None = None
    extra_fields: str = "drop"
    dead_letter_path: str | None = None
    max_errors: int = 0
    dry_run: bool = False
    bypass_business_logic: bool = False
    suppress_duplicate_detection: bool | None = None
    caller_object_id: str | None = None
    timeout_seconds: float = 120.0
    progress_interval_seconds: float = 60.0

    def for_stream(self, stream: str, key_properties: list[str]) -> StreamSettings:
        """The settings that apply to ``stream`` (whose SCHEMA names ``key_properties``)."""
        own = self.streams.get(stream, {})
        columns = dict(own.get("columns") or {})
        lookups = dict(self.lookups)
        lookups.update(_lookups(own.get("lookups") or {}, f"streams.{stream}.lookups", []))
        id_field = _id_tuple(own.get("id_field")) or self.id_field
        from_config = bool(id_field)
        if not id_field:
            id_field = tuple(columns.get(k, k) for k in key_properties)
        return StreamSettings(
            entity=own.get("entity") or self.entity or stream,
            operation=Operation(own["operation"]) if own.get("operation") else self.operation,
            id_field=tuple(columns.get(f, f) for f in id_field),
            columns=columns,
            lookups=lookups,
            id_from_config=from_config,
        )


def _id_tuple(value: t.Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return ()


def _lookups(
    raw: Mapping[str, t.Any], where: str, problems: list[str]
) -> dict[str, LookupSettings]:
    found: dict[str, LookupSettings] = {}
    for column, spec in raw.items():
        if not isinstance(spec, dict):
            problems.append(f"{where}.{column} must be an object like {{'table': 'account'}}")
            continue
        unknown = sorted(set(spec) - set(LOOKUP_KEYS))
        if unknown:
            problems.append(
                f"{where}.{column} has unknown keys {unknown}: use only {', '.join(LOOKUP_KEYS)}"
            )
        key = _id_tuple(spec.get("key"))
        if key and not spec.get("table"):
            problems.append(
                f"{where}.{column}.key is set without table: name the table the key belongs to"
            )
        found[column] = LookupSettings(spec.get("table"), key, spec.get("table_field"))
    return found


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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


def parse_settings(config: Mapping[str, t.Any]) -> tuple[Settings | None, list[str]]:  # noqa: C901, PLR0912, PLR0915
    """Read ``config`` into :class:`Settings`, collecting every cross-field problem.

    JSON-Schema problems (types, required, enums) are reported by the caller; this checks what
    the schema cannot: URLs, credential combinations, cloud versus authority, load method versus
    operation, stream and lookup structure, paths. Secrets are never quoted.
    """
    problems: list[str] = []
    get = config.get
    url = (
        _check_url("dynamics_url", str(get("dynamics_url")), problems)
        if get("dynamics_url")
        else ""
    )
    authority = get("authority_host")
    if authority:
        authority = _check_url("authority_host", str(authority), problems)
        if get("cloud"):
            problems.append(
                "cloud and authority_host are both set: set only one (authority_host wins over "
                "the cloud's default login host)"
            )
    cloud = get("cloud") or "public"
    secret, key, thumb = (
        get("client_secret"),
        get("certificate_private_key"),
        get("certificate_thumbprint"),
    )
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
    if key and isinstance(key, str) and "-----BEGIN" not in key:
        problems.append(
            "certificate_private_key is not PEM text (no '-----BEGIN' line): paste the key file's "
            "content, not its path"
        )
    if thumb and isinstance(thumb, str) and not _THUMBPRINT.match(thumb.replace(":", "")):
        problems.append(
            "certificate_thumbprint must be the certificate's SHA-1 thumbprint, 40 hex digits"
        )
    for name in ("tenant_id", "client_id"):
        value = get(name)
        if isinstance(value, str) and (not value.strip() or "/" in value):
            problems.append(f"{name} must be a GUID or a domain name (got '{value}')")
    version = _API_VERSION.match(str(get("api_version") or "9.2"))
    if not version:
        problems.append(f"api_version '{get('api_version')}' is not like 'v9.2'")
    caller = get("caller_object_id")
    if caller and not _GUID.match(str(caller)):
        problems.append(
            f"caller_object_id '{caller}' is not a GUID: use the Entra object id of the user to "
            "impersonate"
        )
    ca_bundle = get("ca_bundle")
    if ca_bundle and not Path(ca_bundle).is_file():
        problems.append(f"ca_bundle '{ca_bundle}' does not exist: give the path of a PEM file")
    dead = get("dead_letter_path")
    if dead:
        parent = Path(dead).expanduser().resolve().parent
        if not parent.is_dir() or not os.access(parent, os.W_OK):
            problems.append(
                f"dead_letter_path '{dead}': directory '{parent}' does not exist or is not writable"
            )
    operation = Operation.UPSERT
    load_method = get("load_method")
    if get("operation") in _OPERATIONS:
        operation = Operation(get("operation"))
        wanted = LOAD_METHODS.get(load_method) if load_method else None
        if wanted and wanted is not operation:
            problems.append(
                f"load_method '{load_method}' contradicts operation '{operation}': "
                "append-only means create and upsert means upsert; drop one of them"
            )
    elif load_method in LOAD_METHODS:
        operation = LOAD_METHODS[load_method]
    id_field = _id_tuple(get("id_field"))
    streams = get("streams") or {}
    for stream, spec in streams.items() if isinstance(streams, dict) else ():
        where = f"streams.{stream}"
        if not isinstance(spec, dict):
            problems.append(f"{where} must be an object with {', '.join(STREAM_KEYS)}")
            continue
        for unknown in sorted(set(spec) - set(STREAM_KEYS)):
            hint = close_names(unknown, STREAM_KEYS)
            fix = f"did you mean {hint[0]}?" if hint else f"use only {', '.join(STREAM_KEYS)}"
            problems.append(f"{where} has unknown key '{unknown}': {fix}")
        if spec.get("operation") and spec["operation"] not in _OPERATIONS:
            problems.append(
                f"{where}.operation '{spec['operation']}' is not one of {', '.join(_OPERATIONS)}"
            )
        columns = spec.get("columns") or {}
        if not isinstance(columns, dict) or not all(isinstance(v, str) for v in columns.values()):
            problems.append(f"{where}.columns must map record fields to column names (strings)")
        _lookups(spec.get("lookups") or {}, f"{where}.lookups", problems)
    lookups = _lookups(get("lookups") or {}, "lookups", problems)
    if problems:
        return None, problems
    suppress = get("suppress_duplicate_detection")
    return Settings(
        dynamics_url=url,
        tenant_id=str(get("tenant_id")),
        client_id=str(get("client_id")),
        client_secret=secret,
        certificate_private_key=key,
        certificate_thumbprint=thumb.replace(":", "").upper() if thumb else None,
        cloud=cloud,
        authority_host=authority,
        api_version=version.group(1) if version else "9.2",
        ca_bundle=ca_bundle,
        entity=get("entity"),
        operation=operation,
        id_field=id_field,
        streams=streams,
        lookups=lookups,
        max_concurrency=get("max_concurrency"),
        extra_fields=get("extra_fields") or "drop",
        dead_letter_path=dead,
        max_errors=int(get("max_errors") or 0),
        dry_run=bool(get("dry_run")),
        bypass_business_logic=bool(get("bypass_business_logic")),
        suppress_duplicate_detection=None if suppress is None else bool(suppress),
        caller_object_id=caller,
        timeout_seconds=float(get("timeout_seconds") or 120),
        progress_interval_seconds=float(
            60 if get("progress_interval_seconds") is None else get("progress_interval_seconds")
        ),
    ), []


def _format_error(error: ValidationError) -> str:
    where = "config" + "".join(f"[{p!r}]" for p in error.path)
    top = str(error.path[0]) if error.path else ""
    if top in SECRETS:
        return f"{where} is invalid ({error.validator} check failed); value not shown"
    return f"{error.message} in {where}"


class TargetDynamics(Target):
    """Load Singer streams into Microsoft Dynamics 365 / Dataverse tables through the Web API."""

    name = "target-dynamics"
    default_sink_class = DataverseSink
    capabilities: t.ClassVar[list] = [
        PluginCapabilities.ABOUT,
        PluginCapabilities.STREAM_MAPS,
        PluginCapabilities.FLATTENING,
        PluginCapabilities.STRUCTURED_LOGGING,
        TargetCapabilities.VALIDATE_RECORDS,
    ]
    config_jsonschema: t.ClassVar[dict] = th.PropertiesList(
        th.Property(
            "dynamics_url",
            th.StringType(nullable=False),
            required=True,
            title="Dynamics URL",
            description="Environment root URL, e.g. `https://contoso.crm.dynamics.com` (https).",
        ),
        th.Property(
            "tenant_id",
            th.StringType(nullable=False),
            required=True,
            title="Tenant ID",
            description="Microsoft Entra (Azure AD) directory id of the app registration.",
        ),
        th.Property(
            "client_id",
            th.StringType(nullable=False),
            required=True,
            title="Client ID",
            description="Application (client) id of the app registration; an application user "
            "with write privileges must exist for it in the environment.",
        ),
        th.Property(
            "client_secret",
            th.StringType,
            secret=True,
            title="Client secret",
            description="Client secret of the app registration. Set this, or the certificate.",
        ),
        th.Property(
            "certificate_private_key",
            th.StringType,
            secret=True,
            title="Certificate private key",
            description="PEM private key of a certificate uploaded to the app registration "
            "(certificate authentication, instead of client_secret).",
        ),
        th.Property(
            "certificate_thumbprint",
            th.StringType,
            title="Certificate thumbprint",
            description="SHA-1 thumbprint (40 hex digits) of that certificate.",
        ),
        th.Property(
            "cloud",
            th.StringType,
            allowed_values=list(CLOUDS),
            title="Cloud",
            description="National cloud whose login host issues tokens: public (default), gcc, "
            "gcc_high, dod or china.",
        ),
        th.Property(
            "authority_host",
            th.StringType,
            title="Authority host",
            description="Explicit https login host instead of cloud's, e.g. "
            "`https://login.microsoftonline.us`.",
        ),
        th.Property(
            "api_version",
            th.StringType,
            default="9.2",
            title="API version",
            description="Web API version (`9.2` or `v9.2`).",
        ),
        th.Property(
            "ca_bundle",
            th.StringType,
            title="CA bundle",
            description="PEM file of extra certificate authorities to trust (added to the "
            "system ones; TLS is always verified).",
        ),
        th.Property(
            "entity",
            th.StringType,
            title="Entity",
            description="Table (logical name or entity set name) every stream writes to, unless "
            "`streams` says otherwise. Without it a stream writes to the table named like it.",
        ),
        th.Property(
            "operation",
            th.StringType,
            allowed_values=_OPERATIONS,
            title="Operation",
            description="upsert (default), create, update (existing rows only; others are "
            "rejected) or delete. Without it, load_method decides: append-only = create.",
        ),
        th.Property(
            "id_field",
            _ID_FIELD,
            title="ID field",
            description="Column (or list, for a composite alternate key) naming the row: the "
            "primary id column, the columns of an alternate key, or any other column (rows "
            "matched by a query). Default: the stream's key_properties.",
        ),
        th.Property(
            "streams",
            th.ObjectType(
                additional_properties=th.ObjectType(
                    th.Property("entity", th.StringType, description="Table of this stream."),
                    th.Property("operation", th.StringType, description="Operation."),
                    th.Property("id_field", _ID_FIELD, description="ID field(s)."),
                    th.Property(
                        "columns",
                        th.ObjectType(additional_properties=th.StringType),
                        description='Record field -> column, e.g. {"email": "emailaddress1"}.',
                    ),
                    th.Property(
                        "lookups",
                        th.ObjectType(additional_properties=th.ObjectType()),
                        description="Lookup bindings of this stream (as `lookups`).",
                    ),
                ),
            ),
            title="Streams",
            description="Per-stream settings by stream name (after stream maps): entity, "
            "operation, id_field, columns, lookups.",
        ),
        th.Property(
            "lookups",
            th.ObjectType(
                additional_properties=th.ObjectType(
                    th.Property("table", th.StringType, description="Target table."),
                    th.Property("key", _ID_FIELD, description="Its alternate-key column(s)."),
                    th.Property(
                        "table_field",
                        th.StringType,
                        description="Record field naming the target table per record.",
                    ),
                ),
            ),
            title="Lookups",
            description='Lookup column -> binding, e.g. {"parentcustomerid": {"table": '
            '"account", "key": "accountnumber"}}. Values are GUIDs unless `key` is set; '
            'an object value {"table": ..., "id": ...} picks the table per record.',
        ),
        th.Property(
            "load_method",
            th.StringType,
            allowed_values=list(LOAD_METHODS),
            title="Load method",
            description="Singer load method: upsert (operation upsert) or append-only "
            "(operation create). Used when operation is not set; contradicting it is an error. "
            "overwrite is not supported (tables are never truncated).",
        ),
        th.Property(
            "batch_size_rows",
            th.IntegerType(minimum=1),
            title="Batch size",
            description="Records buffered per stream before they are written (default 1000).",
        ),
        th.Property(
            "max_concurrency",
            th.IntegerType(minimum=1, maximum=52),
            title="Maximum concurrency",
            description="Requests in flight at once; default: the service's x-ms-dop-hint.",
        ),
        th.Property(
            "extra_fields",
            th.StringType,
            default="drop",
            allowed_values=["drop", "error"],
            title="Extra fields",
            description="Record fields the table cannot take: drop (one warning naming them) "
            "or error (fail at SCHEMA).",
        ),
        th.Property(
            "dead_letter_path",
            th.StringType,
            title="Dead-letter file",
            description="JSONL file that receives rejected records as replayable Singer "
            "messages (SCHEMA, then RECORDs with a `_dead_letter` field giving the error).",
        ),
        th.Property(
            "max_errors",
            th.IntegerType(minimum=0),
            default=0,
            title="Maximum rejections",
            description="Rejected records tolerated; more fail the run (after everything else "
            "was written).",
        ),
        th.Property(
            "dry_run",
            th.BooleanType,
            default=False,
            title="Dry run",
            description="Read metadata, validate and convert every record, report; write nothing.",
        ),
        th.Property(
            "bypass_business_logic",
            th.BooleanType,
            default=False,
            title="Bypass business logic",
            description="Skip custom synchronous and asynchronous plug-ins and workflows "
            "(needs the prvBypassCustomBusinessLogic privilege).",
        ),
        th.Property(
            "suppress_duplicate_detection",
            th.BooleanType,
            title="Suppress duplicate detection",
            description="false turns Dataverse duplicate-detection rules on for every write "
            "(duplicates are rejected); unset sends nothing (detection off).",
        ),
        th.Property(
            "caller_object_id",
            th.StringType,
            title="Caller object id",
            description="Entra object id of a user to impersonate (CallerObjectId header).",
        ),
        th.Property(
            "timeout_seconds",
            th.NumberType(exclusive_minimum=0),
            default=120,
            title="Timeout",
            description="Seconds to wait for one HTTP answer.",
        ),
        th.Property(
            "progress_interval_seconds",
            th.NumberType(minimum=0),
            default=60,
            title="Progress interval",
            description="Seconds between progress lines per stream (0: none).",
        ),
    ).to_dict()

    def __init__(self, **kwargs: t.Any) -> None:
        self._settings: Settings | None = None
        self._lock = threading.Lock()
        self._client: DataverseClient | None = None
        self._writer: Writer | None = None
        self._metadata: MetadataCache | None = None
        self._raw_schemas: dict[str, dict] = {}
        self.current_raw: tuple[str, dict] | None = None
        self.unsettled = False
        self._writing = 0
        super().__init__(**kwargs)
        settings = self._settings or Settings(dynamics_url="", tenant_id="", client_id="")
        self.report = RunReport(
            self.logger, settings.progress_interval_seconds, dry_run=settings.dry_run
        )
        self.dead_letter = DeadLetterFile(settings.dead_letter_path)

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """Validate the schema and every cross-field rule, reporting all problems at once."""
        schema = self.config_jsonschema
        self.append_builtin_config(schema)
        problems = [_format_error(e) for e in JSONSchemaValidator(schema).iter_errors(self._config)]
        settings, more = parse_settings(self._config)
        problems += more
        self._settings = settings
        if problems and raise_errors:
            raise SettingsError(problems, schema)
        return problems

    @property
    def settings(self) -> Settings:
        """The validated settings.

        Raises:
            SettingsError: The config is invalid (only reachable with ``validate_config=False``).
        """
        if self._settings is None:
            _, problems = parse_settings(self.config)
            raise SettingsError(problems)
        return self._settings

    @property
    def client(self) -> DataverseClient:
        """The one Dataverse client of the run (built on first use)."""
        with self._lock:
            if self._client is None:
                self._client = self._build_client()
            return self._client

    @property
    def writer(self) -> Writer:
        """The one writer of the run."""
        client = self.client
        with self._lock:
            if self._writer is None:
                self._writer = Writer(client, max_concurrency=self.settings.max_concurrency)
            return self._writer

    @property
    def metadata(self) -> MetadataCache:
        """The one metadata cache of the run."""
        client = self.client
        with self._lock:
            if self._metadata is None:
                self._metadata = MetadataCache(client)
            return self._metadata

    def _build_client(self) -> DataverseClient:
        from target_dynamics.auth import (  # noqa: PLC0415 - built only when a stream needs it
            CLOUD_AUTHORITY_HOSTS,
            Credentials,
            TokenProvider,
        )
        from target_dynamics.client import DataverseClient, make_session  # noqa: PLC0415

        s = self.settings
        session = make_session(s.ca_bundle)
        tokens = TokenProvider(
            Credentials(
                tenant_id=s.tenant_id,
                client_id=s.client_id,
                client_secret=s.client_secret,
                certificate_private_key=s.certificate_private_key,
                certificate_thumbprint=s.certificate_thumbprint,
            ),
            authority_host=s.authority_host or CLOUD_AUTHORITY_HOSTS[s.cloud],
            resource_url=s.dynamics_url,
            session=session,
        )
        headers: dict[str, str] = {}
        if s.bypass_business_logic:
            headers["MSCRM.BypassBusinessLogicExecution"] = "CustomSync,CustomAsync"
        if s.suppress_duplicate_detection is not None:
            headers["MSCRM.SuppressDuplicateDetection"] = str(
                s.suppress_duplicate_detection
            ).lower()
        if s.caller_object_id:
            headers["CallerObjectId"] = s.caller_object_id
        return DataverseClient(
            dynamics_url=s.dynamics_url,
            api_version=s.api_version,
            tokens=tokens,
            session=session,
            timeout=s.timeout_seconds,
            default_headers=headers,
        )

    def raw_schema(self, stream: str) -> dict | None:
        """The SCHEMA message of ``stream`` as it arrived (before stream maps)."""
        return self._raw_schemas.get(stream)

    def _process_schema_message(self, message_dict: dict) -> None:
        if isinstance(message_dict.get("stream"), str):
            self._raw_schemas[message_dict["stream"]] = message_dict
        super()._process_schema_message(message_dict)

    def _process_record_message(self, message_dict: dict) -> None:
        # Sinks see mapped, parsed records; rejected ones are dead-lettered as they arrived.
        self.current_raw = (message_dict.get("stream", ""), message_dict.get("record", {}))
        super()._process_record_message(message_dict)
        self.report.tick()

    def _write_state_message(self, state: dict) -> None:
        if self.unsettled:
            self.logger.warning(
                "STATE withheld: some records could not be written, so the bookmark stays at "
                "the last state whose records all landed or were rejected"
            )
            return
        super()._write_state_message(state)

    @contextlib.contextmanager
    def writing(self) -> t.Iterator[None]:
        """Mark a batch being written (a signal arriving meanwhile must not checkpoint it)."""
        with self._lock:
            self._writing += 1
        try:
            yield
        finally:
            with self._lock:
                self._writing -= 1

    def _handle_termination(self, signum: int, frame: t.Any) -> None:
        """SIGTERM/SIGINT: write what was received, report, exit non-zero if anything is open.

        A batch interrupted mid-write cannot be known to have landed, so no STATE follows it
        (the SDK would otherwise checkpoint it, meltano/sdk#3775).
        """
        del frame
        self.logger.warning("Received signal %d: writing what was received, then stopping", signum)
        with self._lock:
            if self._writing:
                self.unsettled = True
        try:
            self.process_endofpipe()
        finally:
            if self.unsettled:
                self.logger.error("Stopped during a write: rerun from the last emitted STATE")
        sys.exit(1 if self.unsettled else 0)

    def process_endofpipe(self) -> None:
        """Drain every sink, write the summary, then fail if anything was lost or too many rejected.

        Raises:
            DataverseError: After all sinks drained, when records could not be written or the
                rejections exceed ``max_errors``.
        """
        try:
            super().process_endofpipe()
        finally:
            self.dead_letter.close()
            self.report.summary(self._client.stats if self._client else None)
        self.report.raise_if_failed(self.settings.max_errors, self.settings.dead_letter_path)


if __name__ == "__main__":
    TargetDynamics.cli()
