"""Conformance: EntityDefinitions, attributes with casts, keys and relationships (§3)."""

from __future__ import annotations

from conformance_support import GUID, JSON_CONTENT_TYPE

CONTACT = "EntityDefinitions(LogicalName='contact')"
ACCOUNTNUMBER_KEY_ID = "1dc7b1d2-6beb-ec11-bb3d-0022482ea769"
"""§3.6: the MetadataId of Microsoft's ``accountnumber`` key example."""


def ok_json(response):
    """200 with the §2.3 JSON headers; return the body."""
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == JSON_CONTENT_TYPE
    assert response.headers["OData-Version"] == "4.0"
    return response.json()


def test_list_with_select_and_filter(dv):
    """§3.9: Microsoft's Python SDK sends ``$select=LogicalName,EntitySetName,
    PrimaryIdAttribute&$filter=LogicalName eq 'account'`` with spaces as ``+``; §3.1:
    ``$select`` on any property, ``MetadataId`` is always returned."""
    response = dv.get(
        "EntityDefinitions?$select=LogicalName,EntitySetName,PrimaryIdAttribute"
        "&$filter=LogicalName+eq+'account'"
    )
    body = ok_json(response)
    assert body["@odata.context"] == (
        f"{dv.api_url}/$metadata#EntityDefinitions(LogicalName,EntitySetName,PrimaryIdAttribute)"
    )
    assert len(body["value"]) == 1
    item = body["value"][0]
    assert {k: v for k, v in item.items() if not k.startswith("@")} == {
        "LogicalName": "account",
        "EntitySetName": "accounts",
        "PrimaryIdAttribute": "accountid",
        "MetadataId": item["MetadataId"],
    }
    assert GUID.match(item["MetadataId"])


def test_list_is_not_paged(dv):
    """§3.1: "No paging: all matches come in the first response" (even with maxpagesize)."""
    response = dv.get(
        "EntityDefinitions?$select=LogicalName", headers={"Prefer": "odata.maxpagesize=2"}
    )
    body = ok_json(response)
    names = {item["LogicalName"] for item in body["value"]}
    assert {"account", "contact", "lead", "new_membership", "new_visit"} <= names
    assert "@odata.nextLink" not in body


def test_filter_on_enum_property(dv):
    """§3.1: enum filter values need the namespace
    (``OwnershipType eq Microsoft.Dynamics.CRM.OwnershipTypes'UserOwned'``)."""
    response = dv.get(
        "EntityDefinitions?$select=LogicalName,OwnershipType&$filter=OwnershipType eq "
        "Microsoft.Dynamics.CRM.OwnershipTypes'OrganizationOwned'"
    )
    body = ok_json(response)
    names = {item["LogicalName"] for item in body["value"]}
    assert "new_visit" in names
    assert "contact" not in names
    assert {item["OwnershipType"] for item in body["value"]} == {"OrganizationOwned"}


def test_single_entity_by_logical_name(dv):
    """§3.1: a single object whose context ends in ``/$entity`` (not a ``value`` array);
    §3.2: the documented contact facts, ``IsValidForAdvancedFind`` a plain boolean."""
    body = ok_json(dv.get(CONTACT))
    assert body["@odata.context"] == f"{dv.api_url}/$metadata#EntityDefinitions/$entity"
    assert "value" not in body
    expected = {
        "LogicalName": "contact",
        "SchemaName": "Contact",
        "EntitySetName": "contacts",
        "LogicalCollectionName": "contacts",
        "CollectionSchemaName": "Contacts",
        "PrimaryIdAttribute": "contactid",
        "PrimaryNameAttribute": "fullname",
        "PrimaryImageAttribute": "entityimage",
        "OwnershipType": "UserOwned",
        "ObjectTypeCode": 2,
        "MetadataId": "608861bc-50a4-4c5f-a02c-21fe1943e2cf",
    }
    assert {name: body[name] for name in expected} == expected
    assert isinstance(body["IsValidForAdvancedFind"], bool)


