"""Test connection through the CLI (``--test``), before a dry run and at the end of an empty run,
against the emulator over HTTPS: token, WhoAmI, the configured tables and the privileges the
configured operations need (Learn: "RetrieveUserPrivileges Function"), every problem at once in
one ERROR line, never a traceback or a secret."""

from __future__ import annotations

import pytest

CONTACTS = {
    "entity": "contact",
    "operation": "upsert",
    "streams": {
        "people": {
            "entity": "contact",
            "id_field": "emailaddress1",
            "lookups": {"parentcustomerid": {"table": "account", "key": "accountnumber"}},
        }
    },
}
pytestmark = pytest.mark.usefixtures("reset_emulator")


@pytest.fixture
def cli(singer, reset_emulator, tmp_path):
    """``cli(*args, user=None, stdin="", **settings)`` runs ``target-dynamics --config <emulator
    config + settings> *args``, as ``user`` if given; it allows one ERROR at most."""

    def run(*args: str, user=None, stdin: str = "", **settings):
        config = {**reset_emulator.target_config, **settings}
        if user is not None:
            config["client_id"], config["client_secret"] = user.client_id, user.secret
        done = singer.cli(config, stdin, tmp_path, args=args, env=singer.QUIET)
        output = done.stdout + done.stderr
        assert "Traceback" not in output, done.stderr
        assert reset_emulator.target_config["client_secret"] not in output
        if user is not None and user.secret:
            assert user.secret not in output
        errors = [line for line in done.stderr.splitlines() if "| ERROR" in line]
        assert len(errors) == (1 if done.returncode else 0), done.stderr
        return done, "\n".join(done.stderr.splitlines()[-20:])

    return run


def restricted(emulator, tables: dict[str, list[str]]):
    """The second loader, with a role granting ``tables`` (and Read on users, as Basic User)."""
    user = emulator.user(1)
    emulator.admin.set_role(user.client_id, {"tables": {"systemuser": ["read"], **tables}})
    return user


def test_flag_passes_with_good_settings(cli, reset_emulator):
    """Token, WhoAmI, both tables and the privileges of upsert and the lookup: one INFO line."""
    done, tail = cli("--test", **CONTACTS)
    assert done.returncode == 0, tail
    assert "Connection test passed" in tail
    assert "tables: account, contact" in tail
    assert reset_emulator.admin.snapshot().get("contact", []) == []


def test_flag_names_the_token_problem(cli):
    """A wrong secret: the token endpoint's AADSTS7000215, named as the token problem."""
    done, tail = cli("--test", client_secret="not-the-secret", **CONTACTS)
    assert done.returncode == 1
    assert "Connection test failed" in tail
    assert "(1 problem):\n- token: Token request refused: invalid_client: AADSTS7000215" in tail


def test_flag_names_every_unknown_table_at_once(cli):
    """An unknown default table and an unknown lookup table: both in the one message."""
    settings = {**CONTACTS, "entity": "contcat"}
    settings["streams"] = {
        "people": {"entity": "contact", "lookups": {"parentcustomerid": {"table": "acount"}}}
    }
    done, tail = cli("--test", **settings)
    assert done.returncode == 1
    assert "(2 problems)" in tail
    assert "Table 'contcat' not found" in tail
    assert "Did you mean: contact" in tail
    assert "lookups.parentcustomerid: Table 'acount' not found" in tail


def test_flag_names_each_missing_privilege(cli, reset_emulator):
    """A role that may create contacts but not update them nor bind accounts: upsert needs
    prvWriteContact, the lookup prvAppendContact and prvAppendToAccount; each named with why."""
    user = restricted(reset_emulator, {"contact": ["read", "create"], "account": ["read"]})
    done, tail = cli("--test", user=user, **CONTACTS)
    assert done.returncode == 1
    assert "(3 problems; security roles are in the Power Platform admin center" in tail
    assert (
        "the application user lacks prvWriteContact (Write on contact, needed by operation "
        "upsert (entity); operation upsert (stream 'people'))"
    ) in tail
    assert "lacks prvAppendContact (Append on contact, needed by lookup parentcustomerid" in tail
    assert "lacks prvAppendToAccount (AppendTo on account" in tail
    assert "give its security role Write on contact" in tail


