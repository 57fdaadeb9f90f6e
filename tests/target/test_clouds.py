"""National clouds (§1.4): the Dataverse domain names the cloud; contradictions are described."""

from __future__ import annotations

import pytest

from target_dynamics.clouds import (
    CLOUD_AUTHORITY_HOSTS,
    CLOUDS,
    choose_cloud,
    cloud_of_url,
    is_microsoft_login_host,
)

EMULATOR = "https://127.0.0.1:8443"


def test_login_hosts():
    """§1.4 and Microsoft Learn "National clouds"."""
    assert CLOUDS == ("public", "gcc", "gcc_high", "dod", "china")
    assert CLOUD_AUTHORITY_HOSTS["public"] == CLOUD_AUTHORITY_HOSTS["gcc"]
    assert CLOUD_AUTHORITY_HOSTS["gcc_high"] == "https://login.microsoftonline.us"
    assert CLOUD_AUTHORITY_HOSTS["dod"] == "https://login.microsoftonline.us"
    assert CLOUD_AUTHORITY_HOSTS["china"] == "https://login.partner.microsoftonline.cn"


@pytest.mark.parametrize(
    ("url", "cloud"),
    [
        ("https://contoso.crm.dynamics.com", "public"),
        ("https://contoso.crm4.dynamics.com/", "public"),
        ("https://contoso.api.crm11.dynamics.com", "public"),
        ("https://CONTOSO.CRM.DYNAMICS.COM", "public"),
        ("https://contoso.crm9.dynamics.com", "gcc"),
        ("https://contoso.crm.microsoftdynamics.us", "gcc_high"),
        ("https://contoso.api.crm.microsoftdynamics.us", "gcc_high"),
        ("https://contoso.crm.appsplatform.us", "dod"),
        ("https://contoso.crm.dynamics.cn", "china"),
        ("https://127.0.0.1:8443", None),
        ("https://crm.contoso.com", None),
        ("https://contoso.crm.dynamics.com.evil.example", None),
        ("https://contoso.dynamics.com", None),
        ("", None),
    ],
)
def test_cloud_of_url(url, cloud):
    assert cloud_of_url(url) == cloud


@pytest.mark.parametrize(
    ("cloud", "authority_host", "url", "chosen"),
    [
        (None, None, "https://contoso.crm.microsoftdynamics.us", "gcc_high"),
        (None, None, "https://contoso.crm.dynamics.cn", "china"),
        (None, None, "https://crm.contoso.com", "public"),
        ("public", None, "https://contoso.crm9.dynamics.com", "public"),  # same login host
        ("gcc_high", None, "https://contoso.crm.appsplatform.us", "gcc_high"),  # same host
        ("gcc_high", EMULATOR, EMULATOR, "gcc_high"),  # a rehearsal
        (None, EMULATOR, "https://contoso.crm.microsoftdynamics.us", "gcc_high"),  # a proxy
        (None, "https://login.microsoftonline.us/", "https://x.crm.appsplatform.us", "dod"),
    ],
)
def test_choose_cloud_without_contradiction(cloud, authority_host, url, chosen):
    assert choose_cloud(cloud, authority_host, url) == (chosen, None)


def test_explicit_cloud_is_honoured_with_a_warning():
    cloud, warning = choose_cloud("gcc_high", None, "https://contoso.crm.dynamics.com")
    assert cloud == "gcc_high"
    assert warning == (
        "cloud 'gcc_high' asks https://login.microsoftonline.us for tokens, but dynamics_url "
        "https://contoso.crm.dynamics.com is a public environment, whose login host is "
        "https://login.microsoftonline.com; using https://login.microsoftonline.us as "
        "configured. If token requests fail, remove cloud (the cloud is then inferred from "
        "dynamics_url)."
    )


def test_a_microsoft_authority_host_that_contradicts_warns():
    cloud, warning = choose_cloud(
        None, "https://login.microsoftonline.com", "https://contoso.crm.dynamics.cn"
    )
    assert cloud == "china"
    assert warning
    assert warning.startswith("authority_host asks https://login.microsoftonline.com")
    assert "remove authority_host" in warning


def test_microsoft_login_hosts():
    assert is_microsoft_login_host("https://LOGIN.microsoftonline.us/")
    assert not is_microsoft_login_host(EMULATOR)
    assert not is_microsoft_login_host("https://login.microsoftonline.us.evil.example")
