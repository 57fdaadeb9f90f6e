"""STATE is never ahead of the data: stop the target mid-run, rerun from its last STATE (§10.3)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from target_dynamics.reporting import LoadFailed
from target_dynamics.target import TargetDynamics

pytestmark = pytest.mark.usefixtures("reset_emulator")


def resume_after(all_messages: list[dict], state: dict | None) -> list[dict]:
    """What a tap sends when restarted from ``state``: the SCHEMA (the first message), then
    everything after that STATE."""
    if not state:
        return all_messages
    index = all_messages.index({"type": "STATE", "value": state})
    return [all_messages[0], *all_messages[index + 1 :]]


def landed(emulator) -> dict[str, str]:
    return {r["emailaddress1"]: r["lastname"] for r in emulator.admin.snapshot().get("contact", [])}


def covered(state: dict) -> set[str]:
    return {f"p{i}@x.org" for i in range(state["pos"])}


def run_in_process(emulator, singer, batch: list[dict]) -> tuple[list[dict], LoadFailed | None]:
    target = TargetDynamics(
        config={
            **emulator.target_config,
            "entity": "contact",
            "progress_interval_seconds": 0,
            "state_interval_records": 1,  # drain (and emit STATE) after every record
        }
    )
    client = target.client
    client._max_retries = 1
    client._backoff_base = 0.01
    target.writer._sleep = lambda _seconds: None
    return singer.run(target, batch)


def test_failed_writes_stop_state_and_a_rerun_completes(reset_emulator, singer):
    """Writes start failing mid-run: every emitted STATE covers only landed records; the rerun
    from the last one ends with exactly the rows of an undisturbed run."""
    everything = singer.people(20, every=1, schema=True)
    reset_emulator.admin.set_faults(
        [{"action": "error", "status": 500, "method": "POST", "path": "/api/data/", "after": 8}]
    )
    states, error = run_in_process(reset_emulator, singer, everything)
    assert isinstance(error, LoadFailed)
    assert "could not be written" in str(error)
    assert states, "some STATE was emitted before the failures"
    rows = landed(reset_emulator)
    for state in states:
        assert covered(state) <= set(rows), state
    last = states[-1]
    assert last["pos"] < 20

    reset_emulator.admin.set_faults([])
    states, error = run_in_process(reset_emulator, singer, resume_after(everything, last))
    assert error is None
    assert states[-1] == {"pos": 20}
    assert landed(reset_emulator) == {f"p{i}@x.org": f"L{i}" for i in range(20)}
    assert len(reset_emulator.admin.snapshot()["contact"]) == 20


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_cli_resumes_from_its_last_state(reset_emulator, tmp_path, sig, singer):
    """The CLI is killed while writing; whatever STATE it printed is backed by landed rows,
    and a rerun from it converges to the full data set."""
    config = {**reset_emulator.target_config, "entity": "contact", "batch_size_rows": 5}
    everything = singer.people(40, every=5, schema=True)
    reset_emulator.admin.set_faults(
        [{"action": "delay", "seconds": 0.2, "method": "POST", "path": "/api/data/"}]
    )
    process = singer.start(config, tmp_path)
    try:
        for message in everything[:30]:
            process.stdin.write(singer.lines([message]))
        process.stdin.flush()
        deadline = time.monotonic() + 30
        while len(landed(reset_emulator)) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(process.pid, sig)
        stdout, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    states = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    rows = landed(reset_emulator)
    for state in states:
        assert covered(state) <= set(rows), state
    if sig == signal.SIGTERM:
        # A graceful stop drains and checkpoints (exit 0; no STATE if none had arrived yet),
        # unless it interrupted a write: then it withholds STATE and exits 1.
        assert process.returncode in {0, 1}
        if process.returncode == 1:
            assert not states

    reset_emulator.admin.set_faults([])
    rerun = singer.cli(config, resume_after(everything, states[-1] if states else None), tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert json.loads(rerun.stdout.splitlines()[-1]) == {"pos": 40}
    assert landed(reset_emulator) == {f"p{i}@x.org": f"L{i}" for i in range(40)}


def test_sigterm_while_idle_checkpoints_and_exits_zero(reset_emulator, tmp_path, singer):
    """SIGTERM between batches: the SDK drains what was received and emits the latest STATE."""
    config = {**reset_emulator.target_config, "entity": "contact", "batch_size_rows": 5}
    process = singer.start(config, tmp_path, stderr=subprocess.PIPE)
    try:
        process.stdin.write(singer.lines(singer.people(12, every=4, schema=True)))
        process.stdin.flush()
        deadline = time.monotonic() + 30
        while len(landed(reset_emulator)) < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert process.returncode == 0, stderr[-2000:]
    assert json.loads(stdout.splitlines()[-1]) == {"pos": 12}
    assert len(landed(reset_emulator)) == 12
    assert "Summary people: 12 received, 12 landed" in stderr


@pytest.mark.parametrize("id_field", [None, "emailaddress1"])
def test_killed_create_run_has_checkpointed_and_resumes_exactly(
    reset_emulator, tmp_path, id_field, singer
):
    """Item 3 of the exactly-once issue: STATE keeps up (every state_interval_records), so a
    kill -9 resends at most one interval; a keyless or keyed create rerun is exact, and never
    rejects what the killed run had landed."""
    interval = 10
    settings = {
        **reset_emulator.target_config,
        "entity": "contact",
        "operation": "create",
        "batch_size_rows": 5,
        "state_interval_records": interval,
        **({"id_field": id_field} if id_field else {}),
    }
    everything = singer.people(60, every=5, schema=True)
    reset_emulator.admin.set_faults(
        [{"action": "delay", "seconds": 0.05, "method": "POST", "path": "/api/data/"}]
    )
    process = singer.start(settings, tmp_path)
    try:
        process.stdin.write(singer.lines(everything))
        process.stdin.close()
        states = [json.loads(process.stdout.readline()) for _ in range(2)]
        process.kill()
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert states[-1]["pos"] < 60, "STATE came only at the end of the input"
    rows = landed(reset_emulator)
    assert covered(states[-1]) <= set(rows)
    assert len(rows) - states[-1]["pos"] <= interval  # what the rerun sends again

    reset_emulator.admin.set_faults([])
    rerun = singer.cli(settings, resume_after(everything, states[-1]), tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    resent = 60 - states[-1]["pos"]
    assert f"Summary people: {resent} received, {resent} landed" in rerun.stderr
    assert "0 rejected, 0 not written" in rerun.stderr
    assert landed(reset_emulator) == {f"p{i}@x.org": f"L{i}" for i in range(60)}
    assert len(reset_emulator.admin.snapshot()["contact"]) == 60
