"""Bad inputs through the real CLI: each ends in one clear message or a dead letter, never a
traceback, and what was accepted before it still lands.

Each case in ``bad_inputs/`` is ``<case>.json`` (what to expect, and a config overlay on the
emulator's working config; ``null`` removes a setting, ``{tmp}`` is a temporary directory),
with ``<case>.singer`` (the input; none means empty) and, for unreadable config files,
``<case>.config`` (used as the config file as it is). Records the run must keep are addressed
``*@ok.test``; records it must reject, ``*@bad.test``; records after a fatal line,
``*@unread.test``. Expectation fields:

- ``message``: a fragment of the run's one error message (exit 1), or of click's usage error
  (exit 2); empty when the run succeeds.
- ``exit``: the exit code (default 1).
- ``dead_letters``: a fragment of each dead letter's reason, in order.
- ``stdin``: feed the input on stdin instead of ``--input``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

CASES = Path(__file__).parent / "bad_inputs"
NAMES = sorted(p.stem for p in CASES.glob("*.json"))


def config_file(case: str, spec: dict, emulator, tmp_path: Path) -> Path | dict:
    """The case's config file as it is, or its overlay on the emulator's working config."""
    raw = CASES / f"{case}.config"
    if raw.exists():
        return raw
    if "config_path" in spec:
        return tmp_path / spec["config_path"]
    config = {**emulator.target_config, "dead_letter_path": str(tmp_path / "dead.jsonl")}
    for key, value in spec.get("config", {}).items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = json.loads(json.dumps(value).replace("{tmp}", str(tmp_path)))
    return config


def emails(data: bytes, domain: str) -> set[str]:
    """The ``emailaddress1`` of every RECORD on a readable line of ``data`` ending in ``domain``."""
    found = set()
    for line in data.splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        record = message.get("record") if isinstance(message, dict) else None
        email = record.get("emailaddress1") if isinstance(record, dict) else None
        if isinstance(email, str) and email.endswith(domain):
            found.add(email)
    return found


def dead_letters(tmp_path: Path) -> list[dict]:
    path = tmp_path / "dead.jsonl"
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [m["record"] for m in lines if m["type"] == "RECORD"]


@pytest.mark.parametrize("case", NAMES)
def test_bad_input(case, reset_emulator, tmp_path, singer):
    spec = json.loads((CASES / f"{case}.json").read_text())
    source = CASES / f"{case}.singer"
    data = source.read_bytes() if source.exists() else b""
    config = config_file(case, spec, reset_emulator, tmp_path)
    if spec.get("stdin"):
        done = singer.cli(config, source if data else "", tmp_path, env=singer.QUIET)
    else:
        given = ["--input", str(source if source.exists() else "/dev/null")]
        done = singer.cli(config, "", tmp_path, args=given, env=singer.QUIET)
    stderr, output = done.stderr, done.stdout + done.stderr

    assert "Traceback" not in output, stderr
    assert reset_emulator.target_config["client_secret"] not in output
    assert done.returncode == spec.get("exit", 1), stderr
    message = spec["message"]
    errors = [line for line in stderr.splitlines() if "| ERROR" in line or "Error:" in line]
    if done.returncode:
        assert len(errors) == 1, stderr  # printed once
        assert message, "a failing case names its message"
        assert stderr.count(message) == 1, stderr
    else:
        assert not errors, stderr

    rows = {r["emailaddress1"] for r in reset_emulator.admin.snapshot().get("contact", [])}
    assert emails(data, "@ok.test") <= rows, "records accepted before the bad input were lost"
    assert not rows & (emails(data, "@bad.test") | emails(data, "@unread.test"))

    letters = dead_letters(tmp_path)
    reasons = [letter["_dead_letter"]["error"] for letter in letters]
    expected = spec.get("dead_letters", [])
    assert len(reasons) == len(expected), reasons
    for reason, fragment in zip(reasons, expected, strict=True):
        assert fragment in reason
    assert emails(data, "@bad.test") <= {letter.get("emailaddress1") for letter in letters}


def test_debug_logging_adds_the_traceback(reset_emulator, tmp_path, singer):
    """The one message stays; at DEBUG the traceback of where it was raised follows it."""
    case = "line_log_text_on_stdout"
    spec = json.loads((CASES / f"{case}.json").read_text())
    done = singer.cli(
        config_file(case, spec, reset_emulator, tmp_path),
        "",
        tmp_path,
        args=["--input", str(CASES / f"{case}.singer")],
        env={**singer.QUIET, "TARGET_DYNAMICS_LOGLEVEL": "DEBUG"},
    )
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if "| ERROR" in line]
    assert len(errors) == 1
    assert spec["message"] in errors[0]
    assert "Traceback" in done.stderr
    assert "in _message" in done.stderr


def test_every_corpus_file_belongs_to_a_case():
    cases = set(NAMES)
    for path in CASES.iterdir():
        assert path.name.split(".")[0] in cases, path.name
    for name in NAMES:
        spec = json.loads((CASES / f"{name}.json").read_text())
        assert set(spec) <= {"message", "exit", "config", "dead_letters", "stdin", "config_path"}
        assert spec["message"] or spec.get("dead_letters"), name
