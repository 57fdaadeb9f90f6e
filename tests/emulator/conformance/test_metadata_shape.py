"""Conformance: the shape of attribute lists, choice label columns and global choices (§3).

Microsoft Learn, "Query table definitions using the Web API"
(https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query-metadata-web-api)
and "Use the Web API with table definitions"
(https://learn.microsoft.com/power-apps/developer/data-platform/webapi/use-web-api-metadata):
``Attributes`` is a collection of AttributeMetadata whose items are of derived types, cast with
``Microsoft.Dynamics.CRM.<Type>AttributeMetadata``; global choices live in
``GlobalOptionSetDefinitions``.
"""

from __future__ import annotations

from conformance_support import GUID, JSON_CONTENT_TYPE

CONTACT = "EntityDefinitions(LogicalName='contact')"
LEAD = "EntityDefinitions(LogicalName='lead')"
NS = "#Microsoft.Dynamics.CRM."


def ok_json(response):
    """200 with the §2.3 JSON headers; return the body."""
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == JSON_CONTENT_TYPE
    return response.json()


def by_name(body):
    """The ``value`` items by LogicalName."""
    return {item["LogicalName"]: item for item in body["value"]}


def test_attribute_list_without_select_carries_derived_properties(dv):
    """§3.3, §3.4, §11 #5: without ``$select`` each item of ``Attributes`` is serialised as its
    derived type, with that type's properties, as the service answers (recorded)."""
    items = by_name(ok_json(dv.get(f"{CONTACT}/Attributes")))
    email = items["emailaddress1"]
    assert email["@odata.type"] == f"{NS}StringAttributeMetadata"
    assert (email["MaxLength"], email["FormatName"]) == (100, {"Value": "Email"})
    assert email["IsValidODataAttribute"] is True
    assert items["description"]["MaxLength"] == 2000
    assert sorted(items["parentcustomerid"]["Targets"]) == ["account", "contact"]
    income = items["annualincome"]
    assert (income["Precision"], income["MinValue"], income["MaxValue"]) == (
        2,
        0,
        100_000_000_000_000,
    )
    children = items["numberofchildren"]
    assert (children["MinValue"], children["MaxValue"]) == (0, 1_000_000_000)
    assert items["birthdate"]["Format"] == "DateOnly"
    assert items["birthdate"]["DateTimeBehavior"] == {"Value": "DateOnly"}
    assert items["creditonhold"]["DefaultValue"] is False


def test_base_type_items_carry_no_odata_type(dv):
    """§3.8, §11 #11: Uniqueidentifier and Virtual items are of the collection's own type
    (AttributeMetadata), so they carry no ``@odata.type``, with or without ``$select``."""
    for query in ("", "?$select=LogicalName,AttributeType"):
        items = by_name(ok_json(dv.get(f"{CONTACT}/Attributes{query}")))
        assert "@odata.type" not in items["contactid"]
        assert "@odata.type" not in items["gendercodename"]
        assert items["gendercode"]["@odata.type"] == f"{NS}PicklistAttributeMetadata"
    one = ok_json(dv.get(f"{CONTACT}/Attributes(LogicalName='contactid')"))
    assert "@odata.type" not in one


def test_cast_collection_without_select_carries_the_cast_properties(dv):
    """§3.4: ``Attributes/Microsoft.Dynamics.CRM.StringAttributeMetadata`` lists only String
    columns, each with its String properties and no ``@odata.type`` (it is the cast type)."""
    body = ok_json(dv.get(f"{CONTACT}/Attributes/Microsoft.Dynamics.CRM.StringAttributeMetadata"))
    assert body["@odata.context"] == (
        f"{dv.api_url}/$metadata#EntityDefinitions('contact')/Attributes/"
        "Microsoft.Dynamics.CRM.StringAttributeMetadata"
    )
    items = by_name(body)
    assert "gendercode" not in items
    assert items["lastname"]["MaxLength"] == 50
    assert all("MaxLength" in item and "@odata.type" not in item for item in items.values())
    lookups = by_name(
        ok_json(dv.get(f"{CONTACT}/Attributes/Microsoft.Dynamics.CRM.LookupAttributeMetadata"))
    )
    assert sorted(lookups["ownerid"]["Targets"]) == ["systemuser", "team"]


def test_select_and_filter_on_a_base_list_name_base_properties_only(dv):
    """§3.4: a derived property needs the cast: ``$select=MaxLength`` (or a ``$filter`` on it)
    on the uncast ``Attributes`` is refused, the cast collection accepts it."""
    for query in ("$select=MaxLength", "$filter=MaxLength gt 10"):
        response = dv.get(f"{CONTACT}/Attributes?{query}")
        assert response.status_code == 400, response.text
        assert "MaxLength" in response.json()["error"]["message"]
    cast = f"{CONTACT}/Attributes/Microsoft.Dynamics.CRM.StringAttributeMetadata"
    body = ok_json(dv.get(f"{cast}?$select=LogicalName,MaxLength&$filter=MaxLength gt 1000"))
    assert all(item["MaxLength"] > 1000 for item in body["value"])


