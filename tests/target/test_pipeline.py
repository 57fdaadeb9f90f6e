"""WritePipeline: order by claims, STATE callbacks after the writes before them, bounds."""

from __future__ import annotations

import threading

import pytest

from target_dynamics.pipeline import Claims, WritePipeline


def pipeline(capacity: int = 1000, unchecked: int = 1000) -> WritePipeline:
    return WritePipeline(lambda: capacity, lambda: unchecked)


def test_claims_conflict_on_keys_lookups_and_serial_streams():
    a = Claims("contact", frozenset({"k1"}))
    assert Claims("contact", frozenset({"k1", "k2"})).conflicts(a)
    assert not Claims("contact", frozenset({"k2"})).conflicts(a)
    assert not Claims("account", frozenset({"k1"})).conflicts(a)
    assert Claims("account", reads=frozenset({"contact"})).conflicts(a)
    assert Claims("contact", serial="s").conflicts(Claims("contact", serial="s"))


def test_a_conflicting_job_waits_and_callbacks_follow_their_jobs():
    flow = pipeline()
    release = threading.Event()
    order: list[str] = []
    flow.submit(Claims("t", frozenset({1})), 1, lambda: (release.wait(5), order.append("one")))
    flow.after(lambda: order.append("state after one"))
    flow.submit(Claims("t", frozenset({2})), 1, lambda: (order.append("other key"), release.set()))
    flow.submit(Claims("t", frozenset({1})), 1, lambda: order.append("same key"))
    flow.after(lambda: order.append("state after all"))
    flow.wait()
    assert order[0] == "other key"  # ran side by side with the slow one
    assert order[1] == "one"
    assert sorted(order[2:4]) == ["same key", "state after one"]
    assert order[4:] == ["state after all"]


def test_a_failed_job_ends_the_run_and_no_state_follows_it():
    flow = pipeline()
    ran: list[str] = []

    def fail() -> None:
        raise RuntimeError("service gone")

    def state_then_wait() -> None:
        flow.after(lambda: ran.append("state"))
        flow.wait()

    flow.submit(Claims("t"), 1, fail)
    with pytest.raises(RuntimeError, match="service gone"):  # once: at after() if it failed by then
        state_then_wait()
    flow.submit(Claims("t"), 1, lambda: ran.append("later"))
    flow.settle()
    assert ran == []


def test_rows_past_a_waiting_state_are_bounded():
    """With a STATE waiting for its writes, no more than ``unchecked`` rows are handed over."""
    flow = pipeline(unchecked=3)
    release = threading.Event()
    flow.submit(Claims("t"), 2, lambda: release.wait(5))
    flow.after(lambda: None)
    admitted = threading.Event()
    worker = threading.Thread(
        target=lambda: (flow.submit(Claims("t"), 2, lambda: None), admitted.set())
    )
    worker.start()
    assert not admitted.wait(0.2)  # 2 + 2 rows past the last STATE would exceed 3
    release.set()
    assert admitted.wait(5)
    worker.join(5)
    flow.wait()
