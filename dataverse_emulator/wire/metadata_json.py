"""Catalog objects as Dataverse metadata JSON (EntityMetadata, AttributeMetadata, ... §3.2-§3.6).

Pure functions: each returns the full JSON object of one metadata item; ``wire.metadata`` applies
``$select`` / ``$expand`` and adds ``@odata.context``. Shapes follow the real responses quoted in
the reference (§3.4, §3.5, §3.8). ``Option`` sets and navigation collections are rendered only
on request (:func:`option_set`, the relationship functions).
"""

from __future__ import annotations

import typing as t
import uuid

from dataverse_emulator.state import values
from dataverse_emulator.state.catalog import Option
from dataverse_emulator.state.privileges import privilege_id, table_privileges

if t.TYPE_CHECKING:
    from dataverse_emulator.state.catalog import (
        AlternateKey,
        Column,
        ManyToMany,
        Relationship,
        Table,
    )

NS = "Microsoft.Dynamics.CRM."
LANGUAGE = 1033
_LABEL_NAMESPACE = uuid.UUID("9a3e1c77-4b2d-5e8f-a061-2d7c9b4e1f35")

DERIVED_TYPES: dict[str, str] = {
    "String": "StringAttributeMetadata",
    "Memo": "MemoAttributeMetadata",
    "Integer": "IntegerAttributeMetadata",
    "BigInt": "BigIntAttributeMetadata",
    "Decimal": "DecimalAttributeMetadata",
    "Double": "DoubleAttributeMetadata",
    "Money": "MoneyAttributeMetadata",
    "DateTime": "DateTimeAttributeMetadata",
    "Boolean": "BooleanAttributeMetadata",
    "Picklist": "PicklistAttributeMetadata",
    "State": "StateAttributeMetadata",
    "Status": "StatusAttributeMetadata",
    "MultiSelectPicklist": "MultiSelectPicklistAttributeMetadata",
    "Lookup": "LookupAttributeMetadata",
    "Customer": "LookupAttributeMetadata",
    "Owner": "LookupAttributeMetadata",
    "PartyList": "LookupAttributeMetadata",
    "Uniqueidentifier": "UniqueIdentifierAttributeMetadata",
    "EntityName": "EntityNameAttributeMetadata",
    "Image": "ImageAttributeMetadata",
}
"""The derived AttributeMetadata type (cast name) of each column type."""

LISTED_TYPES = {**DERIVED_TYPES, "Uniqueidentifier": "AttributeMetadata"}
"""``@odata.type`` in attribute lists; Uniqueidentifier columns as in §3.8 (§11 #11)."""

OPTION_SET_TYPES = frozenset({"Picklist", "State", "Status", "MultiSelectPicklist", "Boolean"})
VIRTUAL_TYPES = frozenset({"MultiSelectPicklist", "Image"})
"""Types reported with AttributeType ``Virtual`` (§11 #10)."""


def label(text: str | None) -> dict[str, t.Any]:
    """A Label: ``{"LocalizedLabels": [...], "UserLocalizedLabel": {...}}`` (empty when None)."""
    if text is None:
        return {"LocalizedLabels": [], "UserLocalizedLabel": None}
    localized = {
        "Label": text,
        "LanguageCode": LANGUAGE,
        "IsManaged": True,
        "MetadataId": str(uuid.uuid5(_LABEL_NAMESPACE, text)),
        "HasChanged": None,
    }
    return {"LocalizedLabels": [localized], "UserLocalizedLabel": dict(localized)}


def managed(name: str, *, value: t.Any, can_be_changed: bool = True) -> dict[str, t.Any]:
    """A managed property: ``{"Value", "CanBeChanged", "ManagedPropertyLogicalName"}``."""
    return {"Value": value, "CanBeChanged": can_be_changed, "ManagedPropertyLogicalName": name}


