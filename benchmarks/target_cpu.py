"""Client CPU and memory benchmark of target-dynamics against the zero-latency emulator.

Run: ``.venv/bin/python benchmarks/target_cpu.py [--records 50000] [--large 500000]``

1. CPU seconds per 10,000 records: target-dynamics upserting ``--records`` new contacts by the
   ``emailaddress1`` alternate key, next to a no-op singer-sdk target (``noop_target.py``) reading
   the same input. Each process also reads an input with the SCHEMA and no records; the figure per
   record is the difference (start-up, imports and metadata are paid once a run, not per record).
   Each run is repeated ``--repeat`` times, interleaved, and the least CPU counts: on a shared
   machine a busy moment only adds. The default of 50,000 records spreads what the empty run
   does not pay, once a run (a TLS handshake for each of up to 52 connections per user).
2. Peak resident memory of the target at 10,000 records and at ``--large`` records (``--large 0``
   skips the large run, which takes a few minutes): flat when nothing grows with the input.

Everything runs on loopback; figures are ratios within one run, never absolute promises.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_main import run
from target_speed import singer_input, target_config

from dataverse_emulator.testing import EmulatorProcess, emulator_process

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
PER = 10_000
"""CPU is shown per this many records; the small memory run has this many."""


def measure(cmd: list[str], stdin: Path) -> tuple[float, float, float]:
    """Run ``cmd`` on ``stdin``; return its (wall s, CPU s, peak resident MiB)."""
    start = time.perf_counter()
    with stdin.open("rb") as source:
        child = subprocess.Popen(
            cmd, stdin=source, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        stderr = child.stderr.read() if child.stderr else b""
        _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if child.returncode != 0:
        sys.stderr.write(stderr.decode()[-4000:])
        raise SystemExit(f"{cmd[0]} failed with exit code {child.returncode}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def run_target(emulator: EmulatorProcess, tmp: Path, stdin: Path) -> tuple[float, float, float]:
    """target-dynamics upserting ``stdin``'s contacts into the emulator."""
    config = tmp / f"{stdin.stem}.json"
    config.write_text(json.dumps(target_config(emulator, tmp / f"dead-{stdin.stem}.jsonl")))
    return measure([str(BIN / "target-dynamics"), "--config", str(config)], stdin)


def main() -> None:
    """Measure CPU and memory and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--large", type=int, default=500_000, help="0 skips the memory run")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each; the least CPU counts (default 3)"
    )
    args = parser.parse_args()
    noop = [sys.executable, str(HERE / "noop_target.py")]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        singer_input(tmp / "empty.jsonl", 0, "e")
        runs: dict[str, list[tuple[float, float, float]]] = {}
        with emulator_process(tmp / "zero", "--latency", "zero") as emulator:
            for attempt in range(args.repeat):  # interleaved: a busy moment hits every kind
                small = tmp / f"small{attempt}.jsonl"
                singer_input(small, args.records, f"s{attempt}-")  # new contacts each time
                runs.setdefault("target empty", []).append(
                    run_target(emulator, tmp, tmp / "empty.jsonl")
                )
                runs.setdefault("target", []).append(run_target(emulator, tmp, small))
                runs.setdefault("noop empty", []).append(measure(noop, tmp / "empty.jsonl"))
                runs.setdefault("noop", []).append(measure(noop, small))
        least = {name: min(found, key=lambda run: run[1]) for name, found in runs.items()}
        _, target_empty, _ = least["target empty"]
        wall, target_cpu, _ = least["target"]
        _, noop_empty, _ = least["noop empty"]
        _, noop_cpu, noop_peak = least["noop"]
        per = PER / args.records
        target_per = (target_cpu - target_empty) * per
        noop_per = (noop_cpu - noop_empty) * per
        print(
            f"zero latency: {args.records} contacts upserted by emailaddress1 ({wall:.1f} s), "
            f"least CPU of {args.repeat} runs each"
        )
        print("CPU seconds per 10,000 records (a run without records subtracted: start-up)")
        print(f"  target-dynamics:         {target_per:8.2f} s  (start-up {target_empty:.2f} s)")
        print(f"  no-op singer-sdk target: {noop_per:8.2f} s  (start-up {noop_empty:.2f} s)")
        print(f"  ratio:                   {target_per / noop_per:8.2f}x")
        print(f"  ratio with start-up:     {target_cpu / noop_cpu:8.2f}x")
        print(f"peak resident memory (no-op target, {args.records:,} records: {noop_peak:.0f} MiB)")
        singer_input(tmp / "memory.jsonl", PER, "m")
        with emulator_process(tmp / "memory", "--latency", "zero") as emulator:
            _, _, small_peak = run_target(emulator, tmp, tmp / "memory.jsonl")
        print(f"  target, {PER:>7,} records: {small_peak:8.0f} MiB")
        if args.large:
            singer_input(tmp / "large.jsonl", args.large, "l")
            with emulator_process(tmp / "large", "--latency", "zero") as emulator:
                wall, _, large_peak = run_target(emulator, tmp, tmp / "large.jsonl")
            print(f"  target, {args.large:>7,} records: {large_peak:8.0f} MiB ({wall:.0f} s)")
            print(f"  growth:                  {large_peak / small_peak:8.2f}x")


if __name__ == "__main__":
    run(main)
