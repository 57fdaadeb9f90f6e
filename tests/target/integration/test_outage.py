"""Issue 8, items 5 to 7: outages end the run, transient failures keep bulk on, no stale writes.

Everything goes through the CLI or ``TargetDynamics.listen`` against the emulator over HTTPS, with
its fault rules (docs/emulator-faults.md); what landed is read from the emulator's snapshot.
"""

from __future__ import annotations

import contextlib
import io
import json
import time

import pytest

from dataverse_emulator.faults import OPERATION_TIME_LIMIT
from dataverse_emulator.state.errors import Kind
from dataverse_emulator.state.store import RecordRule
from target_dynamics.client import WRITE_SETTLE_SECONDS
from target_dynamics.errors import ServiceUnreachable
from target_dynamics.target import TargetDynamics


def landed(server) -> dict[str, str]:
    return {r["emailaddress1"]: r["lastname"] for r in server.admin.snapshot().get("contact", [])}


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


def test_dead_endpoint_ends_the_whole_run_within_the_budget(emulator_factory, tmp_path, singer):
    """Item 5: every request resets after the third write. The run stops with a message saying
    what and how to fix it, after a handful of attempts per batch in flight (not 8 retries, then
    $batch rounds, for each batch); nothing is sent after the budget ran out; any STATE covers
    only landed rows; a rerun from the last STATE (or the start) completes."""
    server = emulator_factory(latency="zero")
    config = {
        **server.target_config,
        "entity": "contact",
        "batch_size_rows": 5,
        "outage_budget_seconds": 2,
    }
    everything = [singer.PEOPLE_SCHEMA, *singer.people(40, every=5)]
    server.admin.set_faults([{"action": "reset", "method": "POST", "after": 3}])
    run = singer.cli(config, everything, tmp_path)
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
    rerun = singer.cli(config, [singer.PEOPLE_SCHEMA, *rest] if resume else everything, tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert landed(server) == {f"p{i}@x.org": f"L{i}" for i in range(40)}


def test_outage_in_process_raises_and_withholds_state(emulator_factory, singer):
    """Item 5 through listen(): ServiceUnreachable ends the run; no STATE follows the batch."""
    server = emulator_factory(latency="zero")
    target = in_process(server, outage_budget_seconds=1)
    server.admin.set_faults([{"action": "error", "status": 503, "method": "POST", "after": 2}])
    out = io.StringIO()
    messages = singer.lines([singer.PEOPLE_SCHEMA, *singer.people(6, every=1)])
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
def test_transient_bulk_failures_keep_bulk_on(emulator_factory, fault, singer):
    """Item 6: 429s (obeyed, not counted), 503s, resets and 401s more often than max_retries
    allows: every row lands, and the table keeps its bulk messages for later batches."""
    server = emulator_factory(latency="zero")
    target = in_process(server)
    target.client._max_retries = 2
    server.admin.set_faults([fault])
    states = singer.listen(target, [singer.PEOPLE_SCHEMA, *singer.people(3, every=1)])
    assert states[-1] == {"pos": 3}
    assert landed(server) == {f"p{i}@x.org": f"L{i}" for i in range(3)}
    assert not target.writer.bulk_disabled("contacts")
    bulk = server.admin.counters()["requests"]["bulk"]
    assert bulk.get("204", 0) >= 2, bulk  # later batches still go as UpsertMultiple


def test_duplicate_detection_rejects_the_row_and_keeps_bulk_on(emulator_factory, tmp_path, singer):
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
    first, then = singer.people(3, every=3), singer.people(2, "M", every=2, start=3)
    singer.listen(target, [singer.PEOPLE_SCHEMA, *first, *then])
    assert landed(server) == {"p0@x.org": "M0", "p1@x.org": "M1", "p2@x.org": "L2"}
    assert not target.writer.bulk_disabled("contacts")
    assert "0x80040333" in dead.read_text()


@pytest.mark.parametrize("seconds", [60, 150], ids=["lands-late", "rolled-back"])
def test_timed_out_write_never_lands_after_a_newer_one(emulator_factory, seconds, singer):
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
    old, new = singer.people(20, "old", every=20), singer.people(20, "new", every=20)
    states = singer.listen(target, [singer.PEOPLE_SCHEMA, *old, *new])
    time.sleep(OPERATION_TIME_LIMIT * scale)  # anything sent has now landed or rolled back
    assert states[-1] == {"pos": 20}
    assert landed(server) == {f"p{i}@x.org": f"new{i}" for i in range(20)}
