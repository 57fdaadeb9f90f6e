from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from dataverse_emulator.http import Request, Response
from dataverse_emulator.state.catalog import Catalog
from dataverse_emulator.state.custom_tables import load_catalog
from dataverse_emulator.wire.metadata import handle

BASE = "https://127.0.0.1:8443"
ROOT = f"{BASE}/api/data/v9.2/$metadata#"
CRM = "Microsoft.Dynamics.CRM."
CONTACT_ATTRIBUTES = "EntityDefinitions(LogicalName='contact')/Attributes"
EXAMPLE = Path(str(resources.files("dataverse_emulator.data").joinpath("examples")))


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(EXAMPLE / "custom-entities.json")


def call(catalog: Catalog, path: str, query: str = "", method: str = "GET", body: bytes = b""):
    request = Request(method, f"/api/data/v9.2/{path}", query=query, body=body, base_url=BASE)
    response = handle(request, path, catalog)
    return response, (json.loads(response.body) if response.body else None)


def assert_json_headers(response: Response) -> None:
    assert response.header("Content-Type") == "application/json; odata.metadata=minimal"
    assert response.header("OData-Version") == "4.0"


def assert_error(response: Response, body: dict, status: int, code: str, message: str) -> None:
    assert response.status == status
    assert_json_headers(response)
    assert body == {"error": {"code": code, "message": message}}


def test_python_sdk_table_probe(catalog: Catalog) -> None:
    """§3.9: Microsoft's SDK filters EntityDefinitions by LogicalName (spaces sent as '+')."""
    response, body = call(
        catalog,
        "EntityDefinitions",
        "$select=LogicalName,EntitySetName,PrimaryIdAttribute&$filter=LogicalName+eq+'account'",
    )
    assert response.status == 200
    assert_json_headers(response)
    assert body == {
        "@odata.context": f"{ROOT}EntityDefinitions(LogicalName,EntitySetName,PrimaryIdAttribute)",
        "value": [
            {
                "LogicalName": "account",
                "EntitySetName": "accounts",
                "PrimaryIdAttribute": "accountid",
                "MetadataId": "70816501-edb9-4740-a16c-6a5efbc05d84",
            }
        ],
    }


def test_filter_by_entity_set_and_enum(catalog: Catalog) -> None:
    """§3.1: $filter on primitive and enum properties (enum values carry the namespace)."""
    _, body = call(
        catalog, "EntityDefinitions", "$select=LogicalName&$filter=EntitySetName eq 'contacts'"
    )
    assert [v["LogicalName"] for v in body["value"]] == ["contact"]
    query = (
        "$select=LogicalName&$filter=OwnershipType eq "
        "Microsoft.Dynamics.CRM.OwnershipTypes'OrganizationOwned'"
    )
    _, body = call(catalog, "EntityDefinitions", query)
    assert {v["LogicalName"] for v in body["value"]} == {"transactioncurrency", "new_visit"}
    _, body = call(
        catalog, "EntityDefinitions", "$select=LogicalName&$filter=IsCustomEntity eq true"
    )
    assert {v["LogicalName"] for v in body["value"]} == {"new_membership", "new_visit"}


