"""Throughput against the service protection ceilings: application users, burst, batch size.

Run: ``.venv/bin/python benchmarks/throughput.py [--only users,burst,batch] [--time-scale 0.1]``

Upserts contacts by ``emailaddress1`` (the input and config of ``target_speed.py``) with the
``target-dynamics`` console script on emulators this script starts with ``--latency realistic``,
resetting the emulator (``POST /_emulator/reset``: fresh budgets, empty tables) before each run.
Every figure is a ratio against a ceiling computed from the emulator's cost model
(``CostModel.bulk_update_record`` server seconds per record; the per-request base is left out,
so the ceilings are slightly generous) and its limits (``Limits``: 1,200 s of execution per
sliding 300 s window and 52 requests in flight per user), so the time scale cancels out.

Ceiling of a job of ``work`` server seconds per user (reference §7.1, §9.3): up to 52 requests
run at once until the window holds 1,200 s; that work leaves the window only 300 s after it
ended, so a longer job runs whole windows of 1,200 s each and then its rest at 52 in flight:
``k * 300 + (work - k * 1,200) / 52`` seconds with ``k = ceil(work / 1,200) - 1``. The plain
sustained rate is 1,200 / 300 = 4 server seconds per second. The emulator charges a request's
time when it ends and admits while the window is under budget, so requests in flight at that
moment overshoot it a little: a ratio slightly above 100% is possible.

Sections:

1. ``users``: the same ``--users-records`` job with 1, 2 and 4 application users in one target
   process (``app_users``: the first k-1 of the emulator's ``app-users.json``, ``--app-users 4``).
   The default, 200,000 records, keeps every user budget-bound (4 users: 1.25 windows each),
   so the ideal ratios are 2.0 and 4.0; a job that fits one burst budget per user scales far
   above k. Prints the target's request share per user.
2. ``burst``: one user, ``--burst-records`` (5,000) against the burst ceiling of 52 requests in
   flight, and ``--sustained-records`` (100,000) against the best time the budget allows and
   the sustained rate; the 429s the emulator counted. The short job runs at
   ``--burst-time-scale`` (default 1): at 0.1 its ceiling (17,000 records/s) is above what one
   client process can map and send, which would measure CPU instead of concurrency.
3. ``batch``: ``--batch-records`` (20,000) with ``batch_size_rows`` 100, 1,000 and 5,000, each
   as a share of the best, at ``--batch-time-scale`` (default 1: the job fits one burst budget,
   so at 0.1 it too would measure the client's CPU).

records/s are over the load: the target's wall time minus the shorter wall time of two one-record
runs on the same emulator (start-up, token and metadata), shown as ``start-up``. Everything runs on
loopback; read the ratios, not the absolute figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
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
from target_speed import singer_input, target_config

from dataverse_emulator.costs import CostModel
from dataverse_emulator.state.budget import Limits
from dataverse_emulator.testing import EmulatorProcess, emulator_process

if t.TYPE_CHECKING:
    from collections.abc import Iterator

BIN = Path(sys.executable).parent
SECTIONS = ("users", "burst", "batch")
PER_RECORD = CostModel().bulk_update_record
LIMITS = Limits()
SUMMARY = re.compile(r"Summary contacts: (\d+) received, (\d+) landed")
SHARES = re.compile(r"Requests by application user: (.*)")
ENTRA_KINDS = ("token", "discovery")


class BenchError(RuntimeError):
    """A run failed; the message says which and quotes the target's stderr."""


def best_seconds(records: int, users: int = 1) -> float:
    """Nominal seconds the limits allow ``records`` upserts spread over ``users`` (docstring)."""
    work = records * PER_RECORD / users
    budget = LIMITS.execution_seconds
    windows = max(0, math.ceil(work / budget) - 1)
    return windows * LIMITS.window_seconds + (work - windows * budget) / LIMITS.concurrent


def sustained_rate(users: int = 1) -> float:
    """Nominal records/s once the budget is spent: 1,200 s per 300 s window per user."""
    return users * LIMITS.execution_seconds / LIMITS.window_seconds / PER_RECORD


@dataclass
class Run:
    """One target run: its records, load seconds, the emulator's counters and the target's log."""

    records: int
    seconds: float
    counters: dict[str, t.Any]
    stderr: str

    @property
    def rate(self) -> float:
        """Records/s over the load."""
        return self.records / self.seconds

    @property
    def throttled(self) -> tuple[int, int]:
        """(429s, Web API requests) the emulator counted."""
        kinds = {k: v for k, v in self.counters["requests"].items() if k not in ENTRA_KINDS}
        total = sum(sum(outcomes.values()) for outcomes in kinds.values())
        return sum(outcomes.get("429", 0) for outcomes in kinds.values()), total

    @property
    def throttle_text(self) -> str:
        """``n/m (x%)`` of requests answered 429."""
        limited, total = self.throttled
        return f"{limited}/{total} ({limited / max(total, 1):.1%})"

    @property
    def shares(self) -> str:
        """The target's ``Requests by application user`` line, or ``-`` with one user."""
        found = SHARES.search(self.stderr)
        return found.group(1).strip() if found else "-"