def test_full_contact_request_of_section_3_8(dv):
    """§3.8: the composite request (``$select`` + ``$expand`` of Attributes, Keys,
    ManyToOneRelationships) answers the documented shape."""
    response = dv.get(
        f"{CONTACT}?$select=LogicalName,SchemaName,EntitySetName,PrimaryIdAttribute"
        "&$expand=Attributes($select=LogicalName,AttributeType,AttributeTypeName,RequiredLevel,"
        "IsValidForCreate,IsValidForUpdate,AttributeOf),"
        "Keys($select=LogicalName,SchemaName,KeyAttributes,EntityKeyIndexStatus),"
        "ManyToOneRelationships($select=SchemaName,ReferencedEntity,ReferencingAttribute,"
        "ReferencingEntityNavigationPropertyName)"
    )
    body = ok_json(response)
    assert body["@odata.context"].startswith(
        f"{dv.api_url}/$metadata#EntityDefinitions(LogicalName,SchemaName,EntitySetName,"
        "PrimaryIdAttribute,Attributes(LogicalName,"
    )
    assert body["@odata.context"].endswith("))/$entity")
    attributes = {item["LogicalName"]: item for item in body["Attributes"]}
    contactid = attributes["contactid"]
    assert contactid["AttributeType"] == "Uniqueidentifier"
    assert contactid["AttributeTypeName"] == {"Value": "UniqueidentifierType"}
    assert contactid["RequiredLevel"]["Value"] == "SystemRequired"
    assert contactid["IsValidForUpdate"] is False
    assert attributes["lastname"]["RequiredLevel"]["Value"] == "ApplicationRequired"
    assert attributes["fullname"]["IsValidForCreate"] is False
    assert attributes["parentcustomerid"]["AttributeType"] == "Customer"
    assert attributes["parentcustomeridname"]["AttributeOf"] == "parentcustomerid"
    assert attributes["emailaddress1"]["@odata.type"] == (
        "#Microsoft.Dynamics.CRM.StringAttributeMetadata"
    )
    assert "MaxLength" not in attributes["emailaddress1"]  # §3.1, §11 #5: common fields only
    assert [key["KeyAttributes"] for key in body["Keys"]] == [["emailaddress1"]]
    navigation = {
        item["SchemaName"]: item["ReferencingEntityNavigationPropertyName"]
        for item in body["ManyToOneRelationships"]
    }
    assert navigation["contact_customer_accounts"] == "parentcustomerid_account"
    assert navigation["contact_customer_contacts"] == "parentcustomerid_contact"


def test_string_cast_max_length(dv):
    """§3.4: ``StringAttributeMetadata`` has ``MaxLength`` and ``FormatName``; contact
    emailaddress1 is String 100, FormatName Email (§3.8 facts)."""
    body = ok_json(
        dv.get(
            f"{CONTACT}/Attributes(LogicalName='emailaddress1')/"
            "Microsoft.Dynamics.CRM.StringAttributeMetadata?$select=MaxLength,FormatName"
        )
    )
    assert body["@odata.context"] == (
        f"{dv.api_url}/$metadata#EntityDefinitions('contact')/Attributes/"
        "Microsoft.Dynamics.CRM.StringAttributeMetadata(MaxLength,FormatName)/$entity"
    )
    assert body["MaxLength"] == 100
    assert body["FormatName"] == {"Value": "Email"}
    assert GUID.match(body["MetadataId"])


def test_picklist_cast_option_set(dv):
    """§3.4: ``PicklistAttributeMetadata`` with ``$expand=OptionSet($select=Options)`` →
    ``Options[].Value`` and labels; contact gendercode 1 = Male, 2 = Female (§3.8)."""
    body = ok_json(
        dv.get(
            f"{CONTACT}/Attributes(LogicalName='gendercode')/"
            "Microsoft.Dynamics.CRM.PicklistAttributeMetadata?$select=LogicalName"
            "&$expand=OptionSet($select=Options),GlobalOptionSet($select=Options)"
        )
    )
    assert body["@odata.context"] == (
        f"{dv.api_url}/$metadata#EntityDefinitions('contact')/Attributes/"
        "Microsoft.Dynamics.CRM.PicklistAttributeMetadata"
        "(LogicalName,OptionSet(Options),GlobalOptionSet(Options))/$entity"
    )
    options = {
        option["Value"]: option["Label"]["LocalizedLabels"][0]["Label"]
        for option in body["OptionSet"]["Options"]
    }
    assert options == {1: "Male", 2: "Female"}
    assert body["OptionSet"]["Options"][0]["Label"]["LocalizedLabels"][0]["LanguageCode"] == 1033


