"""Build the emulator's table files from the shared Dataverse table facts.

Reads ``<entities>/<table>.json`` (facts extracted from Microsoft's table reference pages,
https://learn.microsoft.com/power-apps/developer/data-platform/reference/about-entity-reference)
and writes one compact file per table to
``dataverse_emulator/data/tables/<logicalname>.json``. The output mirrors the dataclasses of
``dataverse_emulator/state/catalog.py`` (field names in snake_case, default values left out) and
drops the page provenance (``source``, ``notes``, ``ListedAs``, ``DetailsFrom``...).

Run ``python scripts/build_emulator_data.py --entities DIR [--out DIR] [--check]``; ``--check``
exits 1 when the committed files differ from what the facts produce.

Values the pages do not state are derived by these rules, so that they match what a real
environment documents:

* **MetadataIds**: ``uuid5(NAMESPACE, "<table>")``, ``uuid5(NAMESPACE, "<table>/<column>")`` and
  ``uuid5(NAMESPACE, "relationship/<SchemaName>")``, except for the real-org values the reference
  gives (contact table, ``contactid``, ``fullname``, §3.8; account table, §3.6).
* **ObjectTypeCode**: only contact (2, §3.2) is stated; the others stay null.
* **Navigation names** missing from the pages (all of systemuser, team, businessunit and
  transactioncurrency, and some solution lookups):
  single-target lookup -> the column's logical name (``transactioncurrencyid``), or its SchemaName
  for publisher-prefixed solution columns (``msdyn_BillingAccount``, "custom lookups use SchemaName
  casing", §0); multi-target lookup (Customer, Owner, regarding) -> ``<column>_<target>``
  (``parentcustomerid_account``, §3.5). On activity tables both get the ``_<table>`` suffix
  (``owninguser_campaignresponse``, ``regardingobjectid_lead_campaignresponse``), as the later
  pages show for campaignresponse.
* **Owner relationship**: taken from ``many_to_one_later_revision_only`` (``owner_contacts``,
  column ``ownerid``, navigation ``ownerid``) when the page gives it; otherwise
  ``owner_<collection>`` / ``ownerid`` (activity tables: ``<table>_owner_ownerid`` /
  ``ownerid_<table>``). Its referenced entity is ``owner``: bind ``ownerid`` to a systemuser or
  team. A derived name that a sibling relationship already states is left null. Later-revision
  relationships whose column is not in the 2019 column list are dropped.
* **AttributeOf / IsLogical**: ``<lookup>name``, ``<lookup>yominame`` -> AttributeOf the lookup,
  IsLogical true (§3.8 ``parentcustomeridname``); ``<lookup>type`` (EntityName) and
  ``<money>_base`` -> AttributeOf the source column (§3.8 ``annualincome_base``).
* **PrimaryImageAttribute**: ``entityimage`` when the table has that Image column (§3.2 contact).
* **TableType**: ``Activity`` for activity tables (primary id ``activityid``), else ``Standard``.
"""

from __future__ import annotations

import argparse
import json
import sys
import typing as t
import uuid
from pathlib import Path

Json = dict[str, t.Any]
"""A JSON object, as the fact files and the table files hold them."""

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "dataverse_emulator" / "data" / "tables"
NAMESPACE = uuid.UUID("6b0c5f3e-8d2a-5c61-9a57-3c1f0e2d4b7a")

REAL_IDS = {
    "contact": "608861bc-50a4-4c5f-a02c-21fe1943e2cf",
    "contact/contactid": "2ae700b3-97d2-4d99-96f2-8e4aa6368fc2",
    "contact/fullname": "179aa4a5-6317-42a0-9b71-836591b963f1",
    "account": "70816501-edb9-4740-a16c-6a5efbc05d84",
}
OBJECT_TYPE_CODES = {"contact": 2}
MULTI_TARGET_TYPES = {"Customer", "Owner"}


def metadata_id(name: str) -> str:
    """Return the real MetadataId for ``name`` if known, else a stable uuid5."""
    return REAL_IDS.get(name) or str(uuid.uuid5(NAMESPACE, name))


def _option(raw: Json) -> Json:
    out = {"value": raw["Value"], "label": raw["Label"]}
    if raw.get("State") is not None:
        out["state"] = raw["State"]
    if raw.get("DefaultStatus") is not None:
        out["default_status"] = raw["DefaultStatus"]
    if raw.get("InvariantName") is not None:
        out["invariant_name"] = raw["InvariantName"]
    return out


def _attribute_of(attrs: dict[str, Json]) -> dict[str, str]:
    """Map shadow columns to the column they extend (rules in the module docstring)."""
    result: dict[str, str] = {}
    for name, raw in attrs.items():
        if raw["Type"] in {"Lookup", "Customer", "Owner"}:
            for suffix in ("name", "yominame", "type"):
                if name + suffix in attrs:
                    result[name + suffix] = name
        elif raw["Type"] == "Money" and name + "_base" in attrs:
            result[name + "_base"] = name
    return result


