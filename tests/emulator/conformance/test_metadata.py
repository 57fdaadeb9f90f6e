"""Conformance: EntityDefinitions, attributes with casts, keys and relationships (§3)."""

from __future__ import annotations

from conformance_support import GUID, JSON_CONTENT_TYPE

CONTACT = "EntityDefinitions(LogicalName='contact')"


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
