from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from dataverse_emulator.state.catalog import Catalog
from dataverse_emulator.state.custom_tables import EntitiesFileError, load_catalog
from dataverse_emulator.state.errors import DataverseFault, Kind

EXAMPLE = Path(str(resources.files("dataverse_emulator.data").joinpath("examples")))
EXAMPLE_FILE = EXAMPLE / "custom-entities.json"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load()


@pytest.fixture(scope="module")
def custom() -> Catalog:
    return load_catalog(EXAMPLE_FILE)


def write(tmp_path: Path, doc: dict) -> Path:
    path = tmp_path / "entities.json"
    path.write_text(json.dumps(doc), "utf-8")
    return path


def membership(**overrides: object) -> dict:
    table = {
        "logical_name": "new_membership",
        "columns": [
            {"logical_name": "new_contactid", "type": "Lookup", "targets": ["contact"]},
            {"logical_name": "new_code", "type": "String", "max_length": 20},
        ],
    }
    table.update(overrides)
    return {"tables": [table]}


def test_contact_facts(catalog: Catalog) -> None:
    """§3.2: contact names, real MetadataId and ObjectTypeCode 2."""
    contact = catalog.table("contact")
    assert contact.entity_set_name == "contacts"
    assert contact.primary_id == "contactid"
    assert contact.primary_name == "fullname"
    assert contact.metadata_id == "608861bc-50a4-4c5f-a02c-21fe1943e2cf"
    assert contact.object_type_code == 2
    assert contact.primary_image == "entityimage"


def test_contact_columns(catalog: Catalog) -> None:
    """§3.8: documented column facts of contact."""
    cols = catalog.table("contact").columns
    assert (cols["firstname"].max_length, cols["firstname"].required_level) == (50, "Recommended")
    assert cols["lastname"].required_level == "ApplicationRequired"
    assert cols["emailaddress1"].format_name == "Email"
    assert cols["birthdate"].datetime_behavior == "DateOnly"
    assert cols["parentcustomerid"].targets == ("account", "contact")
    assert cols["ownerid"].targets == ("systemuser", "team")
    assert cols["contactid"].metadata_id == "2ae700b3-97d2-4d99-96f2-8e4aa6368fc2"
    assert cols["contactid"].is_valid_for_update is False
    assert cols["annualincome_base"].attribute_of == "annualincome"
    assert cols["owneridname"].attribute_of == "ownerid"
    assert cols["owneridname"].is_logical


def test_default_keys(catalog: Catalog) -> None:
    """§3.6: the default environment defines account.accountnumber and contact.emailaddress1."""
    (account_key,) = catalog.table("account").keys
    assert account_key.key_attributes == ("accountnumber",)
    assert account_key.metadata_id == "1dc7b1d2-6beb-ec11-bb3d-0022482ea769"
    (contact_key,) = catalog.table("contact").keys
    assert (contact_key.schema_name, contact_key.index_status) == ("emailaddress1_key", "Active")


def test_unknown_table(catalog: Catalog) -> None:
    """§3.7 / §11 #7: 404 0x80040217 "Could not find an entity with name ..."."""
    with pytest.raises(DataverseFault) as info:
        catalog.table("crmbaseentity")
    assert info.value.kind is Kind.NOT_FOUND
    assert info.value.code == "0x80040217"
    assert info.value.message == (
        "Could not find an entity with name crmbaseentity and id "
        "00000000-0000-0000-0000-000000000000."
    )


def test_table_by_set_is_case_sensitive(catalog: Catalog) -> None:
    """§2.1: `Account` instead of `accounts` -> 404 "Resource not found for the segment"."""
    assert catalog.table_by_set("accounts").logical_name == "account"
    with pytest.raises(DataverseFault) as info:
        catalog.table_by_set("Account")
    assert (info.value.kind, info.value.code) == (Kind.NOT_FOUND, "0x80060888")
    assert info.value.message == "Resource not found for the segment 'Account'."


def test_table_by_id(catalog: Catalog) -> None:
    """§3.1: tables are addressable by MetadataId."""
    assert catalog.table_by_id("608861BC-50A4-4C5F-A02C-21FE1943E2CF").logical_name == "contact"
    with pytest.raises(DataverseFault):
        catalog.table_by_id("00000000-0000-0000-0000-000000000001")


def test_bind_target_customer_lookup(catalog: Catalog) -> None:
    """§3.5: parentcustomerid_account / parentcustomerid_contact, case-sensitive."""
    rel = catalog.bind_target("contact", "parentcustomerid_account")
    assert (rel.schema_name, rel.referenced_entity) == ("contact_customer_accounts", "account")
    assert catalog.bind_target("contact", "parentcustomerid_contact").referenced_entity == "contact"
    with pytest.raises(DataverseFault) as info:
        catalog.bind_target("contact", "ParentCustomerId_account")
    assert (info.value.kind, info.value.code) == (Kind.BAD_REQUEST, "0x0")
    assert "An undeclared property 'ParentCustomerId_account'" in info.value.message


def test_bind_target_owner(catalog: Catalog) -> None:
    """§3.5: ownerid binds to systemuser or team through the `owner` relationship."""
    rel = catalog.bind_target("account", "ownerid")
    assert rel.referenced_entity == "owner"
    assert catalog.targets_of(rel) == ("systemuser", "team")
    assert catalog.targets_of(catalog.bind_target("account", "primarycontactid")) == ("contact",)


def test_derived_navigation_names(catalog: Catalog) -> None:
    """§3.5: systemuser has no stated names; single-target lookups use the column name."""
    assert catalog.bind_target("systemuser", "businessunitid").referenced_entity == "businessunit"
    rel = catalog.bind_target("campaignresponse", "regardingobjectid_account_campaignresponse")
    assert rel.referenced_entity == "account"