def _column(table: str, raw: Json, entity: Json, attribute_of: dict[str, str]) -> Json:
    name = raw["LogicalName"]
    col: Json = {
        "logical_name": name,
        "schema_name": raw["SchemaName"],
        "type": raw["Type"],
        "metadata_id": metadata_id(f"{table}/{name}"),
    }
    optional = {
        "display_name": raw["DisplayName"],
        "max_length": raw["MaxLength"],
        "min_value": raw["MinValue"],
        "max_value": raw["MaxValue"],
        "precision": raw["Precision"],
        "precision_source": raw["PrecisionSource"],
        "format": raw["Format"],
        "format_name": raw["FormatName"],
        "datetime_behavior": raw["DateTimeBehavior"],
        "default_value": raw["DefaultValue"],
        "attribute_of": attribute_of.get(name),
    }
    col.update({k: v for k, v in optional.items() if v is not None})
    if raw["RequiredLevel"] not in (None, "None"):
        col["required_level"] = raw["RequiredLevel"]
    for flag, key in (
        ("IsValidForCreate", "is_valid_for_create"),
        ("IsValidForUpdate", "is_valid_for_update"),
        ("IsValidForRead", "is_valid_for_read"),
    ):
        if raw[flag] is False:
            col[key] = False
    if name == entity["PrimaryIdAttribute"]:
        col["is_primary_id"] = True
    if name == entity["PrimaryNameAttribute"]:
        col["is_primary_name"] = True
    if name in attribute_of and not name.endswith(("type", "_base")):
        col["is_logical"] = True
    if raw["Targets"]:
        col["targets"] = list(raw["Targets"])
    if raw["Options"]:
        col["options"] = [_option(o) for o in raw["Options"]]
    return col


def _solution_column(name: str) -> bool:
    prefix, _, rest = name.partition("_")
    return bool(rest) and prefix not in {"address1", "address2", "address3"} and len(prefix) <= 6


def _navigation(attr: str, target: str, attrs: dict[str, Json], *, multi: bool, suffix: str) -> str:
    if multi:
        base = f"{attr}_{target}"
    elif _solution_column(attr) and attr in attrs:
        base = attrs[attr]["SchemaName"]
    else:
        base = attr
    return base + suffix


def _relationship(raw: Json, referencing: str, navigation: str | None) -> Json:
    rel = {
        "schema_name": raw["SchemaName"],
        "referenced_entity": raw["ReferencedEntity"],
        "referenced_attribute": raw["ReferencedAttribute"],
        "referencing_entity": referencing,
        "referencing_attribute": raw["ReferencingAttribute"],
        "referencing_navigation": navigation,
        "referenced_navigation": raw.get("ReferencedEntityNavigationPropertyName")
        or raw["SchemaName"],
        "metadata_id": metadata_id(f"relationship/{raw['SchemaName']}"),
    }
    if raw.get("IsHierarchical"):
        rel["is_hierarchical"] = True
    if raw.get("CascadeConfiguration"):
        rel["cascade"] = raw["CascadeConfiguration"]
    return rel


def _many_to_one(facts: Json, attrs: dict[str, Json], *, activity: bool) -> list[Json]:
    table = facts["entity"]["LogicalName"]
    per_attr: dict[str, int] = {}
    for raw in facts["many_to_one"]:
        per_attr[raw["ReferencingAttribute"]] = per_attr.get(raw["ReferencingAttribute"], 0) + 1

    def multi(attr: str) -> bool:
        col = attrs.get(attr)
        typed_multi = col is not None and (
            col["Type"] in MULTI_TARGET_TYPES or len(col["Targets"] or []) > 1
        )
        return typed_multi or per_attr[attr] > 1

    stated = {r["ReferencingEntityNavigationPropertyName"] for r in facts["many_to_one"]}
    rels = []
    for raw in facts["many_to_one"]:
        attr = raw["ReferencingAttribute"]
        nav = raw["ReferencingEntityNavigationPropertyName"]
        if nav is None:
            suffix = f"_{table}" if activity else ""
            target = raw["ReferencedEntity"]
            nav = _navigation(attr, target, attrs, multi=multi(attr), suffix=suffix)
            nav = None if nav in stated else nav  # a page states it for a sibling relationship
        rels.append(_relationship(raw, table, nav))
    known = {r["schema_name"] for r in rels}
    for raw in facts.get("many_to_one_later_revision_only", []):
        if raw["ReferencingAttribute"] in attrs and raw["SchemaName"] not in known:
            rels.append(_relationship(raw, table, raw["ReferencingEntityNavigationPropertyName"]))
            known.add(raw["SchemaName"])
    owner = attrs.get("ownerid")
    if (
        owner is not None
        and owner["Type"] == "Owner"
        and not any(r["referencing_attribute"] == "ownerid" for r in rels)
    ):
        collection = (
            facts["entity"].get("LogicalCollectionName") or facts["entity"]["EntitySetName"]
        )
        raw = {
            "SchemaName": f"{table}_owner_ownerid" if activity else f"owner_{collection}",
            "ReferencedEntity": "owner",
            "ReferencedAttribute": "ownerid",
            "ReferencingAttribute": "ownerid",
        }
        rels.append(_relationship(raw, table, f"ownerid_{table}" if activity else "ownerid"))
    return rels


