"""The target: the settings schema, the CLI, and the resources every sink shares."""

from __future__ import annotations

import contextlib
import gc
import logging
import sys
import threading
import typing as t

import click
from singer_sdk.exceptions import RecordsWithoutSchemaException
from singer_sdk.helpers.capabilities import PluginCapabilities, TargetCapabilities
from singer_sdk.mapper import SameRecordTransform, StreamMap
from singer_sdk.target_base import Target
from typing_extensions import override

from target_dynamics.app_users import AppUsers
from target_dynamics.batch_files import batch_records
from target_dynamics.collation import read_collation
from target_dynamics.connection import MELTANO_TEST_STREAM, check_connection, reach
from target_dynamics.deadletter import DeadLetterFile
from target_dynamics.errors import DataverseError
from target_dynamics.failures import came_from_input, failure_message
from target_dynamics.membership import MarketingLists
from target_dynamics.metadata import MetadataCache
from target_dynamics.pipeline import WritePipeline
from target_dynamics.reader import LineReader
from target_dynamics.reporting import RunReport
from target_dynamics.settings import (
    AppUser,
    Settings,
    SettingsError,
    check_schema,
    parse_settings,
)
from target_dynamics.settings_schema import config_schema
from target_dynamics.sinks import DataverseSink, Received
from target_dynamics.webapi import option_headers
from target_dynamics.writer import MIN_PARALLEL_CHUNK, Writer

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from singer_sdk.helpers.capabilities import CapabilitiesEnum

    from target_dynamics.client import ClientStats, DataverseClient

_RARE_COLLECTIONS = (50_000, 20, 10)
"""Collector thresholds while reading (see :func:`_rare_collections`): the youngest generation
every 50,000 allocations, a full collection still every few hundred thousand records, so cycles
that outlive a write (an error and its traceback) are still freed on a long run."""