def test_contact_full_example(catalog: Catalog) -> None:
    """§3.8: contact with selected attributes, keys and many-to-one relationships."""
    query = (
        "$select=LogicalName,SchemaName,EntitySetName,PrimaryIdAttribute,ObjectTypeCode,"
        "IsValidForAdvancedFind,OwnershipType"
        "&$expand=Attributes($select=LogicalName,AttributeType,AttributeTypeName,RequiredLevel,"
        "IsPrimaryId,AttributeOf,IsLogical),Keys($select=LogicalName,KeyAttributes,"
        "EntityKeyIndexStatus),ManyToOneRelationships($select=SchemaName,ReferencedEntity,"
        "ReferencingEntityNavigationPropertyName)"
    )
    response, body = call(catalog, "EntityDefinitions(LogicalName='contact')", query)
    assert response.status == 200
    assert body["@odata.context"] == (
        f"{ROOT}EntityDefinitions(LogicalName,SchemaName,EntitySetName,PrimaryIdAttribute,"
        "ObjectTypeCode,IsValidForAdvancedFind,OwnershipType,Attributes(LogicalName,AttributeType,"
        "AttributeTypeName,RequiredLevel,IsPrimaryId,AttributeOf,IsLogical),Keys(LogicalName,"
        "KeyAttributes,EntityKeyIndexStatus),ManyToOneRelationships(SchemaName,ReferencedEntity,"
        "ReferencingEntityNavigationPropertyName))/$entity"
    )
    assert body["MetadataId"] == "608861bc-50a4-4c5f-a02c-21fe1943e2cf"
    assert body["ObjectTypeCode"] == 2
    assert body["IsValidForAdvancedFind"] is True
    attrs = {a["LogicalName"]: a for a in body["Attributes"]}
    assert attrs["contactid"] == {  # the base type: no @odata.type (§3.8)
        "LogicalName": "contactid",
        "AttributeType": "Uniqueidentifier",
        "AttributeTypeName": {"Value": "UniqueidentifierType"},
        "RequiredLevel": {
            "Value": "SystemRequired",
            "CanBeChanged": False,
            "ManagedPropertyLogicalName": "canmodifyrequirementlevelsettings",
        },
        "IsPrimaryId": True,
        "AttributeOf": None,
        "IsLogical": False,
        "MetadataId": "2ae700b3-97d2-4d99-96f2-8e4aa6368fc2",
    }
    assert (
        attrs["parentcustomerid"]["@odata.type"]
        == "#Microsoft.Dynamics.CRM.LookupAttributeMetadata"
    )
    assert attrs["parentcustomerid"]["AttributeType"] == "Customer"
    assert attrs["annualincome_base"]["AttributeOf"] == "annualincome"
    assert attrs["lastname"]["RequiredLevel"]["CanBeChanged"] is True
    assert body["Keys"] == [
        {
            "LogicalName": "emailaddress1_key",
            "KeyAttributes": ["emailaddress1"],
            "EntityKeyIndexStatus": "Active",
            "MetadataId": body["Keys"][0]["MetadataId"],
        }
    ]
    navs = {r["ReferencingEntityNavigationPropertyName"] for r in body["ManyToOneRelationships"]}
    assert {"parentcustomerid_account", "parentcustomerid_contact", "ownerid"} <= navs


def test_expanded_attributes_carry_derived_properties(catalog: Catalog) -> None:
    """§3.1, §11 #5: $expand=Attributes without $select serialises each derived item whole."""
    _, body = call(catalog, "EntityDefinitions(LogicalName='contact')", "$expand=Attributes")
    email = next(a for a in body["Attributes"] if a["LogicalName"] == "emailaddress1")
    assert email["@odata.type"] == "#Microsoft.Dynamics.CRM.StringAttributeMetadata"
    assert email["MaxLength"] == 100
    assert email["DisplayName"]["UserLocalizedLabel"]["Label"] == "Email"
    assert email["IsValidForAdvancedFind"] == {
        "Value": True,
        "CanBeChanged": True,
        "ManagedPropertyLogicalName": "canmodifysearchsettings",
    }
    assert body["@odata.context"] == f"{ROOT}EntityDefinitions(Attributes())/$entity"


def test_entity_by_metadata_id(catalog: Catalog) -> None:
    """§3.1: EntityDefinitions(<guid>); labels are Label objects (§3.2)."""
    response, body = call(catalog, "EntityDefinitions(608861bc-50a4-4c5f-a02c-21fe1943e2cf)")
    assert response.status == 200
    assert body["@odata.context"] == f"{ROOT}EntityDefinitions/$entity"
    assert body["LogicalName"] == "contact"
    assert body["PrimaryImageAttribute"] == "entityimage"
    label = {"Label": "Contact", "LanguageCode": 1033}
    assert label.items() <= body["DisplayName"]["LocalizedLabels"][0].items()
    assert label.items() <= body["DisplayName"]["UserLocalizedLabel"].items()
    assert body["Description"] == {"LocalizedLabels": [], "UserLocalizedLabel": None}


