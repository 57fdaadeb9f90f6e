"""The process environment the target runs in: what it reads from it and what it must not."""

from __future__ import annotations

import os
from urllib.parse import urlsplit


def test_a_netrc_entry_for_the_host_does_not_replace_the_bearer_token(
    reset_emulator, api, tmp_path, singer
):
    """requests reads ~/.netrc when a request has no auth of its own; its Basic credentials
    would replace the bearer token and every request would answer 401."""
    host = urlsplit(reset_emulator.target_config["dynamics_url"]).hostname
    home = tmp_path / "home"
    home.mkdir()
    netrc = home / ".netrc"
    netrc.write_text(f"machine {host} login someone password netrc-password\n")
    netrc.chmod(0o600)
    settings = {
        **reset_emulator.target_config,
        "entity": "contact",
        "id_field": "emailaddress1",
        "streams": {"people": {"columns": {"email": "emailaddress1", "first": "firstname"}}},
    }
    env = {k: v for k, v in os.environ.items() if k != "NETRC"}
    messages = singer.read("test_environment__people")
    done = singer.cli(settings, messages, tmp_path, env={**env, "HOME": str(home)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "netrc-password" not in done.stderr
    answer = api.get(f"{reset_emulator.api_url}/contacts?$select=emailaddress1", timeout=30)
    landed = {row["emailaddress1"] for row in answer.json()["value"]}
    assert {"n0@x.org", "n1@x.org", "n2@x.org"} <= landed
