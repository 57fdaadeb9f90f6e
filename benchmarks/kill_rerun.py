"""Crash and rerun: ``kill -9`` target-dynamics mid-stream, rerun from the last STATE, check.

Run: ``.venv/bin/python benchmarks/kill_rerun.py [--records 20000] [--kills 20]
[--state-every 100] [--state-interval 1000] [--modes upsert,keyed-create,keyless-create,delete]``

For each mode, a Singer stream of ``--records`` contacts with a STATE ``{"pos": n}`` after every
``--state-every`` records goes into the real ``target-dynamics`` console script, which writes to an
emulator process (``--latency realistic``, ``--time-scale 0.01`` by default, so kills land while
requests are in flight). ``--kills`` kill points are drawn (seeded) over the stream; each run is
sent SIGKILL once the emulator has handled that many operations (plus a random delay), and the next
run gets the records after the last STATE any run emitted, as an orchestrator would send them. After
the last kill a run goes to the end of the input. Modes:

- ``upsert``: by the ``emailaddress1`` alternate key; a third of the rows exist beforehand, with
  stale values.
- ``keyed-create``: operation create, ``id_field: emailaddress1``.
- ``keyless-create``: operation create, no id_field and no key_properties (the email is not sent,
  since ``emailaddress1`` is an alternate key that would turn duplicates into rejections).
- ``delete``: every row exists beforehand; operation delete by ``emailaddress1``.

Figures per mode, from the emulator's ``/_emulator/snapshot`` and each run's stdout and dead-letter
file: final rows (missing, duplicated, wrong values, left over), rejections (``already exists``
among them), the STATE lines killed runs emitted, and per rerun the records it resends that had
already landed (at or after its resume position). A rerun may resend at most one STATE interval:
``max(--state-interval, batch size) + --state-every`` (the batch being written when the kill came,
and the tap's STATE granularity). The script exits 1 when any mode is not exact.

Settings of issue 8 (``state_interval_records``, ``keyless_create_ids``, ...) are passed only when
``target-dynamics --about --format json`` lists them.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
import typing as t
from dataclasses import asdict, dataclass, field
from pathlib import Path

import bench_main
import requests

from dataverse_emulator.testing import EmulatorProcess, emulator_process

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

BIN = Path(sys.executable).parent
TARGET = BIN / "target-dynamics"
"""The console script next to this interpreter (``--target`` picks another)."""
MODES = ("upsert", "keyed-create", "keyless-create", "delete")
STREAM = "contacts"
DOMAIN = "kill.example.com"
COLUMNS = {
    "email": "emailaddress1",
    "first_name": "firstname",
    "last_name": "lastname",
    "job_title": "jobtitle",
}
RUN_SECONDS = 600
"""A run that neither ends nor reaches its kill point within this is a hang."""
POLL_SECONDS = 0.005


@dataclass
class Options:
    """What one invocation measures."""

    records: int = 20_000
    kills: int = 20
    state_every: int = 100
    state_interval: int = 1000
    state_interval_seconds: float | None = None
    batch_size: int = 1000
    jitter: float = 0.05
    seed: int = 1

    @property
    def resend_bound(self) -> int:
        """Most already-landed records a rerun may resend: one STATE interval."""
        return max(self.state_interval, self.batch_size) + self.state_every


@dataclass
class ModeFigures:
    """What one mode's kills and reruns did."""

    mode: str
    kills: int = 0
    runs: int = 0
    killed_runs_with_state: int = 0
    states_from_killed_runs: int = 0
    resent: list[int] = field(default_factory=list)
    rejections: int = 0
    already_exists: int = 0
    final_exit: int | None = None
    missing: int = 0
    duplicates: int = 0
    wrong_values: int = 0
    left_over: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        """Whether this mode met every requirement."""
        return not self.problems


# --- input -------------------------------------------------------------------------------


def record(i: int, *, stale: bool = False) -> dict[str, str]:
    """Record ``i`` of every stream (``stale``: the values an older load left)."""
    return {
        "email": f"kr{i:06d}@{DOMAIN}",
        "first_name": "Stale" if stale else f"First{i}",
        "last_name": f"Last{i:06d}",
        "job_title": "Old job" if stale else f"Job {i % 97}",
    }


