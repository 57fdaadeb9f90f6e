"""The write pipeline through the target: batches in flight side by side, yet every row in
input order, and STATE only after the writes before it (:mod:`target_dynamics.pipeline`)."""

from __future__ import annotations

import contextlib
import io
import json

from target_dynamics.target import TargetDynamics

SCHEMA = {
    "type": "SCHEMA",
    "stream": "people",
    "key_properties": ["emailaddress1"],
    "schema": {"properties": {"emailaddress1": {"type": "string"}, "lastname": {"type": "string"}}},
}


def record(email: str, lastname: str) -> dict:
    return {
        "type": "RECORD",
        "stream": "people",
        "record": {"emailaddress1": email, "lastname": lastname},
    }


def run(server, messages: list[dict], **config: object) -> tuple[TargetDynamics, list[dict]]:
    target = TargetDynamics(
        config={
            **server.target_config,
            "entity": "contact",
            "id_field": "emailaddress1",
            "progress_interval_seconds": 0,
            "batch_size_rows": 2,
            **config,
        }
    )
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        target.listen(io.StringIO("".join(json.dumps(m) + "\n" for m in messages)))
    return target, [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


def lastnames(server) -> dict[str, str]:
    return {r["emailaddress1"]: r["lastname"] for r in server.admin.snapshot().get("contact", [])}


def test_a_later_batch_with_the_same_key_waits_for_the_earlier_one(emulator_factory):
    """The first write is slow (a 1 s delay); the batch after it, other keys, lands meanwhile;
    the third batch names the first batch's keys again, so it waits: the last values win."""
    server = emulator_factory(latency="zero")
    server.admin.set_faults([{"action": "delay", "seconds": 1, "operation": "bulk", "times": 1}])
    messages = [
        SCHEMA,
        record("a@x.org", "first"),
        record("b@x.org", "first"),
        record("c@x.org", "other"),
        record("d@x.org", "other"),
        record("A@X.ORG", "last"),  # the same key as Dataverse compares it
        record("b@x.org", "last"),
        {"type": "STATE", "value": {"pos": 6}},
    ]
    _, states = run(server, messages)
    assert lastnames(server) == {
        "a@x.org": "last",
        "b@x.org": "last",
        "c@x.org": "other",
        "d@x.org": "other",
    }
    assert states == [{"pos": 6}]
    assert server.admin.counters()["requests"]["bulk"]["204"] == 3


def test_state_goes_out_only_after_the_slow_write_before_it(emulator_factory):
    """STATE after the first batch waits for its (delayed) write; a later batch that lands
    sooner does not let it out early: the emitted states only ever name landed rows."""
    server = emulator_factory(latency="zero")
    server.admin.set_faults([{"action": "delay", "seconds": 1, "operation": "bulk", "times": 1}])
    messages = [
        SCHEMA,
        record("a@x.org", "1"),
        record("b@x.org", "1"),
        {"type": "STATE", "value": {"pos": 2}},
        record("c@x.org", "1"),
        record("d@x.org", "1"),
        {"type": "STATE", "value": {"pos": 4}},
    ]
    target, states = run(server, messages, state_interval_records=1)
    assert states[0] == {"pos": 2}
    assert states[-1] == {"pos": 4}
    assert len(lastnames(server)) == 4
    assert target.report.totals.landed == 4
