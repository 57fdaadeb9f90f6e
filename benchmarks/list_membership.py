"""Marketing-list membership rate of target-dynamics next to its row-write rate, in one emulator.

Run: ``.venv/bin/python benchmarks/list_membership.py [--records 20000] [--time-scale 1.0]``

One ``dataverse-emulator --latency realistic`` process; the same Singer input (``--records``
contacts, upserted by the ``emailaddress1`` alternate key) is loaded three times by the
``target-dynamics`` console script:

a. rows only, no ``marketing_list`` (first loader);
c. the same input again with ``marketing_list: "Rejoin"`` (second loader, so (a) spent none of
   its service-protection budget): the rows exist, the writes are updates, every row joins a new
   list;
b. after ``POST /_emulator/reset`` (empty store, fresh budgets), the input with
   ``marketing_list: "Newsletter"`` (first loader): rows created and joined in one run.

The target logs no per-phase timing, so the membership time is the difference of wall times:
memberships/s = members added / (time(b or c) - time(a)); an UpsertMultiple record costs the
same server time whether it creates or updates (``dataverse_emulator/costs.py``). Each list is
checked through the Web API: ``membercount`` and the rows of
``lists(<id>)/listcontact_association`` equal ``--records``.

Everything runs on loopback; figures are ratios within one run, never absolute promises.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
import typing as t
from dataclasses import dataclass
from pathlib import Path

import bench_main
import requests

from dataverse_emulator.costs import CostModel
from dataverse_emulator.testing import EmulatorProcess, emulator_process

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
Config = dict[str, t.Any]
"""A target config (JSON object), or a users.json entry."""
sys.path.insert(0, str(HERE))

from target_speed import singer_input, target_config  # noqa: E402 - after the path above

LIST_LINE = re.compile(
    r"List '(?P<name>[^']+)': (?P<added>\d+) added, (?P<already>\d+) already members, "
    r"(?P<removed>\d+) removed, (?P<rejected>\d+) rejected"
)
SUMMARY_LINE = re.compile(r"Summary contacts: \d+ received, (?P<landed>\d+) landed")
REQUESTS_LINE = re.compile(
    r"Requests: (?P<requests>\d+), retries: (?P<retries>\d+), throttled: (?P<throttled>[\d.]+) s"
)


@dataclass
class Load:
    """What one target run did, from its wall time and its summary lines."""

    wall: float
    landed: int
    added: int
    already: int
    rejected: int
    requests: int
    retries: int
    throttled: float
    by_kind: dict[str, int] | None = None
    """Requests the emulator answered during this run, by kind (``/_emulator/counters``)."""


def run_target(config: Config, path: Path, stdin: Path) -> Load:
    """Write ``config`` to ``path``, run ``target-dynamics`` on ``stdin``; parse its summary."""
    path.write_text(json.dumps(config))
    command = [str(BIN / "target-dynamics"), "--config", str(path)]
    start = time.perf_counter()
    with stdin.open("rb") as source:
        done = subprocess.run(command, stdin=source, capture_output=True, check=False)
    wall = time.perf_counter() - start
    log = done.stderr.decode()
    if done.returncode != 0:
        sys.stderr.write(log[-4000:])
        raise SystemExit(f"target-dynamics failed with exit code {done.returncode}")
    summary = SUMMARY_LINE.search(log)
    usage = REQUESTS_LINE.search(log)
    if summary is None or usage is None:
        sys.stderr.write(log[-4000:])
        raise SystemExit("target-dynamics logged no summary")
    members = LIST_LINE.search(log)
    return Load(
        wall=wall,
        landed=int(summary["landed"]),
        added=int(members["added"]) if members else 0,
        already=int(members["already"]) if members else 0,
        rejected=int(members["rejected"]) if members else 0,
        requests=int(usage["requests"]),
        retries=int(usage["retries"]),
        throttled=float(usage["throttled"]),
    )


def requests_by_kind(emulator: EmulatorProcess) -> dict[str, int]:
    """Requests the emulator answered since start or reset, by kind (all outcomes)."""
    answer = requests.get(
        f"{emulator.base_url}/_emulator/counters", verify=str(emulator.ca_path), timeout=60
    )
    answer.raise_for_status()
    return {kind: sum(outcomes.values()) for kind, outcomes in answer.json()["requests"].items()}


def measured(emulator: EmulatorProcess, config: Config, path: Path, stdin: Path) -> Load:
    """:func:`run_target`, with the emulator's requests by kind during the run."""
    before = requests_by_kind(emulator)
    load = run_target(config, path, stdin)
    after = requests_by_kind(emulator)
    load.by_kind = {kind: n - before.get(kind, 0) for kind, n in after.items()}
    return load


def with_list(config: Config, name: str, user: Config | None = None) -> Config:
    """``config`` filling the marketing list ``name``, as ``user`` (users.json entry) if given."""
    changed = {**config, "marketing_list": name}
    if user is not None:
        changed |= {"client_id": user["client_id"], "client_secret": user["client_secret"]}
    return changed


