"""The write pipeline through the target: batches in flight side by side, yet every row in
input order, and STATE only after the writes before it (:mod:`target_dynamics.pipeline`)."""

from __future__ import annotations

from target_dynamics.target import TargetDynamics


def run(server, singer, name: str, **config: object) -> tuple[TargetDynamics, list[dict]]:
    """Feed ``data/test_pipeline__<name>.singer`` to the target; return it and its STATEs."""
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
    return target, singer.listen(target, singer.read(f"test_pipeline__{name}"))


def lastnames(server) -> dict[str, str]:
    return {r["emailaddress1"]: r["lastname"] for r in server.admin.snapshot().get("contact", [])}


def test_a_later_batch_with_the_same_key_waits_for_the_earlier_one(emulator_factory, singer):
    """The first write is slow (a 1 s delay); the batch after it, other keys, lands meanwhile;
    the third batch names the first batch's keys again (``A@X.ORG`` is ``a@x.org`` as Dataverse
    compares keys), so it waits: the last values win."""
    server = emulator_factory(latency="zero")
    server.admin.set_faults([{"action": "delay", "seconds": 1, "operation": "bulk", "times": 1}])
    _, states = run(server, singer, "same_keys_again")
    assert lastnames(server) == {
        "a@x.org": "last",
        "b@x.org": "last",
        "c@x.org": "other",
        "d@x.org": "other",
    }
    assert states == [{"pos": 6}]
    assert server.admin.counters()["requests"]["bulk"]["204"] == 3


def test_state_goes_out_only_after_the_slow_write_before_it(emulator_factory, singer):
    """STATE after the first batch waits for its (delayed) write; a later batch that lands
    sooner does not let it out early: the emitted states only ever name landed rows."""
    server = emulator_factory(latency="zero")
    server.admin.set_faults([{"action": "delay", "seconds": 1, "operation": "bulk", "times": 1}])
    target, states = run(server, singer, "state_between_batches", state_interval_records=1)
    assert states[0] == {"pos": 2}
    assert states[-1] == {"pos": 4}
    assert len(lastnames(server)) == 4
    assert target.report.totals.landed == 4
