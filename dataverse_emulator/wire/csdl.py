"""``GET $metadata``: the CSDL document of the tables the emulator knows (§3.11).

Shaped as Microsoft Learn describes it ("Web API EntityTypes", "Web API properties", "Web API
navigation properties"): in the ``Microsoft.Dynamics.CRM`` schema (alias ``mscrm``) every table
is an ``EntityType`` named by its LogicalName deriving from the abstract ``crmbaseentity``, with
a ``Key`` on its primary id, a ``Property`` for every column that is a Web API property (a
lookup as ``_<column>_value`` of type ``Edm.Guid``), a single-valued ``NavigationProperty`` with
a ``ReferentialConstraint`` for every many-to-one relationship and a collection-valued one for
every one-to-many and many-to-many relationship whose other table is known. An
``EntityContainer`` named ``System`` lists one ``EntitySet`` per table.

Not modelled: complex, enum and function/action types, annotations, the ``principal`` type's
own properties (systemuser and team derive from ``crmbaseentity`` here), activity party
collections (PartyList columns), navigation properties to tables the emulator does not know.
"""

from __future__ import annotations

import typing as t
from xml.etree import ElementTree as ET

from dataverse_emulator.http import Response
from dataverse_emulator.state import values

if t.TYPE_CHECKING:
    from dataverse_emulator.state.catalog import Catalog, Column, Table

EDMX = "http://docs.oasis-open.org/odata/ns/edmx"
EDM = "http://docs.oasis-open.org/odata/ns/edm"
NAMESPACE = "Microsoft.Dynamics.CRM"
_ALIAS = "mscrm"
_BASE = "crmbaseentity"
_PRINCIPAL = "principal"
"""The type of Owner navigation properties (``ownerid``): a system user or a team."""
ET.register_namespace("edmx", EDMX)
ET.register_namespace("", EDM)


def handle(catalog: Catalog) -> Response:
    """The CSDL document, as ``application/xml``."""
    headers = [("Content-Type", "application/xml"), ("OData-Version", "4.0")]
    return Response(200, headers, document(catalog))


def document(catalog: Catalog) -> bytes:
    """Render the CSDL of every table in ``catalog``."""
    root = ET.Element(f"{{{EDMX}}}Edmx", Version="4.0")
    services = ET.SubElement(root, f"{{{EDMX}}}DataServices")
    schema = ET.SubElement(services, _edm("Schema"), Namespace=NAMESPACE, Alias=_ALIAS)
    ET.SubElement(schema, _edm("EntityType"), Name=_BASE, Abstract="true")
    principal = ET.SubElement(
        schema, _edm("EntityType"), Name=_PRINCIPAL, BaseType=_qualified(_BASE), Abstract="true"
    )
    _key(principal, "ownerid")
    ET.SubElement(principal, _edm("Property"), Name="ownerid", Type="Edm.Guid")
    tables = catalog.tables()
    known = {table.logical_name for table in tables}
    for table in tables:
        schema.append(_entity_type(table, known))
    container = ET.SubElement(schema, _edm("EntityContainer"), Name="System")
    for table in tables:
        ET.SubElement(
            container,
            _edm("EntitySet"),
            Name=table.entity_set_name,
            EntityType=f"{NAMESPACE}.{table.logical_name}",
        )
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document


def property_type(column: Column) -> str | None:
    """The Edm type of a column's Web API property (None: the column is not a property)."""
    if not (column.is_valid_for_read and values.is_property(column)) or column.type == "PartyList":
        return None
    if column.type in values.LOOKUP_TYPES:
        return "Edm.Guid"
    return values.edm_type(column)


def _entity_type(table: Table, known: set[str]) -> ET.Element:
    element = ET.Element(_edm("EntityType"), Name=table.logical_name, BaseType=_qualified(_BASE))
    _key(element, table.primary_id)
    for column in table.columns.values():
        edm = property_type(column)
        if edm is None:
            continue
        name = column.logical_name
        if column.type in values.LOOKUP_TYPES:
            name = f"_{name}_value"
        ET.SubElement(element, _edm("Property"), Name=name, Type=edm)
    element.extend(_navigations(table, known).values())
    return element


def _navigations(table: Table, known: set[str]) -> dict[str, ET.Element]:
    """The table's navigation properties by name: single-valued first, then collections."""
    navigations: dict[str, ET.Element] = {}
    for rel in table.many_to_one:
        target = _target(rel.referenced_entity, known)
        single = rel.referencing_navigation
        if single is None or target is None or single in navigations:
            continue
        nav = navigations[single] = _navigation(single, target, rel.referenced_navigation)
        ET.SubElement(
            nav,
            _edm("ReferentialConstraint"),
            Property=f"_{rel.referencing_attribute}_value",
            ReferencedProperty=rel.referenced_attribute,
        )
    for rel in table.one_to_many:
        target = _target(rel.referencing_entity, known)
        many = rel.referenced_navigation
        if many is None or target is None or many in navigations:
            continue
        navigations[many] = _navigation(many, f"Collection({target})", rel.referencing_navigation)
    for m2m in table.many_to_many:
        mine_first = m2m.entity1 == table.logical_name
        pair = m2m.entity1_navigation if mine_first else m2m.entity2_navigation
        target = _target(m2m.entity2 if mine_first else m2m.entity1, known)
        if pair is None or target is None or pair in navigations:
            continue
        navigations[pair] = _navigation(pair, f"Collection({target})", None)
    return navigations


def _navigation(name: str, type_name: str, partner: str | None) -> ET.Element:
    nav = ET.Element(_edm("NavigationProperty"), Name=name, Type=type_name)
    if partner:
        nav.set("Partner", partner)
    return nav


def _target(entity: str, known: set[str]) -> str | None:
    if entity == "owner":
        return _qualified(_PRINCIPAL)
    return _qualified(entity) if entity in known else None


def _key(element: ET.Element, name: str) -> None:
    key = ET.SubElement(element, _edm("Key"))
    ET.SubElement(key, _edm("PropertyRef"), Name=name)


def _qualified(name: str) -> str:
    return f"{_ALIAS}.{name}"


def _edm(tag: str) -> str:
    return f"{{{EDM}}}{tag}"
