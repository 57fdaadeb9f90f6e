"""Issue 8, crash and rerun: ``benchmarks/kill_rerun.py`` at a reduced size.

2,000 records, 3 kills per mode (upsert, keyed create, keyless create, delete), each followed by
a rerun from the last emitted STATE; the full 20,000-record, 20-kill run is the script's job.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "kill_rerun.py"
KILLS = 3
ARGS = [
    "--records", "2000", "--kills", str(KILLS), "--batch-size", "200", "--state-interval", "200",
    "--state-every", "50", "--jitter", "0", "--time-scale", "0.02",
]  # fmt: skip


@pytest.mark.slow
def test_every_mode_is_exact_after_kill_9_and_rerun(tmp_path: Path) -> None:
    figures_path = tmp_path / "figures.json"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *ARGS, "--json", str(figures_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = result.stdout[-4000:] + result.stderr[-4000:]
    assert figures_path.exists(), report
    figures = json.loads(figures_path.read_text(encoding="utf-8"))
    modes = {m["mode"]: m for m in figures["modes"]}
    assert sorted(modes) == ["delete", "keyed-create", "keyless-create", "upsert"]
    assert all(m["kills"] == KILLS for m in modes.values()), report
    assert "state_interval_records" in figures["settings_passed"], report
    assert result.returncode == 0, report
    assert all(m["exact"] for m in modes.values()), report
