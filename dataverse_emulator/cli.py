"""``dataverse-emulator``: serve the emulator on loopback HTTPS until Ctrl-C or SIGTERM.

Example::

    dataverse-emulator --port 8443 --data-dir .emulator --latency realistic --time-scale 0.1

(``--dop-hint 48`` makes it report the parallelism of a larger environment, §7.3;
``--web-servers 2`` gives each user a budget on each of two servers, §7.1, §7.2;
``--app-users 4`` registers four application users that may write, §7.1;
``--seed-data rows.json`` loads rows at start, ``--snapshot-on-exit out.json`` saves them on
stop; ``--host`` binds another interface, with a warning unless it is loopback.)

writes ``.emulator/ca.pem``, ``.emulator/target-config.json`` (a working target-dynamics
configuration) and ``.emulator/app-users.json`` (the further users, ``--config`` it too) and
prints the URLs it serves. Its server stack is the ``emulator`` extra
(``pip install "target-dynamics[emulator]"``); without it the script says so in one line.
"""

from __future__ import annotations

import argparse
import importlib.util
import ipaddress
import json
import signal
import sys
import threading
import typing as t
from pathlib import Path

if t.TYPE_CHECKING:
    from collections.abc import Sequence

    from dataverse_emulator.state.budget import Limits

EXTRA_MODULES = ("cryptography", "httptools", "jwt", "orjson", "uvicorn")
"""What the ``emulator`` extra installs and the emulator imports; the target needs none."""


def _at_least_one(text: str) -> int:
    """A whole number of at least 1 (argparse ``type``: a bad one is a usage error)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        msg = f"expected a whole number of at least 1, not {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _parser(token_lifetime: int, limits: Limits, key_index: float) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dataverse-emulator",
        description="Local Dataverse Web API v9.2 and Entra ID token endpoint over HTTPS.",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to bind, IP or name (the server certificate covers it; default loopback)",
    )
    parser.add_argument("--port", type=int, default=8443, help="TCP port (0: pick a free one)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        required=True,
        help="where ca.pem, certificates, target-config.json and users.json are written",
    )
    parser.add_argument("--entities", type=Path, help="extra tables (JSON) for the catalog")
    parser.add_argument(
        "--latency",
        choices=["realistic", "zero"],
        default="realistic",
        help="realistic: server time and service protection limits; zero: neither",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="multiply server times, the 5-minute window and Retry-After by this factor",
    )
    parser.add_argument(
        "--language",
        type=int,
        default=1033,
        help="base language (LCID) of the environment; it fixes the collation: 1033 English is "
        "accent-insensitive (_CI_AI), 1035 Finnish and others accent-sensitive (_CI_AS)",
    )
    parser.add_argument(
        "--key-index-seconds",
        type=float,
        default=key_index,
        help="how long the system job building a new alternate key's index takes (the key is "
        "Pending until then; scaled by --time-scale)",
    )
    parser.add_argument(
        "--dop-hint",
        type=_at_least_one,
        default=limits.dop_hint,
        help="the x-ms-dop-hint every answer reports (recommended parallelism, default 4)",
    )
    parser.add_argument(
        "--web-servers",
        type=_at_least_one,
        default=limits.web_servers,
        help="web servers, each with its own budget per user; requests without the affinity "
        "cookie are spread over them (default 1, a trial environment)",
    )
    parser.add_argument(
        "--app-users",
        type=_at_least_one,
        default=3,
        help="application users that may write (default 3: two with secrets, one with a "
        "certificate; more adds users with secrets); app-users.json lists all but the first",
    )
    parser.add_argument("--faults", type=Path, help="fault rules (JSON, docs/emulator-faults.md)")
    parser.add_argument("--seed", type=int, default=0, help="seed of ids and fault draws")
    parser.add_argument(
        "--seed-data",
        type=Path,
        help="rows to load at start (JSON shaped like GET /_emulator/snapshot)",
    )
    parser.add_argument(
        "--snapshot-on-exit",
        type=Path,
        help="write the snapshot (GET /_emulator/snapshot) here on Ctrl-C or SIGTERM",
    )
    parser.add_argument(
        "--token-lifetime",
        type=int,
        default=token_lifetime,
        help="expires_in of issued access tokens, in seconds",
    )
    return parser


def exposure_warning(host: str) -> str | None:
    """The warning to print when ``host`` is not a loopback address, else None."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host.lower() == "localhost"
    if loopback:
        return None
    return (
        f"WARNING: listening on {host}, not loopback: the emulator is a test double, anyone "
        "who can reach it can read and change its data, and its CA is its own.\n"
    )