def test_unknown_table(catalog: Catalog) -> None:
    """§3.7, §11 #7: 404 with the SDK's "Could not find an entity" message."""
    response, body = call(catalog, "EntityDefinitions(LogicalName='crmbaseentity')")
    assert_error(
        response,
        body,
        404,
        "0x80040217",
        "Could not find an entity with name crmbaseentity and id "
        "00000000-0000-0000-0000-000000000000.",
    )


def test_unknown_property_in_select(catalog: Catalog) -> None:
    """§4.9: unknown column in $select -> 400 0x0 "Could not find a property named ..."."""
    response, body = call(catalog, "EntityDefinitions(LogicalName='campaign')", "$select=fullname")
    assert_error(
        response,
        body,
        400,
        "0x0",
        "Could not find a property named 'fullname' on type "
        "'Microsoft.Dynamics.CRM.EntityMetadata'.",
    )


def test_type_specific_property_needs_cast(catalog: Catalog) -> None:
    """§3.1: type-specific properties are not on AttributeMetadata; a cast is required."""
    response, body = call(
        catalog, "EntityDefinitions(LogicalName='contact')/Attributes", "$select=MaxLength"
    )
    assert response.status == 400
    assert "'Microsoft.Dynamics.CRM.AttributeMetadata'" in body["error"]["message"]
    cast = f"{CONTACT_ATTRIBUTES}/{CRM}StringAttributeMetadata"
    response, body = call(
        catalog,
        cast,
        "$select=LogicalName,MaxLength,FormatName&$filter=LogicalName eq 'emailaddress1'",
    )
    assert response.status == 200
    assert body == {
        "@odata.context": f"{ROOT}EntityDefinitions('contact')/Attributes/"
        "Microsoft.Dynamics.CRM.StringAttributeMetadata(LogicalName,MaxLength,FormatName)",
        "value": [
            {
                "LogicalName": "emailaddress1",
                "MaxLength": 100,
                "FormatName": {"Value": "Email"},
                "MetadataId": body["value"][0]["MetadataId"],
            }
        ],
    }


def test_picklist_cast_with_option_set(catalog: Catalog) -> None:
    """§3.4, §3.9: Picklist cast with $expand=OptionSet($select=Options)."""
    path = (
        "EntityDefinitions(LogicalName='account')/Attributes(LogicalName='accountcategorycode')"
        "/Microsoft.Dynamics.CRM.PicklistAttributeMetadata"
    )
    query = (
        "$select=LogicalName&$expand=OptionSet($select=Options),GlobalOptionSet($select=Options)"
    )
    response, body = call(catalog, path, query)
    assert response.status == 200
    assert body["@odata.context"] == (
        f"{ROOT}EntityDefinitions('account')/Attributes/Microsoft.Dynamics.CRM."
        "PicklistAttributeMetadata(LogicalName,OptionSet(Options),GlobalOptionSet(Options))/$entity"
    )
    assert "@odata.type" not in body
    assert body["GlobalOptionSet"] is None
    assert set(body["OptionSet"]) == {"Options", "MetadataId"}
    first = body["OptionSet"]["Options"][0]
    assert first["Value"] == 1
    assert first["Label"]["UserLocalizedLabel"]["Label"] == "Preferred Customer"
    assert first["Description"] == {"LocalizedLabels": [], "UserLocalizedLabel": None}


def test_picklist_collection_cast(catalog: Catalog) -> None:
    """§3.9: the SDK's label-to-int probe lists every Picklist column with its options."""
    path = f"{CONTACT_ATTRIBUTES}/{CRM}PicklistAttributeMetadata"
    _, body = call(catalog, path, "$select=LogicalName&$expand=OptionSet($select=Options)")
    gender = next(v for v in body["value"] if v["LogicalName"] == "gendercode")
    assert [o["Value"] for o in gender["OptionSet"]["Options"]] == [1, 2]
    assert all("@odata.type" not in v for v in body["value"])