def test_picklist_collection_cast(dv):
    """§3.9: ``Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata?$select=LogicalName
    &$expand=OptionSet($select=Options)`` lists only choice columns."""
    body = ok_json(
        dv.get(
            f"{CONTACT}/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata"
            "?$select=LogicalName&$expand=OptionSet($select=Options)"
        )
    )
    names = {item["LogicalName"] for item in body["value"]}
    assert {"gendercode", "familystatuscode", "preferredcontactmethodcode"} <= names
    assert "emailaddress1" not in names
    assert all("Options" in item["OptionSet"] for item in body["value"])


def test_boolean_cast(dv):
    """§3.4: ``BooleanAttributeMetadata`` has ``DefaultValue``; ``$expand=OptionSet`` gives
    ``TrueOption`` / ``FalseOption``; contact creditonhold defaults to 0 (§3.8)."""
    body = ok_json(
        dv.get(
            f"{CONTACT}/Attributes(LogicalName='creditonhold')/"
            "Microsoft.Dynamics.CRM.BooleanAttributeMetadata?$select=DefaultValue&$expand=OptionSet"
        )
    )
    assert body["DefaultValue"] is False
    assert body["OptionSet"]["TrueOption"]["Value"] == 1
    assert body["OptionSet"]["FalseOption"]["Value"] == 0


def test_datetime_cast(dv):
    """§3.4: ``DateTimeAttributeMetadata`` has ``Format`` and ``DateTimeBehavior``; contact
    birthdate is DateOnly / DateOnly (§3.8)."""
    body = ok_json(
        dv.get(
            f"{CONTACT}/Attributes(LogicalName='birthdate')/"
            "Microsoft.Dynamics.CRM.DateTimeAttributeMetadata?$select=Format,DateTimeBehavior"
        )
    )
    assert body["Format"] == "DateOnly"
    assert body["DateTimeBehavior"] == {"Value": "DateOnly"}


def test_lookup_cast_targets(dv):
    """§3.4: ``LookupAttributeMetadata?$select=Targets`` → ``{"Targets":["account","contact"],
    "MetadataId":…}``; contact parentcustomerid Targets account, contact (§3.8)."""
    body = ok_json(
        dv.get(
            f"{CONTACT}/Attributes(LogicalName='parentcustomerid')/"
            "Microsoft.Dynamics.CRM.LookupAttributeMetadata?$select=Targets"
        )
    )
    assert body["@odata.context"] == (
        f"{dv.api_url}/$metadata#EntityDefinitions('contact')/Attributes/"
        "Microsoft.Dynamics.CRM.LookupAttributeMetadata(Targets)/$entity"
    )
    assert sorted(body["Targets"]) == ["account", "contact"]
    assert GUID.match(body["MetadataId"])


def test_attribute_collection_filter_reports_derived_type(dv):
    """§3.4: ``Attributes?$filter=LogicalName eq 'x'&$select=MetadataId`` → items carry the
    derived ``@odata.type``."""
    body = ok_json(
        dv.get(f"{CONTACT}/Attributes?$filter=LogicalName eq 'gendercode'&$select=MetadataId")
    )
    assert [item["@odata.type"] for item in body["value"]] == [
        "#Microsoft.Dynamics.CRM.PicklistAttributeMetadata"
    ]


