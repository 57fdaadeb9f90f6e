"""The settings, declared once: name, type, default, title, description, secret flag, choices.

The target's ``config_jsonschema`` (what ``--about``, the README table and Meltano show) is
generated from these declarations, and :mod:`~target_dynamics.settings` reads its defaults and
known keys from the same ones.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from singer_sdk import typing as th

from target_dynamics.clouds import CLOUDS
from target_dynamics.plans import Operation

BATCH_SIZE_ROWS = 1000
"""Records a sink buffers before writing them, unless ``batch_size_rows`` says otherwise."""

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

LOAD_METHODS = {"upsert": Operation.UPSERT, "append-only": Operation.CREATE}
"""Singer load method -> the operation it means (``load_method``)."""
DEFAULT_OPERATION = LOAD_METHODS["upsert"]
"""The operation when neither ``operation`` nor ``load_method`` is set.

Not a schema default: the SDK writes schema defaults into the config, and an ``operation``
filled in that way would contradict ``load_method: append-only``.
"""
OPERATIONS = tuple(op.value for op in Operation)
LIST_MODES = ("add", "sync")
ID_FIELD_TYPE = th.CustomType(
    {"type": ["string", "array"], "items": {"type": "string"}, "minItems": 1, "minLength": 1}
)
"""One column name, or a list of them (a composite key)."""


@dataclass(frozen=True)
class Setting:
    """One setting: everything the schema says about it, written once."""

    name: str
    kind: th.JSONTypeHelper[t.Any] | type[th.JSONTypeHelper[t.Any]]
    description: str
    title: str | None = None
    default: t.Any = None
    """The value an unset (null or empty) setting takes; ``None``: no default in the schema."""
    required: bool = False
    secret: bool = False
    allowed: tuple[str, ...] = ()

    def read(self, config: Mapping[str, t.Any]) -> t.Any:
        """This setting's value in ``config``, else its default (numbers as ``float``)."""
        value = config.get(self.name)
        if value is None or value == "":
            value = self.default
        number = "number" in self.to_property().type_dict["type"]
        return float(value) if number and value is not None else value

    def to_property(self) -> th.Property[t.Any]:
        """The JSON-Schema property of this setting."""
        return th.Property(
            self.name,
            self.kind,
            required=self.required,
            default=self.default,
            description=self.description,
            secret=self.secret,
            allowed_values=list(self.allowed) or None,
            title=self.title,
        )


def object_of(settings: Iterable[Setting], **kwargs: t.Any) -> th.ObjectType:
    """An object type whose properties are ``settings``."""
    return th.ObjectType(*(s.to_property() for s in settings), **kwargs)


def defaults(settings: Iterable[Setting]) -> Mapping[str, t.Any]:
    """Each setting's declared default, by name (settings without one are left out)."""
    return {s.name: s.default for s in settings if s.default is not None}


LOOKUP_SETTINGS = (
    Setting("table", th.StringType, "Target table."),
    Setting("key", ID_FIELD_TYPE, "Its alternate-key column(s)."),
    Setting("table_field", th.StringType, "Record field naming the target table per record."),
)
"""``lookups.<column>``: how one lookup column binds."""