def test_choice_columns_have_virtual_name_columns(dv):
    """§3.3, §11 #11: every choice and Yes/No column has a Virtual ``<column>name`` column,
    AttributeOf the choice, read-only and not a Web API property (like the lookup shadows,
    Learn "AttributeMetadata.IsValidODataAttribute Property")."""
    items = by_name(ok_json(dv.get(f"{CONTACT}/Attributes")))
    for choice in ("gendercode", "statecode", "statuscode", "creditonhold"):
        shadow = items[f"{choice}name"]
        assert shadow["AttributeType"] == "Virtual"
        assert shadow["AttributeTypeName"] == {"Value": "VirtualType"}
        assert shadow["AttributeOf"] == choice
        assert shadow["IsValidODataAttribute"] is False
        assert (shadow["IsValidForCreate"], shadow["IsValidForUpdate"]) == (False, False)
        assert GUID.match(shadow["MetadataId"])
    assert items["gendercodename"]["SchemaName"] == "GenderCodeName"
    # Not a property of the entity type: selecting it is refused; the label comes as an
    # annotation of the choice column instead.
    assert dv.get("contacts?$select=gendercodename").status_code == 400


def test_global_choice_fills_global_option_set(dv):
    """§3.4, §11 #17: Learn's lead reference names ``budgetstatus`` as the column's
    GlobalChoiceName (https://learn.microsoft.com/dynamics365/developer/reference/entities/lead);
    the cast answers it in ``GlobalOptionSet`` (``IsGlobal`` true) and ``OptionSet`` null, while a
    choice of its own (contact ``gendercode``) fills ``OptionSet``."""
    expand = "$select=LogicalName&$expand=OptionSet($select=Options),GlobalOptionSet"
    lead = ok_json(
        dv.get(
            f"{LEAD}/Attributes(LogicalName='budgetstatus')/"
            f"Microsoft.Dynamics.CRM.PicklistAttributeMetadata?{expand}"
        )
    )
    assert lead["OptionSet"] is None
    shared = lead["GlobalOptionSet"]
    assert (shared["Name"], shared["IsGlobal"]) == ("budgetstatus", True)
    assert [o["Value"] for o in shared["Options"]] == [0, 1, 2, 3]
    contact = ok_json(
        dv.get(
            f"{CONTACT}/Attributes(LogicalName='gendercode')/"
            f"Microsoft.Dynamics.CRM.PicklistAttributeMetadata?{expand}"
        )
    )
    assert contact["GlobalOptionSet"] is None
    assert [o["Value"] for o in contact["OptionSet"]["Options"]] == [1, 2]
    listed = by_name(
        ok_json(
            dv.get(f"{LEAD}/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata?{expand}")
        )
    )
    assert listed["need"]["GlobalOptionSet"]["Name"] == "need"
    assert listed["leadsourcecode"]["GlobalOptionSet"] is None


def test_global_option_set_definitions(dv):
    """Learn "Use the Web API with table definitions": ``GlobalOptionSetDefinitions`` holds the
    global choices (OptionSetMetadata items); addressed by ``(Name='…')`` or MetadataId (§3.1)."""
    body = ok_json(dv.get("GlobalOptionSetDefinitions?$select=Name,IsGlobal,OptionSetType"))
    assert body["@odata.context"] == (
        f"{dv.api_url}/$metadata#GlobalOptionSetDefinitions(Name,IsGlobal,OptionSetType)"
    )
    names = {item["Name"] for item in body["value"]}
    assert {"budgetstatus", "need", "purchaseprocess", "purchasetimeframe"} <= names
    assert all(item["@odata.type"] == f"{NS}OptionSetMetadata" for item in body["value"])
    one = ok_json(dv.get("GlobalOptionSetDefinitions(Name='purchasetimeframe')"))
    assert one["@odata.context"] == f"{dv.api_url}/$metadata#GlobalOptionSetDefinitions/$entity"
    assert one["OptionSetType"] == "Picklist"
    labels = [o["Label"]["UserLocalizedLabel"]["Label"] for o in one["Options"]]
    assert labels[0] == "Immediate"
    same = ok_json(dv.get(f"GlobalOptionSetDefinitions({one['MetadataId']})"))
    assert same["Name"] == "purchasetimeframe"
    missing = dv.get("GlobalOptionSetDefinitions(Name='nosuch')")
    assert missing.status_code == 404
    # A global choice's values are what the column accepts.
    assert dv.create("leads", {"lastname": "G", "purchasetimeframe": 4})
    refused = dv.post("leads", json={"lastname": "G", "purchasetimeframe": 9})
    assert refused.status_code == 400