def _one_to_many(facts: Json, navigations: dict[tuple[str, str], str]) -> list[Json]:
    rels = []
    for raw in facts["one_to_many"]:
        key = (raw["ReferencingEntity"], raw["SchemaName"])
        nav = raw["ReferencingEntityNavigationPropertyName"] or navigations.get(key)
        rels.append(_relationship(raw, raw["ReferencingEntity"], nav))
    return rels


def _many_to_many(facts: Json) -> list[Json]:
    return [
        {
            "schema_name": raw["SchemaName"],
            "intersect_entity": raw["IntersectEntityName"],
            "entity1": raw["Entity1LogicalName"],
            "entity1_intersect_attribute": raw["Entity1IntersectAttribute"],
            "entity1_navigation": raw["Entity1NavigationPropertyName"],
            "entity2": raw["Entity2LogicalName"],
            "entity2_intersect_attribute": raw["Entity2IntersectAttribute"],
            "entity2_navigation": raw["Entity2NavigationPropertyName"],
            "metadata_id": metadata_id(f"relationship/{raw['SchemaName']}"),
        }
        for raw in facts["many_to_many"]
    ]


def build_table(facts: Json, navigations: dict[tuple[str, str], str]) -> Json:
    """Convert one facts file into the emulator's table document."""
    entity = facts["entity"]
    name = entity["LogicalName"]
    attrs = {a["LogicalName"]: a for a in facts["attributes"]}
    activity = entity["PrimaryIdAttribute"] == "activityid"
    attribute_of = _attribute_of(attrs)
    doc: Json = {
        "logical_name": name,
        "schema_name": entity["SchemaName"],
        "entity_set_name": entity["EntitySetName"],
        "primary_id": entity["PrimaryIdAttribute"],
        "primary_name": entity["PrimaryNameAttribute"],
        "metadata_id": metadata_id(name),
        "display_name": entity.get("DisplayName"),
        "display_collection_name": entity.get("DisplayCollectionName"),
        "logical_collection_name": entity.get("LogicalCollectionName"),
        "collection_schema_name": entity.get("CollectionSchemaName"),
        "ownership_type": entity["OwnershipType"],
        "object_type_code": OBJECT_TYPE_CODES.get(name),
        "is_activity": activity,
        "table_type": "Activity" if activity else "Standard",
    }
    if attrs.get("entityimage", {}).get("Type") == "Image":
        doc["primary_image"] = "entityimage"
    doc["columns"] = [_column(name, a, entity, attribute_of) for a in facts["attributes"]]
    doc["many_to_one"] = _many_to_one(facts, attrs, activity=activity)
    doc["one_to_many"] = _one_to_many(facts, navigations)
    doc["many_to_many"] = _many_to_many(facts)
    return doc


def dumps(doc: Json) -> str:
    """Serialise a table document: scalars one per line, list items one per line."""
    lines = ["{"]
    items = list(doc.items())
    for i, (key, value) in enumerate(items):
        comma = "," if i < len(items) - 1 else ""
        if isinstance(value, list) and value:
            lines.append(f" {json.dumps(key)}: [")
            rows = [" " + json.dumps(v, ensure_ascii=False) for v in value]
            lines.append(",\n".join(" " + r for r in rows))
            lines.append(f" ]{comma}")
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def build_all(entities_dir: Path) -> dict[str, str]:
    """Return ``{file name: content}`` for every facts file in ``entities_dir``."""
    facts = [json.loads(p.read_text("utf-8")) for p in sorted(entities_dir.glob("*.json"))]
    # First pass: many-to-one navigation names, so one-to-many sides can reuse them.
    navigations: dict[tuple[str, str], str] = {}
    docs = []
    for f in facts:
        doc = build_table(f, {})
        docs.append((f, doc))
        for rel in doc["many_to_one"]:
            navigations[(doc["logical_name"], rel["schema_name"])] = rel["referencing_navigation"]
    return {f"{doc['logical_name']}.json": dumps(build_table(f, navigations)) for f, doc in docs}


def main(argv: list[str] | None = None) -> int:
    """Build (or with ``--check`` verify) the table files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--check", action="store_true", help="fail if the files are stale")
    args = parser.parse_args(argv)
    files = build_all(args.entities)
    if args.check:
        stale = [
            n
            for n, text in files.items()
            if not (args.out / n).exists() or (args.out / n).read_text("utf-8") != text
        ]
        extra = sorted(p.name for p in args.out.glob("*.json") if p.name not in files)
        if stale or extra:
            print(f"stale: {stale}; unexpected: {extra}", file=sys.stderr)
            return 1
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (args.out / name).write_text(text, "utf-8")
    print(f"wrote {len(files)} table files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