def test_state_status_boolean_option_sets(catalog: Catalog) -> None:
    """§3.4: State/Status options carry DefaultStatus/State; Boolean has TrueOption/FalseOption."""
    base = "EntityDefinitions(LogicalName='contact')/Attributes"
    _, state = call(
        catalog,
        f"{base}(LogicalName='statecode')/Microsoft.Dynamics.CRM.StateAttributeMetadata",
        "$expand=OptionSet",
    )
    active = state["OptionSet"]["Options"][0]
    assert active["@odata.type"] == "#Microsoft.Dynamics.CRM.StateOptionMetadata"
    assert (active["Value"], active["DefaultStatus"], active["InvariantName"]) == (0, 1, "Active")
    _, status = call(
        catalog,
        f"{base}(LogicalName='statuscode')/Microsoft.Dynamics.CRM.StatusAttributeMetadata",
        "$expand=OptionSet",
    )
    assert [(o["Value"], o["State"]) for o in status["OptionSet"]["Options"]] == [(1, 0), (2, 1)]
    _, boolean = call(
        catalog,
        f"{base}(LogicalName='creditonhold')/Microsoft.Dynamics.CRM.BooleanAttributeMetadata",
        "$expand=OptionSet",
    )
    assert boolean["DefaultValue"] is False
    assert boolean["OptionSet"]["TrueOption"]["Value"] == 1
    assert boolean["OptionSet"]["FalseOption"]["Label"]["UserLocalizedLabel"]["Label"] == "No"


@pytest.mark.parametrize(
    ("column", "cast", "expected"),
    [
        ("description", "MemoAttributeMetadata", {"MaxLength": 2000, "Format": "TextArea"}),
        ("numberofchildren", "IntegerAttributeMetadata", {"MinValue": 0, "MaxValue": 1000000000}),
        (
            "address1_latitude",
            "DoubleAttributeMetadata",
            {"MinValue": -90, "MaxValue": 90, "Precision": 5},
        ),
        (
            "annualincome",
            "MoneyAttributeMetadata",
            {"Precision": 2, "MinValue": 0, "PrecisionSource": 2},
        ),
        (
            "birthdate",
            "DateTimeAttributeMetadata",
            {"Format": "DateOnly", "DateTimeBehavior": {"Value": "DateOnly"}},
        ),
        ("parentcustomerid", "LookupAttributeMetadata", {"Targets": ["account", "contact"]}),
        ("ownerid", "LookupAttributeMetadata", {"Targets": ["systemuser", "team"]}),
        ("versionnumber", "BigIntAttributeMetadata", {"AttributeType": "BigInt"}),
    ],
)
def test_type_specific_fields(catalog: Catalog, column: str, cast: str, expected: dict) -> None:
    """§3.4: type-specific fields through a cast, with the documented contact values (§3.8)."""
    path = f"{CONTACT_ATTRIBUTES}(LogicalName='{column}')/{CRM}{cast}"
    response, body = call(catalog, path)
    assert response.status == 200
    assert expected.items() <= body.items()


def test_single_attribute_without_cast_is_typed(catalog: Catalog) -> None:
    """§3.3, §3.4: a derived attribute names its @odata.type; context ends in /$entity."""
    path = "EntityDefinitions(LogicalName='contact')/Attributes(LogicalName='emailaddress1')"
    response, body = call(catalog, path)
    assert response.status == 200
    assert body["@odata.context"] == f"{ROOT}EntityDefinitions('contact')/Attributes/$entity"
    assert body["@odata.type"] == "#Microsoft.Dynamics.CRM.StringAttributeMetadata"
    assert body["MaxLength"] == 100
    assert body["EntityLogicalName"] == "contact"


