"""The garbage collector's thresholds while the target reads, and after."""

from __future__ import annotations

import contextlib
import gc

import pytest
from singer_sdk.exceptions import RecordsWithoutSchemaException

from target_dynamics.target import TargetDynamics

pytestmark = pytest.mark.usefixtures("reset_emulator")


class _Watch(TargetDynamics):
    """The target, noting the collector's thresholds when each record arrives."""

    seen: list[tuple[int, int, int]]

    def _process_record_message(self, message_dict, source=None):
        self.seen.append(gc.get_threshold())
        super()._process_record_message(message_dict, source)


@pytest.mark.parametrize("fails", [False, True], ids=["run", "failed run"])
def test_collections_are_rare_while_reading_and_the_default_comes_back(
    reset_emulator, singer, fails
):
    """Records hold no cycles; the interpreter's thresholds come back even when the run fails."""
    default = gc.get_threshold()
    target = _Watch(config={**reset_emulator.target_config, "entity": "contact"})
    target.seen = []
    messages = singer.people(3, schema=True)
    if fails:
        messages.append({"type": "RECORD", "stream": "elsewhere", "record": {}})
    with pytest.raises(RecordsWithoutSchemaException) if fails else contextlib.nullcontext():
        singer.listen(target, messages)
    assert target.seen
    assert all(seen[0] > 10 * default[0] for seen in target.seen)
    assert gc.get_threshold() == default
