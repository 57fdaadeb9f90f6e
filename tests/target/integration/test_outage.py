"""Issue 8, items 5 to 7: outages end the run, transient failures keep bulk on, no stale writes.

Everything goes through the CLI or ``TargetDynamics.listen`` against the emulator over HTTPS, with
its fault rules (docs/emulator-faults.md); what landed is read from the emulator's snapshot.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dataverse_emulator.faults import OPERATION_TIME_LIMIT
from dataverse_emulator.state.errors import Kind
from dataverse_emulator.state.store import RecordRule
from target_dynamics.client import WRITE_SETTLE_SECONDS
from target_dynamics.errors import ServiceUnreachable
from target_dynamics.target import TargetDynamics

TARGET_EXE = str(Path(sys.executable).with_name("target-dynamics"))
SCHEMA = {
    "type": "SCHEMA",
    "stream": "people",
    "key_properties": ["emailaddress1"],
    "schema": {"properties": {"emailaddress1": {"type": "string"}, "lastname": {"type": "string"}}},
}


def records(count: int, lastname: str = "L", every: int = 0, start: int = 0) -> list[dict]:
    """``count`` people records, with a STATE naming the position after every ``every``."""
    out = []
    for i in range(count):
        record = {"emailaddress1": f"p{i}@x.org", "lastname": f"{lastname}{i}"}
        out.append({"type": "RECORD", "stream": "people", "record": record})
        if every and (i + 1) % every == 0:
            out.append({"type": "STATE", "value": {"pos": start + i + 1}})
    return out


def landed(server) -> dict[str, str]:
    return {r["emailaddress1"]: r["lastname"] for r in server.admin.snapshot().get("contact", [])}


def listen(target: TargetDynamics, messages: list[dict]) -> list[dict]:
    """Feed ``messages`` to the target; return what it printed (STATE messages)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        target.listen(io.StringIO("".join(json.dumps(m) + "\n" for m in messages)))
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


def in_process(server, **config: object) -> TargetDynamics:
    """A target draining (and checkpointing) after every record, with quick backoffs."""
    target = TargetDynamics(
        config={
            **server.target_config,
            "entity": "contact",
            "progress_interval_seconds": 0,
            "state_interval_records": 1,
            **config,
        }
    )
    target.client._backoff_base = 0.05
    return target