def test_attribute_filter_by_id(catalog: Catalog) -> None:
    """§3.4: collection form by entity MetadataId, $filter + $select=MetadataId."""
    path = "EntityDefinitions(608861bc-50a4-4c5f-a02c-21fe1943e2cf)/Attributes"
    _, body = call(catalog, path, "$filter=LogicalName eq 'gendercode'&$select=MetadataId")
    assert body["@odata.context"] == (
        f"{ROOT}EntityDefinitions(608861bc-50a4-4c5f-a02c-21fe1943e2cf)/Attributes(MetadataId)"
    )
    [item] = body["value"]
    assert item["@odata.type"] == "#Microsoft.Dynamics.CRM.PicklistAttributeMetadata"
    assert set(item) == {"@odata.type", "MetadataId"}


def test_airbyte_datetime_cast(catalog: Catalog) -> None:
    """§3.9: airbyte reads DateTimeBehavior through the DateTime cast."""
    path = f"{CONTACT_ATTRIBUTES}/{CRM}DateTimeAttributeMetadata"
    _, body = call(catalog, path, "$select=LogicalName,DateTimeBehavior")
    values = {v["LogicalName"]: v["DateTimeBehavior"]["Value"] for v in body["value"]}
    assert values["birthdate"] == "DateOnly"
    assert values["createdon"] == "UserLocal"


def test_wrong_cast_on_attribute(catalog: Catalog) -> None:
    """§3.1: casting to a type the column is not (or to EnumAttributeMetadata) -> 404."""
    base = "EntityDefinitions(LogicalName='contact')/Attributes"
    response, body = call(
        catalog, f"{base}(LogicalName='firstname')/Microsoft.Dynamics.CRM.PicklistAttributeMetadata"
    )
    assert response.status == 404
    response, body = call(catalog, f"{base}/Microsoft.Dynamics.CRM.EnumAttributeMetadata")
    assert_error(
        response,
        body,
        404,
        "0x80060888",
        "Resource not found for the segment 'Microsoft.Dynamics.CRM.EnumAttributeMetadata'.",
    )


def test_keys_of_account(catalog: Catalog) -> None:
    """§3.6, §3.9: dataverse-api reads Keys with $select=SchemaName,KeyAttributes."""
    _, body = call(
        catalog, "EntityDefinitions(LogicalName='account')/Keys", "$select=SchemaName,KeyAttributes"
    )
    assert body == {
        "@odata.context": f"{ROOT}EntityDefinitions('account')/Keys(SchemaName,KeyAttributes)",
        "value": [
            {
                "SchemaName": "accountnumber_key",
                "KeyAttributes": ["accountnumber"],
                "MetadataId": "1dc7b1d2-6beb-ec11-bb3d-0022482ea769",
            }
        ],
    }


def test_expand_keys_on_all_entities(catalog: Catalog) -> None:
    """§3.6: EntityDefinitions?$select=SchemaName&$expand=Keys($select=KeyAttributes)."""
    _, body = call(
        catalog, "EntityDefinitions", "$select=SchemaName&$expand=Keys($select=KeyAttributes)"
    )
    account = next(v for v in body["value"] if v["SchemaName"] == "Account")
    assert account == {
        "SchemaName": "Account",
        "MetadataId": "70816501-edb9-4740-a16c-6a5efbc05d84",
        "Keys": [
            {
                "KeyAttributes": ["accountnumber"],
                "MetadataId": "1dc7b1d2-6beb-ec11-bb3d-0022482ea769",
            }
        ],
    }
    membership = next(v for v in body["value"] if v["SchemaName"] == "new_Membership")
    assert membership["Keys"][0]["KeyAttributes"] == ["new_contactid", "new_programcode"]


