"""A singer-sdk target that does nothing with its batches: the CPU floor for the benchmark."""

from __future__ import annotations

import typing as t

from singer_sdk import Target
from singer_sdk import typing as th
from singer_sdk.sinks import BatchSink
from typing_extensions import override


class NoopSink(BatchSink):
    """Accepts every batch and drops it."""

    MAX_SIZE_DEFAULT = 500

    @override
    def process_batch(self, context: dict[str, t.Any]) -> None:
        """Do nothing."""


class NoopTarget(Target):
    """Reads Singer messages like any singer-sdk target, writes nothing."""

    name = "target-noop"
    config_jsonschema = th.PropertiesList().to_dict()
    default_sink_class = NoopSink


if __name__ == "__main__":
    NoopTarget.cli()