def list_members(emulator: EmulatorProcess, name: str) -> tuple[int, int]:
    """``membercount`` of the list ``name`` and the rows of its ``listcontact_association``."""
    root = f"{emulator.base_url}/api/data/v9.2"
    with emulator.api_session() as session:
        session.headers["Prefer"] = "odata.maxpagesize=5000"
        found = session.get(
            f"{root}/lists",
            params={"$select": "listid,membercount", "$filter": f"listname eq '{name}'"},
            timeout=60,
        )
        found.raise_for_status()
        (row,) = found.json()["value"]
        url: str | None = f"{root}/lists({row['listid']})/listcontact_association?$select=contactid"
        rows = 0
        while url:
            page = session.get(url, timeout=60)
            page.raise_for_status()
            body = page.json()
            rows += len(body["value"])
            url = body.get("@odata.nextLink")
    return int(row["membercount"] or 0), rows


def main() -> None:
    """Run the three loads and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument(
        "--time-scale", type=float, default=1.0, help="emulated latency and window factor"
    )
    args = parser.parse_args()
    records = args.records
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        source = tmp / "contacts.jsonl"
        singer_input(source, records, "m")
        options = ("--latency", "realistic", "--time-scale", str(args.time_scale))
        with emulator_process(tmp / "emulator", *options) as emulator:
            config = target_config(emulator, tmp / "dead.jsonl")
            second = json.loads((tmp / "emulator" / "users.json").read_text())["users"][1]
            plain = measured(emulator, config, tmp / "a.json", source)
            rejoin_config = with_list(config, "Rejoin", second)
            rejoin = measured(emulator, rejoin_config, tmp / "c.json", source)
            rejoin_count = list_members(emulator, "Rejoin")
            requests.post(
                f"{emulator.base_url}/_emulator/reset", verify=str(emulator.ca_path), timeout=60
            ).raise_for_status()
            fresh = measured(emulator, with_list(config, "Newsletter"), tmp / "b.json", source)
            fresh_count = list_members(emulator, "Newsletter")
        runs = {"a": plain, "b": fresh, "c": rejoin}
        counts = {"Newsletter": fresh_count, "Rejoin": rejoin_count}
        report(records, args.time_scale, runs, counts)


LABELS = {"a": "a  rows only", "b": "b  new rows + list", "c": "c  rejoin: updates + list"}
"""Run key -> label in the table."""


def report(
    records: int, scale: float, runs: dict[str, Load], counts: dict[str, tuple[int, int]]
) -> None:
    """Print the runs (``a``, ``b``, ``c``), the Web API check of each list and the rate table."""
    print(f"realistic latency x {scale}: {records} contacts upserted by emailaddress1")
    print(
        f"  {'run':<27}{'wall s':>8}{'landed':>8}{'added':>8}{'already':>9}{'rejected':>9}"
        f"{'requests':>9}{'retries':>8}{'throttled s':>12}"
    )
    for key, load in runs.items():
        print(
            f"  {LABELS[key]:<27}{load.wall:8.1f}{load.landed:8}{load.added:8}{load.already:9}"
            f"{load.rejected:9}{load.requests:9}{load.retries:8}{load.throttled:12.1f}"
        )
    for key, load in runs.items():
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted((load.by_kind or {}).items()) if n)
        print(f"  {LABELS[key]:<27}emulator requests: {kinds}")
    for name, (count, rows) in counts.items():
        verdict = "ok" if count == rows == records else "MISMATCH"
        print(
            f"  Web API, list {name!r}: membercount {count}, "
            f"listcontact_association {rows} rows ({verdict})"
        )
    plain, fresh, rejoin = runs["a"], runs["b"], runs["c"]
    rows_plain = records / plain.wall
    print()
    print(f"  {'figure':<46}{'per second':>12}{'vs rows/s (a)':>15}")
    figures = [
        ("rows/s without list (a)", rows_plain),
        ("rows/s with list, end to end (b)", records / fresh.wall),
        ("rows/s with list, end to end (c, updates)", records / rejoin.wall),
        ("memberships/s: added / (time b - time a)", rate(fresh.added, fresh.wall - plain.wall)),
        ("memberships/s: added / (time c - time a)", rate(rejoin.added, rejoin.wall - plain.wall)),
    ]
    for label, value in figures:
        print(f"  {label:<46}{value:12.0f}{value / rows_plain:14.2f}x")
    model = CostModel()
    ratio = model.bulk_update_record / model.bulk_create_record
    print(f"  cost model: one member {ratio:.0f}x cheaper than one upserted row (same parallelism)")


def rate(count: int, seconds: float) -> float:
    """``count / seconds``; infinite when the difference of wall times is not positive."""
    return count / seconds if seconds > 0 else float("inf")


if __name__ == "__main__":
    bench_main.run(main)