def test_post_key_creates_an_active_key() -> None:
    """§3.6: POST EntityDefinitions(LogicalName='x')/Keys as Microsoft's SDK sends it."""
    catalog = Catalog.load()
    payload = {
        "SchemaName": "lead_email_key",
        "KeyAttributes": ["emailaddress1"],
        "DisplayName": {
            "@odata.type": "Microsoft.Dynamics.CRM.Label",
            "LocalizedLabels": [
                {
                    "@odata.type": "Microsoft.Dynamics.CRM.LocalizedLabel",
                    "Label": "Email",
                    "LanguageCode": 1033,
                }
            ],
        },
    }
    response, body = call(
        catalog,
        "EntityDefinitions(LogicalName='lead')/Keys",
        method="POST",
        body=json.dumps(payload).encode(),
    )
    assert response.status == 204
    assert body is None
    (key,) = catalog.table("lead").keys
    assert response.header("OData-EntityId") == (
        f"{BASE}/api/data/v9.2/EntityDefinitions('lead')/Keys({key.metadata_id})"
    )
    _, listed = call(catalog, "EntityDefinitions(LogicalName='lead')/Keys")
    assert listed["value"][0]["EntityKeyIndexStatus"] == "Active"
    assert listed["value"][0]["DisplayName"]["UserLocalizedLabel"]["Label"] == "Email"


def test_post_key_rejects_bad_columns() -> None:
    """§3.6: Memo columns cannot be key columns."""
    catalog = Catalog.load()
    payload = json.dumps({"SchemaName": "k", "KeyAttributes": ["description"]}).encode()
    response, body = call(
        catalog, "EntityDefinitions(LogicalName='lead')/Keys", method="POST", body=payload
    )
    assert response.status == 400
    assert body["error"]["code"] == "0x80040203"
    assert catalog.table("lead").keys == []


def test_many_to_one_relationships_of_custom_table(catalog: Catalog) -> None:
    """§3.5: custom lookups use SchemaName casing; Customer lookups one per target."""
    path = "EntityDefinitions(LogicalName='new_membership')/ManyToOneRelationships"
    query = (
        "$select=ReferencedEntity,ReferencingEntityNavigationPropertyName"
        "&$filter=ReferencingAttribute eq 'new_sponsorid'"
    )
    _, body = call(catalog, path, query)
    assert [
        (v["ReferencedEntity"], v["ReferencingEntityNavigationPropertyName"]) for v in body["value"]
    ] == [
        ("account", "new_SponsorId_account"),
        ("contact", "new_SponsorId_contact"),
    ]


def test_one_to_many_and_many_to_many(catalog: Catalog) -> None:
    """§3.9: dataverse-api reads OneToManyRelationships and ManyToOneRelationships."""
    _, body = call(
        catalog,
        "EntityDefinitions(LogicalName='contact')/OneToManyRelationships",
        "$filter=ReferencingEntity eq 'new_membership'",
    )
    assert body["@odata.context"] == f"{ROOT}EntityDefinitions('contact')/OneToManyRelationships"
    assert {v["SchemaName"] for v in body["value"]} == {
        "new_contact_new_membership_ContactId",
        "new_membership_new_sponsorid_contact",
    }
    assert all(v["IsCustomRelationship"] for v in body["value"])
    _, body = call(
        catalog,
        "EntityDefinitions(LogicalName='contact')/ManyToManyRelationships",
        "$select=SchemaName",
    )
    assert "contactleads_association" in {v["SchemaName"] for v in body["value"]}


def test_relationship_definitions(catalog: Catalog) -> None:
    """§3.1, §3.5: RelationshipDefinitions by SchemaName, by id, and cast."""
    response, body = call(
        catalog, "RelationshipDefinitions(SchemaName='contact_customer_accounts')"
    )
    assert response.status == 200
    assert body["@odata.context"] == f"{ROOT}RelationshipDefinitions/$entity"
    assert body["@odata.type"] == "#Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata"
    assert body["ReferencingEntityNavigationPropertyName"] == "parentcustomerid_account"
    path = f"RelationshipDefinitions({body['MetadataId']})/{CRM}OneToManyRelationshipMetadata"
    _, cast = call(catalog, path)
    assert cast["@odata.context"] == (
        f"{ROOT}RelationshipDefinitions/Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata/$entity"
    )
    assert "@odata.type" not in cast
    assert cast["RelationshipType"] == "OneToManyRelationship"
    assert set(cast["CascadeConfiguration"]) >= {"Assign", "Delete", "Merge", "Reparent"}
    _, listed = call(
        catalog,
        "RelationshipDefinitions/Microsoft.Dynamics.CRM.ManyToManyRelationshipMetadata",
        "$select=SchemaName",
    )
    assert listed["value"]
    assert all(set(v) == {"SchemaName", "MetadataId"} for v in listed["value"])
    response, body = call(catalog, "RelationshipDefinitions(SchemaName='nope')")
    assert response.status == 404


