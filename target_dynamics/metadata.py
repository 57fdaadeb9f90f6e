"""Table metadata from ``EntityDefinitions``, fetched once per run and cached (§3).

One :class:`TableInfo` per table: columns with their derived-type facts (read through the casts of
§3.4, since ``$expand=Attributes`` returns only the common properties), active alternate keys, and
the navigation properties of many-to-one relationships (§3.5). :class:`MetadataCache` is shared by
every sink of a run and is thread-safe: parallel drains never fetch a table twice.
"""

from __future__ import annotations

import difflib
import threading
import typing as t
from dataclasses import dataclass, field

from target_dynamics.errors import MetadataError, WebApiError
from target_dynamics.webapi import NAME_PATTERN

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

_ATTRIBUTE_SELECT = (
    "LogicalName,AttributeType,AttributeTypeName,RequiredLevel,IsValidForCreate,"
    "IsValidForUpdate,IsPrimaryId,IsPrimaryName,AttributeOf,IsLogical"
)
_TABLE_QUERY = (
    "?$select=LogicalName,EntitySetName,PrimaryIdAttribute,PrimaryNameAttribute"
    f"&$expand=Attributes($select={_ATTRIBUTE_SELECT}),"
    "Keys($select=LogicalName,SchemaName,KeyAttributes,EntityKeyIndexStatus),"
    "ManyToOneRelationships($select=SchemaName,ReferencedEntity,ReferencedAttribute,"
    "ReferencingAttribute,ReferencingEntityNavigationPropertyName),"
    "ManyToManyRelationships($select=SchemaName,Entity1LogicalName,Entity2LogicalName,"
    "Entity1NavigationPropertyName,Entity2NavigationPropertyName)"
)
_OPTIONS = "$expand=OptionSet($select=Options),GlobalOptionSet($select=Options)"
_BOOLEAN_OPTIONS = "$expand=OptionSet($select=TrueOption,FalseOption)"
_CASTS: dict[str, tuple[str, str]] = {
    # AttributeTypeName -> (derived metadata type, query)
    "StringType": ("StringAttributeMetadata", "$select=LogicalName,MaxLength"),
    "MemoType": ("MemoAttributeMetadata", "$select=LogicalName,MaxLength"),
    "IntegerType": ("IntegerAttributeMetadata", "$select=LogicalName,MinValue,MaxValue"),
    "BigIntType": ("BigIntAttributeMetadata", "$select=LogicalName,MinValue,MaxValue"),
    "DecimalType": ("DecimalAttributeMetadata", "$select=LogicalName,MinValue,MaxValue,Precision"),
    "MoneyType": ("MoneyAttributeMetadata", "$select=LogicalName,MinValue,MaxValue,Precision"),
    "DoubleType": ("DoubleAttributeMetadata", "$select=LogicalName,MinValue,MaxValue,Precision"),
    "DateTimeType": ("DateTimeAttributeMetadata", "$select=LogicalName,Format,DateTimeBehavior"),
    "PicklistType": ("PicklistAttributeMetadata", f"$select=LogicalName&{_OPTIONS}"),
    "StateType": ("StateAttributeMetadata", f"$select=LogicalName&{_OPTIONS}"),
    "StatusType": ("StatusAttributeMetadata", f"$select=LogicalName&{_OPTIONS}"),
    "MultiSelectPicklistType": (
        "MultiSelectPicklistAttributeMetadata",
        f"$select=LogicalName&{_OPTIONS}",
    ),
    "BooleanType": ("BooleanAttributeMetadata", f"$select=LogicalName&{_BOOLEAN_OPTIONS}"),
    "LookupType": ("LookupAttributeMetadata", "$select=LogicalName,Targets"),
    "CustomerType": ("LookupAttributeMetadata", "$select=LogicalName,Targets"),
    "OwnerType": ("LookupAttributeMetadata", "$select=LogicalName,Targets"),
}
_BULK_PROBE = (
    "sdkmessagefilters?$select=sdkmessagefilterid&$expand=sdkmessageid($select=name)"
    "&$filter=(sdkmessageid/name%20eq%20'CreateMultiple'%20or%20sdkmessageid/name%20eq%20"
    "'UpdateMultiple')%20and%20primaryobjecttypecode%20eq%20'{table}'"
)


class ClientLike(t.Protocol):
    """The part of ``DataverseClient`` metadata needs."""

    def get_json(self, path: str) -> dict[str, t.Any]:
        """GET ``path`` (relative to the service root) and decode the JSON body."""
        ...


