"""The collation follows the environment's base language (§3.10).

Microsoft Learn, "Language collations" (https://learn.microsoft.com/power-platform/admin/language-collations):
every language is case-insensitive; English (1033) is ``_CI_AI`` ("cafe" = "café"), Finnish
(1035), Romanian (1048), English (Australia, 3081) and others are ``_CI_AS`` ("cafe" and "café"
are different words). The collation governs key uniqueness, key lookups and filtering.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

from dataverse_emulator.state import collation
from dataverse_emulator.state.environment import Environment
from dataverse_emulator.testing import api_session


@pytest.fixture
def finnish(emulator_factory):
    return emulator_factory(latency="zero", language_code=1035)


def test_accent_sensitive_language_keeps_accent_variants_apart(finnish):
    """``_CI_AS``: "josé@x.org" and "jose@x.org" are two key values; case still folds."""
    session, api = api_session(finnish), finnish.api_url
    for email in ("josé@x.org", "jose@x.org"):
        response = session.post(f"{api}/contacts", json={"lastname": "A", "emailaddress1": email})
        assert response.status_code == 204, response.text
    clash = session.post(f"{api}/contacts", json={"lastname": "B", "emailaddress1": "JOSÉ@x.org"})
    assert clash.status_code == 412, clash.text
    assert clash.json()["error"]["code"] == "0x80060892"
    found = session.get(
        f"{api}/contacts(emailaddress1='{quote('JOSE@x.org')}')?$select=emailaddress1", timeout=10
    )
    assert found.json()["emailaddress1"] == "jose@x.org"
    matched = session.get(
        f"{api}/contacts?$select=emailaddress1&$filter=emailaddress1 eq 'Jose@x.org'", timeout=10
    )
    assert [row["emailaddress1"] for row in matched.json()["value"]] == ["jose@x.org"]


def test_accent_insensitive_language_folds_accents(emulator_factory):
    """``_CI_AI`` (3082 Modern Spanish): the accent variant is the same key value."""
    server = emulator_factory(latency="zero", language_code=3082)
    session, api = api_session(server), server.api_url
    first = session.post(f"{api}/contacts", json={"lastname": "A", "emailaddress1": "josé@x.org"})
    assert first.status_code == 204, first.text
    second = session.post(f"{api}/contacts", json={"lastname": "B", "emailaddress1": "jose@x.org"})
    assert second.status_code == 412, second.text


@pytest.mark.parametrize(
    ("language", "expected"),
    [(1033, "_CI_AI"), (1035, "_CI_AS"), (1055, "_CI_AI"), (3081, "_CI_AS"), (4108, "_CI_AI")],
)
def test_collation_of_each_documented_language(language, expected):
    """A sample of Learn's table, both kinds."""
    assert collation.suffix(language) == expected


def test_undocumented_language_is_refused():
    """An LCID Learn's table does not list is no base language."""
    with pytest.raises(ValueError, match="9999 is not a Dataverse base language"):
        Environment.create(language_code=9999)
