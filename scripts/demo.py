"""Stream the sample email list into a local Dataverse emulator and show what landed.

Run by ``python3 tasks.py demo``. Steps:

1. start ``dataverse-emulator`` on a free loopback port (realistic latency, time-scaled);
2. load ``demo/accounts.csv`` as accounts, keyed by account number;
3. load ``demo/email-list.csv`` as contacts, upserted by email address, each bound to its
   account by account number, each landed contact a member of the marketing list
   "Newsletter" (created on the first run); rows Dataverse would refuse go to the dead-letter
   file;
4. read the contacts and the list back through the Web API with a real token and print them,
   with the target's run summary and the dead-letter file; stop the emulator.

Both loads run the real ``tap-spreadsheets`` tap (``$TAP_SPREADSHEETS_BIN``) piped into
``target-dynamics``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import typing as t
from pathlib import Path

from dataverse_emulator.testing import EmulatorProcess, EmulatorStartError, emulator_process

if t.TYPE_CHECKING:
    import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
STARTUP_SECONDS = 60
PIPELINE_SECONDS = 300

STREAMS = {
    "accounts": {
        "entity": "account",
        "operation": "upsert",
        "id_field": "accountnumber",
        "columns": {"account_number": "accountnumber", "name": "name", "website": "websiteurl"},
    },
    "email_list": {
        "entity": "contact",
        "operation": "upsert",
        "id_field": "emailaddress1",
        "columns": {
            "email": "emailaddress1",
            "first_name": "firstname",
            "last_name": "lastname",
            "job_title": "jobtitle",
            "account_number": "parentcustomerid",
        },
        "lookups": {"parentcustomerid": {"table": "account", "key": "accountnumber"}},
        "marketing_list": "Newsletter",
    },
}
SETTINGS = {
    "streams": STREAMS,
    "max_errors": 5,
}
"""The target's settings besides the connection (which the emulator writes)."""


@contextlib.contextmanager
def emulator(data_dir: Path, *, time_scale: float) -> t.Iterator[EmulatorProcess]:
    """Run ``dataverse-emulator`` and yield it (with the target config it wrote); stop it after."""
    options = ("--latency", "realistic", "--time-scale", str(time_scale))
    with (data_dir / "emulator.log").open("wb") as log:
        try:
            with emulator_process(
                data_dir,
                *options,
                stdout=log,
                stderr=subprocess.STDOUT,
                startup_timeout=STARTUP_SECONDS,
            ) as process:
                yield process
        except EmulatorStartError as exc:
            if exc.returncode is None:
                raise SystemExit(str(exc)) from None
            raise SystemExit(f"{exc}; see its log") from None


def run_pipeline(
    tap: str, csv_path: Path, stream: str, target_config: Path, work: Path
) -> tuple[int, str]:
    """Pipe ``tap-spreadsheets`` reading ``csv_path`` into ``target-dynamics``.

    Returns:
        The target's exit code and its log (stderr).
    """
    tap_config = work / f"tap-{stream}.json"
    files = [{"path": str(csv_path), "format": "csv", "table_name": stream}]
    tap_config.write_text(json.dumps({"files": files}), encoding="utf-8")
    target_log = work / f"target-{stream}.log"
    with (
        (work / f"tap-{stream}.log").open("wb") as tap_err,
        target_log.open("wb") as target_err,
        (work / f"state-{stream}.json").open("wb") as state_out,
    ):
        source = subprocess.Popen(
            [tap, "--config", str(tap_config)], stdout=subprocess.PIPE, stderr=tap_err
        )
        sink = subprocess.Popen(
            [str(BIN / "target-dynamics"), "--config", str(target_config)],
            stdin=source.stdout,
            stdout=state_out,
            stderr=target_err,
        )
        assert source.stdout is not None  # noqa: S101 - Popen(stdout=PIPE) always sets it
        source.stdout.close()
        code = sink.wait(timeout=PIPELINE_SECONDS)
        tap_code = source.wait(timeout=PIPELINE_SECONDS)
    if tap_code:
        raise SystemExit(f"tap-spreadsheets failed ({tap_code}): see {work}/tap-{stream}.log")
    return code, target_log.read_text(encoding="utf-8", errors="replace")


class WebApi:
    """A minimal Web API reader with its own paging, on a session holding a token."""

    def __init__(self, base_url: str, session: requests.Session) -> None:
        self._base_url = base_url
        self._session = session

    def rows(self, query: str) -> list[dict[str, t.Any]]:
        """Every row of ``query`` (relative to the service root), following next links."""
        url: str | None = f"{self._base_url}/api/data/v9.2/{query}"
        rows: list[dict[str, t.Any]] = []
        while url:
            answer = self._session.get(url, timeout=30)
            answer.raise_for_status()
            body = answer.json()
            rows.extend(body["value"])
            url = body.get("@odata.nextLink")
        return rows