@dataclass(frozen=True)
class ColumnInfo:
    """What a writer must know about one column (§3.3, §3.4).

    Attributes:
        name: Logical name.
        type_name: ``AttributeTypeName.Value``, e.g. ``StringType``; the classification used
            everywhere (§3.3: multi-select, file and image have no own ``AttributeType``).
        valid_for_create: ``IsValidForCreate``.
        valid_for_update: ``IsValidForUpdate``.
        attribute_of: The column this one shadows (never written), or None.
        required_level: ``RequiredLevel.Value``.
        max_length: String/Memo ``MaxLength``.
        min_value: Numeric lower bound.
        max_value: Numeric upper bound.
        precision: Decimal places of Decimal/Money/Double.
        date_only: DateTime with ``DateOnly`` behaviour (``Edm.Date``, sent as ``YYYY-MM-DD``);
            the ``Format`` is display only (§4.6).
        options: Choice value -> label (Picklist, State, Status, MultiSelect, Boolean 1/0).
        targets: Tables a lookup can point to.
        default_status: State columns: state value -> its default status (``DefaultStatus``).
        status_state: Status columns: status value -> the state it belongs to (``State``).
        inactive_state: State columns: the state whose ``InvariantName`` is ``Inactive``, else
            the one other than 0 of a two-state table; None when there is none (§4.10).
    """

    name: str
    type_name: str
    valid_for_create: bool = True
    valid_for_update: bool = True
    attribute_of: str | None = None
    required_level: str = "None"
    max_length: int | None = None
    min_value: float | None = None
    max_value: float | None = None
    precision: int | None = None
    date_only: bool = False
    options: Mapping[int, str] = field(default_factory=dict)
    targets: tuple[str, ...] = ()
    default_status: Mapping[int, int] = field(default_factory=dict)
    status_state: Mapping[int, int] = field(default_factory=dict)
    inactive_state: int | None = None

    @property
    def is_lookup(self) -> bool:
        """Whether the column is written through ``@odata.bind``."""
        return self.type_name in {"LookupType", "CustomerType", "OwnerType"}


@dataclass(frozen=True)
class TableInfo:
    """One Dataverse table as the target sees it.

    Attributes:
        logical_name: e.g. ``contact``.
        entity_set: URL segment, e.g. ``contacts``.
        primary_id: Primary key column, e.g. ``contactid``.
        columns: Logical name -> column.
        keys: Active alternate keys: schema name -> key columns.
        inactive_keys: Keys not (yet) active: schema name -> (key columns, index status).
        lookups: Lookup column -> ``[(target table, navigation property)]``.
        supports_bulk: Whether CreateMultiple/UpdateMultiple are available (§6.5).
        primary_name: Primary name column, when the table has one.
        many_to_many: N:N relationship schema name -> (related table, this table's
            collection-valued navigation property to it).
    """

    logical_name: str
    entity_set: str
    primary_id: str
    columns: Mapping[str, ColumnInfo]
    keys: Mapping[str, tuple[str, ...]]
    lookups: Mapping[str, list[tuple[str, str]]]
    supports_bulk: bool = True
    primary_name: str | None = None
    many_to_many: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    inactive_keys: Mapping[str, tuple[tuple[str, ...], str]] = field(default_factory=dict)

    @property
    def deactivation(self) -> dict[str, int] | None:
        """``{statecode: inactive state, statuscode: its default status}``; None without state."""
        state = self.columns.get("statecode")
        if state is None or state.inactive_state is None:
            return None
        status = state.default_status.get(state.inactive_state)
        if status is None or "statuscode" not in self.columns:
            return None
        return {"statecode": state.inactive_state, "statuscode": status}

    def key_for(self, columns: Iterable[str]) -> str | None:
        """The schema name of the alternate key made of exactly ``columns``, if any."""
        wanted = frozenset(columns)
        return next((name for name, cols in self.keys.items() if frozenset(cols) == wanted), None)


def close_names(name: str, candidates: Iterable[str]) -> list[str]:
    """Up to five candidates that look like ``name`` (difflib), case-insensitively."""
    lowered = {c.lower(): c for c in candidates}
    return [lowered[m] for m in difflib.get_close_matches(name.lower(), list(lowered), 5, 0.6)]


def _label(option: Mapping[str, t.Any]) -> str:
    label = option.get("Label") or {}
    user = label.get("UserLocalizedLabel") or {}
    if user.get("Label"):
        return str(user["Label"])
    localized = label.get("LocalizedLabels") or []
    return str(localized[0]["Label"]) if localized else ""


def _options(item: Mapping[str, t.Any]) -> dict[int, str]:
    option_set = item.get("OptionSet") or item.get("GlobalOptionSet") or {}
    if "TrueOption" in option_set or "FalseOption" in option_set:
        return {
            int(opt["Value"]): _label(opt)
            for opt in (option_set.get("TrueOption"), option_set.get("FalseOption"))
            if opt
        }
    return {int(opt["Value"]): _label(opt) for opt in option_set.get("Options") or []}


