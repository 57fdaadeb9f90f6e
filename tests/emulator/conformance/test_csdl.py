"""Conformance: the CSDL ``$metadata`` document agrees with the EntityDefinitions answers (§3.11).

Microsoft Learn, "Web API service documents"
(https://learn.microsoft.com/power-apps/developer/data-platform/webapi/web-api-service-documents),
"Web API EntityTypes"
(https://learn.microsoft.com/power-apps/developer/data-platform/webapi/web-api-entitytypes),
"Web API properties"
(https://learn.microsoft.com/power-apps/developer/data-platform/webapi/web-api-properties) and
"Web API navigation properties"
(https://learn.microsoft.com/power-apps/developer/data-platform/webapi/web-api-navigation-properties).
The document is parsed with ``xml.etree``; every expectation comes from the JSON metadata.
"""

from __future__ import annotations

from xml.etree import ElementTree as ET

import pytest

EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
EDMX = "{http://docs.oasis-open.org/odata/ns/edmx}"
EDM_OF_TYPE_NAME = {
    "StringType": "Edm.String",
    "MemoType": "Edm.String",
    "EntityNameType": "Edm.String",
    "MultiSelectPicklistType": "Edm.String",
    "IntegerType": "Edm.Int32",
    "PicklistType": "Edm.Int32",
    "StateType": "Edm.Int32",
    "StatusType": "Edm.Int32",
    "BigIntType": "Edm.Int64",
    "DecimalType": "Edm.Decimal",
    "MoneyType": "Edm.Decimal",
    "DoubleType": "Edm.Double",
    "BooleanType": "Edm.Boolean",
    "UniqueidentifierType": "Edm.Guid",
    "DateTimeType": "Edm.DateTimeOffset",
    "ImageType": "Edm.Binary",
    "LookupType": "Edm.Guid",
    "CustomerType": "Edm.Guid",
    "OwnerType": "Edm.Guid",
}
"""Learn "Web API properties": the Edm type of each column type (§4.6 for dates)."""
LOOKUPS = {"Lookup", "Customer", "Owner"}


@pytest.fixture
def schema(dv):
    """The parsed ``Microsoft.Dynamics.CRM`` schema of ``GET $metadata``."""
    response = dv.get("$metadata", headers={"Accept": "application/xml"})
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/xml")
    assert response.headers["OData-Version"] == "4.0"
    root = ET.fromstring(response.content)  # noqa: S314 - the local emulator's own document
    assert (root.tag, root.get("Version")) == (f"{EDMX}Edmx", "4.0")
    schema = root.find(f"{EDMX}DataServices/{EDM}Schema")
    assert schema is not None
    assert (schema.get("Namespace"), schema.get("Alias")) == ("Microsoft.Dynamics.CRM", "mscrm")
    return schema


def entity_type(schema, name):
    """The EntityType element called ``name``."""
    found = schema.find(f"{EDM}EntityType[@Name='{name}']")
    assert found is not None, name
    return found


def expected_properties(dv, logical):
    """Property name -> Edm type, from the table's attribute metadata."""
    base = f"EntityDefinitions(LogicalName='{logical}')/Attributes"
    listed = dv.get(
        f"{base}?$select=LogicalName,AttributeType,AttributeTypeName,IsValidODataAttribute,"
        "IsValidForRead"
    ).json()["value"]
    dates = dv.get(
        f"{base}/Microsoft.Dynamics.CRM.DateTimeAttributeMetadata?$select=LogicalName,"
        "DateTimeBehavior"
    ).json()["value"]
    date_only = {d["LogicalName"] for d in dates if d["DateTimeBehavior"]["Value"] == "DateOnly"}
    out = {}
    for item in listed:
        kind = item["AttributeType"]
        # PartyList columns are written through the activity party collection, not a property.
        if not (item["IsValidODataAttribute"] and item["IsValidForRead"]) or kind == "PartyList":
            continue
        name = item["LogicalName"]
        edm = EDM_OF_TYPE_NAME[item["AttributeTypeName"]["Value"]]
        if name in date_only:
            edm = "Edm.Date"  # §4.6: the behaviour decides, not the format
        out[f"_{name}_value" if kind in LOOKUPS else name] = edm
    return out