def write_stream(
    path: Path, indices: range | list[int], state_every: int | None, *, stale: bool = False
) -> None:
    """SCHEMA, then records ``indices``, with ``STATE {"pos": n}`` after every ``state_every``th.

    ``n`` counts records from the start of the whole stream, so ``{"pos": n}`` means records
    ``0 .. n-1`` are done; the last record of a stream ending at ``indices[-1]`` gets one too.
    """
    schema = {"type": "object", "properties": {n: {"type": ["string", "null"]} for n in COLUMNS}}
    last = indices[-1] if indices else -1
    with path.open("w", encoding="utf-8") as out:
        message = {"type": "SCHEMA", "stream": STREAM, "schema": schema, "key_properties": []}
        out.write(json.dumps(message) + "\n")
        for i in indices:
            body = {"type": "RECORD", "stream": STREAM, "record": record(i, stale=stale)}
            out.write(json.dumps(body) + "\n")
            if state_every and ((i + 1) % state_every == 0 or i == last):
                out.write(json.dumps({"type": "STATE", "value": {"pos": i + 1}}) + "\n")


# --- target ------------------------------------------------------------------------------


def supported_settings(target: Path) -> set[str]:
    """Setting names ``target`` declares (``--about --format json``)."""
    about = subprocess.run(
        [str(target), "--about", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return set(json.loads(about.stdout)["settings"]["properties"])


def optional_settings(mode: str, options: Options) -> dict[str, t.Any]:
    """Issue-8 settings this harness wants, whether or not the target knows them yet."""
    wanted: dict[str, t.Any] = {"state_interval_records": options.state_interval}
    if options.state_interval_seconds is not None:
        wanted["state_interval_seconds"] = options.state_interval_seconds
    if mode == "keyless-create":
        wanted["keyless_create_ids"] = "content"
    if mode in {"upsert", "delete"}:
        wanted["multiple_matches"] = "reject"
    return wanted


@dataclass
class RunResult:
    """One target run: killed or not, what it emitted, what it rejected."""

    killed: bool
    exit_code: int
    states: list[int]
    rejections: int
    already_exists: int
    stderr_tail: str


def run_target(
    target: Path,
    config: Path,
    stdin: Path,
    workdir: Path,
    kill: tuple[Callable[[], bool], float] | None = None,
) -> RunResult:
    """Run ``target`` on ``stdin`` to its end, or SIGKILL it.

    With ``kill=(when, delay)``, the kill comes ``delay`` s after ``when()`` first returns True.
    """
    out_path, err_path = workdir / "stdout.txt", workdir / "stderr.txt"
    with stdin.open("rb") as source, out_path.open("wb") as out, err_path.open("wb") as err:
        process = subprocess.Popen(
            [str(target), "--config", str(config)], stdin=source, stdout=out, stderr=err
        )
        killed = False
        deadline = time.monotonic() + RUN_SECONDS
        try:
            while process.poll() is None and time.monotonic() < deadline:
                if kill is not None and kill[0]():
                    time.sleep(kill[1])
                    if process.poll() is None:
                        process.send_signal(signal.SIGKILL)
                        killed = True
                    break
                time.sleep(POLL_SECONDS)
            else:
                if process.poll() is None:
                    process.kill()
                    process.wait()
                    raise SystemExit(f"target run in {workdir} hung for {RUN_SECONDS} s")
        finally:
            if process.poll() is None and not killed:
                process.kill()
            process.wait()
    states = [json.loads(line)["pos"] for line in state_lines(out_path)]
    letters = read_dead_letters(json.loads(config.read_text())["dead_letter_path"])
    already = sum(is_already_exists(letter) for letter in letters)
    tail = err_path.read_text(encoding="utf-8", errors="replace")[-3000:]
    return RunResult(killed, process.returncode, states, len(letters), already, tail)


def state_lines(path: Path) -> Iterator[str]:
    """The complete STATE lines on the target's stdout (a killed run may leave half a line)."""
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict) and "pos" in value:
            yield line


def read_dead_letters(path: str) -> list[dict[str, t.Any]]:
    """The ``_dead_letter`` values of the RECORDs in a dead-letter file."""
    letters: list[dict[str, t.Any]] = []
    if not Path(path).exists():
        return letters
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if message.get("type") == "RECORD":
            letters.append(message["record"].get("_dead_letter") or {})
    return letters


def is_already_exists(letter: dict[str, t.Any]) -> bool:
    """Whether a rejection says the row already exists (DuplicateRecord, §4.9)."""
    return letter.get("code") == "0x80040237" or "already exists" in str(letter.get("error"))


# --- emulator ----------------------------------------------------------------------------


class Control:
    """The emulator's control API: reset, counters, contact rows."""

    def __init__(self, emulator: EmulatorProcess) -> None:
        self.base = f"{emulator.base_url}/_emulator"
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = str(emulator.ca_path)

    def reset(self) -> None:
        """Back to the start-up state."""
        self.session.post(f"{self.base}/reset", timeout=60).raise_for_status()

    def operations(self) -> int:
        """Write operations the emulator has handled (bulk records, single requests, parts)."""
        answer = self.session.get(f"{self.base}/counters", timeout=60)
        answer.raise_for_status()
        counts = answer.json()["operations"]
        return sum(counts.get(kind, 0) for kind in ("bulk", "batch", "single"))

    def contacts(self) -> list[dict[str, t.Any]]:
        """The contact rows this harness wrote (their lastname is ``Last<index>``)."""
        answer = self.session.get(f"{self.base}/snapshot", timeout=120)
        answer.raise_for_status()
        rows = answer.json().get("contact", [])
        return [r for r in rows if str(r.get("lastname") or "").startswith("Last")]


def index_of(row: dict[str, t.Any]) -> int:
    """The record index a row came from (its lastname)."""
    return int(str(row["lastname"]).removeprefix("Last"))


def matches(row: dict[str, t.Any], i: int, *, keyed: bool) -> bool:
    """Whether ``row`` holds record ``i``'s values."""
    want = record(i)
    got = {field: row.get(column) for field, column in COLUMNS.items()}
    if not keyed:
        want.pop("email")
        got.pop("email")
    return got == want


@dataclass
class Harness:
    """The emulator, its control API, and what to measure."""

    emulator: EmulatorProcess
    control: Control
    options: Options
    target: Path
    """The target-dynamics command."""
    known: set[str]
    """Setting names the target declares."""

    def write_config(
        self, path: Path, operation: str, *, keyed: bool, extra: dict[str, t.Any]
    ) -> None:
        """Write a config for contacts with ``operation``; dead letters go next to it."""
        columns = dict(COLUMNS) if keyed else {k: v for k, v in COLUMNS.items() if k != "email"}
        config = {
            **self.emulator.target_config,
            "entity": "contact",
            "operation": operation,
            "dead_letter_path": str(path.with_name("dead-letter.jsonl")),
            "progress_interval_seconds": 3600,
            "batch_size_rows": self.options.batch_size,
            "streams": {STREAM: {"columns": columns}},
            **extra,
        }
        if keyed:
            config["id_field"] = "emailaddress1"
        path.write_text(json.dumps(config), encoding="utf-8")


# --- one mode ----------------------------------------------------------------------------


MODE_SETUP = {
    # mode: (operation, keyed, which rows exist beforehand, with stale values)
    "upsert": ("upsert", True, "third", True),
    "keyed-create": ("create", True, None, False),
    "keyless-create": ("create", False, None, False),
    "delete": ("delete", True, "all", False),
}


def landed(mode: str, rows: list[dict[str, t.Any]], total: int) -> set[int]:
    """Record indices whose operation has taken effect in ``rows``."""
    keyed = MODE_SETUP[mode][1]
    if mode == "delete":
        return set(range(total)) - {index_of(r) for r in rows}
    return {index_of(r) for r in rows if matches(r, index_of(r), keyed=keyed)}


def check_final(figures: ModeFigures, rows: list[dict[str, t.Any]], total: int) -> None:
    """Compare the table with what the stream asked for."""
    if figures.mode == "delete":
        figures.left_over = len(rows)
        return
    keyed = MODE_SETUP[figures.mode][1]
    seen: dict[int, int] = {}
    for row in rows:
        i = index_of(row)
        seen[i] = seen.get(i, 0) + 1
        if not matches(row, i, keyed=keyed):
            figures.wrong_values += 1
    figures.missing = sum(1 for i in range(total) if i not in seen)
    figures.duplicates = sum(n - 1 for n in seen.values())
    figures.left_over = sum(1 for i in seen if i >= total)


def seed(harness: Harness, mode: str, work: Path, extra: dict[str, t.Any]) -> None:
    """Create the rows that exist before the measured stream (a clean, unkilled upsert run)."""
    which, stale = MODE_SETUP[mode][2], MODE_SETUP[mode][3]
    if which is None:
        return
    step = 3 if which == "third" else 1
    indices = list(range(0, harness.options.records, step))
    stream, config = work / "seed.jsonl", work / "seed.json"
    write_stream(stream, indices, None, stale=stale)
    harness.write_config(config, "upsert", keyed=True, extra=extra)
    result = run_target(harness.target, config, stream, work)
    if result.exit_code != 0:
        sys.stderr.write(result.stderr_tail)
        raise SystemExit(f"{mode}: seeding {len(indices)} rows failed ({result.exit_code})")


def run_mode(harness: Harness, mode: str, work: Path) -> ModeFigures:
    """Seed, then kill and rerun until a run reaches the end; measure."""
    options, control = harness.options, harness.control
    operation, keyed = MODE_SETUP[mode][:2]
    extra = {k: v for k, v in optional_settings(mode, options).items() if k in harness.known}
    control.reset()
    work.mkdir(parents=True)
    seed(harness, mode, work, extra)
    rng = random.Random(f"{options.seed}-{mode}")  # noqa: S311 - seeded, reproducible kill points
    # Kill points leave the last batch unwritten, so that a kill lands before the run ends.
    low = max(1, options.records // 50)
    high = max(low + options.kills, options.records - options.batch_size)
    points = sorted(rng.sample(range(low, high), options.kills))
    figures = ModeFigures(mode)
    resume = 0
    for attempt in range(len(points) + 1):
        run_dir = work / f"run{attempt:02d}"
        run_dir.mkdir()
        stream, config = run_dir / "input.jsonl", run_dir / "config.json"
        write_stream(stream, range(resume, options.records), options.state_every)
        harness.write_config(config, operation, keyed=keyed, extra=extra)
        kill = None
        if attempt < len(points):
            start = control.operations()
            threshold = max(1, points[attempt] - resume)

            def reached(start: int = start, threshold: int = threshold) -> bool:
                return control.operations() - start >= threshold

            kill = (reached, rng.uniform(0, options.jitter))

        result = run_target(harness.target, config, stream, run_dir, kill)
        figures.runs += 1
        figures.rejections += result.rejections
        figures.already_exists += result.already_exists
        if result.states:
            resume = max(resume, result.states[-1])
        if not result.killed:
            figures.final_exit = result.exit_code
            if result.exit_code != 0:
                (work / "final-stderr.txt").write_text(result.stderr_tail, encoding="utf-8")
            break
        figures.kills += 1
        figures.states_from_killed_runs += len(result.states)
        figures.killed_runs_with_state += bool(result.states)
        done = landed(mode, control.contacts(), options.records)
        figures.resent.append(sum(1 for i in done if i >= resume))
    check_final(figures, control.contacts(), options.records)
    judge(figures, options)
    return figures


def judge(figures: ModeFigures, options: Options) -> None:
    """Note every way the mode fell short of the requirement."""
    checks = [
        (figures.kills < options.kills, f"only {figures.kills} of {options.kills} kills landed"),
        (figures.final_exit != 0, f"the final run exited {figures.final_exit}"),
        (figures.missing, f"{figures.missing} rows missing"),
        (figures.duplicates, f"{figures.duplicates} duplicate rows"),
        (figures.wrong_values, f"{figures.wrong_values} rows with wrong values"),
        (figures.left_over, f"{figures.left_over} rows left over"),
        (figures.rejections, f"{figures.rejections} false rejections"),
        (
            max(figures.resent, default=0) > options.resend_bound,
            (
                f"a rerun resent {max(figures.resent, default=0)} landed records "
                f"(bound {options.resend_bound})"
            ),
        ),
    ]
    figures.problems = [message for failed, message in checks if failed]


# --- main --------------------------------------------------------------------------------


def print_table(results: list[ModeFigures], options: Options, passed: set[str]) -> None:
    """One row of figures per mode."""
    print(
        f"kill -9 and rerun: {options.records} records, {options.kills} kills per mode, "
        f"STATE every {options.state_every} records in the input, state interval "
        f"{options.state_interval} ({'passed' if 'state_interval_records' in passed else 'not a setting of this target'}), "  # noqa: E501 - one message
        f"batch {options.batch_size}, resend bound {options.resend_bound}, seed {options.seed}"
    )
    print(f"issue-8 settings passed: {', '.join(sorted(passed)) or 'none (target lacks them)'}")
    header = (
        f"{'mode':<15}{'kills':>6}{'runs':>6}{'killed w/ STATE':>16}{'resent max':>11}"
        f"{'resent mean':>12}{'rejected':>9}{'exists':>8}{'missing':>8}{'dupes':>8}"
        f"{'wrong':>7}{'left':>7}{'exit':>6}  verdict"
    )
    print(header)
    for f in results:
        mean = sum(f.resent) / len(f.resent) if f.resent else 0.0
        print(
            f"{f.mode:<15}{f.kills:>6}{f.runs:>6}"
            f"{f'{f.killed_runs_with_state}/{f.kills}':>16}{max(f.resent, default=0):>11}"
            f"{mean:>12.0f}{f.rejections:>9}{f.already_exists:>8}{f.missing:>8}"
            f"{f.duplicates:>8}{f.wrong_values:>7}{f.left_over:>7}{f.final_exit!s:>6}  "
            f"{'exact' if f.exact else 'NOT EXACT: ' + '; '.join(f.problems)}"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--kills", type=int, default=20, help="kills per mode")
    parser.add_argument("--state-every", type=int, default=100, help="records between STATEs")
    parser.add_argument(
        "--state-interval", type=int, default=1000, help="state_interval_records to set"
    )
    parser.add_argument("--state-interval-seconds", type=float, help="state_interval_seconds")
    parser.add_argument("--batch-size", type=int, default=1000, help="batch_size_rows to set")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated subset")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jitter", type=float, default=0.05, help="max extra seconds to a kill")
    parser.add_argument("--latency", choices=["realistic", "zero"], default="realistic")
    parser.add_argument("--time-scale", type=float, default=0.01)
    parser.add_argument("--target", type=Path, default=TARGET, help="target-dynamics command")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--keep", type=Path, help="keep the runs' files in this directory")
    args = parser.parse_args(argv)
    unknown = set(args.modes.split(",")) - set(MODES)
    if unknown:
        parser.error(f"--modes: unknown {', '.join(sorted(unknown))}; pick from {', '.join(MODES)}")
    if args.keep is not None and args.keep.exists() and any(args.keep.iterdir()):
        parser.error(f"--keep {args.keep}: not empty; name a new or empty directory")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run every mode; print the table; 0 when every mode is exact."""
    args = parse_args(argv)
    options = Options(
        records=args.records,
        kills=args.kills,
        state_every=args.state_every,
        state_interval=args.state_interval,
        state_interval_seconds=args.state_interval_seconds,
        batch_size=args.batch_size,
        jitter=args.jitter,
        seed=args.seed,
    )
    known = supported_settings(args.target)
    modes = args.modes.split(",")
    passed = {k for m in modes for k in optional_settings(m, options) if k in known}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = args.keep or Path(tmp_name)
        tmp.mkdir(parents=True, exist_ok=True)
        cli = ["--latency", args.latency, "--time-scale", str(args.time_scale)]
        with emulator_process(tmp / "emulator", *cli) as emulator:
            harness = Harness(emulator, Control(emulator), options, args.target, known)
            results = [run_mode(harness, mode, tmp / mode) for mode in modes]
    print_table(results, options, passed)
    if args.json:
        payload = {
            "options": asdict(options),
            "settings_passed": sorted(passed),
            "modes": [{**asdict(f), "exact": f.exact} for f in results],
        }
        args.json.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return 0 if all(f.exact for f in results) else 1


if __name__ == "__main__":
    bench_main.run(main)
