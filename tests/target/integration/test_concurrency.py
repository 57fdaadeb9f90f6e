"""Adaptive concurrency through the target (§7.3, §7.4): above x-ms-dop-hint while the
remaining-budget headers show headroom, below it as the budget runs out, every row landing."""

from __future__ import annotations

from dataverse_emulator.state.budget import Limits
from target_dynamics.target import TargetDynamics
from tests.target.transport_double import TransportDouble


def run(server, singer, count: int) -> list[int]:
    """Upsert ``count`` people; return the primary client's limit at each answer it got."""
    target = TargetDynamics(
        config={
            **server.target_config,
            "entity": "contact",
            "progress_interval_seconds": 0,
            "batch_size_rows": 1000,
        }
    )
    client = target.client
    limits: list[int] = []
    client._transport = TransportDouble(
        client._transport, watch=lambda _: limits.append(client.in_flight.limit)
    )
    singer.listen(target, singer.people(count, schema=True))
    assert len(server.admin.snapshot()["contact"]) == count
    return limits


def test_a_fresh_budget_lets_a_user_go_above_the_hint(emulator_factory, singer):
    """The emulator answers x-ms-dop-hint 4 and a full budget: the limit rises to 52 at once
    (WhoAmI carries the headers) and nothing is throttled."""
    server = emulator_factory(latency="realistic", time_scale=0.01)
    limits = run(server, singer, 3000)
    assert limits[0] == 4  # WhoAmI's answer came while the hint still ruled
    assert max(limits) == 52
    assert server.admin.counters()["throttled"] == 0


def test_a_draining_budget_takes_the_user_below_the_hint(emulator_factory, singer):
    """A 60 s execution budget (nominal) for 90 s of work: the limit falls under the hint as
    the headers report it draining, and every row still lands."""
    server = emulator_factory(
        latency="realistic", time_scale=0.01, limits=Limits(execution_seconds=60)
    )
    limits = run(server, singer, 3000)
    assert max(limits) == 52
    assert min(limits[limits.index(52) :]) < 4