def test_keys(dv):
    """§3.6: ``KeyAttributes``, ``EntityKeyIndexStatus`` ("Active" keys are usable); the
    default environment defines the ``contact.emailaddress1`` key."""
    body = ok_json(dv.get(f"{CONTACT}/Keys?$select=SchemaName,KeyAttributes,EntityKeyIndexStatus"))
    assert body["@odata.context"].startswith(f"{dv.api_url}/$metadata#EntityDefinitions(")
    assert [(key["KeyAttributes"], key["EntityKeyIndexStatus"]) for key in body["value"]] == [
        (["emailaddress1"], "Active")
    ]
    assert GUID.match(body["value"][0]["MetadataId"])


def test_many_to_one_relationships(dv):
    """§3.5: navigation names ``parentcustomerid_account`` / ``parentcustomerid_contact``
    for ``contact_customer_accounts`` / ``contact_customer_contacts``."""
    body = ok_json(
        dv.get(
            f"{CONTACT}/ManyToOneRelationships?$select=SchemaName,ReferencedEntity,"
            "ReferencedAttribute,ReferencingAttribute,ReferencingEntityNavigationPropertyName"
        )
    )
    by_schema = {item["SchemaName"]: item for item in body["value"]}
    account = by_schema["contact_customer_accounts"]
    assert {k: v for k, v in account.items() if k != "MetadataId"} == {
        "SchemaName": "contact_customer_accounts",
        "ReferencedEntity": "account",
        "ReferencedAttribute": "accountid",
        "ReferencingAttribute": "parentcustomerid",
        "ReferencingEntityNavigationPropertyName": "parentcustomerid_account",
    }
    assert by_schema["contact_customer_contacts"]["ReferencingEntityNavigationPropertyName"] == (
        "parentcustomerid_contact"
    )


def test_custom_lookup_keeps_schema_name_casing(dv):
    """§3.5: custom lookups use SchemaName casing for the navigation property."""
    body = ok_json(
        dv.get(
            "EntityDefinitions(LogicalName='new_membership')/ManyToOneRelationships"
            "?$select=ReferencingAttribute,ReferencedEntity,ReferencingEntityNavigationPropertyName"
        )
    )
    pairs = {
        (item["ReferencingAttribute"], item["ReferencedEntity"]): item[
            "ReferencingEntityNavigationPropertyName"
        ]
        for item in body["value"]
    }
    assert pairs[("new_contactid", "contact")] == "new_ContactId"


def test_unknown_table_is_404(dv):
    """§3.7: an unknown table → 404; §11 #7: code 0x80040217, "Could not find an entity with
    name <name> and id 00000000-0000-0000-0000-000000000000."."""
    dv.assert_error(
        dv.get("EntityDefinitions(LogicalName='crmbaseentity')"),
        404,
        "0x80040217",
        "Could not find an entity with name crmbaseentity and id "
        "00000000-0000-0000-0000-000000000000.",
    )


def test_entity_by_metadata_id(dv):
    """§3.1: ``EntityDefinitions(<guid>)`` addresses a table by MetadataId."""
    body = ok_json(dv.get("EntityDefinitions(608861bc-50a4-4c5f-a02c-21fe1943e2cf)"))
    assert body["LogicalName"] == "contact"


def test_attribute_by_name_without_cast(dv):
    """§3.1: ``…/Attributes(LogicalName='emailaddress1')`` with the §3.3 common fields."""
    body = ok_json(dv.get(f"{CONTACT}/Attributes(LogicalName='emailaddress1')"))
    assert body["@odata.type"] == "#Microsoft.Dynamics.CRM.StringAttributeMetadata"
    assert (body["LogicalName"], body["SchemaName"]) == ("emailaddress1", "EMailAddress1")
    assert (body["AttributeType"], body["AttributeTypeName"]) == (
        "String",
        {"Value": "StringType"},
    )
    assert body["EntityLogicalName"] == "contact"
    assert body["IsValidForAdvancedFind"]["ManagedPropertyLogicalName"] == (
        "canmodifysearchsettings"
    )
    assert body["RequiredLevel"]["ManagedPropertyLogicalName"] == (
        "canmodifyrequirementlevelsettings"
    )