@pytest.mark.parametrize("logical", ["contact", "account", "lead", "new_visit", "systemuser"])
def test_entity_type_matches_entity_definitions(dv, schema, logical):
    """Learn "Web API EntityTypes": an EntityType per table named by LogicalName, deriving from
    ``mscrm.crmbaseentity``, keyed on PrimaryIdAttribute; a Property per Web API property with
    its Edm type (lookups as ``_x_value`` Guids); a NavigationProperty per many-to-one
    relationship with a ReferentialConstraint on the lookup value."""
    table = dv.get(
        f"EntityDefinitions(LogicalName='{logical}')?$select=PrimaryIdAttribute"
        "&$expand=ManyToOneRelationships($select=ReferencedEntity,ReferencedAttribute,"
        "ReferencingAttribute,ReferencingEntityNavigationPropertyName)"
    ).json()
    element = entity_type(schema, logical)
    assert element.get("BaseType") == "mscrm.crmbaseentity"
    keys = [ref.get("Name") for ref in element.findall(f"{EDM}Key/{EDM}PropertyRef")]
    assert keys == [table["PrimaryIdAttribute"]]
    properties = {p.get("Name"): p.get("Type") for p in element.findall(f"{EDM}Property")}
    assert properties == expected_properties(dv, logical)
    navigations = {n.get("Name"): n for n in element.findall(f"{EDM}NavigationProperty")}
    known = {e.get("Name") for e in schema.findall(f"{EDM}EntityType")}
    for rel in table["ManyToOneRelationships"]:
        referenced = rel["ReferencedEntity"]
        if referenced not in known and referenced != "owner":
            continue
        nav = navigations[rel["ReferencingEntityNavigationPropertyName"]]
        assert nav.get("Type") == (
            "mscrm.principal" if referenced == "owner" else f"mscrm.{referenced}"
        )
        constraint = nav.find(f"{EDM}ReferentialConstraint")
        assert constraint is not None
        assert constraint.get("Property") == f"_{rel['ReferencingAttribute']}_value"
        assert constraint.get("ReferencedProperty") == rel["ReferencedAttribute"]


def test_documented_contact_facts(schema):
    """§3.5, §3.8 and Learn "Web API properties": ``birthdate`` (DateOnly behaviour) is
    ``Edm.Date``, ``parentcustomerid`` is read as ``_parentcustomerid_value`` and written through
    ``parentcustomerid_account`` / ``parentcustomerid_contact``; name shadows are no properties."""
    contact = entity_type(schema, "contact")
    types = {p.get("Name"): p.get("Type") for p in contact.findall(f"{EDM}Property")}
    assert types["birthdate"] == "Edm.Date"
    assert types["createdon"] == "Edm.DateTimeOffset"
    assert types["_parentcustomerid_value"] == "Edm.Guid"
    assert types["annualincome"] == "Edm.Decimal"
    assert "parentcustomeridname" not in types
    assert "gendercodename" not in types
    navigations = {
        n.get("Name"): n.get("Type") for n in contact.findall(f"{EDM}NavigationProperty")
    }
    assert navigations["parentcustomerid_account"] == "mscrm.account"
    assert navigations["parentcustomerid_contact"] == "mscrm.contact"
    account = entity_type(schema, "account")
    collections = {
        n.get("Name"): n.get("Type") for n in account.findall(f"{EDM}NavigationProperty")
    }
    assert collections["contact_customer_accounts"] == "Collection(mscrm.contact)"


def test_entity_sets_match_entity_definitions(dv, schema):
    """Learn "Web API service documents": the ``System`` EntityContainer has one EntitySet per
    table, named by its EntitySetName and typed by its LogicalName."""
    tables = dv.get("EntityDefinitions?$select=LogicalName,EntitySetName").json()["value"]
    container = schema.find(f"{EDM}EntityContainer")
    assert container is not None
    assert container.get("Name") == "System"
    sets = {s.get("Name"): s.get("EntityType") for s in container.findall(f"{EDM}EntitySet")}
    assert sets == {
        t["EntitySetName"]: f"Microsoft.Dynamics.CRM.{t['LogicalName']}" for t in tables
    }
