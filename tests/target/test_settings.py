"""Settings: every problem reported at once with what, where and the fix; secrets never shown."""

from __future__ import annotations

import logging

import pytest
from singer_sdk.exceptions import ConfigValidationError

from target_dynamics.errors import ConfigError
from target_dynamics.plans import Operation
from target_dynamics.settings import SettingsError, parse_settings
from target_dynamics.settings_schema import SETTINGS
from target_dynamics.target import TargetDynamics

GOOD = {
    "dynamics_url": "https://contoso.crm.dynamics.com/",
    "tenant_id": "contoso.onmicrosoft.com",
    "client_id": "00000000-0000-0000-0000-000000000001",
    "client_secret": "not-shown-anywhere",
}
SCHEMA = TargetDynamics.config_jsonschema["properties"]
PEM = "-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n"


def problems(**config) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        TargetDynamics(config=config)
    return caught.value.errors


def test_good_config_is_read_once_with_defaults():
    target = TargetDynamics(config=dict(GOOD))
    settings = target.settings
    assert settings.dynamics_url == "https://contoso.crm.dynamics.com"
    assert settings.operation is Operation.UPSERT
    assert settings.api_version == "9.2"
    assert settings.extra_fields == "drop"
    assert settings.max_errors == 0
    assert "not-shown-anywhere" not in repr(settings)


def test_every_problem_is_reported_at_once(tmp_path):
    found = problems(
        dynamics_url="http://contoso.crm.dynamics.com",
        client_id="abc",
        client_secret="not-shown-anywhere",
        certificate_thumbprint="xyz",
        operation="merge",
        cloud="mars",
        extra_fields="keep",
        api_version="latest",
        caller_object_id="me",
        ca_bundle=str(tmp_path / "missing.pem"),
        dead_letter_path=str(tmp_path / "no" / "dir" / "dead.jsonl"),
        streams={"people": {"entitty": "contact", "operation": "merge"}, "x": 3},
        lookups={"parentcustomerid": {"key": "accountnumber", "tabel": "account"}},
        max_errors=-1,
    )
    text = "\n".join(found)
    for words in (
        "'tenant_id' is a required property",
        "dynamics_url must use https",
        "'merge' is not one of",
        "'mars' is not one of",
        "'keep' is not one of",
        "client_secret and certificate_private_key/certificate_thumbprint are both set",
        "certificate_thumbprint must be the certificate's SHA-1 thumbprint",
        "api_version 'latest' is not like 'v9.2'",
        "caller_object_id 'me' is not a GUID",
        "missing.pem' does not exist",
        "does not exist or is not writable",
        "streams.people has unknown key 'entitty': did you mean 'entity'?",
        "streams.people.operation 'merge' is not one of",
        "lookups.parentcustomerid has unknown key 'tabel': did you mean 'table'?",
        "lookups.parentcustomerid.key is set without table",
        "-1 is less than the minimum of 0",
    ):
        assert words in text, words
    assert "not-shown-anywhere" not in text


def test_errors_are_both_config_error_and_sdk_validation_error():
    with pytest.raises(ConfigError) as caught:
        TargetDynamics(config={**GOOD, "dynamics_url": "ftp://x"})
    assert isinstance(caught.value, ConfigValidationError)
    assert "dynamics_url must use https" in str(caught.value)


def test_secret_values_of_the_wrong_type_are_not_echoed():
    found = problems(**{**GOOD, "client_secret": 123456789})
    assert any("client_secret" in p and "value not shown" in p for p in found)
    assert "123456789" not in "\n".join(found)


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"client_secret": None}, "no credentials"),
        ({"client_secret": None, "certificate_private_key": PEM}, "needs certificate_thumbprint"),
        (
            {
                "client_secret": None,
                "certificate_private_key": "/path/key.pem",
                "certificate_thumbprint": "A" * 40,
            },
            "not PEM text",
        ),
        ({"authority_host": "http://login.example"}, "authority_host must use https"),
        ({"dynamics_url": "https://contoso.crm.dynamics.com/api/data/v9.2"}, "environment root"),
        ({"load_method": "append-only", "operation": "upsert"}, "contradicts operation"),
        ({"load_method": "overwrite"}, "'overwrite' is not one of"),
        ({"id_field": []}, "should be non-empty"),
        ({"batch_size_rows": 0}, "less than the minimum"),
        ({"max_concurrency": 0}, "less than the minimum"),
        ({"timeout_seconds": 0}, "less than or equal to the minimum of 0"),
    ],
)
def test_single_problems(config, words):
    settings = {k: v for k, v in {**GOOD, **config}.items() if v is not None}
    assert any(words in p for p in problems(**settings)), problems(**settings)