def test_flag_passes_for_a_role_that_holds_exactly_what_is_needed(cli, reset_emulator):
    user = restricted(
        reset_emulator,
        {"contact": ["create", "write", "append"], "account": ["appendto"]},
    )
    done, tail = cli("--test", user=user, **CONTACTS)
    assert done.returncode == 0, tail
    assert "Connection test passed" in tail


def test_marketing_list_and_settings_privileges(cli, reset_emulator):
    """A list that does not exist yet needs prvCreateList; bypass_business_logic needs
    prvBypassCustomBusinessLogic (§8)."""
    user = restricted(reset_emulator, {"contact": ["read", "create", "append"], "list": ["read"]})
    settings = {
        "entity": "contact",
        "operation": "create",
        "marketing_list": "Newsletter",
        "bypass_business_logic": True,
    }
    done, tail = cli("--test", user=user, **settings)
    assert done.returncode == 1
    assert "lacks prvAppendToList (AppendTo on list" in tail
    assert "lacks prvCreateList (Create on list, needed by creating list 'Newsletter')" in tail
    assert "lacks prvBypassCustomBusinessLogic (bypass_business_logic: true): give its" in tail
    assert "prvAppendContact" not in tail


def test_dry_run_as_reader_fails_naming_the_privilege(cli, reset_emulator, singer):
    """A read-only user: the dry run stops before reading input, naming what the real run
    needs, instead of validating every record and passing."""
    done, tail = cli(
        user=reset_emulator.users.reader,
        stdin=singer.lines(singer.read("test_connection__people")),
        dry_run=True,
        **CONTACTS,
    )
    assert done.returncode == 1
    assert "lacks prvCreateContact (Create on contact" in tail
    assert "lacks prvWriteContact (Write on contact" in tail
    assert "Summary people" not in tail


def test_dry_run_with_privileges_still_validates(cli, singer):
    done, tail = cli(
        stdin=singer.lines(singer.read("test_connection__people")),
        dry_run=True,
        **CONTACTS,
    )
    assert done.returncode == 0, tail
    assert "Connection test passed" in tail
    assert "Summary people: 1 received, 1 validated (dry run, nothing written)" in tail


def test_empty_input_with_a_wrong_secret_fails(cli):
    """No messages at all: the run still proves the credentials, failing in one line."""
    done, tail = cli(client_secret="not-the-secret")
    assert done.returncode == 1
    assert "token: Token request refused: invalid_client: AADSTS7000215" in tail


def test_empty_input_with_good_settings_reads_no_metadata(cli, reset_emulator):
    """An empty run gets a token and asks WhoAmI, nothing more: no metadata, no writes."""
    done, tail = cli(**CONTACTS)
    assert done.returncode == 0, tail
    requests = reset_emulator.admin.counters()["requests"]
    assert set(requests) == {"discovery", "token", "other"}, requests
    assert requests["other"] == {"200": 1}


def test_meltano_test_stream_gets_the_connection_test(cli, reset_emulator, singer):
    """Meltano's verdict: exit 0 and no output line holding "error" or "exception"; nothing
    is written and no table named meltano_test_stream is looked for."""
    stdin = singer.lines(singer.read("test_connection__meltano_test"))
    done, tail = cli(stdin=stdin, **CONTACTS)
    assert done.returncode == 0, tail
    assert "Connection test passed" in tail
    lines = (done.stdout + done.stderr).lower().splitlines()
    assert [line for line in lines if "error" in line or "exception" in line] == []
    assert reset_emulator.admin.snapshot().get("contact", []) == []


def test_meltano_test_stream_fails_on_the_last_line(cli, reset_emulator, singer):
    """Meltano shows only the loader's last line: it names the missing privilege."""
    stdin = singer.lines(singer.read("test_connection__meltano_test"))
    reader = reset_emulator.users.reader
    done, _ = cli(user=reader, stdin=stdin, **CONTACTS)
    assert done.returncode == 1
    last = (done.stdout + done.stderr).strip().splitlines()[-1]
    assert "lacks prvWriteContact (Write on contact" in last