def entity(table: Table) -> dict[str, t.Any]:
    """EntityMetadata without its navigation collections (§3.2)."""
    custom = table.is_custom
    return {
        "MetadataId": table.metadata_id,
        "LogicalName": table.logical_name,
        "SchemaName": table.schema_name,
        "EntitySetName": table.entity_set_name,
        "LogicalCollectionName": table.logical_collection_name,
        "CollectionSchemaName": table.collection_schema_name,
        "PrimaryIdAttribute": table.primary_id,
        "PrimaryNameAttribute": table.primary_name,
        "PrimaryImageAttribute": table.primary_image,
        "ObjectTypeCode": table.object_type_code,
        "OwnershipType": table.ownership_type,
        "TableType": table.table_type,
        "IsActivity": table.is_activity,
        "IsActivityParty": False,
        "IsCustomEntity": custom,
        "IsManaged": not custom,
        "IsIntersect": False,
        "IsLogicalEntity": False,
        "IsPrivate": False,
        "IsBPFEntity": False,
        "IsValidForAdvancedFind": True,
        "IsOptimisticConcurrencyEnabled": True,
        "IsStateModelAware": True,
        "ChangeTrackingEnabled": False,
        "CanChangeTrackingBeEnabled": managed("canchangetrackingbeenabled", value=True),
        "IsAuditEnabled": managed("canmodifyauditsettings", value=False),
        "IsCustomizable": managed("iscustomizable", value=True),
        "IsRenameable": managed("isrenameable", value=custom, can_be_changed=custom),
        "IsValidForQueue": managed("canmodifyqueuesettings", value=False),
        "CanCreateAttributes": managed("cancreateattributes", value=True, can_be_changed=False),
        "CanCreateForms": managed("cancreateforms", value=True, can_be_changed=False),
        "CanCreateViews": managed("cancreateviews", value=True, can_be_changed=False),
        "IntroducedVersion": "1.0",
        "DisplayName": label(table.display_name),
        "DisplayCollectionName": label(table.display_collection_name),
        "Description": label(None),
        "Privileges": privileges(table),
        "HasChanged": None,
    }


def privileges(table: Table) -> list[dict[str, t.Any]]:
    """``EntityMetadata.Privileges``: one SecurityPrivilegeMetadata per access right.

    Microsoft Learn, "SecurityPrivilegeMetadata ComplexType"; an organization-owned table's
    privileges can only be Global.
    """
    user_owned = table.ownership_type == "UserOwned"
    return [
        {
            "CanBeBasic": user_owned,
            "CanBeDeep": user_owned,
            "CanBeGlobal": True,
            "CanBeLocal": user_owned,
            "CanBeEntityReference": False,
            "CanBeParentEntityReference": False,
            "CanBeRecordFilter": False,
            "Name": name,
            "PrivilegeId": privilege_id(name),
            "PrivilegeType": kind,
        }
        for kind, name in table_privileges(table)
    ]


def attribute(table: Table, column: Column, number: int) -> dict[str, t.Any]:
    """The common AttributeMetadata properties of a column (§3.3)."""
    changeable = (
        column.required_level != "SystemRequired"
        and (column.is_valid_for_create or column.is_valid_for_update)
        and column.attribute_of is None
    )
    kind = column.type
    return {
        "MetadataId": column.metadata_id,
        "LogicalName": column.logical_name,
        "SchemaName": column.schema_name,
        "EntityLogicalName": table.logical_name,
        "AttributeType": "Virtual" if kind in VIRTUAL_TYPES else kind,
        "AttributeTypeName": {"Value": f"{kind}Type"},
        "AttributeOf": column.attribute_of,
        "IsLogical": column.is_logical,
        "IsPrimaryId": column.is_primary_id,
        "IsPrimaryName": column.is_primary_name,
        "IsValidForCreate": column.is_valid_for_create,
        "IsValidForUpdate": column.is_valid_for_update,
        "IsValidForRead": column.is_valid_for_read,
        "IsValidODataAttribute": values.is_property(column),
        "IsValidForForm": column.attribute_of is None,
        "IsValidForGrid": column.attribute_of is None,
        "IsValidForAdvancedFind": managed("canmodifysearchsettings", value=True),
        "IsCustomAttribute": column.is_custom,
        "IsManaged": not column.is_custom,
        "IsSecured": False,
        "IsRetrievable": True,
        "IsFilterable": True,
        "IsSearchable": column.attribute_of is None,
        "IsRequiredForForm": False,
        "IsDataSourceSecret": False,
        "CanBeSecuredForCreate": False,
        "CanBeSecuredForRead": False,
        "CanBeSecuredForUpdate": False,
        "ColumnNumber": number,
        "SourceType": 0,
        "IntroducedVersion": "1.0",
        "RequiredLevel": managed(
            "canmodifyrequirementlevelsettings",
            value=column.required_level,
            can_be_changed=changeable,
        ),
        "DisplayName": label(column.display_name),
        "Description": label(None),
        "IsAuditEnabled": managed("canmodifyauditsettings", value=True),
        "IsCustomizable": managed("iscustomizable", value=True),
        "IsRenameable": managed("isrenameable", value=True),
        "IsGlobalFilterEnabled": managed("canmodifyglobalfiltersettings", value=False),
        "IsSortableEnabled": managed("canmodifyissortablesettings", value=False),
        "CanModifyAdditionalSettings": managed("canmodifyadditionalsettings", value=True),
        "HasChanged": None,
    }


def attribute_specific(column: Column) -> dict[str, t.Any]:
    """The properties of the derived type, visible only through a cast (§3.4)."""
    kind = column.type
    maker = _SPECIFIC.get(kind)
    return maker(column) if maker else {}


