"""Issue 12: several application users in one run (``app_users``), over HTTPS on the emulator.

A user that is throttled keeps working after its ``Retry-After``; a user whose token cannot be
had (revoked for good, secret expired) or whose app is blocked (403 ``0x80095ffc``) is dropped
with one warning while the others land everything exactly once; one user alone is never
dropped; a user's concurrency halves on 429s and comes back. What landed is read from the
emulator's snapshot, who sent what from its fault rules' counters.
"""

from __future__ import annotations

import json
import logging
import typing as t

from dataverse_emulator.state.budget import Limits
from target_dynamics.target import TargetDynamics
from tests.target.transport_double import TransportDouble

if t.TYPE_CHECKING:
    from target_dynamics.client import DataverseClient
    from target_dynamics.webapi import WebResponse

NEVER = 1_000_000
"""``after`` of a rule that only counts the requests it matches (it never fires)."""


def expected(count: int) -> dict[str, str]:
    return {f"p{i}@x.org": f"L{i}" for i in range(count)}


def landed(server) -> dict[str, str]:
    """Every contact row by email; fails on a duplicate row."""
    rows = server.admin.snapshot().get("contact", [])
    emails = [row["emailaddress1"] for row in rows]
    assert len(emails) == len(set(emails)), "a record landed twice"
    return {row["emailaddress1"]: row["lastname"] for row in rows}


def config(server, users: list[dict], **settings: object) -> dict:
    return {
        **server.target_config,
        "entity": "contact",
        "app_users": users,
        "progress_interval_seconds": 0,
        **settings,
    }


def secrets(server) -> list[str]:
    """Every credential the runs hold: client secrets and a line of the certificate key."""
    found = [server.target_config["client_secret"]]
    for entry in server.app_users:
        if "client_secret" in entry:
            found.append(entry["client_secret"])
        else:
            found.append(entry["certificate_private_key"].splitlines()[1])
    return found


def drop_warnings(text: str, client_id: str) -> list[str]:
    return [line for line in text.splitlines() if "dropped" in line and client_id in line]


def rule(server, name: str) -> dict:
    [found] = [r for r in server.admin.faults()["rules"] if r["name"] == name]
    return found


def by_user(summary: str) -> dict[str, int]:
    """``Requests by application user: <id> <n> (<p>%), ...`` as ``{id: n}``."""
    [line] = [x for x in summary.splitlines() if "Requests by application user: " in x]
    shares = line.split("Requests by application user: ", 1)[1].split(", ")
    return {share.split()[0]: int(share.split()[1]) for share in shares}


def users_of(target: TargetDynamics) -> dict[str, DataverseClient]:
    """The target's clients by client id (built, and each user's WhoAmI sent, before the run)."""
    users = target.users
    users.capacity()
    return {user.name: user.client for user in users._users}


def counting(*client_ids: str) -> list[dict]:
    """Rules that only count each user's Web API requests (named by client id)."""
    return [
        {"name": client_id, "action": "error", "client_id": client_id, "after": NEVER}
        for client_id in client_ids
    ]


def test_one_throttled_and_one_revoked_user_still_land_everything_once(
    emulator_factory, tmp_path, singer
):
    """Three users upsert 2,000 contacts by email through the CLI. The certificate user gets 429s
    with Retry-After (and keeps working); the second user's tokens are revoked for good after
    its fifth request, so even a fresh token gets 401: it is dropped with one warning and sends
    nothing more. Every row lands once with its value, the last STATE is emitted, the summary
    gives each user's share and no credential is printed."""
    server = emulator_factory(latency="zero")
    primary = server.target_config["client_id"]
    revoked, throttled = (entry["client_id"] for entry in server.app_users)
    server.admin.set_faults(
        [
            *counting(revoked, throttled),
            {"name": "revoke", "action": "revoke_tokens", "client_id": revoked, "after": 5},
            {
                "name": "429",
                "action": "throttle",
                "client_id": throttled,
                "operation": "bulk",
                "after": 2,
                "times": 2,
                "retry_after": 1,
            },
        ]
    )
    count = 2000
    settings = config(server, server.app_users, batch_size_rows=500, max_concurrency=2)
    run = singer.cli(settings, singer.people(count, every=500, last=True, schema=True), tmp_path)

    assert run.returncode == 0, run.stderr[-3000:]
    assert landed(server) == expected(count)
    states = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
    assert states[-1] == {"pos": count}
    assert len(drop_warnings(run.stderr, revoked)) == 1, run.stderr[-3000:]
    assert not drop_warnings(run.stderr, throttled)
    assert not drop_warnings(run.stderr, primary)
    for secret in secrets(server):
        assert secret not in run.stdout + run.stderr

    assert rule(server, "429")["fired"] == 2  # the throttled user really was throttled
    assert rule(server, "revoke")["fired"] >= 2  # 401, and 401 again with a fresh token
    shares = by_user(run.stderr)
    assert set(shares) == {primary, revoked, throttled}
    # Every request the dropped user sent, counted by the emulator: the five before the
    # revocation and at most two per request it had in flight (max_concurrency 2), no more.
    assert shares[revoked] == rule(server, revoked)["matched"] <= 5 + 2 * 2
    assert shares[throttled] == rule(server, throttled)["matched"] > 2
    assert shares[primary] > 0