def test_lookup_column(catalog: Catalog) -> None:
    """§3.5: a Customer column has one relationship per target."""
    rels = catalog.lookup_column("contact", "parentcustomerid")
    assert sorted(r.referencing_navigation for r in rels) == [
        "parentcustomerid_account",
        "parentcustomerid_contact",
    ]
    assert catalog.lookup_column("contact", "firstname") == []


def test_navigation_names_unique_per_table(catalog: Catalog) -> None:
    """§0.5: a navigation property names exactly one relationship."""
    for table in catalog.tables():
        navs = [r.referencing_navigation for r in table.many_to_one if r.referencing_navigation]
        assert len(navs) == len(set(navs)), table.logical_name


def test_add_key_validation(tmp_path: Path) -> None:
    """§3.6: key columns typed Decimal/Integer/String/DateTime/Lookup/Picklist, <=16, <=10 keys."""
    catalog = Catalog.load()
    key = catalog.add_key("lead", "lead_email", ["emailaddress1", "parentcontactid"], "Email")
    assert key.key_attributes == ("emailaddress1", "parentcontactid")
    bad = [
        (["description"], "of type Memo"),
        (["nosuchcolumn"], "does not exist"),
        ([], "1 to 16 columns"),
    ]
    for attributes, fragment in bad:
        with pytest.raises(DataverseFault) as info:
            catalog.add_key("lead", "k_bad", attributes)
        assert info.value.kind is Kind.BAD_REQUEST
        assert fragment in info.value.message
    with pytest.raises(DataverseFault, match="already exists"):
        catalog.add_key("lead", "LEAD_EMAIL", ["emailaddress2"])
    for i in range(9):
        catalog.add_key("lead", f"k{i}", ["subject"])
    with pytest.raises(DataverseFault, match="already has 10 alternate keys"):
        catalog.add_key("lead", "k_eleven", ["subject"])


def test_load_returns_independent_copies() -> None:
    """Catalog.load() is cached but each catalog is independent."""
    first = Catalog.load()
    first.add_key("lead", "lead_subject", ["subject"])
    first.set_supports_bulk("contact", supported=False)
    second = Catalog.load()
    assert second.table("lead").keys == []
    assert second.table("contact").supports_bulk


def test_supports_bulk_defaults(catalog: Catalog) -> None:
    """§6.5: bulk messages exist on many standard tables, not all."""
    assert catalog.table("account").supports_bulk
    assert not catalog.table("systemuser").supports_bulk


def test_example_entities_file(custom: Catalog) -> None:
    """The shipped example: composite key, lookup to contact, bulk switched off."""
    table = custom.table("new_membership")
    assert custom.table_by_set("new_memberships") is table
    assert table.is_custom
    for system in ("new_membershipid", "new_name", "createdon", "modifiedon", "statecode"):
        assert system in table.columns
    for system in ("statuscode", "ownerid", "versionnumber", "owningbusinessunit"):
        assert system in table.columns
    assert table.columns["new_membershipid"].is_primary_id
    assert table.columns["new_name"].max_length == 200
    (key,) = table.keys
    assert key.key_attributes == ("new_contactid", "new_programcode")
    rel = custom.bind_target("new_membership", "new_ContactId")
    assert (rel.referenced_entity, rel.referenced_attribute) == ("contact", "contactid")
    assert custom.bind_target("new_membership", "new_SponsorId_account").referenced_entity == (
        "account"
    )
    assert rel in custom.table("contact").one_to_many
    assert table.columns["new_fee_base"].attribute_of == "new_fee"
    assert not custom.table("new_visit").supports_bulk
    assert not custom.table("lead").supports_bulk
    assert [k.schema_name for k in custom.table("lead").keys] == ["new_lead_email_key"]
    assert "ownerid" not in custom.table("new_visit").columns  # organization-owned


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        ({"tables": {}}, "'tables' must be a list"),
        ({"bogus": 1}, "unknown top-level members ['bogus']"),
        (membership(logical_name="Membership"), "publisher prefix"),
        (membership(colour="red"), "unknown members ['colour']"),
        (
            membership(columns=[{"logical_name": "new_x", "type": "Text"}]),
            "tables[0].columns[0]: 'type' must be one of",
        ),
        (
            membership(columns=[{"logical_name": "new_x", "type": "Lookup", "targets": ["nope"]}]),
            "no table 'nope'",
        ),
        (
            membership(columns=[{"logical_name": "new_x", "type": "Picklist"}]),
            "needs 'options'",
        ),
        (
            membership(keys=[{"schema_name": "k", "key_attributes": ["createdon", "new_y"]}]),
            "tables[0].keys[0]: The column 'new_y' does not exist",
        ),
        ({"keys": [{"table": "nope", "schema_name": "k", "key_attributes": ["a"]}]}, "no table"),
        ({"supports_bulk": {"contact": "no"}}, "must be true or false"),
        ({"tables": [{"logical_name": "new_account", "entity_set_name": "accounts"}]}, "exists"),
    ],
)
def test_invalid_entities_files(tmp_path: Path, doc: dict, fragment: str) -> None:
    """docs/emulator-entities.md: invalid files fail with the place and the problem."""
    path = write(tmp_path, doc)
    with pytest.raises(EntitiesFileError) as info:
        load_catalog(path)
    assert str(path) in str(info.value)
    assert fragment in str(info.value)


def test_unreadable_entities_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{not json", "utf-8")
    with pytest.raises(EntitiesFileError, match="cannot read entities file"):
        load_catalog(path)