def _state_facts(item: Mapping[str, t.Any]) -> tuple[dict[int, int], dict[int, int], int | None]:
    """``DefaultStatus`` of each state, ``State`` of each status, and the inactive state."""
    options = (item.get("OptionSet") or {}).get("Options") or []
    defaults = {int(o["Value"]): int(o["DefaultStatus"]) for o in options if "DefaultStatus" in o}
    states = {int(o["Value"]): int(o["State"]) for o in options if o.get("State") is not None}
    named = [int(o["Value"]) for o in options if o.get("InvariantName") == "Inactive"]
    others = [value for value in defaults if value != 0]
    inactive = named[0] if named else others[0] if len(defaults) == 2 and others else None
    return defaults, states, inactive


def _value(item: Mapping[str, t.Any], key: str) -> t.Any:
    found = item.get(key)
    return found.get("Value") if isinstance(found, dict) else found


def _type_name(attribute: Mapping[str, t.Any]) -> str:
    """``AttributeTypeName.Value``, else the ``AttributeType`` with ``Type`` appended (§3.3)."""
    return _value(attribute, "AttributeTypeName") or f"{attribute.get('AttributeType')}Type"


def parse_column(common: Mapping[str, t.Any], derived: Mapping[str, t.Any]) -> ColumnInfo:
    """Build a column from its common properties and its casted ones (may be empty)."""
    behavior = _value(derived, "DateTimeBehavior")
    defaults, states, inactive = _state_facts(derived)
    return ColumnInfo(
        name=common["LogicalName"],
        type_name=_type_name(common),
        valid_for_create=bool(common.get("IsValidForCreate", True)),
        valid_for_update=bool(common.get("IsValidForUpdate", True)),
        attribute_of=common.get("AttributeOf") or None,
        required_level=_value(common, "RequiredLevel") or "None",
        max_length=derived.get("MaxLength"),
        min_value=derived.get("MinValue"),
        max_value=derived.get("MaxValue"),
        precision=derived.get("Precision"),
        date_only=behavior == "DateOnly",
        options=_options(derived),
        targets=tuple(derived.get("Targets") or ()),
        default_status=defaults,
        status_state=states,
        inactive_state=inactive,
    )


def _required(item: Mapping[str, t.Any], key: str, table: str, where: str = "") -> t.Any:
    """``item[key]``; a missing or null value is a :class:`MetadataError` naming the table."""
    found = item.get(key)
    if found is None:
        msg = (
            f"The metadata of table '{table}' has no {key}{where} (§3.2, §3.6): the table cannot "
            "be written through the Web API as read. Check the table in the maker portal, or "
            "choose another with `entity` or `streams.<stream>.entity`."
        )
        raise MetadataError(msg)
    return found


def parse_table(
    definition: Mapping[str, t.Any],
    derived: Mapping[str, Mapping[str, t.Any]],
    *,
    supports_bulk: bool,
) -> TableInfo:
    """Build a :class:`TableInfo` from an ``EntityDefinitions`` body and the casted attributes.

    Raises:
        MetadataError: ``EntitySetName``, ``PrimaryIdAttribute`` or a key's ``KeyAttributes`` is
            missing or null (the table is named).
    """
    table = definition["LogicalName"]
    columns = {
        a["LogicalName"]: parse_column(a, derived.get(a["LogicalName"], {}))
        for a in definition.get("Attributes") or []
    }
    keys, inactive_keys = _parse_keys(definition, table)
    lookups = _parse_lookups(definition, columns)
    many_to_many = _parse_many_to_many(definition, table)
    return TableInfo(
        logical_name=table,
        entity_set=_required(definition, "EntitySetName", table),
        primary_id=_required(definition, "PrimaryIdAttribute", table),
        primary_name=definition.get("PrimaryNameAttribute"),
        columns=columns,
        keys=keys,
        lookups=lookups,
        supports_bulk=supports_bulk,
        many_to_many=many_to_many,
        inactive_keys=inactive_keys,
    )


def _parse_keys(
    definition: Mapping[str, t.Any], table: str
) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[tuple[str, ...], str]]]:
    """The active alternate keys (name -> columns) and the others (name -> (columns, status))."""
    keys: dict[str, tuple[str, ...]] = {}
    inactive_keys: dict[str, tuple[tuple[str, ...], str]] = {}
    for k in definition.get("Keys") or []:
        name, status = k.get("SchemaName") or k.get("LogicalName"), k.get("EntityKeyIndexStatus")
        key_columns = tuple(_required(k, "KeyAttributes", table, f" on key '{name}'"))
        if (status or "Active") == "Active":
            keys[name] = key_columns
        else:
            inactive_keys[name] = (key_columns, status)
    return keys, inactive_keys