def _json_file(
    parser: argparse.ArgumentParser,
    option: str,
    path: Path | None,
    decode: t.Callable[[bytes], t.Any] = json.loads,
) -> t.Any:
    """The JSON document in ``path`` (None without the option); a usage error naming it."""
    if path is None:
        return None
    try:
        return decode(path.read_bytes())
    except (OSError, ValueError) as exc:
        parser.error(f"{option} {path}: {exc}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator; return the process exit code."""
    missing = [name for name in EXTRA_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        sys.stderr.write(
            f"dataverse-emulator needs the emulator extra (missing: {', '.join(missing)}); "
            'install it with: pip install "target-dynamics[emulator]"\n'
        )
        return 1
    # Imported only now, so that a missing extra is the line above, not a traceback.
    from dataverse_emulator.app import DEFAULT_TOKEN_LIFETIME  # noqa: PLC0415
    from dataverse_emulator.server import EmulatorServer  # noqa: PLC0415
    from dataverse_emulator.state.budget import Limits  # noqa: PLC0415
    from dataverse_emulator.state.collation import suffix  # noqa: PLC0415
    from dataverse_emulator.state.errors import DataverseFault  # noqa: PLC0415
    from dataverse_emulator.state.key_jobs import DEFAULT_DELAY  # noqa: PLC0415
    from dataverse_emulator.state.seed import load_rows  # noqa: PLC0415
    from dataverse_emulator.wire import codec  # noqa: PLC0415

    parser = _parser(DEFAULT_TOKEN_LIFETIME, Limits(), DEFAULT_DELAY)
    args = parser.parse_args(argv)
    faults = _json_file(parser, "--faults", args.faults)
    # Seed values are row values: Decimal and Money numbers read exactly (§4.6).
    seed_rows = _json_file(parser, "--seed-data", args.seed_data, codec.loads)
    try:
        server = EmulatorServer(
            args.data_dir,
            host=args.host,
            port=args.port,
            latency=args.latency,
            time_scale=args.time_scale,
            faults=faults,
            seed=args.seed,
            token_lifetime=args.token_lifetime,
            entities_file=args.entities,
            limits=Limits(dop_hint=args.dop_hint, web_servers=args.web_servers),
            app_users=args.app_users,
            key_index_seconds=args.key_index_seconds,
            language_code=args.language,
        )
    except (OSError, ValueError) as exc:
        parser.error(str(exc))
    created = 0
    if seed_rows is not None:
        try:
            created = load_rows(server.env, seed_rows)
        except (ValueError, DataverseFault) as exc:
            server.stop()
            parser.error(f"--seed-data {args.seed_data}: {exc}")
    lines = [
        f"Dataverse Web API   {server.api_url}/",
        f"Entra authority     {server.authority}",
        f"Control API         {server.base_url}/_emulator/",
        f"CA bundle           {server.ca_path}",
        f"Target config       {server.data_dir / 'target-config.json'}",
        f"App users           {server.data_dir / 'app-users.json'} ({len(server.app_users)} more)",
        f"Users               {server.data_dir / 'users.json'}",
        f"Latency             {args.latency} (time scale {args.time_scale})",
        f"x-ms-dop-hint       {args.dop_hint}",
        f"Web servers         {args.web_servers}",
        f"Base language       {args.language} (collation {suffix(args.language)})",
    ]
    if seed_rows is not None:
        lines.append(f"Seed data           {args.seed_data} ({created} rows)")
    lines.append("Press Ctrl-C to stop.")
    warning = exposure_warning(args.host)
    if warning:
        sys.stderr.write(warning)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    server.start()
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
    stop.wait()
    server.stop()
    if args.snapshot_on_exit is not None:
        snapshot = codec.dumps(server.env.snapshot(), indent=2)
        args.snapshot_on_exit.write_bytes(snapshot + b"\n")
        sys.stdout.write(f"Snapshot written to {args.snapshot_on_exit}.\n")
    sys.stdout.write("Stopped.\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
