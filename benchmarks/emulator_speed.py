"""Speed of the emulator itself, so it never limits a benchmark of the target (reference A.3).

Run: ``.venv/bin/python benchmarks/emulator_speed.py``

Starts ``dataverse-emulator --latency zero`` in its own process and measures, over HTTPS:

1. records/s through CreateMultiple with 1,000 records per request (target ≥ 20,000);
2. single create requests/s from concurrent clients (threads with ``requests`` sessions; target
   ≥ 500).

Figures are loopback measurements on a shared machine: read them against the targets, not as
promises.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import bench_main
import orjson

from dataverse_emulator.testing import EmulatorProcess, emulator_process

if TYPE_CHECKING:
    import requests

BULK_TARGET = 20_000
SINGLE_TARGET = 500


def authorized_session(emulator: EmulatorProcess) -> requests.Session:
    """An authorized session (token from the emulator's own authority)."""
    session = emulator.api_session()
    session.headers["Content-Type"] = "application/json"
    return session


def account(number: int) -> dict[str, object]:
    """One account of about 300 bytes of JSON."""
    return {
        "@odata.type": "Microsoft.Dynamics.CRM.account",
        "name": f"Benchmark Account {number:07d}",
        "accountnumber": f"BENCH-{number:07d}",
        "emailaddress1": f"account{number}@example.com",
        "telephone1": "+1 425 555 0100",
        "address1_line1": f"{number} Main Street",
        "address1_city": "Redmond",
        "address1_postalcode": "98052",
        "description": "Created by benchmarks/emulator_speed.py",
    }


def bulk_rate(emulator: EmulatorProcess, requests_count: int, clients: int) -> float:
    """Records/s through CreateMultiple, 1,000 records per request, bodies pre-encoded."""
    root = f"{emulator.base_url}/api/data/v9.2"
    url = f"{root}/accounts/Microsoft.Dynamics.CRM.CreateMultiple"
    bodies = [
        orjson.dumps({"Targets": [account(r * 1000 + i) for i in range(1000)]})
        for r in range(requests_count)
    ]
    sessions = [authorized_session(emulator) for _ in range(clients)]

    def send(index: int) -> None:
        response = sessions[index % clients].post(url, data=bodies[index], timeout=120)
        if response.status_code != 200 or len(response.json()["Ids"]) != 1000:
            raise SystemExit(f"CreateMultiple failed: {response.status_code} {response.text[:300]}")

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(send, range(requests_count)))
    return requests_count * 1000 / (time.perf_counter() - started)


def single_rate(emulator: EmulatorProcess, per_client: int, clients: int) -> float:
    """Single create requests/s from ``clients`` threads, each with its own session."""
    url = f"{emulator.base_url}/api/data/v9.2/contacts"
    sessions = [authorized_session(emulator) for _ in range(clients)]
    for session in sessions:  # open the TLS connections before timing
        session.get(f"{emulator.base_url}/api/data/v9.2/WhoAmI", timeout=10)
    failures: list[str] = []
    lock = threading.Lock()

    def run(index: int) -> None:
        session = sessions[index]
        for number in range(per_client):
            body = orjson.dumps({"firstname": "Bench", "lastname": f"C{index}-{number}"})
            response = session.post(url, data=body, timeout=30)
            if response.status_code != 204:
                with lock:
                    failures.append(f"{response.status_code} {response.text[:200]}")

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(run, range(clients)))
    elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit(f"single creates failed: {failures[:3]}")
    return clients * per_client / elapsed


def main() -> None:
    """Run both measurements once and print them next to the targets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bulk-requests", type=int, default=30, help="CreateMultiple requests")
    parser.add_argument("--bulk-clients", type=int, default=2, help="concurrent bulk clients")
    parser.add_argument("--single-clients", type=int, default=8, help="concurrent threads")
    parser.add_argument("--single-per-client", type=int, default=250, help="creates per thread")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="emulator-speed-") as tmp,
        emulator_process(Path(tmp), "--latency", "zero") as emulator,
    ):
        bulk = bulk_rate(emulator, args.bulk_requests, args.bulk_clients)
        single = single_rate(emulator, args.single_per_client, args.single_clients)
    print("Emulator speed (--latency zero, HTTPS, separate process)")
    print(
        f"  CreateMultiple x1000 : {bulk:10,.0f} records/s   target >= {BULK_TARGET:,}"
        f"   {'OK' if bulk >= BULK_TARGET else 'BELOW TARGET'}"
    )
    print(
        f"  single creates       : {single:10,.0f} requests/s  target >= {SINGLE_TARGET:,}"
        f"   {'OK' if single >= SINGLE_TARGET else 'BELOW TARGET'}"
    )


if __name__ == "__main__":
    bench_main.run(main)
