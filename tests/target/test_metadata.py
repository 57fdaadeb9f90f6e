"""Table metadata: what is fetched (§3.1, §3.4 casts, §3.9), how it is read, cached once."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # the stand-ins in loader_fakes.py
import loader_fakes
import pytest

from target_dynamics.errors import MetadataError, WebApiError
from target_dynamics.metadata import MetadataCache, close_names, parse_column


def test_reads_columns_keys_and_relationships():
    """§3.3-§3.6: derived-type facts come from the casts; only Active keys count."""
    table = MetadataCache(loader_fakes.FakeClient()).table("contact")
    assert (table.logical_name, table.entity_set, table.primary_id) == (
        "contact",
        "contacts",
        "contactid",
    )
    assert table.keys == {"contact_email_name": ("emailaddress1", "lastname")}
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
    assert columns["hobbies"].options[3] == "Board games"
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


def test_fetches_once_per_table_and_only_the_casts_it_needs():
    """§3.9: one definition GET plus one GET per derived type present; cached afterwards."""
    client = loader_fakes.FakeClient()
    cache = MetadataCache(client)
    cache.table("account")
    cache.table("accounts")
    cache.table("ACCOUNT")
    account_paths = [p for p in client.paths if "account" in p]
    assert account_paths[0].startswith("EntityDefinitions(LogicalName='account')?$select=")
    assert "$expand=Attributes(" in account_paths[0]
    assert "Keys(" in account_paths[0]
    assert "ManyToOneRelationships(" in account_paths[0]
    casts = [p for p in client.paths if "/Attributes/Microsoft.Dynamics.CRM." in p]
    assert casts == [
        (
            "EntityDefinitions(LogicalName='account')/Attributes/Microsoft.Dynamics.CRM."
            "StringAttributeMetadata?$select=LogicalName,MaxLength"
        )
    ]
    assert sum(p.startswith("EntityDefinitions(LogicalName='account')?") for p in client.paths) == 1


def test_concurrent_first_use_fetches_once():
    client = loader_fakes.FakeClient()
    cache = MetadataCache(client)
    threads = [threading.Thread(target=cache.table, args=("contacts",)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sum(p.startswith("EntityDefinitions(LogicalName='contact')?") for p in client.paths) == 1


def test_unknown_table_lists_close_names():
    """§3.7: an unknown table fails with what exists nearby."""
    with pytest.raises(MetadataError) as caught:
        MetadataCache(loader_fakes.FakeClient()).table("contcts")
    assert "Table 'contcts' not found" in str(caught.value)
    assert "Did you mean: contacts" in str(caught.value)


def test_names_that_cannot_go_into_a_url_are_not_requested():
    client = loader_fakes.FakeClient()
    with pytest.raises(MetadataError, match="not found"):
        MetadataCache(client).table("test:SpecialChars!in?attributes")
    assert all("SpecialChars" not in p for p in client.paths)


def test_bulk_probe_failure_means_no_bulk():
    """§6.5: no sdkmessagefilters answer -> write through $batch."""

    class NoProbe(loader_fakes.FakeClient):
        def get_json(self, path):
            if path.startswith("sdkmessagefilters"):
                raise WebApiError(403, "0x80040220", "no privilege")
            return super().get_json(path)

    assert not MetadataCache(NoProbe()).table("account").supports_bulk
    assert not MetadataCache(loader_fakes.FakeClient(bulk=False)).table("account").supports_bulk


def test_metadata_read_failure_names_the_table():
    class Broken(loader_fakes.FakeClient):
        def get_json(self, path):
            if path.startswith("EntityDefinitions(LogicalName='account')?"):
                raise WebApiError(500, None, "boom")
            return super().get_json(path)

    with pytest.raises(MetadataError, match="metadata of table 'account': 500: boom"):
        MetadataCache(Broken()).table("account")


@pytest.mark.parametrize(
    ("broken", "words"),
    [
        ({"EntitySetName": None}, "table 'account' has no EntitySetName"),
        ({"PrimaryIdAttribute": None}, "table 'account' has no PrimaryIdAttribute"),
        (
            {"Keys": [{"SchemaName": "account_number"}]},
            "table 'account' has no KeyAttributes on key 'account_number'",
        ),
    ],
)
def test_incomplete_table_metadata_names_the_table(broken, words):
    """§3.2, §3.6: a definition without its entity set, primary id or key columns is a
    MetadataError naming the table, not a bare KeyError."""
    account = {k: v for k, v in loader_fakes.ACCOUNT.items() if k not in broken}
    account.update({k: v for k, v in broken.items() if v is not None})
    client = loader_fakes.FakeClient((loader_fakes.CONTACT, account, loader_fakes.SYSTEMUSER))
    with pytest.raises(MetadataError, match=words):
        MetadataCache(client).table("account")


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