def test_certificate_credentials_and_loopback_http_rules():
    settings, found = parse_settings(
        {
            **GOOD,
            "client_secret": None,
            "certificate_private_key": PEM,
            "certificate_thumbprint": "ab:" * 19 + "cd",
        }
    )
    assert found == []
    assert settings.certificate_thumbprint == "AB" * 19 + "CD"
    _, found = parse_settings({**GOOD, "dynamics_url": "http://127.0.0.1:8443"})
    assert any("must use https" in p for p in found)


@pytest.mark.parametrize(
    ("config", "operation"),
    [
        ({}, Operation.UPSERT),
        ({"load_method": "append-only"}, Operation.CREATE),
        ({"load_method": "upsert"}, Operation.UPSERT),
        ({"operation": "delete"}, Operation.DELETE),
        ({"operation": "create", "load_method": "append-only"}, Operation.CREATE),
    ],
)
def test_load_method_and_operation(config, operation):
    """docs/singer-sdk.md §1.8: append-only means create, upsert means upsert; operation wins if
    set."""
    assert TargetDynamics(config={**GOOD, **config}).settings.operation is operation


def test_stream_settings_resolution():
    settings = TargetDynamics(
        config={
            **GOOD,
            "entity": "contact",
            "id_field": "emailaddress1",
            "lookups": {"parentcustomerid": {"table": "account"}},
            "streams": {
                "orgs": {
                    "entity": "accounts",
                    "operation": "create",
                    "id_field": ["num"],
                    "columns": {"num": "accountnumber"},
                    "lookups": {"primarycontactid": {"table": "contact", "key": "emailaddress1"}},
                }
            },
        }
    ).settings
    people = settings.for_stream("people", ["email"])
    assert (people.entity, people.operation, people.id_field) == (
        "contact",
        Operation.UPSERT,
        ("emailaddress1",),
    )
    orgs = settings.for_stream("orgs", [])
    assert (orgs.entity, orgs.operation, orgs.id_field) == (
        "accounts",
        Operation.CREATE,
        ("accountnumber",),
    )
    assert set(orgs.lookups) == {"parentcustomerid", "primarycontactid"}
    alone = TargetDynamics(config=dict(GOOD)).settings.for_stream("lead", ["Email"])
    assert (alone.entity, alone.id_field, alone.id_from_config) == ("lead", ("Email",), False)


@pytest.mark.parametrize("null", [False, True], ids=["absent", "null"])
def test_unset_settings_take_their_declared_defaults(null):
    """The schema's defaults (what --about shows) are the ones the parser applies."""
    own = {setting.name for setting in SETTINGS}  # not the SDK's built-in ones
    defaults = {n: spec["default"] for n, spec in SCHEMA.items() if "default" in spec and n in own}
    nulls = {name: None for name in defaults if null and "enum" not in SCHEMA[name]}
    settings = TargetDynamics(config={**GOOD, **nulls}).settings
    read = {name: getattr(settings, name) for name in defaults if hasattr(settings, name)}
    assert read == {name: defaults[name] for name in read}
    assert set(defaults) - set(read) == {"batch_size_rows"}  # the SDK reads it


def test_stream_values_of_the_wrong_type_are_reported_not_raised():
    """Stream settings are parsed at load time: a wrong type is a problem, never a crash."""
    stream = {"json_text_fields": 5, "mirror_scope": 7, "columns": ["email"], "associations": 3}
    found = "\n".join(problems(**GOOD, streams={"people": stream}))
    for words in (
        "5 is not of type 'array'",
        "7 is not of type 'string'",
        "streams.people.columns must map record fields to column names (strings)",
        "streams.people.associations must map record fields to relationships",
    ):
        assert words in found, words


def test_key_properties_go_through_columns_once():
    """A key property names the column its field writes, not the column that one maps to."""
    chained = {"streams": {"s": {"columns": {"code": "name", "name": "description"}}}}
    stream = TargetDynamics(config={**GOOD, **chained}).settings.for_stream("s", ["code"])
    assert stream.id_field == ("name",)


def test_about_documents_every_setting():
    schema = TargetDynamics.config_jsonschema["properties"]
    for name, prop in schema.items():
        assert prop.get("description"), name
        assert prop.get("title"), name
    assert schema["client_secret"]["secret"] is True
    assert schema["certificate_private_key"]["secret"] is True


