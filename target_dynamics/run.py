"""What a sink may use of the run it belongs to: the one seam between the target and its sinks.

:class:`~target_dynamics.target.TargetDynamics` implements :class:`RunContext`; a sink sees only
these members, so what the sinks share (the writer, metadata, report, dead letters, the write
pipeline, the raw messages) is named here, not found by reaching into the target.
"""

from __future__ import annotations

import typing as t

if t.TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from singer_sdk.sinks import Sink

    from target_dynamics.app_users import AppUsers
    from target_dynamics.deadletter import DeadLetterFile
    from target_dynamics.membership import MarketingLists
    from target_dynamics.metadata import MetadataCache
    from target_dynamics.pipeline import WritePipeline
    from target_dynamics.reporting import RunReport
    from target_dynamics.settings import Settings
    from target_dynamics.writer import Writer


class RunContext(t.Protocol):
    """The run's shared parts and decisions, as a sink uses them."""

    report: RunReport
    dead_letter: DeadLetterFile
    pipeline: WritePipeline

    @property
    def settings(self) -> Settings:
        """The run's settings."""
        ...

    @property
    def users(self) -> AppUsers:
        """The run's application users: every Web API request goes through them."""
        ...

    @property
    def writer(self) -> Writer:
        """The run's writer."""
        ...

    @property
    def metadata(self) -> MetadataCache:
        """Table metadata, read once per table."""
        ...

    @property
    def lists(self) -> MarketingLists:
        """The run's marketing lists."""
        ...

    def raw_schema(self, stream: str) -> dict[str, t.Any] | None:
        """The SCHEMA message of ``stream`` as the tap sent it (dead letters replay it)."""
        ...

    def writing(self) -> AbstractContextManager[None]:
        """Mark a batch being written (one that ends in an exception unsettles the run)."""
        ...

    def unsettle(self) -> None:
        """Some records could not be written: no STATE from now on."""
        ...

    def sync_refusal(self) -> str | None:
        """Why list members must not be removed now, or None when they may."""
        ...

    def mirror_refusal(self) -> str | None:
        """Why a mirror must not remove rows now, or None when it may."""
        ...

    def drain_one(self, sink: Sink) -> None:
        """Write ``sink``'s pending records now."""
        ...