STREAM_SETTINGS = (
    Setting("entity", th.StringType, "Table of this stream."),
    Setting("operation", th.StringType, "Operation."),
    Setting("id_field", ID_FIELD_TYPE, "ID field(s)."),
    Setting(
        "columns",
        th.ObjectType(additional_properties=th.StringType),
        'Record field -> column, e.g. {"email": "emailaddress1"}; when set, only the fields it '
        'names are sent. A dotted key ("name.first") maps a property of an object field.',
    ),
    Setting(
        "lookups",
        th.ObjectType(additional_properties=th.ObjectType()),
        "Lookup bindings of this stream (as `lookups`).",
    ),
    Setting(
        "marketing_list",
        th.StringType,
        "Marketing list of this stream (as `marketing_list`).",
    ),
    Setting("marketing_list_mode", th.StringType, "add or sync (as `marketing_list_mode`)."),
    Setting(
        "marketing_list_field",
        th.StringType,
        "Record field naming the marketing list (or a list of lists) each record's row joins; "
        "lists are found or created like `marketing_list`.",
    ),
    Setting(
        "associations",
        th.ObjectType(additional_properties=th.ObjectType()),
        'Record field -> N:N relationship it fills, e.g. {"leads": {"relationship": '
        '"contactleads_association", "key": "emailaddress1", "mode": "add"}}: the field holds one '
        "value or a list, GUIDs of the related table or values of its `key` column; with mode "
        "sync, associations the record does not name are removed.",
    ),
    Setting(
        "json_text_fields",
        th.ArrayType(th.StringType),
        "Record fields (or dotted paths) whose objects and arrays are written to their text or "
        'memo column as JSON text, e.g. ["address"]; without it an object into a text column is '
        "an error.",
    ),
    Setting(
        "operation_field",
        th.StringType,
        "Record field naming each record's operation (off unless set): upsert, create, update, "
        "delete or deactivate, any case; insert means upsert; null or empty means the stream's "
        "operation; any other value rejects the record. _sdc_deleted_at, when set, still wins.",
    ),
    Setting(
        "mirror_scope",
        th.StringType,
        "OData $filter naming the rows this stream owns, e.g. \"new_source eq 'newsletter'\": at "
        "the ACTIVATE_VERSION that ends a full-table version, the rows in scope it did not send "
        "are deactivated (deleted with hard_delete). Without it ACTIVATE_VERSION is ignored.",
    ),
    Setting(
        "inactive_status",
        th.CustomType({"type": ["integer", "string"]}),
        "Status (value or label) that deactivates this stream's rows, with the state it belongs "
        'to, e.g. "No Longer Interested" for leads (a table with several inactive states needs '
        "it); default: the table's inactive state with its default status.",
    ),
)
"""``streams.<stream>``: what one stream sets over the top-level settings."""
STREAM_KEYS = tuple(s.name for s in STREAM_SETTINGS)
# The published schema lists marketing_list_field last (it came last); messages and the docs
# list it beside its siblings.
_STREAM_SCHEMA_ORDER = sorted(STREAM_SETTINGS, key=lambda s: s.name == "marketing_list_field")

APP_USER_SETTINGS = (
    Setting("client_id", th.StringType(nullable=False), "", required=True),
    Setting("client_secret", th.StringType, "", secret=True),
    Setting("certificate_private_key", th.StringType, "", secret=True),
    Setting("certificate_thumbprint", th.StringType, ""),
)
"""``app_users[n]``: one more application user."""

STATE_INTERVAL_PER_USER = 10_000
"""Default ``state_interval_records`` per application user: rows enough to keep its 52 request
slots busy between two STATE messages (§7.1)."""