def test_a_user_whose_secret_expires_mid_run_is_dropped(reset_emulator, caplog, singer):
    """In process: all three users have tokens; then the second user's secret expires and its
    token is revoked after two more requests. Its fresh token is refused (AADSTS7000222), it is
    dropped with one warning and sends nothing more; the two others land every row once."""
    server = reset_emulator
    primary = server.target_config["client_id"]
    expiring, other = (entry["client_id"] for entry in server.app_users)
    target = TargetDynamics(
        config=config(server, server.app_users, batch_size_rows=500, max_concurrency=2)
    )
    clients = users_of(target)
    server.admin.expire_secret(expiring)
    server.admin.set_faults(
        [
            *counting(expiring),
            {"action": "revoke_tokens", "client_id": expiring, "after": 2, "times": 1},
        ]
    )
    count = 2000
    with caplog.at_level(logging.WARNING):
        states = singer.listen(target, singer.people(count, every=500, last=True, schema=True))
    assert states[-1] == {"pos": count}
    assert landed(server) == expected(count)
    warnings = drop_warnings(caplog.text, expiring)
    assert len(warnings) == 1
    assert "AADSTS7000222" in warnings[0]
    assert not drop_warnings(caplog.text, primary) + drop_warnings(caplog.text, other)
    # Two requests before the revocation, then one 401 per request it had in flight.
    sent = rule(server, expiring)["matched"]
    assert 3 <= sent <= 2 + 2
    assert clients[expiring].stats.requests == 1 + sent  # its WhoAmI, then these
    assert clients[other].stats.requests > sent
    for secret in secrets(server):
        assert secret not in caplog.text