def test_dead_endpoint_ends_the_whole_run_within_the_budget(emulator_factory, tmp_path):
    """Item 5: every request resets after the third write. The run stops with a message saying
    what and how to fix it, after a handful of attempts per batch in flight (not 8 retries, then
    $batch rounds, for each batch); nothing is sent after the budget ran out; any STATE covers
    only landed rows; a rerun from the last STATE (or the start) completes."""
    server = emulator_factory(latency="zero")
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                **server.target_config,
                "entity": "contact",
                "batch_size_rows": 5,
                "outage_budget_seconds": 2,
            }
        )
    )
    everything = [SCHEMA, *records(40, every=5)]
    server.admin.set_faults([{"action": "reset", "method": "POST", "after": 3}])
    run = subprocess.run(
        [TARGET_EXE, "--config", str(config)],
        input="".join(json.dumps(m) + "\n" for m in everything),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    found = [line for line in run.stderr.splitlines() if "gave no usable answer" in line]
    assert len(found) == 1, run.stderr[-3000:]
    [message] = found
    for words in ("outage_budget_seconds is 2", "rerun", "STATE"):
        assert words in message
    [rule] = server.admin.faults()["rules"]
    # a few attempts of each of the 8 batches the pipeline had in flight, then nothing more
    assert 1 <= rule["fired"] <= 4 * 8, rule
    assert len(landed(server)) == 15  # three batches; the fourth failed, no later one was sent
    states = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
    assert all(state["pos"] <= 15 for state in states)

    server.admin.set_faults([])
    resume = states[-1] if states else None
    rest = everything[everything.index({"type": "STATE", "value": resume}) + 1 :] if resume else []
    rerun = subprocess.run(
        [TARGET_EXE, "--config", str(config)],
        input="".join(json.dumps(m) + "\n" for m in ([SCHEMA, *rest] if resume else everything)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert landed(server) == {f"p{i}@x.org": f"L{i}" for i in range(40)}


def test_outage_in_process_raises_and_withholds_state(emulator_factory):
    """Item 5 through listen(): ServiceUnreachable ends the run; no STATE follows the batch."""
    server = emulator_factory(latency="zero")
    target = in_process(server, outage_budget_seconds=1)
    server.admin.set_faults([{"action": "error", "status": 503, "method": "POST", "after": 2}])
    out = io.StringIO()
    messages = "".join(json.dumps(m) + "\n" for m in [SCHEMA, *records(6, every=1)])
    with contextlib.redirect_stdout(out), pytest.raises(ServiceUnreachable, match="no usable"):
        target.listen(io.StringIO(messages))
    states = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
    assert len(landed(server)) == 2
    assert states
    assert states[-1]["pos"] <= 2  # never past the landed rows; nothing after the failure


@pytest.mark.parametrize(
    "fault",
    [
        {"action": "throttle", "operation": "bulk", "times": 3, "retry_after": 1},
        {"action": "error", "status": 503, "operation": "bulk", "times": 3},
        {"action": "reset", "operation": "bulk", "times": 3},
        {"action": "revoke_tokens", "operation": "bulk", "times": 2},
    ],
    ids=["429", "503", "reset", "401"],
)
def test_transient_bulk_failures_keep_bulk_on(emulator_factory, fault):
    """Item 6: 429s (obeyed, not counted), 503s, resets and 401s more often than max_retries
    allows: every row lands, and the table keeps its bulk messages for later batches."""
    server = emulator_factory(latency="zero")
    target = in_process(server)
    target.client._max_retries = 2
    server.admin.set_faults([fault])
    states = listen(target, [SCHEMA, *records(3, every=1)])
    assert states[-1] == {"pos": 3}
    assert landed(server) == {f"p{i}@x.org": f"L{i}" for i in range(3)}
    assert not target.writer.bulk_disabled("contacts")
    bulk = server.admin.counters()["requests"]["bulk"]
    assert bulk.get("204", 0) >= 2, bulk  # later batches still go as UpsertMultiple


def test_duplicate_detection_rejects_the_row_and_keeps_bulk_on(emulator_factory, tmp_path):
    """Item 6: one duplicate-detection error fails the bulk message; isolation rejects that row,
    lands the others, and does not switch bulk off."""
    server = emulator_factory(latency="zero")
    server.env.store.record_rules.append(
        RecordRule(
            "contact",
            {"lastname": "L1"},
            Kind.SERVER_ERROR,
            "0x80040333",
            "A record was not created or updated because a duplicate of the current record "
            "already exists.",
        )
    )
    dead = tmp_path / "dead.jsonl"
    target = in_process(
        server,
        max_errors=1,
        dead_letter_path=str(dead),
        batch_size_rows=3,
        state_interval_records=100,
    )
    listen(target, [SCHEMA, *records(3, every=3), *records(2, lastname="M", every=2, start=3)])
    assert landed(server) == {"p0@x.org": "M0", "p1@x.org": "M1", "p2@x.org": "L2"}
    assert not target.writer.bulk_disabled("contacts")
    assert "0x80040333" in dead.read_text()


@pytest.mark.parametrize("seconds", [60, 150], ids=["lands-late", "rolled-back"])
def test_timed_out_write_never_lands_after_a_newer_one(emulator_factory, seconds):
    """Item 7: the first write of 20 rows runs longer than timeout_seconds (60 s: it lands
    late; 150 s: the service cancels it at 2 minutes). The same rows are written again with
    newer values in the next batch. Every row ends with the newer value."""
    scale = 0.01
    server = emulator_factory(latency="zero", time_scale=scale)
    target = in_process(server, timeout_seconds=0.2, batch_size_rows=20, state_interval_records=100)
    target.client._write_settle = WRITE_SETTLE_SECONDS * scale  # the service's limit, scaled
    server.admin.set_faults(
        [{"action": "delay", "seconds": seconds, "operation": "bulk", "times": 1}]
    )
    states = listen(target, [SCHEMA, *records(20, "old", every=20), *records(20, "new", every=20)])
    time.sleep(OPERATION_TIME_LIMIT * scale)  # anything sent has now landed or rolled back
    assert states[-1] == {"pos": 20}
    assert landed(server) == {f"p{i}@x.org": f"new{i}" for i in range(20)}