def test_cloud_is_inferred_from_dynamics_url_when_unset():
    """§1.4: a GCC High URL and no `cloud` asks login.microsoftonline.us."""
    settings = TargetDynamics(
        config={**GOOD, "dynamics_url": "https://contoso.crm.microsoftdynamics.us"}
    ).settings
    assert (settings.cloud, settings.login_host) == ("gcc_high", "https://login.microsoftonline.us")
    assert settings.cloud_warning is None
    assert TargetDynamics(config=dict(GOOD)).settings.login_host == (
        "https://login.microsoftonline.com"
    )


def test_authority_host_overrides_the_clouds_login_host():
    """Both set (a rehearsal against the emulator, or a proxy): authority_host is asked."""
    settings = TargetDynamics(
        config={**GOOD, "cloud": "gcc_high", "authority_host": "https://127.0.0.1:8443/"}
    ).settings
    assert (settings.cloud, settings.login_host) == ("gcc_high", "https://127.0.0.1:8443")


def test_a_contradiction_warns_once_and_the_explicit_cloud_is_honoured(caplog):
    with caplog.at_level(logging.WARNING):
        settings = TargetDynamics(config={**GOOD, "cloud": "china"}).settings
    assert settings.login_host == "https://login.partner.microsoftonline.cn"
    [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert record.getMessage() == settings.cloud_warning
    assert "is a public environment" in record.getMessage()


def test_optional_headers_and_authority_reach_the_client(tmp_path):
    """§8: bypass, duplicate detection and impersonation go on every request."""
    caller = "0f0e0d0c-0b0a-4908-8706-050403020100"
    target = TargetDynamics(
        config={
            **GOOD,
            "bypass_business_logic": True,
            "suppress_duplicate_detection": False,
            "caller_object_id": caller,
            "cloud": "gcc_high",
        }
    )
    client = target.client
    assert client._default_headers == {
        "MSCRM.BypassBusinessLogicExecution": "CustomSync,CustomAsync",
        "MSCRM.SuppressDuplicateDetection": "false",
        "CallerObjectId": caller,
    }
    assert target.client is client
    assert TargetDynamics(config=dict(GOOD)).client._default_headers == {}


def test_settings_from_environment_variables(monkeypatch):
    """docs/singer-sdk.md §1.1: `TARGET_DYNAMICS_<SETTING>` variables, read with
    parse_env_config."""
    for name in ("dynamics_url", "tenant_id", "client_id", "client_secret"):
        monkeypatch.setenv(f"TARGET_DYNAMICS_{name.upper()}", GOOD[name])
    monkeypatch.setenv("TARGET_DYNAMICS_OPERATION", "delete")
    monkeypatch.setenv("TARGET_DYNAMICS_ID_FIELD", "emailaddress1")
    settings = TargetDynamics(config={}, parse_env_config=True).settings
    assert settings.operation is Operation.DELETE
    assert settings.id_field == ("emailaddress1",)
    assert settings.client_secret == GOOD["client_secret"]


@pytest.mark.parametrize(
    ("key", "words"),
    [
        ("opration", "unknown setting 'opration': did you mean 'operation'?"),
        ("dynamics_uri", "unknown setting 'dynamics_uri': did you mean 'dynamics_url'?"),
        ("verbose", "unknown setting 'verbose': remove it (`target-dynamics --about`"),
    ],
)
def test_unknown_settings_are_refused_with_the_closest_name(key, words):
    assert any(words in p for p in problems(**GOOD, **{key: "x"}))


def test_the_sdk_built_in_settings_are_never_refused():
    built_ins = {
        "stream_maps": {"people": {"__alias__": "contact"}},
        "stream_map_config": {"salt": "x"},
        "faker_config": {"locale": "en_US"},
        "flattening_enabled": True,
        "flattening_max_depth": 1,
        "flattening_max_key_length": 40,
        "flattening_separator": "__",
        "batch_size_rows": 10,
        "load_method": "upsert",
        "validate_records": False,
    }
    TargetDynamics(config={**GOOD, **built_ins})


def test_add_record_metadata_is_refused_with_the_reason():
    """Issue 10 item 7: it could do nothing (no _sdc_* column reaches Dataverse), so it is gone
    from --about and a config that sets it is told why."""
    schema = {**TargetDynamics.config_jsonschema}
    schema["properties"] = dict(schema["properties"])
    TargetDynamics.append_builtin_config(schema)
    assert "add_record_metadata" not in schema["properties"]
    assert "batch_size_rows" in schema["properties"]
    assert any(
        "setting 'add_record_metadata' is not supported: Dataverse tables take no _sdc_*" in p
        for p in problems(**GOOD, add_record_metadata=True)
    )


@pytest.mark.parametrize(
    ("tenant", "words"),
    [
        ("common", "tenant_id 'common' cannot issue app-only tokens"),
        ("organizations", "cannot issue app-only tokens"),
        ("my tenant", "tenant_id 'my tenant' is neither a GUID nor a domain name"),
        ("contoso", "is neither a GUID nor a domain name"),
        ("https://login.microsoftonline.com/contoso", "is neither a GUID nor a domain name"),
    ],
)
def test_tenant_id_must_name_one_directory(tenant, words):
    assert any(words in p for p in problems(**{**GOOD, "tenant_id": tenant}))


@pytest.mark.parametrize("tenant", ["11111111-2222-3333-4444-555555555555", "fabrikam.com"])
def test_tenant_id_accepts_a_guid_or_a_domain(tenant):
    assert TargetDynamics(config={**GOOD, "tenant_id": tenant}).settings.tenant_id == tenant


def test_values_of_the_wrong_type_are_reported_not_raised():
    """Cross-field checks never see a value the schema refused (no bare ValueError)."""
    found = problems(
        **GOOD,
        max_errors="lots",
        timeout_seconds="slow",
        progress_interval_seconds=[1],
        certificate_thumbprint=1234,
        lookups=["parentcustomerid"],
        ca_bundle=5,
    )
    text = "\n".join(found)
    for words in (
        "'lots' is not of type 'integer'",
        "'slow' is not of type 'number'",
        "1234 is not of type 'string'",
        "['parentcustomerid'] is not of type 'object'",
        "5 is not of type 'string'",
    ):
        assert words in text, words


def test_a_stream_lookups_list_is_a_problem_not_a_crash():
    found = problems(**GOOD, streams={"people": {"lookups": ["parentcustomerid"]}})
    assert "streams.people.lookups must be an object" in "\n".join(found)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("emailaddress1", ("emailaddress1",)),
        (["firstname", "lastname"], ("firstname", "lastname")),
        ('["firstname", "lastname"]', ("firstname", "lastname")),  # from TARGET_DYNAMICS_ID_FIELD
        (' ["emailaddress1"]', ("emailaddress1",)),
    ],
)
def test_id_field_is_one_name_or_a_list_even_as_json_text(value, expected):
    """Issue 10 item 7: Meltano passes a list set through an env var or `config set` as text."""
    assert TargetDynamics(config={**GOOD, "id_field": value}).settings.id_field == expected