def test_numeric_and_memo_casts(dv):
    """§3.4: Money ``Precision``/``MinValue``/``MaxValue``; Integer ``MinValue``/``MaxValue``;
    Memo ``MaxLength`` (contact annualincome 2 / 0..1e14, numberofchildren 0..1e9,
    description 2000, §3.8)."""
    attributes = f"{CONTACT}/Attributes"
    money = ok_json(
        dv.get(
            f"{attributes}(LogicalName='annualincome')/Microsoft.Dynamics.CRM."
            "MoneyAttributeMetadata?$select=Precision,MinValue,MaxValue"
        )
    )
    assert (money["Precision"], money["MinValue"], money["MaxValue"]) == (2, 0, 100000000000000)
    integer = ok_json(
        dv.get(
            f"{attributes}(LogicalName='numberofchildren')/Microsoft.Dynamics.CRM."
            "IntegerAttributeMetadata?$select=MinValue,MaxValue"
        )
    )
    assert (integer["MinValue"], integer["MaxValue"]) == (0, 1000000000)
    memo = ok_json(
        dv.get(
            f"{attributes}(LogicalName='description')/Microsoft.Dynamics.CRM."
            "MemoAttributeMetadata?$select=MaxLength"
        )
    )
    assert memo["MaxLength"] == 2000


def test_money_collection_cast(dv):
    """§3.1: ``…/Attributes/Microsoft.Dynamics.CRM.MoneyAttributeMetadata?$select=
    LogicalName,Precision``."""
    body = ok_json(
        dv.get(
            f"{CONTACT}/Attributes/Microsoft.Dynamics.CRM.MoneyAttributeMetadata"
            "?$select=LogicalName,Precision"
        )
    )
    precision = {item["LogicalName"]: item["Precision"] for item in body["value"]}
    assert precision["annualincome"] == 2
    assert "emailaddress1" not in precision


def test_keys_expanded_on_list(dv):
    """§3.6: ``EntityDefinitions?$select=SchemaName&$expand=Keys($select=KeyAttributes)`` →
    items like ``{"SchemaName":"Account","MetadataId":…,"Keys":[{"KeyAttributes":
    ["accountnumber"],"MetadataId":"1dc7b1d2-6beb-ec11-bb3d-0022482ea769"}]}``."""
    body = ok_json(
        dv.get("EntityDefinitions?$select=SchemaName&$expand=Keys($select=KeyAttributes)")
    )
    account = next(item for item in body["value"] if item["SchemaName"] == "Account")
    assert [{k: v for k, v in key.items() if not k.startswith("@")} for key in account["Keys"]] == [
        {"KeyAttributes": ["accountnumber"], "MetadataId": "1dc7b1d2-6beb-ec11-bb3d-0022482ea769"}
    ]


def test_relationship_definition_cast(dv):
    """§3.5: ``RelationshipDefinitions(SchemaName=…)/Microsoft.Dynamics.CRM.
    OneToManyRelationshipMetadata`` → context ``…#RelationshipDefinitions/Microsoft.Dynamics.
    CRM.OneToManyRelationshipMetadata/$entity`` and the documented members."""
    body = ok_json(
        dv.get(
            "RelationshipDefinitions(SchemaName='contact_customer_accounts')/"
            "Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata"
        )
    )
    assert body["@odata.context"] == (
        f"{dv.api_url}/$metadata#RelationshipDefinitions/"
        "Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata/$entity"
    )
    expected = {
        "SchemaName": "contact_customer_accounts",
        "ReferencedEntity": "account",
        "ReferencedAttribute": "accountid",
        "ReferencingEntity": "contact",
        "ReferencingAttribute": "parentcustomerid",
        "ReferencingEntityNavigationPropertyName": "parentcustomerid_account",
        "RelationshipType": "OneToManyRelationship",
    }
    assert {name: body[name] for name in expected} == expected
    assert set(body["CascadeConfiguration"]) >= {"Assign", "Delete", "Merge", "Reparent"}


