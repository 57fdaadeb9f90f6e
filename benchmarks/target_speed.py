"""Throughput benchmark of target-dynamics against the local emulator.

Run: ``.venv/bin/python benchmarks/target_speed.py [--records 20000]``

Upserts ``--records`` contacts by the ``emailaddress1`` alternate key on the emulator with
realistic latency and prints records/s next to the ceiling the emulator's cost model allows one
application user. CPU and memory per record: ``target_cpu.py``.

Everything runs on loopback; figures are ratios within one run, never absolute promises.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import typing as t
from pathlib import Path

import bench_main
import requests

from dataverse_emulator.costs import CostModel
from dataverse_emulator.state.budget import Limits
from dataverse_emulator.testing import EmulatorProcess, emulator_process

BIN = Path(sys.executable).parent


def singer_input(path: Path, count: int, prefix: str) -> None:
    """Write a Singer stream of ``count`` contacts with unique emails."""
    schema = {
        "type": "object",
        "properties": {
            "email": {"type": "string"},
            "first_name": {"type": ["string", "null"]},
            "last_name": {"type": ["string", "null"]},
            "job_title": {"type": ["string", "null"]},
        },
    }
    with path.open("w") as out:
        message = {"type": "SCHEMA", "stream": "contacts", "schema": schema, "key_properties": []}
        out.write(json.dumps(message) + "\n")
        for i in range(count):
            record = {
                "email": f"{prefix}{i}@bench.example.com",
                "first_name": f"First{i}",
                "last_name": f"Last{i}",
                "job_title": "Engineer",
            }
            out.write(json.dumps({"type": "RECORD", "stream": "contacts", "record": record}) + "\n")
        out.write(json.dumps({"type": "STATE", "value": {"bookmark": count}}) + "\n")


def target_config(emulator: EmulatorProcess, dead_letter: Path) -> dict[str, t.Any]:
    """A target config that upserts the benchmark stream into contacts by email."""
    return {
        **emulator.target_config,
        "entity": "contact",
        "operation": "upsert",
        "id_field": "emailaddress1",
        "dead_letter_path": str(dead_letter),
        "progress_interval_seconds": 3600,
        "streams": {
            "contacts": {
                "columns": {
                    "email": "emailaddress1",
                    "first_name": "firstname",
                    "last_name": "lastname",
                    "job_title": "jobtitle",
                }
            }
        },
    }


def contact_count(emulator: EmulatorProcess) -> int:
    """Contacts in the emulator's store, read from the admin snapshot."""
    snapshot = requests.get(
        f"{emulator.base_url}/_emulator/snapshot", verify=str(emulator.ca_path), timeout=60
    )
    snapshot.raise_for_status()
    return len(snapshot.json().get("contact", []))


def run_child(cmd: list[str], stdin: Path) -> float:
    """Run ``cmd`` with ``stdin``; return its wall seconds."""
    start = time.perf_counter()
    with stdin.open("rb") as source:
        done = subprocess.run(cmd, stdin=source, capture_output=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.stderr.write(done.stderr.decode()[-4000:])
        raise SystemExit(f"{cmd[0]} failed with exit code {done.returncode}")
    return wall


def ceiling(records: int) -> tuple[float, float, float]:
    """Records/s the cost model allows one application user.

    Per record an UpsertMultiple costs ``t`` server seconds; one user may keep ``C`` requests in
    flight and spend ``E`` execution seconds per ``W``-second window (reference §7.1, §9.3).

    Returns:
        (at ``x-ms-dop-hint`` parallelism, at the 52-request concurrency limit for this run,
        sustained once the execution budget is spent).
    """
    model, limits = CostModel(), Limits()
    per_record = model.bulk_update_record
    sustained = limits.execution_seconds / limits.window_seconds / per_record
    work = records * per_record
    spill = max(0.0, work - limits.execution_seconds) / limits.execution_seconds
    at_limit = records / max(work / limits.concurrent, spill * limits.window_seconds)
    at_hint = min(limits.dop_hint / per_record, at_limit)
    return at_hint, at_limit, sustained


def main() -> None:
    """Measure the throughput and print it with its ceilings."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=20_000)
    args = parser.parse_args()
    target = [str(BIN / "target-dynamics"), "--config"]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        singer_input(tmp / "throughput.jsonl", args.records, "t")

        with emulator_process(tmp / "realistic", "--latency", "realistic") as emulator:
            config = tmp / "realistic.json"
            config.write_text(json.dumps(target_config(emulator, tmp / "dead-realistic.jsonl")))
            wall = run_child([*target, str(config)], tmp / "throughput.jsonl")
            landed = contact_count(emulator)
        at_hint, at_limit, sustained = ceiling(args.records)
        print(f"realistic latency: {args.records} contacts upserted by emailaddress1")
        print(f"  landed in the emulator:  {landed}")
        print(f"  target throughput:       {args.records / wall:8.0f} records/s ({wall:.1f} s)")
        print(f"  ceiling at x-ms-dop-hint:{at_hint:8.0f} records/s (one user, cost model)")
        print(f"  ceiling at 52 in flight: {at_limit:8.0f} records/s (burst, this run)")
        print(f"  sustained ceiling:       {sustained:8.0f} records/s once the budget is spent")
        print(f"  share of dop-hint bound: {args.records / wall / at_hint:8.0%}")


if __name__ == "__main__":
    bench_main.run(main)
