"""The process environment the target runs in: what it reads from it and what it must not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

TARGET_EXE = str(Path(sys.executable).with_name("target-dynamics"))
SCHEMA = {
    "type": "SCHEMA",
    "stream": "people",
    "schema": {"properties": {"email": {"type": "string"}, "first": {"type": "string"}}},
    "key_properties": ["email"],
}


def test_a_netrc_entry_for_the_host_does_not_replace_the_bearer_token(
    reset_emulator, api, tmp_path
):
    """requests reads ~/.netrc when a request has no auth of its own; its Basic credentials
    would replace the bearer token and every request would answer 401."""
    host = urlsplit(reset_emulator.target_config["dynamics_url"]).hostname
    home = tmp_path / "home"
    home.mkdir()
    netrc = home / ".netrc"
    netrc.write_text(f"machine {host} login someone password netrc-password\n")
    netrc.chmod(0o600)
    config = tmp_path / "config.json"
    settings = {
        **reset_emulator.target_config,
        "entity": "contact",
        "id_field": "emailaddress1",
        "streams": {"people": {"columns": {"email": "emailaddress1", "first": "firstname"}}},
    }
    config.write_text(json.dumps(settings))
    lines = [SCHEMA] + [
        {"type": "RECORD", "stream": "people", "record": {"email": f"n{i}@x.org", "first": "N"}}
        for i in range(3)
    ]
    env = {k: v for k, v in os.environ.items() if k != "NETRC"}
    done = subprocess.run(
        [TARGET_EXE, "--config", str(config)],
        input="".join(json.dumps(line) + "\n" for line in lines),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**env, "HOME": str(home)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "netrc-password" not in done.stderr
    answer = api.get(f"{reset_emulator.api_url}/contacts?$select=emailaddress1", timeout=30)
    landed = {row["emailaddress1"] for row in answer.json()["value"]}
    assert {"n0@x.org", "n1@x.org", "n2@x.org"} <= landed