class TargetDynamics(Target):
    """Load Singer streams into Microsoft Dynamics 365 / Dataverse tables through the Web API."""

    name = "target-dynamics"
    default_sink_class = DataverseSink
    capabilities: t.ClassVar[list[CapabilitiesEnum]] = [
        PluginCapabilities.ABOUT,
        PluginCapabilities.ACTIVATE_VERSION,
        PluginCapabilities.BATCH,
        PluginCapabilities.STREAM_MAPS,
        PluginCapabilities.FLATTENING,
        PluginCapabilities.STRUCTURED_LOGGING,
        TargetCapabilities.VALIDATE_RECORDS,
        TargetCapabilities.HARD_DELETE,
    ]
    config_jsonschema: t.ClassVar[dict[str, t.Any]] = config_schema()

    def __init__(self, **kwargs: t.Any) -> None:
        self._settings: Settings | None = None
        self._lock = threading.Lock()
        self._client: DataverseClient | None = None
        self._users: AppUsers | None = None
        self._writer: Writer | None = None
        self._metadata: MetadataCache | None = None
        self._lists: MarketingLists | None = None
        self._raw_schemas: dict[str, dict[str, t.Any]] = {}
        self._routes: dict[str, list[_Route]] = {}
        """Each stream's maps and sinks, found on its first RECORD after a SCHEMA."""
        self._unsettled = False
        self._writing = 0
        self._records_since_drain = 0
        self._queued_state: dict[str, t.Any] | None = None
        self.pipeline = WritePipeline(self._rows_in_flight, self._rows_unchecked)
        """Where sinks hand their writes (:mod:`~target_dynamics.pipeline`)."""
        self._finished = False
        self._connection_tested = False
        kwargs.setdefault("message_reader", LineReader(on_failure=self._write_accepted))
        super().__init__(**kwargs)
        # super().__init__ sets _settings (through _validate_config); mypy still sees the None.
        settings = self._settings or Settings(dynamics_url="", tenant_id="", client_id="")  # type: ignore[redundant-expr]
        self.report = RunReport(
            self.logger, settings.progress_interval_seconds, dry_run=settings.dry_run
        )
        self.dead_letter = DeadLetterFile(settings.dead_letter_path)

    @classmethod
    @override
    def append_builtin_config(cls, config_jsonschema: dict[str, t.Any]) -> None:
        """Add the SDK's built-in settings, except two that could do nothing here.

        ``batch_config`` (where a plugin writes batch files): this target writes none and reads
        each BATCH message's files where its manifest says. ``add_record_metadata``: the
        ``_sdc_*`` fields it would add never reach a Dataverse table (mapping drops them); as an
        unknown setting it is refused instead.
        """
        super().append_builtin_config(config_jsonschema)
        for name in ("batch_config", "add_record_metadata"):
            config_jsonschema["properties"].pop(name, None)

    @override
    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """Validate the schema and every cross-field rule, reporting all problems at once."""
        # Private SDK override: the SDK checks only the JSON Schema and its messages may quote
        # a secret; here the cross-field rules join them and the typed Settings are kept.
        schema = self.config_jsonschema
        self.append_builtin_config(schema)
        problems, checked = check_schema(self._config, schema)
        settings, more = parse_settings(checked)
        problems += more
        self._settings = settings
        if settings and settings.cloud_warning:
            self.logger.warning(settings.cloud_warning)
        if problems and raise_errors:
            raise SettingsError(problems, schema)
        return problems

    @property
    def settings(self) -> Settings:
        """The validated settings.

        Raises:
            SettingsError: The config is invalid (only reachable with ``validate_config=False``).
        """
        if self._settings is None:
            _, problems = parse_settings(self.config)
            raise SettingsError(problems)
        return self._settings

    @property
    def client(self) -> DataverseClient:
        """The one Dataverse client of the run (built on first use)."""
        with self._lock:
            if self._client is None:
                self._client = self._build_client()
            return self._client

    @property
    def users(self) -> AppUsers:
        """The run's application users: :attr:`client` first, then each of ``app_users``."""
        client = self.client
        with self._lock:
            if self._users is None:
                extra = [(u.client_id, self._build_client(u)) for u in self.settings.app_users]
                self._users = AppUsers([(self.settings.client_id, client), *extra])
            return self._users

    @property
    def writer(self) -> Writer:
        """The one writer of the run, sending through every application user.

        It compares key values by the environment's collation, read here once (§3.10).
        """
        users = self.users
        with self._lock:
            if self._writer is None:
                self._writer = Writer(users, collation=read_collation(users))
            return self._writer

    @property
    def metadata(self) -> MetadataCache:
        """The one metadata cache of the run (read through any working user)."""
        users = self.users
        with self._lock:
            if self._metadata is None:
                self._metadata = MetadataCache(users)
            return self._metadata

    @property
    def lists(self) -> MarketingLists:
        """The marketing lists of the run (found or created once each)."""
        users, writer, create = self.users, self.writer, not self.settings.dry_run
        with self._lock:
            if self._lists is None:
                self._lists = MarketingLists(
                    users, writer.concurrency, create=create, collation=writer.collation
                )
            return self._lists

    def sync_refusal(self) -> str | None:
        """Why members must not be removed now (an incomplete run), or None when they may."""
        if not (isinstance(self.message_reader, LineReader) and self.message_reader.reached_end):
            return "the input did not reach its end (the run was stopped or failed)"
        if self._unsettled:
            return "some records could not be written"
        totals = self.report.totals
        if totals.rejected > self.settings.max_errors:
            return f"{totals.rejected} records were rejected, more than max_errors"
        return None

    def _build_client(self, user: AppUser | None = None) -> DataverseClient:
        """A client for ``user`` (None: the first user the settings name), own connections."""
        from target_dynamics.auth import (  # noqa: PLC0415 - built only when a stream needs it
            Credentials,
            TokenProvider,
        )
        from target_dynamics.client import DataverseClient  # noqa: PLC0415
        from target_dynamics.transport import (  # noqa: PLC0415
            HttpsTransport,
            make_session,
            trust_context,
        )

        s = self.settings
        user = user or AppUser(
            s.client_id, s.client_secret, s.certificate_private_key, s.certificate_thumbprint
        )
        trust = trust_context(s.ca_bundle)
        tokens = TokenProvider(
            Credentials(
                tenant_id=s.tenant_id,
                client_id=user.client_id,
                client_secret=user.client_secret,
                certificate_private_key=user.certificate_private_key,
                certificate_thumbprint=user.certificate_thumbprint,
            ),
            authority_host=s.login_host,
            resource_url=s.dynamics_url,
            session=make_session(trust),
            retry_budget_seconds=s.outage_budget_seconds,
        )
        return DataverseClient(
            dynamics_url=s.dynamics_url,
            api_version=s.api_version,
            tokens=tokens,
            transport=HttpsTransport(trust),
            timeout=s.timeout_seconds,
            outage_budget=s.outage_budget_seconds,
            max_concurrency=s.max_concurrency,
            default_headers=option_headers(
                bypass_business_logic=s.bypass_business_logic,
                suppress_duplicate_detection=s.suppress_duplicate_detection,
                caller_object_id=s.caller_object_id,
            ),
        )

    def _request_counters(self) -> list[tuple[str, ClientStats]]:
        """Each application user's request counters, for the summary (none: nothing was sent)."""
        if self._users is not None:
            return self._users.stats()
        return [(self.settings.client_id, self._client.stats)] if self._client else []

    def raw_schema(self, stream: str) -> dict[str, t.Any] | None:
        """The SCHEMA message of ``stream`` as it arrived (before stream maps)."""
        return self._raw_schemas.get(stream)

    def test_connection(self) -> None:
        """Run the connection test (:mod:`~target_dynamics.connection`) and log its result.

        Raises:
            ConnectionFailed: every problem found, each with its fix.
        """
        self._connection_tested = True
        self.users.capacity()  # every user asked WhoAmI; one that cannot work is dropped, warned
        report = check_connection(self.users, self.metadata, self.settings)
        for note in report.notes:
            self.logger.warning(note)
        self.logger.info(report.summary())

    # The SDK marks listen final; a dry run must test the connection before the first line is
    # read, and the SDK offers no hook that runs earlier.
    @override  # type: ignore[misc]
    def listen(self, file_input: t.IO[str] | None = None) -> None:
        """Read the input; a dry run first tests the connection (privileges included)."""
        if self.settings.dry_run:
            self.test_connection()
        with _rare_collections():
            super().listen(file_input)

    def _meltano_test(self, stream: t.Any) -> bool:
        """Whether ``stream`` is ``meltano config test``'s (and no configured stream)."""
        return stream == MELTANO_TEST_STREAM and stream not in self.settings.streams

    @override
    def _process_schema_message(self, message_dict: dict[str, t.Any]) -> None:
        # Private SDK override: `meltano config test` gets the connection test, not a table.
        if self._meltano_test(message_dict.get("stream")):
            if not self._connection_tested:
                self.test_connection()
            return
        # Keep each SCHEMA as it arrived (before stream maps), so the
        # dead-letter file can replay rejected records as the tap sent them.
        if isinstance(message_dict.get("stream"), str):
            self._raw_schemas[message_dict["stream"]] = message_dict
        self._routes.clear()  # a SCHEMA may change the stream maps and replace sinks
        super()._process_schema_message(message_dict)

    @override
    def _process_record_message(
        self, message_dict: dict[str, t.Any], source: str | None = None
    ) -> None:
        # Private SDK override: the SDK's record path (docs/singer-sdk.md §1.9), its steps once
        # each, without the per-record hooks this target does not use. Sinks see mapped, parsed
        # records and keep the message as it arrived, with where it came from (the input line,
        # or the batch file and its line), so a rejected record is dead-lettered as the tap sent it.
        stream = message_dict["stream"]
        routes = self._routes.get(stream)
        if routes is None:
            if self._connection_tested and self._meltano_test(stream):
                return
            routes = self._route(stream)  # raises for a RECORD before its SCHEMA
        received = Received(
            message_dict, getattr(self.message_reader, "line", 0) if source is None else source
        )
        for stream_map, passes, sink in routes:
            record = message_dict["record"].copy()  # the message keeps the record as sent
            if not passes:
                record = stream_map.transform(record)
                if record is None:  # a stream map's filter dropped it
                    continue
            sink.receive(record, received)
            if sink.is_full:
                self.drain_one(sink)
        self._records_since_drain += 1
        self._handle_max_record_age()
        self.report.tick()

    def _route(self, stream: str) -> list[_Route]:
        """Where ``stream``'s records go: each stream map, whether it changes records, its sink.

        Raises:
            RecordsWithoutSchemaException: the stream had no SCHEMA.
        """
        maps = self.mapper.stream_maps.get(stream)
        if maps is None:
            self._assert_sink_exists(stream)  # raises: a RECORD before its SCHEMA
            maps = []
        routes = []
        for stream_map in maps:
            self._assert_sink_exists(stream_map.stream_alias)
            sink = t.cast("DataverseSink", self._sinks_active[stream_map.stream_alias])
            routes.append(_Route(stream_map, _passes_through(stream_map), sink))
        self._routes[stream] = routes
        return routes

    @override
    def _process_batch_message(self, message_dict: dict[str, t.Any]) -> None:
        # Private SDK override: the SDK reads each file whole and hands its raw records to
        # process_batch, skipping stream maps, validation and dead letters. Here the files are
        # streamed and each record takes the path of a RECORD message, so the same checks,
        # dead letters, batch sizes and STATE rules apply (a STATE after the BATCH arrives,
        # and so is emitted, only after every record of its files is queued).
        stream = message_dict["stream"]
        if stream not in self.mapper.stream_maps:
            msg = (
                f"BATCH for stream '{stream}' before its SCHEMA: the tap must send a stream's "
                "SCHEMA first"
            )
            raise RecordsWithoutSchemaException(msg)
        message = {"type": "RECORD", "stream": stream}
        if "version" in message_dict:
            message["version"] = message_dict["version"]
        for record, source in batch_records(message_dict["manifest"], message_dict["encoding"]):
            self._process_record_message({**message, "record": record}, source)

    @override
    def _handle_max_record_age(self) -> None:
        # Private SDK override: the SDK emits STATE only every 5 minutes (and at the end); here
        # every quarter of state_interval_records records or state_interval_seconds (checked on each
        # RECORD and STATE), whenever the tap sent a STATE not yet emitted, so a killed run
        # resends at most one interval.
        if self._unsettled or self._latest_state in (None, self._queued_state):
            return  # no STATE waits to go out
        settings = self.settings
        seconds = settings.state_interval_seconds
        if self._records_since_drain * 4 >= settings.state_interval_records or (
            seconds > 0 and self._max_record_age_in_minutes * 60 >= seconds
        ):
            self.drain_all()

    @override
    def _process_state_message(self, message_dict: dict[str, t.Any]) -> None:
        # Private SDK override: a STATE that arrives when the interval is due goes out at once.
        super()._process_state_message(message_dict)
        self._handle_max_record_age()

    @override
    def _reset_max_record_age(self) -> None:
        # Private SDK override: drain_all calls it after every full drain; count from there.
        super()._reset_max_record_age()
        self._records_since_drain = 0

    @override
    def _write_state_message(self, state: dict[str, t.Any]) -> None:
        # Private SDK override: the SDK writes STATE as soon as every sink handed its batch
        # over; here it goes out once those writes finished, and never after a lost record.
        self._queued_state = state
        self.pipeline.after(lambda: self._emit_state(state))

    def _emit_state(self, state: dict[str, t.Any]) -> None:
        """Write ``state`` unless some records before it could not be written."""
        if self._unsettled:
            self.logger.warning(
                "STATE withheld: some records could not be written, so the bookmark stays at "
                "the last state whose records all landed or were rejected"
            )
            return
        super()._write_state_message(state)

    def _rows_in_flight(self) -> int:
        """Rows the pipeline may hold: enough to keep every user's request slots busy."""
        return self.users.ceiling() * MIN_PARALLEL_CHUNK * 2

    def _rows_unchecked(self) -> int:
        """Rows that may be handed over after the last emitted STATE (what a crash resends)."""
        return self.settings.state_interval_records

    def unsettle(self) -> None:
        """Some records could not be written: no STATE from now on (a rerun resends them)."""
        self._unsettled = True

    @contextlib.contextmanager
    def writing(self) -> t.Iterator[None]:
        """Mark a batch being written.

        A signal arriving meanwhile must not checkpoint it, and a batch that ends in an
        exception leaves its records unsettled (no STATE after them).
        """
        with self._lock:
            self._writing += 1
        try:
            yield
        except BaseException:
            self.unsettle()
            raise
        finally:
            with self._lock:
                self._writing -= 1

    @override
    def _handle_termination(self, signum: int, frame: t.Any) -> None:
        """SIGTERM/SIGINT: write what was received, report, exit non-zero if anything is open.

        A batch interrupted mid-write cannot be known to have landed, so no STATE follows it
        (the SDK would otherwise checkpoint it, meltano/sdk#3775).
        """
        del frame
        self.logger.warning("Received signal %d: writing what was received, then stopping", signum)
        with self._lock:
            if self._writing:
                self.unsettle()
        try:
            self.process_endofpipe()
        finally:
            if self._unsettled:
                self.logger.error("Stopped during a write: rerun from the last emitted STATE")
        sys.exit(1 if self._unsettled else 0)

    @override
    def process_endofpipe(self) -> None:
        """Drain every sink, write the summary, then fail if anything was lost or too many rejected.

        Raises:
            DataverseError: After all sinks drained, when records could not be written or the
                rejections exceed ``max_errors``.
        """
        if self._finished:
            return
        self._finished = True
        try:
            super().process_endofpipe()
            self.pipeline.wait()
        finally:
            self.pipeline.settle()
            self.dead_letter.close()
            self.report.summary(self._request_counters())
        self.report.raise_if_failed(self.settings.max_errors, self.settings.dead_letter_path)
        if self._client is None and getattr(self.message_reader, "reached_end", False):
            reach(self.users)  # nothing needed the service: still prove the credentials

    def _write_accepted(self, error: Exception) -> None:
        """The input broke off at ``error``: write the records accepted before it, then report.

        Nothing is written after a service failure (it would fail the same way); a failure of
        this last write is added to ``error`` as a note, so the run still ends with one message.
        """
        if not came_from_input(error) or self._finished:
            return
        if self.report.totals.received:
            self.logger.info("Writing the records received before the failure")
        try:
            self.process_endofpipe()
        except DataverseError as also:
            error.add_note(f"Besides: {also}")

    @override
    def _process_activate_version_message(self, message_dict: dict[str, t.Any]) -> None:
        # Private SDK override: the SDK fails with a bare KeyError for a stream without SCHEMA,
        # and warns on every message that add_record_metadata is off (it needs no _sdc_ here).
        stream = message_dict["stream"]
        if self._connection_tested and self._meltano_test(stream):
            return  # `meltano config test` sends one when the loader declares activate-version
        if stream not in self.mapper.stream_maps:
            msg = (
                f"ACTIVATE_VERSION for stream '{stream}' before its SCHEMA: "
                "the tap must send a stream's SCHEMA first"
            )
            raise RecordsWithoutSchemaException(msg)
        version = message_dict.get("version")
        for stream_map in self.mapper.stream_maps[stream]:
            sink = self.get_sink(stream_map.stream_alias)
            if not sink.process_activate_version_messages:
                continue
            if isinstance(sink, DataverseSink) and isinstance(version, int):
                sink.activate_version(version)

    def mirror_refusal(self) -> str | None:
        """Why a mirror must not remove rows now (records lost or rejected), or None."""
        if self._unsettled:
            return "some records could not be written (transient failures)"
        rejected = self.report.totals.rejected
        if rejected > self.settings.max_errors:
            return f"{rejected} records were rejected, more than max_errors"
        return None

    @classmethod
    @override
    def cb_config(cls, ctx: click.Context, param: click.Option, value: tuple[str, ...]) -> t.Any:
        """Read the ``--config`` files; one that is missing or not a JSON object is a usage error.

        Raises:
            click.BadParameter: Naming the file and what is wrong (never its content).
        """
        for path in value:
            if path == "ENV":
                continue
            try:
                super().cb_config(ctx, param, (path,))
            except (OSError, ValueError, TypeError) as exc:
                msg = f"config file '{path}': {_config_problem(exc)}"
                raise click.BadParameter(msg, ctx=ctx, param=param) from None
        return super().cb_config(ctx, param, value)

    @classmethod
    @override
    def get_singer_command(cls) -> click.Command:
        """The SDK's command plus ``--test``: the connection test, reading no input."""
        command = super().get_singer_command()
        command.params.append(
            click.Option(
                ["--test", "test_connection"],
                is_flag=True,
                help="Test the connection (token, WhoAmI, tables, privileges) and exit.",
            )
        )
        return command

    @classmethod
    @override
    def invoke(cls, *, test_connection: bool = False, **options: t.Any) -> None:
        """Run the CLI; an expected failure ends it with one message and exit code 1.

        The traceback follows only when the log level is DEBUG; a bug keeps its traceback.
        """
        logging.getLogger(cls.name).addFilter(_not_an_sdk_echo)
        try:
            if test_connection and not options.get("about"):
                config = options.get("config")
                cls(
                    config=config.config if config else None,
                    parse_env_config=bool(config and config.parse_env),
                ).test_connection()
                return
            super().invoke(**options)
        except Exception as exc:
            message = failure_message(exc)
            if message is None:
                raise
            debug = cls.logger.isEnabledFor(logging.DEBUG)
            cls.logger.error(message, exc_info=exc if debug else None)  # noqa: TRY400
            raise click.exceptions.Exit(1) from None