def _string(column: Column) -> dict[str, t.Any]:
    format_name = column.format_name or "Text"
    return {
        "MaxLength": column.max_length,
        "DatabaseLength": (column.max_length or 0) * 2,
        "Format": format_name if format_name in {"Text", "Email", "Url", "Phone"} else "Text",
        "FormatName": {"Value": format_name},
        "ImeMode": "Auto",
        "IsLocalizable": False,
        "YomiOf": None,
    }


def _memo(column: Column) -> dict[str, t.Any]:
    return {
        "MaxLength": column.max_length,
        "Format": column.format or "TextArea",
        "FormatName": {"Value": column.format or "TextArea"},
        "ImeMode": "Auto",
        "IsLocalizable": False,
    }


def _number(column: Column) -> dict[str, t.Any]:
    out: dict[str, t.Any] = {"MinValue": column.min_value, "MaxValue": column.max_value}
    if column.type == "Integer":
        out["Format"] = column.format or "None"
    if column.type in {"Decimal", "Double", "Money"}:
        out["Precision"] = column.precision
        out["ImeMode"] = "Auto"
    if column.type == "Money":
        out["PrecisionSource"] = column.precision_source
        out["IsBaseCurrency"] = column.logical_name.endswith("_base")
        out["CalculationOf"] = None
    return out


def _datetime(column: Column) -> dict[str, t.Any]:
    behavior = column.datetime_behavior or "UserLocal"
    return {
        "Format": column.format or "DateAndTime",
        "DateTimeBehavior": {"Value": behavior},
        "CanChangeDateTimeBehavior": managed(
            "canchangedatetimebehavior", value=behavior == "UserLocal", can_be_changed=False
        ),
        "ImeMode": "Auto",
        "MinSupportedValue": "1753-01-01T00:00:00Z",
        "MaxSupportedValue": "9999-12-30T23:59:59Z",
    }


def _boolean(column: Column) -> dict[str, t.Any]:
    return {"DefaultValue": bool(column.default_value)}


def _choice(column: Column) -> dict[str, t.Any]:
    out: dict[str, t.Any] = {}
    if column.type in {"Picklist", "MultiSelectPicklist"}:
        out["DefaultFormValue"] = -1
    if column.type == "Status":
        out["DefaultFormValue"] = None
    return out


def _lookup(column: Column) -> dict[str, t.Any]:
    return {"Targets": list(column.targets), "Format": "None"}


def _image(column: Column) -> dict[str, t.Any]:
    return {
        "IsPrimaryImage": column.logical_name == "entityimage",
        "MaxHeight": 144,
        "MaxWidth": 144,
        "MaxSizeInKB": 10240,
        "CanStoreFullImage": True,
    }


_SPECIFIC: dict[str, t.Callable[[Column], dict[str, t.Any]]] = {
    "String": _string,
    "Memo": _memo,
    "Integer": _number,
    "BigInt": _number,
    "Decimal": _number,
    "Double": _number,
    "Money": _number,
    "DateTime": _datetime,
    "Boolean": _boolean,
    "Picklist": _choice,
    "State": _choice,
    "Status": _choice,
    "MultiSelectPicklist": _choice,
    "Lookup": _lookup,
    "Customer": _lookup,
    "Owner": _lookup,
    "PartyList": _lookup,
    "Image": _image,
}


def option(item: Option, kind: str) -> dict[str, t.Any]:
    """One OptionMetadata (§3.4); State / Status options carry their derived fields."""
    out: dict[str, t.Any] = {}
    if kind == "State":
        out["@odata.type"] = f"#{NS}StateOptionMetadata"
    elif kind == "Status":
        out["@odata.type"] = f"#{NS}StatusOptionMetadata"
    out |= {
        "Value": item.value,
        "Color": None,
        "IsManaged": True,
        "ExternalValue": None,
        "ParentValues": [],
        "Tag": None,
        "IsHidden": False,
        "MetadataId": None,
        "HasChanged": None,
        "Label": label(item.label),
        "Description": label(None),
    }
    if kind == "State":
        out["DefaultStatus"] = item.default_status
        out["InvariantName"] = item.invariant_name or item.label
    elif kind == "Status":
        out["State"] = item.state
        out["TransitionData"] = None
    return out


