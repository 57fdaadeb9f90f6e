"""How long target-dynamics takes to give up when the service dies mid-run (issue 8, item 5).

Run: ``.venv/bin/python benchmarks/dead_endpoint.py [--budget 300] [--records 20000]``

Starts the emulator (``--latency realistic --time-scale 0.2``) as a child process, pipes
``--records`` contacts into the ``target-dynamics`` CLI in batches of 1,000, stops the emulator
once ``--kill-after`` rows landed (every later connection is refused), and prints how long the
CLI then ran before it exited, next to ``outage_budget_seconds``. Everything runs on loopback.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bench_main
import requests

from dataverse_emulator.testing import EmulatorProcess, emulator_process

BIN = Path(sys.executable).parent


def singer_input(count: int) -> str:
    """A Singer stream of ``count`` contacts keyed by email, a STATE after every 1,000."""
    schema = {"properties": {"emailaddress1": {"type": "string"}, "lastname": {"type": "string"}}}
    lines = [{"type": "SCHEMA", "stream": "contacts", "schema": schema, "key_properties": []}]
    for i in range(count):
        record = {"emailaddress1": f"d{i}@bench.example.com", "lastname": f"Last{i}"}
        lines.append({"type": "RECORD", "stream": "contacts", "record": record})
        if (i + 1) % 1000 == 0:
            lines.append({"type": "STATE", "value": {"bookmark": i + 1}})
    return "".join(json.dumps(line) + "\n" for line in lines)


def contact_count(emulator: EmulatorProcess) -> int:
    """Contacts in the emulator's store."""
    snapshot = requests.get(
        f"{emulator.base_url}/_emulator/snapshot", verify=str(emulator.ca_path), timeout=60
    )
    snapshot.raise_for_status()
    return len(snapshot.json().get("contact", []))


def main() -> None:
    """Run the target, kill the service mid-run, print the time to give up."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", type=float, default=300.0, help="outage_budget_seconds")
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--kill-after", type=int, default=2_000, help="rows landed first")
    parser.add_argument("--time-scale", type=float, default=0.2, help="emulator latency scale")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        scale = ("--time-scale", str(args.time_scale))
        with emulator_process(tmp / "emulator", "--latency", "realistic", *scale) as emulator:
            config = tmp / "config.json"
            config.write_text(
                json.dumps(
                    {
                        **emulator.target_config,
                        "entity": "contact",
                        "id_field": "emailaddress1",
                        "outage_budget_seconds": args.budget,
                        "progress_interval_seconds": 3600,
                    }
                )
            )
            source = tmp / "input.jsonl"
            source.write_text(singer_input(args.records))
            with source.open() as stdin, (tmp / "stderr.log").open("w") as log:
                target = subprocess.Popen(
                    [str(BIN / "target-dynamics"), "--config", str(config)],
                    stdin=stdin,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    text=True,
                )
                while contact_count(emulator) < args.kill_after and target.poll() is None:
                    time.sleep(0.2)
                landed = contact_count(emulator)
                emulator.stop()
                stopped = time.monotonic()
                stdout, _ = target.communicate()
                gave_up = time.monotonic() - stopped
            stderr = (tmp / "stderr.log").read_text()
    states = [line for line in stdout.splitlines() if line.strip()]
    reason = [line for line in stderr.splitlines() if "no usable answer" in line][:1]
    print(f"emulator stopped after {landed} of {args.records} rows had landed")
    print(f"target exited {target.returncode} after {gave_up:.1f} s (budget {args.budget:g} s)")
    print(f"STATE messages emitted: {len(states)}; reason: {(reason or ['none'])[0][:400]}")


if __name__ == "__main__":
    bench_main.run(main)