def _config_problem(error: Exception) -> str:
    """What is wrong with a config file, without quoting its content (it holds secrets)."""
    if isinstance(error, FileNotFoundError):
        return "does not exist; give the path of the JSON file of settings"
    if isinstance(error, OSError):
        return f"cannot be read ({error.strerror or type(error).__name__})"
    if isinstance(error, UnicodeDecodeError):
        return "not UTF-8 text"
    if isinstance(error, ValueError) and hasattr(error, "lineno"):
        where = f"line {error.lineno} column {getattr(error, 'colno', '?')}"
        return f"not JSON ({getattr(error, 'msg', error)}: {where})"
    return 'not a JSON object of settings: it must hold one object, {"dynamics_url": ...}'


def _not_an_sdk_echo(record: logging.LogRecord) -> bool:
    """Drop the SDK's extra error line before a failure the CLI reports itself."""
    return record.msg != "Error initializing target sink '%s'"


class _Route(t.NamedTuple):
    stream_map: StreamMap
    passes: bool
    """Whether the map hands records on unchanged (see :func:`_passes_through`)."""
    sink: DataverseSink


def _passes_through(stream_map: StreamMap) -> bool:
    """Whether ``stream_map`` hands records on as they are (no map, no flattening)."""
    return type(stream_map) is SameRecordTransform and not stream_map.flattening_enabled


@contextlib.contextmanager
def _rare_collections() -> Iterator[None]:
    """Run the cyclic garbage collector less often while the input streams through.

    Records, rows and requests hold no reference cycles: reference counting frees them. At the
    interpreter's default (a collection every 700 allocations, the older generations every 10
    of the younger) the collector re-scans the records queued for writing again and again: a
    quarter of the target's CPU on 50,000 records (benchmarks/target_cpu.py). The default comes
    back when reading ends.
    """
    default = gc.get_threshold()
    gc.set_threshold(*_RARE_COLLECTIONS)
    try:
        yield
    finally:
        gc.set_threshold(*default)


if __name__ == "__main__":
    TargetDynamics.cli()