class Bench:
    """One emulator process; runs jobs on it, each after a reset (fresh budgets, no rows)."""

    def __init__(self, emulator: EmulatorProcess, tmp: Path, scale: float, timeout: float) -> None:
        self.emulator = emulator
        self.scale = scale
        self._tmp = tmp
        self._timeout = timeout
        self._session = requests.Session()
        self._session.trust_env = False
        self._session.verify = str(emulator.ca_path)
        self.startup = min(
            self._wall(self._input(1), {}, "start-up (1 record)")[0] for _ in range(2)
        )

    def control(self, method: str, path: str) -> t.Any:
        """Call the control API; return the JSON answer (None for 204)."""
        answer = self._session.request(
            method, f"{self.emulator.base_url}/_emulator/{path}", timeout=60
        )
        answer.raise_for_status()
        return answer.json() if answer.content else None

    def run(self, records: int, label: str, **settings: t.Any) -> Run:
        """Upsert ``records`` contacts with ``settings`` on top of the benchmark config."""
        wall, stderr = self._wall(self._input(records), settings, label)
        seconds = wall - self.startup
        if seconds <= 0:
            message = f"{label}: {wall:.2f} s is not above the start-up time {self.startup:.2f} s"
            raise BenchError(message)
        run = Run(records, seconds, self.control("GET", "counters"), stderr)
        print(
            f"  {label}: {run.rate:,.0f} records/s ({wall:.1f} s), 429s {run.throttle_text}",
            file=sys.stderr,
            flush=True,
        )
        return run

    def _input(self, records: int) -> Path:
        path = self._tmp / f"contacts-{records}.jsonl"
        if not path.exists():
            singer_input(path, records, "t")
        return path

    def _wall(self, stdin: Path, settings: dict[str, t.Any], label: str) -> tuple[float, str]:
        """Reset the emulator, run the target; return its wall seconds and stderr."""
        records = int(stdin.stem.rsplit("-", 1)[1])
        self.control("POST", "reset")
        config = {**target_config(self.emulator, self._tmp / "dead-letter.jsonl"), **settings}
        config_path = self._tmp / "config.json"
        config_path.write_text(json.dumps(config), encoding="utf-8")
        command = [str(BIN / "target-dynamics"), "--config", str(config_path)]
        start = time.perf_counter()
        with stdin.open("rb") as source:
            try:
                done = subprocess.run(
                    command, stdin=source, capture_output=True, check=False, timeout=self._timeout
                )
            except subprocess.TimeoutExpired as exc:
                tail = (exc.stderr or b"").decode(errors="replace")[-3000:]
                message = f"{label}: target-dynamics ran over {self._timeout:g} s\n{tail}"
                raise BenchError(message) from None
        wall = time.perf_counter() - start
        stderr = done.stderr.decode(errors="replace")
        if done.returncode != 0:
            message = f"{label}: target-dynamics exited {done.returncode}\n{stderr[-3000:]}"
            raise BenchError(message)
        summary = SUMMARY.search(stderr)
        if summary is None or int(summary.group(2)) != records:
            found = summary.group(0) if summary else "no summary line"
            message = f"{label}: expected {records} contacts landed, got {found}\n{stderr[-3000:]}"
            raise BenchError(message)
        return wall, stderr


@contextlib.contextmanager
def bench(tmp: Path, name: str, scale: float, timeout: float, *extra: str) -> Iterator[Bench]:
    """An emulator with realistic latency at ``scale``, wrapped in a :class:`Bench`."""
    data = tmp / name
    options = ("--latency", "realistic", "--time-scale", str(scale), *extra)
    print(f"emulator {name}: {' '.join(options)}", file=sys.stderr, flush=True)
    with emulator_process(data, *options) as emulator:
        yield Bench(emulator, tmp, scale, timeout)


def users_section(tmp: Path, args: argparse.Namespace) -> None:
    """1, 2 and 4 application users on the same job in one target process."""
    records = args.users_records
    with bench(tmp, "users", args.time_scale, args.run_timeout, "--app-users", "4") as b:
        extra = b.emulator.app_users
        runs = {k: b.run(records, f"{k} user(s)", app_users=extra[: k - 1]) for k in (1, 2, 4)}
    one = runs[1].rate
    ideal_one = records / best_seconds(records)
    print(f"\n1. Application users: {records:,} contacts, time scale {args.time_scale:g}, ", end="")
    print(f"start-up {b.startup:.1f} s")
    print(
        f"  {'users':>5} {'records/s':>10} {'ceiling':>9} {'% ceil':>7} {'ratio':>6} "
        f"{'ideal':>6} {'429s':>18}  requests by user"
    )
    for k, run in runs.items():
        ceiling = records / best_seconds(records, k) / b.scale
        ideal = records / best_seconds(records, k) / ideal_one
        print(
            f"  {k:>5} {run.rate:>10,.0f} {ceiling:>9,.0f} {run.rate / ceiling:>7.0%} "
            f"{run.rate / one:>5.2f}x {ideal:>5.2f}x {run.throttle_text:>18}  {run.shares}"
        )
    print(
        f"  goals: 2/1 >= 1.9x (now {runs[2].rate / one:.2f}x), "
        f"4/1 >= 3.6x (now {runs[4].rate / one:.2f}x)"
    )


