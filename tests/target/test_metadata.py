"""Table metadata on the emulator: what is fetched (§3.1, §3.4 casts, §3.9), how it is read, cached.

The transport double answers only what the emulator cannot be made to say (a refused bulk probe,
a 500 on a definition, a definition missing members) and passes every other request through.
"""

from __future__ import annotations

import json
import threading

import pytest

from target_dynamics.errors import MetadataError
from target_dynamics.metadata import close_names, parse_column
from tests.target.transport_double import reply

COMPOSITE_KEY = {
    "keys": [
        {
            "table": "contact",
            "schema_name": "contact_email_name",
            "key_attributes": ["emailaddress1", "lastname"],
        }
    ]
}


def test_reads_columns_keys_and_relationships(emulator_factory, dataverse_on, tmp_path):
    """§3.3-§3.6: derived-type facts come from the casts; keys from the definition."""
    entities = tmp_path / "entities.json"
    entities.write_text(json.dumps(COMPOSITE_KEY), encoding="utf-8")
    dataverse = dataverse_on(emulator_factory(latency="zero", entities_file=entities))
    table = dataverse.metadata().table("contact")
    assert (table.logical_name, table.entity_set, table.primary_id) == (
        "contact",
        "contacts",
        "contactid",
    )
    assert table.keys == {
        "emailaddress1_key": ("emailaddress1",),
        "contact_email_name": ("emailaddress1", "lastname"),
    }
    columns = table.columns
    assert columns["firstname"].max_length == 50
    assert (columns["annualincome"].precision, columns["annualincome"].max_value) == (
        2,
        100000000000000,
    )
    assert columns["annualincome_base"].attribute_of == "annualincome"
    assert columns["birthdate"].date_only
    assert not columns["lastonholdtime"].date_only
    assert columns["gendercode"].options == {1: "Male", 2: "Female"}
    assert columns["creditonhold"].options == {1: "Yes", 0: "No"}
    assert columns["statecode"].options == {0: "Active", 1: "Inactive"}
    assert columns["parentcustomerid"].targets == ("account", "contact")
    assert columns["ownerid"].required_level == "SystemRequired"
    assert not columns["fullname"].valid_for_create
    assert table.lookups["parentcustomerid"] == [
        ("account", "parentcustomerid_account"),
        ("contact", "parentcustomerid_contact"),
    ]
    # Owner relationships point at the abstract "owner" table; each target binds through it.
    assert table.lookups["ownerid"] == [("systemuser", "ownerid"), ("team", "ownerid")]
    assert table.supports_bulk
    assert table.key_for(["lastname", "emailaddress1"]) == "contact_email_name"
    assert table.key_for(["lastname"]) is None


def test_fetches_once_per_table_and_only_the_casts_it_needs(dataverse):
    """§3.9: one definition GET plus one GET per derived type present; cached afterwards."""
    cache = dataverse.metadata()
    table = cache.table("account")
    cache.table("accounts")
    cache.table("ACCOUNT")
    account_paths = [p for p in dataverse.paths() if "account" in p]
    assert account_paths[0].startswith("GET EntityDefinitions(LogicalName='account')?$select=")
    assert "$expand=Attributes(" in account_paths[0]
    assert "Keys(" in account_paths[0]
    assert "ManyToOneRelationships(" in account_paths[0]
    casts = [p for p in dataverse.paths() if "/Attributes/Microsoft.Dynamics.CRM." in p]
    assert len(casts) == len(set(casts))
    assert (
        "GET EntityDefinitions(LogicalName='account')/Attributes/Microsoft.Dynamics.CRM."
        "StringAttributeMetadata?$select=LogicalName,MaxLength"
    ) in casts
    present = {c.type_name for c in table.columns.values()}
    assert "MultiSelectPicklistType" not in present
    assert not any("MultiSelectPicklistAttributeMetadata" in p for p in casts)
    definitions = [p for p in dataverse.paths() if "EntityDefinitions(LogicalName='account')?" in p]
    assert len(definitions) == 1