@pytest.mark.parametrize("value", ["[firstname, lastname]", "[]", '["firstname", 2]', '[""]'])
def test_id_field_json_text_that_is_no_list_of_names_is_refused(value):
    assert any(
        f"id_field {value!r} is not a JSON list of column names" in p
        for p in problems(**GOOD, id_field=value)
    )


def test_app_users_are_read_with_their_own_credentials():
    thumb = "ab:" * 19 + "ab"
    users = [
        {"client_id": "00000000-0000-0000-0000-000000000002", "client_secret": "second-secret"},
        {
            "client_id": "00000000-0000-0000-0000-000000000003",
            "certificate_private_key": PEM,
            "certificate_thumbprint": thumb,
        },
    ]
    settings = TargetDynamics(config={**GOOD, "app_users": users}).settings
    assert [u.client_id for u in settings.app_users] == [u["client_id"] for u in users]
    assert settings.app_users[1].certificate_thumbprint == "AB" * 20
    assert "second-secret" not in repr(settings)


def test_app_users_problems_name_the_entry_and_never_a_secret():
    found = problems(
        **GOOD,
        app_users=[
            {"client_id": GOOD["client_id"], "client_secret": "dup-secret-value"},
            {"client_id": "00000000-0000-0000-0000-000000000004"},
            {"client_id": "x", "client_secret": "s", "tenant": "extra-secret-value"},
        ],
    )
    text = "\n".join(found)
    assert "app_users[0]: client_id 00000000-0000-0000-0000-000000000001 is already used" in text
    assert "app_users[1]: no credentials: set client_secret" in text
    assert "config['app_users'][2] is invalid (additionalProperties check failed)" in text
    assert "secret-value" not in text
    wrong_type = problems(**GOOD, app_users={"client_id": "x", "client_secret": "obj-secret"})
    assert "obj-secret" not in "\n".join(wrong_type)