def burst_section(tmp: Path, args: argparse.Namespace) -> None:
    """A short job against the burst ceiling, a long one against the budget."""
    short, long = args.burst_records, args.sustained_records
    with bench(tmp, "burst", args.burst_time_scale, args.run_timeout) as b:
        burst = b.run(short, f"{short} rows")
        burst_startup, burst_scale = b.startup, b.scale
    with bench(tmp, "sustained", args.time_scale, args.run_timeout) as b:
        sustained = b.run(long, f"{long} rows")
    burst_ceiling = LIMITS.concurrent / PER_RECORD / burst_scale
    best = long / best_seconds(long) / b.scale
    plain = sustained_rate() / b.scale
    print(
        f"\n2. Burst vs sustained, one user ({LIMITS.concurrent} in flight, "
        f"{LIMITS.execution_seconds:g} s per {LIMITS.window_seconds:g} s window)"
    )
    print(
        f"  {short:,} rows, time scale {burst_scale:g} (start-up {burst_startup:.1f} s): "
        f"{burst.rate:,.0f} records/s = {burst.rate / burst_ceiling:.0%} of the burst ceiling "
        f"{burst_ceiling:,.0f} (goal >= 80%); 429s {burst.throttle_text} (goal < 1%)"
    )
    print(
        f"  {long:,} rows, time scale {b.scale:g} (start-up {b.startup:.1f} s): "
        f"{sustained.rate:,.0f} records/s = {sustained.rate / best:.0%} of the best the budget "
        f"allows ({best:,.0f}), {sustained.rate / plain:.0%} of sustained ({plain:,.0f}; goal "
        f">= 95%); 429s {sustained.throttle_text}, "
        f"extended waits {sustained.counters['throttle_extensions']}"
    )


def batch_section(tmp: Path, args: argparse.Namespace) -> None:
    """The same job with batch_size_rows 100, 1,000 and 5,000."""
    records = args.batch_records
    with bench(tmp, "batch", args.batch_time_scale, args.run_timeout) as b:
        runs = {
            size: b.run(records, f"batch {size}", batch_size_rows=size)
            for size in (100, 1000, 5000)
        }
    best = max(run.rate for run in runs.values())
    ceiling = records / best_seconds(records) / b.scale
    print(
        f"\n3. batch_size_rows, one user: {records:,} contacts, time scale {b.scale:g}, "
        f"start-up {b.startup:.1f} s, ceiling {ceiling:,.0f} records/s"
    )
    print(f"  {'batch':>5} {'records/s':>10} {'% best':>7} {'% ceil':>7} {'429s':>18}")
    for size, run in runs.items():
        print(
            f"  {size:>5} {run.rate:>10,.0f} {run.rate / best:>7.0%} "
            f"{run.rate / ceiling:>7.0%} {run.throttle_text:>18}"
        )
    worst = min(run.rate for run in runs.values())
    print(f"  goal: every size within 5% of the best (worst now {worst / best:.0%})")


def sections(text: str) -> list[str]:
    """Parse ``--only``: a comma-separated subset of :data:`SECTIONS`."""
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown or not chosen:
        message = f"expected some of {','.join(SECTIONS)}, not {text!r}"
        raise argparse.ArgumentTypeError(message)
    return chosen


def main() -> None:
    """Run the chosen sections and print their tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--only",
        type=sections,
        default=list(SECTIONS),
        help="sections to run, comma-separated (default: all)",
    )
    parser.add_argument("--time-scale", type=float, default=0.1)
    parser.add_argument(
        "--burst-time-scale",
        type=float,
        default=1.0,
        help="time scale of the short burst job (default 1)",
    )
    parser.add_argument(
        "--batch-time-scale",
        type=float,
        default=1.0,
        help="time scale of the batch_size_rows jobs (default 1)",
    )
    parser.add_argument("--users-records", type=int, default=200_000)
    parser.add_argument("--burst-records", type=int, default=5_000)
    parser.add_argument("--sustained-records", type=int, default=100_000)
    parser.add_argument("--batch-records", type=int, default=20_000)
    parser.add_argument(
        "--run-timeout",
        type=float,
        default=1800,
        help="seconds one target run may take (default 1800)",
    )
    args = parser.parse_args()
    runners = {"users": users_section, "burst": burst_section, "batch": batch_section}
    with tempfile.TemporaryDirectory() as tmp_name:
        for name in SECTIONS:
            if name in args.only:
                runners[name](Path(tmp_name), args)


if __name__ == "__main__":
    bench_main.run(main, BenchError)