SETTINGS = (
    Setting(
        "dynamics_url",
        th.StringType(nullable=False),
        "Environment root URL, e.g. `https://contoso.crm.dynamics.com` (https).",
        "Dynamics URL",
        required=True,
    ),
    Setting(
        "tenant_id",
        th.StringType(nullable=False),
        "Microsoft Entra (Azure AD) directory id of the app registration.",
        "Tenant ID",
        required=True,
    ),
    Setting(
        "client_id",
        th.StringType(nullable=False),
        "Application (client) id of the app registration; an application user with write "
        "privileges must exist for it in the environment.",
        "Client ID",
        required=True,
    ),
    Setting(
        "client_secret",
        th.StringType,
        "Client secret of the app registration. Set this, or the certificate.",
        "Client secret",
        secret=True,
    ),
    Setting(
        "certificate_private_key",
        th.StringType,
        "PEM private key of a certificate uploaded to the app registration (certificate "
        "authentication, instead of client_secret).",
        "Certificate private key",
        secret=True,
    ),
    Setting(
        "certificate_thumbprint",
        th.StringType,
        "SHA-1 thumbprint (40 hex digits) of that certificate.",
        "Certificate thumbprint",
    ),
    Setting(
        "cloud",
        th.StringType,
        "National cloud whose login host issues tokens: public, gcc, gcc_high, dod or china. "
        "Unset: inferred from dynamics_url's domain (e.g. `*.crm.microsoftdynamics.us` is "
        "gcc_high), else public.",
        "Cloud",
        allowed=CLOUDS,
    ),
    Setting(
        "authority_host",
        th.StringType,
        "Explicit https login host instead of cloud's, e.g. `https://login.microsoftonline.us`, "
        "or the emulator's to rehearse any cloud.",
        "Authority host",
    ),
    Setting(
        "api_version", th.StringType, "Web API version (`9.2` or `v9.2`).", "API version", "9.2"
    ),
    Setting(
        "ca_bundle",
        th.StringType,
        "PEM file of extra certificate authorities to trust (added to the system ones; TLS is "
        "always verified).",
        "CA bundle",
    ),
    Setting(
        "entity",
        th.StringType,
        "Table (logical name or entity set name) every stream writes to, unless `streams` says "
        "otherwise. Without it a stream writes to the table named like it.",
        "Entity",
    ),
    Setting(
        "operation",
        th.StringType,
        f"{DEFAULT_OPERATION} (default), create, update (existing rows only; others are "
        "rejected), delete, or deactivate (the table's inactive state with its default status; "
        "the row stays). Without it, load_method decides: append-only = create.",
        "Operation",
        allowed=OPERATIONS,
    ),
    Setting(
        "id_field",
        ID_FIELD_TYPE,
        "Column (or list, for a composite alternate key) naming the row: the primary id column, "
        "the columns of an alternate key, or any other column (rows matched by a query). "
        "Default: the stream's key_properties. A list may also be given as JSON text, e.g. "
        'TARGET_DYNAMICS_ID_FIELD=\'["firstname", "lastname"]\'.',
        "ID field",
    ),
    Setting(
        "streams",
        th.ObjectType(additional_properties=object_of(_STREAM_SCHEMA_ORDER)),
        f"Per-stream settings by stream name (after stream maps): {', '.join(STREAM_KEYS)}.",
        "Streams",
    ),
    Setting(
        "marketing_list",
        th.StringType,
        "Name or GUID of a static marketing list: every row that lands joins it (rejected rows "
        "never do). A name no list has creates the list, for the stream's table (contact, lead "
        "or account).",
        "Marketing list",
    ),
    Setting(
        "marketing_list_mode",
        th.StringType,
        "add (default): rows join the list. sync: also, after a complete run (end of input, "
        "nothing lost, rejections within max_errors), members that were not sent leave the "
        "list; only for streams that send the whole list every run.",
        "Marketing list mode",
        "add",
        allowed=LIST_MODES,
    ),
    Setting(
        "lookups",
        th.ObjectType(additional_properties=object_of(LOOKUP_SETTINGS)),
        'Lookup column -> binding, e.g. {"parentcustomerid": {"table": "account", "key": '
        '"accountnumber"}}. Values are GUIDs unless `key` is set; an object value {"table": '
        '..., "id": ...} picks the table per record.',
        "Lookups",
    ),
    Setting(
        "load_method",
        th.StringType,
        "Singer load method: upsert (operation upsert) or append-only (operation create). Used "
        "when operation is not set; contradicting it is an error. overwrite is not supported "
        "(tables are never truncated).",
        "Load method",
        allowed=tuple(LOAD_METHODS),
    ),
    Setting(
        "batch_size_rows",
        th.IntegerType(minimum=1),
        "Records buffered per stream before they are written.",
        "Batch size",
        BATCH_SIZE_ROWS,
    ),
    Setting(
        "max_concurrency",
        th.IntegerType(minimum=1, maximum=52),
        "Most requests in flight at once per application user (at most 52, Dataverse's limit). "
        "Below it the target starts at the service's x-ms-dop-hint and goes up or down with the "
        "remaining budgets the service reports.",
        "Maximum concurrency",
    ),
    Setting(
        "app_users",
        th.ArrayType(object_of(APP_USER_SETTINGS, additional_properties=False)),
        "Further app registrations of the same tenant, each an application user of the "
        "environment with the same role: {client_id, client_secret} or {client_id, "
        "certificate_private_key, certificate_thumbprint}. Writes are spread over all users; "
        "Dataverse's limits apply per user, so each adds a whole budget.",
        "More application users",
        secret=True,
    ),
    Setting(
        "extra_fields",
        th.StringType,
        "Record fields the table cannot take: drop (one warning naming them) or error (fail at "
        "SCHEMA).",
        "Extra fields",
        "drop",
        allowed=("drop", "error"),
    ),
    Setting(
        "dead_letter_path",
        th.StringType,
        "JSONL file that receives rejected records as replayable Singer messages (SCHEMA, then "
        "RECORDs with a `_dead_letter` field giving the error).",
        "Dead-letter file",
    ),
    Setting(
        "max_errors",
        th.IntegerType(minimum=0),
        "Rejected records tolerated; more fail the run (after everything else was written).",
        "Maximum rejections",
        0,
    ),
    Setting(
        "hard_delete",
        th.BooleanType,
        "Records deleted at the source (`_sdc_deleted_at` set) are deleted when true; when "
        "false (default) they are deactivated (the table's inactive state and its default "
        "status), so the row stays. A table without state needs true.",
        "Hard delete",
        default=False,
    ),
    Setting(
        "dry_run",
        th.BooleanType,
        "Read metadata, validate and convert every record, report; write nothing.",
        "Dry run",
        default=False,
    ),
    Setting(
        "bypass_business_logic",
        th.BooleanType,
        "Skip custom synchronous and asynchronous plug-ins and workflows (needs the "
        "prvBypassCustomBusinessLogic privilege).",
        "Bypass business logic",
        default=False,
    ),
    Setting(
        "suppress_duplicate_detection",
        th.BooleanType,
        "false turns Dataverse duplicate-detection rules on for every write (duplicates are "
        "rejected); unset sends nothing (detection off).",
        "Suppress duplicate detection",
    ),
    Setting(
        "caller_object_id",
        th.StringType,
        "Entra object id of a user to impersonate (CallerObjectId header).",
        "Caller object id",
    ),
    Setting(
        "timeout_seconds",
        th.NumberType(exclusive_minimum=0),
        "Seconds to wait for one HTTP answer. A write that times out is sent again only 135 s "
        "after it was sent (Dataverse's 2-minute limit on an operation, plus a margin), so it "
        "can never land after a newer write of the same row.",
        "Timeout",
        120,
    ),
    Setting(
        "outage_budget_seconds",
        th.NumberType(exclusive_minimum=0),
        "Seconds the service may give no usable answer (no connection, timeouts, 408, 429, 502, "
        "503, 504 on every request), or the token endpoint may keep failing, before the run "
        "stops; Retry-After waits count. Rerunning resumes from the last emitted STATE.",
        "Outage budget",
        300,
    ),
    Setting(
        "progress_interval_seconds",
        th.NumberType(minimum=0),
        "Seconds between progress lines per stream (0: none).",
        "Progress interval",
        60,
    ),
    Setting(
        "state_interval_records",
        th.IntegerType(minimum=1),
        "A crashed run resends at most this many records: the tap's latest STATE is emitted at "
        "least every quarter of it, once every record before it landed or was rejected, and no "
        "more records are written ahead of the last emitted STATE. Default: "
        f"{STATE_INTERVAL_PER_USER:,} per application user (fewer leaves request slots idle).",
        "STATE interval (records)",
    ),
    Setting(
        "state_interval_seconds",
        th.NumberType(minimum=0),
        "Also emit the latest STATE (after writing what came before it) when this many seconds "
        "passed since the last one (0: by record count only).",
        "STATE interval (seconds)",
        60,
    ),
    Setting(
        "keyless_create_ids",
        th.StringType,
        "Primary ids of creates without an ID field: content (derived from the stream and the "
        "record's fields, so a rerun or a dead-letter replay never duplicates; identical "
        "records are one row) or random (every record is a new row, even identical ones; a "
        "rerun after a crash may duplicate).",
        "Keyless create ids",
        "content",
        allowed=("content", "random"),
    ),
    Setting(
        "multiple_matches",
        th.StringType,
        "When an id_field that is not a key matches several rows: reject the record (naming the "
        "count) or apply the operation to all of them (e.g. unsubscribe every lead with the "
        "address).",
        "Multiple matches",
        "reject",
        allowed=("reject", "all"),
    ),
)
"""Every setting of the target, in the order ``--about`` lists them."""

DEFAULTS = defaults(SETTINGS)
"""Each top-level setting's default, by name."""
SECRETS = frozenset(s.name for s in SETTINGS if s.secret)
"""Settings whose values never appear in a message (``app_users`` holds credentials)."""


def config_schema() -> dict[str, t.Any]:
    """The target's ``config_jsonschema``, generated from :data:`SETTINGS`."""
    return th.PropertiesList(*(s.to_property() for s in SETTINGS)).to_dict()