def test_a_user_whose_secret_expired_before_the_run_is_dropped(reset_emulator, tmp_path, singer):
    """Two users, the second's secret expired from the start: the run lands everything through
    the first, one warning names the dropped user (which sent no Web API request). A dry run
    (which tests the connection of the first user) writes nothing and still succeeds."""
    server = reset_emulator
    primary = server.target_config["client_id"]
    expired = server.app_users[0]
    server.admin.expire_secret(expired["client_id"])
    server.admin.set_faults(counting(expired["client_id"]))
    settings = config(server, [expired], batch_size_rows=200)

    dry = singer.cli(
        {**settings, "dry_run": True},
        singer.people(300, every=100, last=True, schema=True),
        tmp_path,
    )
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert "Connection test passed" in dry.stderr  # a dry run tests the first user's access
    assert landed(server) == {}
    assert len(drop_warnings(dry.stderr, expired["client_id"])) <= 1

    run = singer.cli(settings, singer.people(600, every=200, last=True, schema=True), tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert landed(server) == expected(600)
    assert [json.loads(line) for line in run.stdout.splitlines()][-1] == {"pos": 600}
    [warning] = drop_warnings(run.stderr, expired["client_id"])
    assert "AADSTS7000222" in warning
    assert not drop_warnings(run.stderr, primary)
    assert rule(server, expired["client_id"])["matched"] == 0
    shares = by_user(run.stderr)
    assert set(shares) == {primary, expired["client_id"]}
    assert shares[expired["client_id"]] == 0
    for done in (dry, run):
        for secret in secrets(server)[:2]:
            assert secret not in done.stdout + done.stderr


def test_the_first_user_with_an_expired_secret_is_dropped_too(reset_emulator, singer):
    """Issue 12 (a user whose token fails is dropped while the others go on), for the user the
    settings name first: metadata, lists and the connection test go through any working user."""
    server = reset_emulator
    server.admin.expire_secret(server.target_config["client_id"])
    target = TargetDynamics(config=config(server, server.app_users[:1]))
    states = singer.listen(target, singer.people(200, every=100, last=True, schema=True))
    assert states[-1] == {"pos": 200}
    assert landed(server) == expected(200)


def test_a_dry_run_with_the_first_users_secret_expired_tests_through_the_others(
    reset_emulator, caplog, singer
):
    """The connection test asks every user WhoAmI: the expired first user is dropped with one
    warning, the table and privileges are checked through the other, nothing is written."""
    server = reset_emulator
    first = server.target_config["client_id"]
    server.admin.expire_secret(first)
    target = TargetDynamics(config=config(server, server.app_users[:1], dry_run=True))
    with caplog.at_level(logging.WARNING):
        singer.listen(target, singer.people(50, every=50, last=True, schema=True))
    [warning] = drop_warnings(caplog.text, first)
    assert "AADSTS7000222" in warning
    assert landed(server) == {}
    assert target.report.totals.received == 50


def test_a_user_blocked_by_app_access_control_is_dropped(reset_emulator, caplog, singer):
    """In process: three users have tokens; then the environment blocks the second user's app
    (403 0x80095ffc, §1.5). Its first write is refused and moved to another user, it is dropped
    with one warning and sends nothing more; the others land every row once."""
    server = reset_emulator
    blocked, other = (entry["client_id"] for entry in server.app_users)
    target = TargetDynamics(
        config=config(server, server.app_users, batch_size_rows=500, max_concurrency=2)
    )
    clients = users_of(target)
    server.admin.restrict_api_access(blocked)
    server.admin.set_faults(counting(blocked, other))
    count = 2000
    with caplog.at_level(logging.WARNING):
        states = singer.listen(target, singer.people(count, every=500, last=True, schema=True))
    assert states[-1] == {"pos": count}
    assert landed(server) == expected(count)
    [warning] = drop_warnings(caplog.text, blocked)
    assert "0x80095ffc" in warning
    refused = rule(server, blocked)["matched"]
    assert 1 <= refused <= 2  # the requests it had in flight when blocked, nothing after
    assert clients[blocked].stats.requests == 1 + refused
    assert rule(server, other)["matched"] > 2


def test_concurrency_halves_on_429s_and_comes_back(emulator_factory, singer):
    """Realistic latency (scaled down), two users, 8 requests in flight each at most: a burst of
    429s with Retry-After hits the second user mid-run. Every row lands; that user's limit,
    read at every answer it gets, was at its ceiling before the burst, at most half of it
    after, and back at the ceiling before the end (a generous execution budget keeps the
    remaining-budget headroom from lowering the limit on its own)."""
    server = emulator_factory(
        latency="realistic", time_scale=0.01, limits=Limits(execution_seconds=3600)
    )
    throttled = server.app_users[0]["client_id"]
    target = TargetDynamics(
        config=config(server, server.app_users[:1], batch_size_rows=1600, max_concurrency=8)
    )
    client = users_of(target)[throttled]
    seen: list[tuple[int, int]] = []  # per answer: its status, the limit when it came

    def note(response: WebResponse) -> None:
        seen.append((response.status, client.in_flight.limit))

    client._transport = TransportDouble(client._transport, watch=note)
    server.admin.set_faults(
        [
            {
                "name": "burst",
                "action": "throttle",
                "client_id": throttled,
                "operation": "bulk",
                "after": 8,
                "times": 4,
                "retry_after": 1,
                "code": "0x80072326",
                "message": "Number of concurrent requests exceeded the limit of 52.",
            }
        ]
    )
    count = 6400
    states = singer.listen(target, singer.people(count, every=1600, last=True, schema=True))
    assert states[-1] == {"pos": count}
    assert landed(server) == expected(count)
    assert rule(server, "burst")["fired"] == 4
    assert client.stats.throttled >= 1
    first = next(i for i, (status, _) in enumerate(seen) if status == 429)
    before = [limit for _, limit in seen[:first]]
    after = [limit for _, limit in seen[first + 1 :]]
    assert max(before) == 8  # at the ceiling before the burst
    assert min(after) <= 4  # halved
    assert after[-1] == 8  # and back
    assert client.in_flight.limit == 8


def test_one_user_revoked_twice_in_a_row_is_never_dropped(reset_emulator, caplog, singer):
    """One user (no app_users): its token is revoked, and the fresh one too. It is the only
    user, so it is not dropped: the write is retried and every row lands."""
    server = reset_emulator
    server.admin.set_faults(
        [{"name": "revoke", "action": "revoke_tokens", "operation": "bulk", "times": 2}]
    )
    target = TargetDynamics(config=config(server, [], batch_size_rows=100))
    with caplog.at_level(logging.WARNING):
        states = singer.listen(target, singer.people(300, every=100, last=True, schema=True))
    assert states[-1] == {"pos": 300}
    assert landed(server) == expected(300)
    assert rule(server, "revoke")["fired"] == 2
    assert target.client.stats.token_refreshes >= 2
    assert "dropped" not in caplog.text