def landed_contacts(api: WebApi) -> list[tuple[str, str, str]]:
    """``(full name, email, company)`` of every contact, sorted by email."""
    companies = {
        row["accountid"]: row["name"] for row in api.rows("accounts?$select=accountid,name")
    }
    contacts = api.rows("contacts?$select=fullname,emailaddress1,_parentcustomerid_value")
    return sorted(
        (
            row.get("fullname") or "",
            row.get("emailaddress1") or "",
            companies.get(row.get("_parentcustomerid_value") or "", ""),
        )
        for row in contacts
    )


def marketing_list(api: WebApi, name: str) -> tuple[int, list[tuple[str, str]]]:
    """The list's ``membercount`` and its members' ``(full name, email)``, sorted by email."""
    [found] = api.rows(f"lists?$select=listid,membercount&$filter=listname eq '{name}'")
    members = api.rows(
        f"lists({found['listid']})/listcontact_association?$select=fullname,emailaddress1"
    )
    rows = [(m.get("fullname") or "", m.get("emailaddress1") or "") for m in members]
    return int(found["membercount"]), sorted(rows, key=lambda row: row[1])


def table(rows: t.Sequence[t.Sequence[str]], headers: t.Sequence[str]) -> str:
    """A plain-text table."""
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=False)]
    line = "  ".join("{:<%d}" % w for w in widths)  # noqa: UP031 - building a format string
    out = [line.format(*headers), line.format(*("-" * w for w in widths))]
    out.extend(line.format(*row) for row in rows)
    return "\n".join(text.rstrip() for text in out)


def summary_of(log: str) -> str:
    """The target's closing summary, without the log prefixes."""
    wanted = ("Summary ", "List '", "Requests: ")
    lines = [line.split(" | ", 3)[-1] for line in log.splitlines()]
    return "\n".join(line for line in lines if any(w in line for w in wanted))


def dead_letters(path: Path) -> list[tuple[str, str, str]]:
    """``(email, code, reason)`` of each rejected record in the dead-letter file."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        message = json.loads(line)
        if message["type"] == "RECORD":
            why = message["record"]["_dead_letter"]
            rows.append((message["record"].get("email", ""), why["code"] or "", why["error"]))
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the demo; exit 0 when both loads finished and contacts landed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tap", default=os.environ.get("TAP_SPREADSHEETS_BIN", "tap-spreadsheets"))
    parser.add_argument("--time-scale", type=float, default=0.1, help="emulated latency factor")
    parser.add_argument("--keep", type=Path, help="keep the work files in this folder")
    args = parser.parse_args(argv)
    if shutil.which(args.tap) is None:
        parser.error(f"no tap-spreadsheets at {args.tap!r}: run python3 tasks.py demo")
    with contextlib.ExitStack() as stack:
        work = args.keep or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        work.mkdir(parents=True, exist_ok=True)
        data_dir = work / "emulator"
        data_dir.mkdir(exist_ok=True)
        print(f"starting the Dataverse emulator (latency realistic x {args.time_scale}) ...")
        process = stack.enter_context(emulator(data_dir, time_scale=args.time_scale))
        config = process.target_config
        dead_letter = work / "dead-letter.jsonl"
        target_config = work / "target-config.json"
        target_config.write_text(
            json.dumps({**config, **SETTINGS, "dead_letter_path": str(dead_letter)}),
            encoding="utf-8",
        )
        print(f"emulator ready at {config['dynamics_url']}")
        logs = {}
        for stream, csv_name in (("accounts", "accounts.csv"), ("email_list", "email-list.csv")):
            print(f"\nloading demo/{csv_name}: tap-spreadsheets | target-dynamics ...")
            started = time.monotonic()
            code, logs[stream] = run_pipeline(
                args.tap, ROOT / "demo" / csv_name, stream, target_config, work
            )
            print(f"  finished in {time.monotonic() - started:.1f} s, exit code {code}")
            if code:
                print(logs[stream][-3000:], file=sys.stderr)
                return code
        api = WebApi(process.base_url, process.api_session())
        contacts = landed_contacts(api)
        print(f"\n{len(contacts)} contacts in Dataverse (read back through the Web API):\n")
        print(table(contacts, ("full name", "email", "company")))
        count, members = marketing_list(api, "Newsletter")
        print(f"\nmarketing list 'Newsletter': {count} members\n")
        print(table(members, ("full name", "email")))
        print("\nrun summary (email list):\n")
        print(summary_of(logs["email_list"]))
        print(f"\ndead-letter file ({dead_letter.name}; replay it with target-dynamics):\n")
        print(table(dead_letters(dead_letter), ("email", "code", "reason")))
    return 0 if contacts else 1


if __name__ == "__main__":
    sys.exit(main())