def option_set(table: Table, column: Column) -> dict[str, t.Any]:
    """The OptionSet of a choice or Boolean column (Boolean: TrueOption / FalseOption).

    A column using a global choice shows that choice: its ``Name``, ``IsGlobal`` true and one
    MetadataId however many tables use it.
    """
    kind = column.type
    shared = column.global_option_set
    name = shared or f"{table.logical_name}_{column.logical_name}"
    out: dict[str, t.Any] = {
        "MetadataId": str(
            uuid.uuid5(_LABEL_NAMESPACE, shared or f"{table.logical_name}/{column.logical_name}")
        ),
        "Name": name,
        "IsGlobal": shared is not None,
        "IsCustomOptionSet": column.is_custom,
        "IsManaged": not column.is_custom,
        "OptionSetType": kind,
        "ExternalTypeName": None,
        "IntroducedVersion": "1.0",
        "DisplayName": label(column.display_name),
        "Description": label(None),
        "HasChanged": None,
    }
    if kind == "Boolean":
        by_value = {o.value: o for o in column.options}
        true = by_value.get(1) or Option(1, "Yes")
        false = by_value.get(0) or Option(0, "No")
        out["TrueOption"] = option(true, kind)
        out["FalseOption"] = option(false, kind)
    else:
        out["Options"] = [option(o, kind) for o in column.options]
    return out


def expanded_option_set(
    table: Table, column: Column, *, global_navigation: bool
) -> dict[str, t.Any] | None:
    """What ``$expand=OptionSet`` (or ``GlobalOptionSet``) shows for a choice column.

    A column with a choice of its own fills ``OptionSet``; one using a global choice fills
    ``GlobalOptionSet``; the other navigation is null (§3.4, §11 #17).
    """
    if global_navigation != (column.global_option_set is not None):
        return None
    return option_set(table, column)


def global_option_sets(tables: t.Iterable[Table]) -> list[dict[str, t.Any]]:
    """Every global choice the tables use, once each, typed ``OptionSetMetadata`` (§3.1)."""
    found: dict[str, dict[str, t.Any]] = {}
    for table in tables:
        for column in table.columns.values():
            name = column.global_option_set
            if name is not None and name not in found:
                found[name] = {"@odata.type": f"#{NS}OptionSetMetadata"} | option_set(table, column)
    return list(found.values())


def key(table: Table, item: AlternateKey) -> dict[str, t.Any]:
    """EntityKeyMetadata (§3.6)."""
    return {
        "MetadataId": item.metadata_id,
        "LogicalName": item.logical_name,
        "SchemaName": item.schema_name,
        "EntityLogicalName": table.logical_name,
        "KeyAttributes": list(item.key_attributes),
        "EntityKeyIndexStatus": item.index_status,
        "AsyncJob": None,
        "IsManaged": False,
        "IsSynchronous": False,
        "IsExportKey": False,
        "IsSecondaryKey": False,
        "IntroducedVersion": "1.0",
        "IsCustomizable": managed("iscustomizable", value=True),
        "DisplayName": label(item.display_name or item.schema_name),
        "HasChanged": None,
    }


def one_to_many(rel: Relationship, *, custom: bool = False) -> dict[str, t.Any]:
    """OneToManyRelationshipMetadata, as in the real response of §3.5."""
    cascade = {"Archive": "NoCascade", "RollupView": "NoCascade", **rel.cascade}
    return {
        "MetadataId": rel.metadata_id,
        "SchemaName": rel.schema_name,
        "ReferencedAttribute": rel.referenced_attribute,
        "ReferencedEntity": rel.referenced_entity,
        "ReferencingAttribute": rel.referencing_attribute,
        "ReferencingEntity": rel.referencing_entity,
        "IsHierarchical": rel.is_hierarchical,
        "EntityKey": None,
        "IsRelationshipAttributeDenormalized": False,
        "ReferencedEntityNavigationPropertyName": rel.referenced_navigation,
        "ReferencingEntityNavigationPropertyName": rel.referencing_navigation,
        "RelationshipBehavior": 0,
        "IsCustomRelationship": custom,
        "IsValidForAdvancedFind": True,
        "SecurityTypes": "Append",
        "IsManaged": not custom,
        "RelationshipType": "OneToManyRelationship",
        "IntroducedVersion": "1.0.0.0",
        "CascadeConfiguration": cascade,
        "HasChanged": None,
    }


def many_to_many(rel: ManyToMany, *, custom: bool = False) -> dict[str, t.Any]:
    """ManyToManyRelationshipMetadata."""
    return {
        "MetadataId": rel.metadata_id,
        "SchemaName": rel.schema_name,
        "IntersectEntityName": rel.intersect_entity,
        "Entity1LogicalName": rel.entity1,
        "Entity1IntersectAttribute": rel.entity1_intersect_attribute,
        "Entity1NavigationPropertyName": rel.entity1_navigation,
        "Entity2LogicalName": rel.entity2,
        "Entity2IntersectAttribute": rel.entity2_intersect_attribute,
        "Entity2NavigationPropertyName": rel.entity2_navigation,
        "IsCustomRelationship": custom,
        "IsValidForAdvancedFind": True,
        "SecurityTypes": "None",
        "IsManaged": not custom,
        "RelationshipType": "ManyToManyRelationship",
        "IntroducedVersion": "1.0.0.0",
        "HasChanged": None,
    }