def _parse_lookups(
    definition: Mapping[str, t.Any], columns: Mapping[str, ColumnInfo]
) -> dict[str, list[tuple[str, str]]]:
    """Lookup column -> ``(target table, navigation)`` for each of its many-to-one relationships."""
    lookups: dict[str, list[tuple[str, str]]] = {}
    for rel in definition.get("ManyToOneRelationships") or []:
        nav = rel.get("ReferencingEntityNavigationPropertyName")
        if nav:
            pairs = lookups.setdefault(rel["ReferencingAttribute"], [])
            pairs.append((rel["ReferencedEntity"], nav))
    for name, column in columns.items():
        pairs = lookups.get(name, [])
        _bind_owner_targets(pairs, column.targets)
        if pairs:
            lookups[name] = [(table, nav) for table, nav in pairs if table != "owner"]
    return lookups


def _bind_owner_targets(pairs: list[tuple[str, str]], targets: Iterable[str]) -> None:
    """Owner lookups relate to the abstract "owner" table; each target binds through it."""
    owner_nav = next((nav for table, nav in pairs if table == "owner"), None)
    known = {table for table, _ in pairs}
    pairs.extend((target, owner_nav) for target in targets if owner_nav and target not in known)


def _parse_many_to_many(definition: Mapping[str, t.Any], table: str) -> dict[str, tuple[str, str]]:
    """Relationship schema name -> ``(other table, navigation from this table)``."""
    many_to_many: dict[str, tuple[str, str]] = {}
    for rel in definition.get("ManyToManyRelationships") or []:
        first = rel.get("Entity1LogicalName") == table
        side, other = ("1", "2") if first else ("2", "1")
        navigation = rel.get(f"Entity{side}NavigationPropertyName")
        if navigation:
            many_to_many[rel["SchemaName"]] = (rel[f"Entity{other}LogicalName"], navigation)
    return many_to_many


class MetadataCache:
    """Tables by logical name or entity set name, each fetched once per run (thread-safe)."""

    def __init__(self, client: ClientLike) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._tables: dict[str, TableInfo] = {}
        self._table_locks: dict[str, threading.Lock] = {}
        self._names: dict[str, str] | None = None  # entity set or logical name -> logical name

    def table(self, name: str) -> TableInfo:
        """The table whose logical name or entity set name is ``name``.

        Raises:
            MetadataError: No such table; the message lists close names.
        """
        logical = self._resolve(name)
        with self._lock:
            lock = self._table_locks.setdefault(logical, threading.Lock())
        with lock:
            if logical not in self._tables:
                self._tables[logical] = self._fetch(logical)
            return self._tables[logical]

    def _all_names(self) -> dict[str, str]:
        with self._lock:
            if self._names is None:
                body = self._client.get_json("EntityDefinitions?$select=LogicalName,EntitySetName")
                names: dict[str, str] = {}
                for item in body.get("value", []):
                    names[item["LogicalName"]] = item["LogicalName"]
                    if item.get("EntitySetName"):
                        names.setdefault(item["EntitySetName"], item["LogicalName"])
                self._names = names
            return self._names

    def _resolve(self, name: str) -> str:
        with self._lock:
            if name in self._tables:
                return name
        if NAME_PATTERN.match(name):
            names = self._all_names()
            if name in names:
                return names[name]
            folded = {k.lower(): v for k, v in names.items()}
            if name.lower() in folded:
                return folded[name.lower()]
        else:
            names = self._all_names()
        hint = close_names(name, names)
        fix = f" Did you mean: {', '.join(hint)}?" if hint else ""
        msg = (
            f"Table '{name}' not found in Dataverse (neither a logical name nor an entity set "
            f"name).{fix} Set `entity` or `streams.<stream>.entity` to an existing table."
        )
        raise MetadataError(msg)

    def _fetch(self, logical: str) -> TableInfo:
        base = f"EntityDefinitions(LogicalName='{logical}')"
        try:
            definition = self._client.get_json(base + _TABLE_QUERY)
        except WebApiError as exc:
            msg = f"Could not read the metadata of table '{logical}': {exc}"
            raise MetadataError(msg) from exc
        wanted = {_type_name(a) for a in definition.get("Attributes") or []}
        derived: dict[str, dict[str, t.Any]] = {}
        for cast, query in sorted({_CASTS[n] for n in wanted if n in _CASTS}):
            body = self._client.get_json(f"{base}/Attributes/Microsoft.Dynamics.CRM.{cast}?{query}")
            for item in body.get("value", []):
                derived.setdefault(item["LogicalName"], {}).update(item)
        return parse_table(definition, derived, supports_bulk=self._probe_bulk(logical))

    def _probe_bulk(self, logical: str) -> bool:
        try:
            body = self._client.get_json(_BULK_PROBE.format(table=logical))
        except WebApiError:
            return False
        found = {(item.get("sdkmessageid") or {}).get("name") for item in body.get("value", [])}
        return {"CreateMultiple", "UpdateMultiple"} <= found
