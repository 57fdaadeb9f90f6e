"""``python3 tasks.py demo``: the demo script end to end (real tap, emulator subprocess)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TAP = Path(
    os.environ.get(
        "TAP_SPREADSHEETS_BIN", ROOT / ".tools" / "tap-spreadsheets" / "bin" / "tap-spreadsheets"
    )
)


@pytest.mark.slow
@pytest.mark.skipif(not TAP.exists(), reason="tap-spreadsheets missing; tasks.py installs it")
def test_demo_loads_the_email_list_and_shows_what_landed(tmp_path: Path) -> None:
    demo = [sys.executable, str(ROOT / "scripts" / "demo.py"), "--tap", str(TAP)]
    result = subprocess.run(
        [*demo, "--keep", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "48 contacts in Dataverse" in out
    assert re.search(r"Ada Lovelace\s+ada\.lovelace@contoso\.com\s+Contoso", out)
    assert "Summary email_list: 51 received, 48 landed" in out
    assert "marketing list 'Newsletter': 48 members" in out
    assert re.search(r"Ada Lovelace\s+ada\.lovelace@contoso\.com\n", out)
    assert "List 'Newsletter': 48 added, 0 already members, 0 removed, 0 rejected" in out
    assert re.search(r"Requests: \d+, retries: \d+, throttled: [\d.]+ s", out)
    assert re.search(
        r"sven\.longtitle@contoso\.com\s+0x80044331\s+field 'job_title': column 'jobtitle'", out
    )
    assert re.search(r"lena\.unknown@wingtip\.example\s+0x80060891", out)
    dead_letters = (tmp_path / "dead-letter.jsonl").read_text(encoding="utf-8").splitlines()
    assert sum('"type":"RECORD"' in line for line in dead_letters) == 3