def test_calls_of_dataverse_api_client(dv):
    """§3.9: the five GETs ``dataverse-api`` runs when an entity object is constructed."""
    table = "EntityDefinitions(LogicalName='account')"
    keys = ok_json(dv.get(f"{table}/Keys?$select=SchemaName,KeyAttributes"))
    assert [key["KeyAttributes"] for key in keys["value"]] == [["accountnumber"]]
    entity = ok_json(
        dv.get(f"{table}?$select=EntitySetName,PrimaryIdAttribute,PrimaryImageAttribute")
    )
    assert (entity["EntitySetName"], entity["PrimaryIdAttribute"]) == ("accounts", "accountid")
    assert "PrimaryImageAttribute" in entity
    one_to_many = ok_json(dv.get(f"{table}/OneToManyRelationships"))
    assert "contact_customer_accounts" in {item["SchemaName"] for item in one_to_many["value"]}
    many_to_one = ok_json(dv.get(f"{table}/ManyToOneRelationships"))
    assert "account_primary_contact" in {item["SchemaName"] for item in many_to_one["value"]}


def test_call_of_airbyte_source(dv):
    """§3.9: airbyte's ``$select=…,CanChangeTrackingBeEnabled,ChangeTrackingEnabled&$expand=
    Attributes($select=LogicalName,AttributeType)``."""
    body = ok_json(
        dv.get(
            "EntityDefinitions?$select=LogicalName,EntitySetName,PrimaryIdAttribute,"
            "CanChangeTrackingBeEnabled,ChangeTrackingEnabled"
            "&$expand=Attributes($select=LogicalName,AttributeType)"
        )
    )
    contact = next(item for item in body["value"] if item["LogicalName"] == "contact")
    assert isinstance(contact["ChangeTrackingEnabled"], bool)
    assert "CanChangeTrackingBeEnabled" in contact
    types = {item["LogicalName"]: item["AttributeType"] for item in contact["Attributes"]}
    assert types["birthdate"] == "DateTime"


def test_create_key_then_upsert_through_it(dv):
    """§3.6: ``POST EntityDefinitions(LogicalName='x')/Keys`` with ``SchemaName``,
    ``DisplayName``, ``KeyAttributes`` creates a key; once Active it addresses rows (§4.3)."""
    label = {"LocalizedLabels": [{"Label": "Ticker", "LanguageCode": 1033}]}
    response = dv.post(
        "EntityDefinitions(LogicalName='account')/Keys",
        json={
            "SchemaName": "new_tickersymbol_key",
            "DisplayName": label,
            "KeyAttributes": ["tickersymbol"],
        },
    )
    assert response.status_code in {201, 204}, response.text
    keys = ok_json(
        dv.get(
            "EntityDefinitions(LogicalName='account')/Keys"
            "?$select=SchemaName,KeyAttributes,EntityKeyIndexStatus"
        )
    )
    created = next(key for key in keys["value"] if key["SchemaName"] == "new_tickersymbol_key")
    assert created["KeyAttributes"] == ["tickersymbol"]
    assert created["EntityKeyIndexStatus"] in {"Pending", "InProgress", "Active"}
    if created["EntityKeyIndexStatus"] == "Active":
        assert dv.patch("accounts(tickersymbol='MSFT')", json={"name": "M"}).status_code == 204


def test_attributes_say_whether_they_are_web_api_properties(dv):
    """Microsoft Learn, "AttributeMetadata.IsValidODataAttribute Property"
    (https://learn.microsoft.com/dotnet/api/microsoft.xrm.sdk.metadata.attributemetadata.isvalidodataattribute):
    true when the attribute is a Web API property. Lookup name shadows (``parentcustomeridname``,
    AttributeOf the lookup, §3.8) are not; ordinary columns and the lookup itself are."""
    body = ok_json(dv.get(f"{CONTACT}/Attributes"))
    valid = {a["LogicalName"]: a["IsValidODataAttribute"] for a in body["value"]}
    assert valid["lastname"] is True
    assert valid["parentcustomerid"] is True
    assert valid["parentcustomeridname"] is False
    assert valid["createdbyname"] is False
    shadow = ok_json(dv.get(f"{CONTACT}/Attributes(LogicalName='parentcustomeridname')"))
    assert shadow["IsValidODataAttribute"] is False
