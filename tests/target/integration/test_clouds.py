"""Sovereign clouds through the target (§1.4): the cloud inferred from dynamics_url, an explicit
cloud honoured with one warning when the URL says otherwise, and any cloud rehearsed against the
emulator's authority.

Which login host a run asks is read from a loopback https proxy that records each ``CONNECT``
and refuses it, so nothing leaves the machine; what landed is read from the emulator. The input,
``data/test_clouds__three_people.singer``, is three people ``c<i>@x.org``.
"""

from __future__ import annotations

import logging
import os
import typing as t

import pytest

from target_dynamics.target import TargetDynamics

if t.TYPE_CHECKING:
    from pathlib import Path

CONNECTION = {
    "tenant_id": "contoso.onmicrosoft.com",
    "client_id": "00000000-0000-0000-0000-000000000001",
    "client_secret": "not-shown-anywhere",
    "entity": "contact",
    "outage_budget_seconds": 0.01,
}


def run_through_proxy(singer, proxy_url: str, tmp_path: Path, **config: t.Any) -> str:
    """Run the CLI with ``proxy_url`` as its https proxy; return its stderr (it fails)."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in {"no_proxy", "https_proxy"}}
    done = singer.cli(
        {**CONNECTION, **config},
        singer.read("test_clouds__three_people"),
        tmp_path,
        env={**env, "HTTPS_PROXY": proxy_url},
    )
    assert done.returncode != 0
    assert "not-shown-anywhere" not in done.stderr
    return done.stderr


@pytest.mark.parametrize(
    ("dynamics_url", "login_host"),
    [
        ("https://contoso.crm.microsoftdynamics.us", "login.microsoftonline.us"),
        ("https://contoso.api.crm.appsplatform.us", "login.microsoftonline.us"),
        ("https://contoso.crm.dynamics.cn", "login.partner.microsoftonline.cn"),
        ("https://contoso.crm9.dynamics.com", "login.microsoftonline.com"),
        ("https://contoso.crm4.dynamics.com", "login.microsoftonline.com"),
    ],
)
def test_cloud_is_inferred_from_dynamics_url(singer, listener, tmp_path, dynamics_url, login_host):
    """No `cloud`: the URL's domain picks the login host; nothing is warned."""
    stderr = run_through_proxy(singer, listener.url, tmp_path, dynamics_url=dynamics_url)
    assert [(m, p) for m, p, _ in listener.received] == [("CONNECT", f"{login_host}:443")]
    assert f"The identity provider at https://{login_host}/contoso.onmicrosoft.com" in stderr
    assert "WARNING" not in stderr


def test_explicit_cloud_wins_and_a_contradiction_warns_once(singer, listener, tmp_path):
    """`cloud: public` with a GCC High URL: the commercial host is asked as configured, and one
    warning says what the URL implies and what to change."""
    stderr = run_through_proxy(
        singer,
        listener.url,
        tmp_path,
        dynamics_url="https://contoso.crm.microsoftdynamics.us",
        cloud="public",
    )
    assert [p for _, p, _ in listener.received] == ["login.microsoftonline.com:443"]
    warnings = [line for line in stderr.splitlines() if "WARNING" in line]
    assert len(warnings) == 1
    assert (
        "cloud 'public' asks https://login.microsoftonline.com for tokens, but dynamics_url "
        "https://contoso.crm.microsoftdynamics.us is a gcc_high environment, whose login host "
        "is https://login.microsoftonline.us; using https://login.microsoftonline.com as "
        "configured. If token requests fail, remove cloud"
    ) in warnings[0]


@pytest.mark.parametrize("cloud", ["gcc_high", "dod", "china"])
def test_any_cloud_is_rehearsed_against_the_emulator(singer, reset_emulator, caplog, cloud):
    """A sovereign `cloud` kept as in production, with the emulator's URL and authority_host:
    the emulator's token endpoint answers and every record lands, with no warning."""
    config = {**reset_emulator.target_config, "entity": "contact", "cloud": cloud}
    target = TargetDynamics(config=config)
    assert target.settings.cloud == cloud
    assert target.settings.login_host == reset_emulator.target_config["authority_host"]
    with caplog.at_level(logging.WARNING):
        singer.listen(target, singer.read("test_clouds__three_people"))
    landed = {r["emailaddress1"] for r in reset_emulator.admin.snapshot()["contact"]}
    assert landed == {f"c{i}@x.org" for i in range(3)}
    assert reset_emulator.admin.counters()["requests"]["token"] == {"200": 1}
    assert not [r for r in caplog.records if "login host" in r.getMessage()]