def test_concurrent_first_use_fetches_once(dataverse):
    cache = dataverse.metadata()
    threads = [threading.Thread(target=cache.table, args=("contacts",)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    definitions = [p for p in dataverse.paths() if "EntityDefinitions(LogicalName='contact')?" in p]
    assert len(definitions) == 1


def test_unknown_table_lists_close_names(dataverse):
    """§3.7: an unknown table fails with what exists nearby."""
    with pytest.raises(MetadataError) as caught:
        dataverse.metadata().table("contcts")
    assert "Table 'contcts' not found" in str(caught.value)
    assert "Did you mean: contacts" in str(caught.value)


def test_names_that_cannot_go_into_a_url_are_not_requested(dataverse):
    with pytest.raises(MetadataError, match="not found"):
        dataverse.metadata().table("test:SpecialChars!in?attributes")
    assert all("SpecialChars" not in p for p in dataverse.paths())


def test_bulk_probe_failure_means_no_bulk(dataverse):
    """§6.5: no sdkmessagefilters answer -> write through $batch."""

    def refuse_probe(request):
        if "/sdkmessagefilters" not in request.path:
            return None
        body = {"error": {"code": "0x80040220", "message": "no privilege"}}
        return reply(403, json=body)

    with dataverse.transport.answering(refuse_probe) as refused:
        assert not dataverse.metadata().table("account").supports_bulk
    assert refused


def test_table_without_bulk_messages_means_no_bulk(emulator_factory, dataverse_on, tmp_path):
    entities = tmp_path / "entities.json"
    entities.write_text(json.dumps({"supports_bulk": {"account": False}}), encoding="utf-8")
    dataverse = dataverse_on(emulator_factory(latency="zero", entities_file=entities))
    assert not dataverse.metadata().table("account").supports_bulk
    assert dataverse.metadata().table("contact").supports_bulk


def test_metadata_read_failure_names_the_table(dataverse):
    def broken(request):
        if "entitydefinitions(logicalname='account')" not in request.path.lower():
            return None
        return reply(500, json={"error": {"code": "0x80040216", "message": "boom"}})

    with (
        dataverse.transport.answering(broken),
        pytest.raises(MetadataError, match="metadata of table 'account': 500"),
    ):
        dataverse.metadata().table("account")


@pytest.mark.parametrize(
    ("broken", "words"),
    [
        ({"EntitySetName": None}, "table 'account' has no EntitySetName"),
        ({"PrimaryIdAttribute": None}, "table 'account' has no PrimaryIdAttribute"),
        (
            {"Keys": [{"SchemaName": "accountnumber_key"}]},
            "table 'account' has no KeyAttributes on key 'accountnumber_key'",
        ),
    ],
)
def test_incomplete_table_metadata_names_the_table(dataverse, api, broken, words):
    """§3.2, §3.6: a definition without its entity set, primary id or key columns is a
    MetadataError naming the table, not a bare KeyError."""

    dataverse.metadata().table("account")
    [url] = [r.url for r in dataverse.sent if "EntityDefinitions(LogicalName='account')?" in r.url]
    definition = api.get(url, timeout=30).json()
    for name, value in broken.items():
        definition.pop(name)
        if value is not None:
            definition[name] = value

    def incomplete(request):
        if request.url != url:
            return None
        return reply(json=definition)

    with (
        dataverse.transport.answering(incomplete) as answered,
        pytest.raises(MetadataError, match=words),
    ):
        dataverse.metadata().table("account")
    assert answered


def test_column_type_falls_back_to_attribute_type():
    column = parse_column({"LogicalName": "x", "AttributeType": "Integer"}, {})
    assert column.type_name == "IntegerType"


@pytest.mark.parametrize(
    ("behavior", "fmt", "date_only"),
    [
        ("DateOnly", "DateOnly", True),
        ("UserLocal", "DateOnly", False),
        ("TimeZoneIndependent", "DateOnly", False),
        ("UserLocal", "DateAndTime", False),
    ],
)
def test_date_only_follows_the_behaviour_not_the_format(behavior, fmt, date_only):
    """§4.6: only DateOnly behaviour is ``Edm.Date``; the format is display only."""
    common = {"LogicalName": "x", "AttributeType": "DateTime"}
    derived = {"Format": fmt, "DateTimeBehavior": {"Value": behavior}}
    assert parse_column(common, derived).date_only is date_only


def test_close_names_is_case_insensitive():
    assert close_names("EmailAddress", ["emailaddress1", "fullname"]) == ["emailaddress1"]