def test_global_option_sets(catalog: Catalog) -> None:
    """§3.1: GlobalOptionSetDefinitions lists the global choices columns use, by Name or id."""
    response, body = call(catalog, "GlobalOptionSetDefinitions", "$select=Name,IsGlobal")
    assert response.status == 200
    assert body["@odata.context"] == f"{ROOT}GlobalOptionSetDefinitions(Name,IsGlobal)"
    names = {item["Name"] for item in body["value"]}
    assert {"budgetstatus", "need", "purchaseprocess", "purchasetimeframe"} <= names
    assert all(item["IsGlobal"] is True for item in body["value"])
    _, one = call(catalog, "GlobalOptionSetDefinitions(Name='need')")
    assert one["@odata.type"] == "#Microsoft.Dynamics.CRM.OptionSetMetadata"
    _, by_id = call(catalog, f"GlobalOptionSetDefinitions({one['MetadataId']})")
    assert by_id["Name"] == "need"
    response, _ = call(catalog, "GlobalOptionSetDefinitions(Name='nope')")
    assert response.status == 404


def test_unknown_segments_and_methods(catalog: Catalog) -> None:
    """§4.9: unknown segments -> 404 "Resource not found for the segment"; no writes to tables."""
    response, body = call(catalog, "EntityDefinitions(LogicalName='contact')/Columns")
    assert_error(response, body, 404, "0x80060888", "Resource not found for the segment 'Columns'.")
    response, body = call(catalog, "EntityDefinitions(LogicalName='contact')", method="DELETE")
    assert_error(
        response,
        body,
        405,
        "0x80060888",
        "The requested resource does not support http method 'DELETE'.",
    )
    response, body = call(catalog, "EntityDefinitions", "$expand=Columns")
    assert response.status == 400
    assert body["error"]["message"] == (
        "Could not find a property named 'Columns' on type 'Microsoft.Dynamics.CRM.EntityMetadata'."
    )


def test_bad_filter_is_a_bad_request(catalog: Catalog) -> None:
    """§3.1: malformed $filter -> 400; unknown filter property -> 400 0x0."""
    response, _ = call(catalog, "EntityDefinitions", "$filter=LogicalName eq")
    assert response.status == 400
    response, body = call(catalog, "EntityDefinitions", "$filter=Colour eq 'red'")
    assert body["error"]["code"] == "0x0"


def test_managed_property_filter(catalog: Catalog) -> None:
    """§3.1: managed properties need the path: CanCreateAttributes/Value eq true."""
    _, body = call(
        catalog,
        "EntityDefinitions",
        "$select=LogicalName&$filter=CanCreateAttributes/Value eq true",
    )
    assert len(body["value"]) == len(catalog.tables())
    path = "EntityDefinitions(LogicalName='contact')/Attributes"
    query = (
        "$select=LogicalName&$filter=RequiredLevel/Value eq "
        f"{CRM}AttributeRequiredLevel'ApplicationRequired'"
    )
    _, body = call(catalog, path, query)
    assert "lastname" in {v["LogicalName"] for v in body["value"]}
    assert "firstname" not in {v["LogicalName"] for v in body["value"]}


def test_unknown_attribute(catalog: Catalog) -> None:
    """§3.1: an attribute that does not exist -> 404."""
    response, body = call(catalog, f"{CONTACT_ATTRIBUTES}(LogicalName='nope')")
    assert_error(
        response, body, 404, "0x80040217", "Could not find attribute 'nope' on entity 'contact'."
    )
