"""Many-to-many associations in seed files round-trip (docs/emulator.md, ``--seed-data``).

Microsoft Learn, "Associate and disassociate table rows using the Web API"
(https://learn.microsoft.com/power-apps/developer/data-platform/webapi/associate-disassociate-entities-using-web-api):
associated rows are read through the relationship's collection-valued navigation property.
List memberships are ``listmember`` rows (``listcontact_association``, docs/emulator-lists.md).
"""

from __future__ import annotations

import json
import signal
import subprocess
import typing as t
from pathlib import Path

from dataverse_emulator.testing import emulator_process

if t.TYPE_CHECKING:
    import requests

DOC = Path(__file__).parents[2] / "docs/emulator.md"
CONTACT = "5b1a3f3e-1c55-4e0c-9a57-0d1b8a4f7a01"
LEAD = "7d0c2e51-4b7a-4f0e-8e0f-2c3b6a1d9b02"
LIST = "9e4f6a10-3d2b-4c1a-b7e8-5f6a7b8c9d03"


def documented_seed() -> dict[str, t.Any]:
    text = DOC.read_text(encoding="utf-8")
    block = text.split("<!-- emulator-seed: associations -->\n```json\n")[1].split("```")[0]
    return json.loads(block)


def associations(api: requests.Session, root: str) -> tuple[list, list, list, int]:
    """What the Web API shows: the contact's leads and lists, the list's members, its count."""
    leads = api.get(f"{root}/contacts({CONTACT})/contactleads_association", timeout=5)
    lists = api.get(f"{root}/contacts({CONTACT})?$expand=listcontact_association", timeout=5)
    members = api.get(f"{root}/lists({LIST})/listcontact_association?$select=lastname", timeout=5)
    count = api.get(f"{root}/lists({LIST})?$select=membercount", timeout=5)
    return (
        [row["leadid"] for row in leads.json()["value"]],
        [row["listid"] for row in lists.json()["listcontact_association"]],
        [row["lastname"] for row in members.json()["value"]],
        count.json()["membercount"],
    )


def serve_and_stop(tmp_path: Path, name: str, seed: Path, saved: Path) -> tuple:
    args = ("--latency", "zero", "--seed-data", str(seed), "--snapshot-on-exit", str(saved))
    with emulator_process(
        tmp_path / name, *args, stdout=subprocess.PIPE, startup_timeout=20
    ) as emulator:
        process = emulator.process
        try:
            with emulator.api_session(timeout=5) as api:
                seen = associations(api, f"{emulator.base_url}/api/data/v9.2")
        finally:
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=15)
    assert process.returncode == 0, stderr
    return seen


def test_seeded_associations_are_readable_and_survive_a_snapshot_round_trip(tmp_path):
    """--seed-data loads ``listmember`` rows and ``contactleads`` pairs; the Web API reads them
    through both navigation properties and ``$expand``; --snapshot-on-exit writes them and a
    start from that snapshot shows the same associations."""
    seed, first, second = tmp_path / "rows.json", tmp_path / "a.json", tmp_path / "b.json"
    seed.write_text(json.dumps(documented_seed()))
    expected = ([LEAD], [LIST], ["Member"], 1)
    assert serve_and_stop(tmp_path, "one", seed, first) == expected
    saved = json.loads(first.read_text())
    assert saved["contactleads"] == [{"contactid": CONTACT, "leadid": LEAD}]
    assert [(m["listid"], m["entityid"]) for m in saved["listmember"]] == [(LIST, CONTACT)]
    assert serve_and_stop(tmp_path, "two", first, second) == expected
    again = json.loads(second.read_text())
    assert again["contactleads"] == saved["contactleads"]
    assert again["list"][0]["membercount"] == 1
