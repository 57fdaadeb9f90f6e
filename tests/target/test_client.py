"""DataverseClient: headers, retries, Retry-After gate, 401 refresh, error parsing."""

from __future__ import annotations

import logging
import threading

import pytest

from target_dynamics.client import ConcurrencyLimit, DataverseClient, RetryGate, redact_headers
from target_dynamics.errors import ServiceUnreachable, WebApiError
from target_dynamics.transport import Unanswered
from target_dynamics.webapi import WebRequest
from tests.target.transport_double import TransportDouble, reply

ORG = "https://org.crm.dynamics.com"
ROOT = f"{ORG}/api/data/v9.2/"


class FakeTokens:
    def __init__(self) -> None:
        self.issued = 0
        self.invalidated = 0

    def token(self) -> str:
        return f"token-{self.issued}"

    def invalidate(self) -> None:
        self.invalidated += 1
        self.issued += 1


@pytest.fixture
def tokens():
    return FakeTokens()


@pytest.fixture
def transport():
    return TransportDouble()


@pytest.fixture
def client(tokens, fake_time, transport):
    return DataverseClient(
        dynamics_url=ORG,
        api_version="9.2",
        tokens=tokens,
        transport=transport,
        timeout=5,
        max_retries=3,
        default_headers={"MSCRM.BypassBusinessLogicExecution": "CustomSync"},
        sleep=fake_time.sleep,
        clock=fake_time.clock,
        jitter=lambda: 0.5,
        boundary=lambda: "b1",
    )


ERROR_412 = {
    "error": {"code": "0x80040237", "message": "A record with matching key values already exists."}
}


def test_headers_on_every_call(transport, client):
    """§2.2 standard headers, §8 default headers, bearer token, dop hint."""
    transport.on(
        "GET", ROOT + "WhoAmI", reply(json={"UserId": "u"}, headers={"x-ms-dop-hint": "6"})
    )
    assert client.get_json("WhoAmI") == {"UserId": "u"}
    sent = transport.last.headers
    assert sent["Authorization"] == "Bearer token-0"
    assert sent["Accept"] == "application/json"
    assert sent["OData-MaxVersion"] == sent["OData-Version"] == "4.0"
    assert sent["If-None-Match"] == "null"
    assert sent["MSCRM.BypassBusinessLogicExecution"] == "CustomSync"
    assert "Content-Type" not in sent
    assert client.dop_hint == 6


def test_timeout_is_passed(transport, client):
    transport.on("GET", ROOT + "WhoAmI", reply(json={}))
    client.get_json("WhoAmI")
    assert transport.last.timeout == 5


def test_retry_after_pauses_through_the_shared_gate(transport, client, fake_time):
    """§7.1, §7.7: a 429 waits Retry-After seconds, then the request is sent again."""
    transport.on(
        "POST",
        ROOT + "accounts",
        reply(
            429,
            json={"error": {"code": "0x80072322", "message": "Number of requests exceeded"}},
            headers={"Retry-After": "7"},
        ),
        reply(204),
    )
    response = client.send(WebRequest("POST", "accounts", b"{}"))
    assert response.status == 204
    assert fake_time.sleeps == [7.0]
    assert client.stats.throttled == 1
    assert client.stats.throttled_seconds == 7.0
    assert client.stats.retries == 1
    assert transport.last.headers["Content-Type"] == "application/json; charset=utf-8"


def test_gate_holds_other_senders(fake_time):
    """One pause for all workers: a second caller waits the remainder, not a fresh delay."""
    fake = fake_time
    gate = RetryGate(fake.clock, fake.sleep)
    gate.pause(10)
    fake.now += 4
    gate.wait()
    assert fake.sleeps == [6.0]
    gate.pause(1)
    gate.pause(0.5)
    gate.wait()
    assert fake.sleeps == [6.0, 1.0]


def test_retry_after_on_503_lengthens_the_backoff(transport, client, fake_time):
    transport.on(
        "GET", ROOT + "WhoAmI", reply(503, headers={"Retry-After": "9"}), reply(200, json={})
    )
    client.get_json("WhoAmI")
    assert fake_time.sleeps == [9.0]
    assert client.stats.throttled == 0


def test_throttling_is_obeyed_until_the_outage_budget_not_a_retry_count(
    transport, client, fake_time
):
    """Issue 8: a 429 with Retry-After is waited out as often as it comes; only the outage
    budget (300 s: no usable answer) ends it, and then every later request fails at once."""
    transport.on(
        "GET",
        ROOT + "WhoAmI",
        reply(
            429,
            json={"error": {"code": "0x80072322", "message": "Number of requests exceeded"}},
            headers={"Retry-After": "7"},
        ),
    )
    with pytest.raises(ServiceUnreachable) as caught:
        client.get_json("WhoAmI")
    assert len(transport.sent) == 43  # 42 waits of 7 s fit in 300 s; max_retries is 3
    assert fake_time.sleeps == [7.0] * 42
    message = str(caught.value)
    for words in ("org.crm.dynamics.com", "294 s", "outage_budget_seconds is 300", "429", "rerun"):
        assert words in message
    with pytest.raises(ServiceUnreachable):
        client.send(WebRequest("POST", "accounts", b"{}"))
    assert len(transport.sent) == 43


def test_retry_after_beyond_the_budget_ends_at_once(transport, client, fake_time):
    transport.on("GET", ROOT + "WhoAmI", reply(429, headers={"Retry-After": "400"}))
    with pytest.raises(ServiceUnreachable, match="Retry-After 400 s"):
        client.get_json("WhoAmI")
    assert (len(transport.sent), fake_time.sleeps) == (1, [])


def test_dead_endpoint_ends_within_the_budget(transport, client, fake_time):
    """Issue 8: refused connections are retried until the budget, not max_retries; the last
    backoff is shortened to end with the budget."""
    transport.on("POST", ROOT + "accounts", Unanswered("ConnectionError"))
    with pytest.raises(ServiceUnreachable, match="ConnectionError during POST"):
        client.send(WebRequest("POST", "accounts", b"{}"))
    assert fake_time.now - 1000.0 == pytest.approx(300.0)
    assert len(transport.sent) > 4  # more than max_retries + 1


def test_usable_answer_ends_an_outage(transport, client, fake_time):
    """A 400 is an answer: the service is there. 502s before and after it are two outages."""
    transport.on("GET", ROOT + "WhoAmI", reply(502))
    transport.on("POST", ROOT + "accounts", reply(400, json={"error": {"message": "bad"}}))
    client.outage.failed(fake_time.now)
    fake_time.now += 250
    with pytest.raises(WebApiError):
        client.send(WebRequest("POST", "accounts", b"{}"))
    fake_time.now += 250
    with pytest.raises(ServiceUnreachable):
        client.get_json("WhoAmI")
    assert fake_time.now - 1500.0 == pytest.approx(300.0)


def test_request_failing_alone_gives_up_after_the_budget(transport, client, fake_time):
    """Other requests keep getting answers (simulated between attempts): no outage, but this
    request stops after the budget with its own error instead of retrying for ever."""

    def busy(_request):
        client.outage.answered()  # another thread's request was answered meanwhile
        return reply(503)

    with transport.answering(busy), pytest.raises(WebApiError) as caught:
        client.get_json("WhoAmI")
    assert caught.value.status == 503
    assert not isinstance(caught.value, ServiceUnreachable)
    assert fake_time.now - 1000.0 == pytest.approx(300.0)
    client.outage.check()  # not tripped


def test_server_errors_still_end_after_max_retries(transport, client, fake_time):
    """A 500 is an answer about this request: max_retries (3) bounds it, not the budget."""
    transport.on("GET", ROOT + "WhoAmI", reply(500, json={"error": {"message": "boom"}}))
    with pytest.raises(WebApiError) as caught:
        client.get_json("WhoAmI")
    assert caught.value.status == 500
    assert len(transport.sent) == 4


def test_timed_out_write_is_resent_only_after_the_server_limit(transport, client, fake_time):
    """Issue 8 (stale late write): the service rolls back an operation after 2 minutes but a
    client timeout does not stop it, so a write timed out after 5 s waits 130 s more (135 s
    after it was sent) before going again; a read goes again after the usual backoff."""
    transport.on(
        "POST", ROOT + "accounts", Unanswered("ReadTimeout", read_timeout=True), reply(204)
    )
    assert client.send(WebRequest("POST", "accounts", b"{}")).status == 204
    assert fake_time.sleeps == [130.0]
    transport.on(
        "GET", ROOT + "WhoAmI", Unanswered("ReadTimeout", read_timeout=True), reply(json={})
    )
    client.get_json("WhoAmI")
    assert fake_time.sleeps == [130.0, 0.75]


def test_concurrency_429_halves_requests_in_flight(transport, client):
    """§7.7 rule 2: `0x80072326` lowers parallelism from where it was."""
    transport.on(
        "GET",
        ROOT + "WhoAmI",
        reply(
            429,
            json={"error": {"code": "0x80072326", "message": "concurrent requests"}},
            headers={"Retry-After": "1", "x-ms-dop-hint": "40"},
        ),
        reply(200, json={}),
    )
    client.get_json("WhoAmI")
    assert client.in_flight.limit == 20


def test_batch_part_throttled_pauses_its_client(transport, client, fake_time):
    """§7.8: a 429 inside a $batch answer holds this client's senders for its Retry-After."""
    boundary = "batchresponse_1"
    part = (
        f"--{boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary"
        "\r\n\r\nHTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Type: "
        'application/json\r\n\r\n{"error":{"code":"0x80072322","message":"throttled"}}\r\n'
        f"--{boundary}--\r\n"
    )
    transport.on(
        "POST",
        ROOT + "$batch",
        reply(200, text=part, headers={"Content-Type": f"multipart/mixed; boundary={boundary}"}),
    )
    answers = client.send_batch([WebRequest("DELETE", "contacts(1)")])
    assert [a.status for a in answers] == [429]
    assert client.paused
    assert client.stats.throttled == 1
    fake_time.now += 7.5
    assert not client.paused


@pytest.mark.parametrize(
    ("hint", "ceiling", "expected"),
    [(3, 52, 3), (8, 2, 2), (100, 52, 52), (None, 52, 4), (None, 1, 1)],
)
def test_concurrency_starts_at_the_hint_within_the_ceiling(hint, ceiling, expected):
    """§7.3: x-ms-dop-hint (4 until one is seen), capped by max_concurrency and 52."""
    limit = ConcurrencyLimit(ceiling=ceiling)
    limit.observe(hint, {})
    assert limit.limit == expected


def test_concurrency_follows_the_remaining_budget():
    """§7.4: the whole ceiling while half the budget remains; the hint at 15 %; less below."""
    limit = ConcurrencyLimit(ceiling=52)
    time_left = "x-ms-ratelimit-time-remaining-xrm-requests"
    limit.observe(4, {time_left: 1200.0})
    assert limit.limit == 52
    limit.observe(4, {time_left: 600.0})
    assert limit.limit == 52
    limit.observe(4, {time_left: 390.0})  # (0.325 - 0.15) / 0.35 = half-way to the ceiling
    assert limit.limit == 28
    limit.observe(4, {time_left: 180.0})
    assert limit.limit == 4
    limit.observe(4, {time_left: 45.0})
    assert limit.limit == 1
    requests_left = "x-ms-ratelimit-burst-remaining-xrm-requests"
    limit.observe(4, {time_left: 1200.0, requests_left: 6000})
    assert limit.limit == 52
    limit.observe(4, {time_left: 1200.0, requests_left: 600})
    assert limit.limit == 3  # the request budget is the scarcer: 10 % left, 4 x 0.10 / 0.15


def test_concurrency_limit_blocks_halves_once_and_recovers():
    limit = ConcurrencyLimit(ceiling=8)
    limit.observe(8, {})
    limit.decrease()
    limit.decrease()  # the same episode: requests in flight come back throttled too
    assert limit.limit == 4
    limit.increase()
    limit.decrease()
    limit.decrease()
    assert limit.limit == 2
    limit.decrease()
    limit.increase()
    limit.decrease()
    assert limit.limit == 1
    entered = threading.Event()
    with limit:
        worker = threading.Thread(
            target=lambda: (limit.__enter__(), entered.set(), limit.__exit__())
        )
        worker.start()
        assert not entered.wait(0.1)
    assert entered.wait(5)
    worker.join(5)
    limit.increase()
    assert limit.limit == 2
    for _ in range(2 + 4):
        limit.increase()
    assert limit.limit == 8


def test_backoff_on_5xx_and_connection_errors(transport, client, fake_time):
    """§7.7: jittered exponential backoff for 5xx and broken connections."""
    transport.on(
        "GET",
        ROOT + "WhoAmI",
        reply(503, text="busy", headers={"Retry-After": "0.5"}),
        Unanswered("ConnectionError"),
        Unanswered("ReadTimeout", read_timeout=True),
        Unanswered("ProtocolError"),
        reply(200, json={}),
    )
    client._max_retries = 4
    assert client.get_json("WhoAmI") == {}
    assert fake_time.sleeps == [0.75, 1.5, 3.0, 6.0]
    assert client.stats.retries == 4


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, {"error": {"code": "0x80044331", "message": "too long"}}),
        (412, ERROR_412),
        (500, {"error": {"code": "0x80040333", "message": "duplicate detected"}}),
        (404, {"error": {"code": "0x80040217", "message": "contact With Id = x Does Not Exist"}}),
    ],
)
def test_no_retry_for_errors_that_cannot_succeed(transport, client, fake_time, status, body):
    """§4.9, §7.7 rule 4: validation, 404/412, duplicate detection (even as 500) raise at once."""
    transport.on("POST", ROOT + "contacts", reply(status, json=body))
    with pytest.raises(WebApiError) as caught:
        client.send(WebRequest("POST", "contacts", b"{}"))
    assert (caught.value.status, caught.value.code) == (status, body["error"]["code"])
    assert caught.value.message == body["error"]["message"]
    assert len(transport.sent) == 1
    assert fake_time.sleeps == []


def test_401_refreshes_the_token_once(transport, client, tokens):
    """§1.6 consequence 4, §10 F2: on 401 obtain a fresh token once and retry."""
    transport.on("GET", ROOT + "WhoAmI", reply(401), reply(200, json={}))
    client.get_json("WhoAmI")
    assert tokens.invalidated == 1
    assert transport.sent[1].headers["Authorization"] == "Bearer token-1"
    transport.on("GET", ROOT + "WhoAmI", reply(401))
    with pytest.raises(WebApiError) as caught:
        client.get_json("WhoAmI")
    assert caught.value.status == 401
    assert tokens.invalidated == 2
    assert len(transport.sent) == 4


PART = "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
BATCH_ANSWER = (
    f"--batchresponse_1\r\n{PART}"
    "HTTP/1.1 204 No Content\r\nOData-Version: 4.0\r\n\r\n\r\n"
    f"--batchresponse_1\r\n{PART}"
    "HTTP/1.1 412 Precondition Failed\r\nContent-Type: application/json\r\n\r\n"
    '{"error":{"code":"0x80040237","message":"exists"}}\r\n'
    "--batchresponse_1--\r\n"
)


def test_send_batch_parts_carry_default_headers(transport, client):
    """§5.1 format, §5.4 continue-on-error, §8 headers on every part."""
    transport.on(
        "POST",
        ROOT + "$batch",
        reply(
            text=BATCH_ANSWER, headers={"Content-Type": "multipart/mixed; boundary=batchresponse_1"}
        ),
    )
    answers = client.send_batch(
        [WebRequest("DELETE", "accounts(1)"), WebRequest("POST", "accounts", b"{}")]
    )
    assert [a.status for a in answers] == [204, 412]
    sent = transport.last
    assert sent.headers["Prefer"] == "odata.continue-on-error"
    assert sent.headers["Content-Type"] == 'multipart/mixed; boundary="batch_b1"'
    assert sent.body.count(b"MSCRM.BypassBusinessLogicExecution: CustomSync") == 2
    assert b"DELETE /api/data/v9.2/accounts(1) HTTP/1.1" in sent.body


def test_send_batch_stopped_at_failure_returns_parts(transport, client):
    """§5.4: without continue-on-error the top-level status is the failure's, parts still come."""
    transport.on(
        "POST",
        ROOT + "$batch",
        reply(
            400,
            text=BATCH_ANSWER,
            headers={"Content-Type": "multipart/mixed; boundary=batchresponse_1"},
        ),
    )
    answers = client.send_batch([WebRequest("DELETE", "a(1)")] * 3, continue_on_error=False)
    assert [a.status for a in answers] == [204, 412]


def test_send_batch_whole_request_rejected(transport, client):
    """§5.4: a malformed batch is answered with plain JSON, raised as WebApiError."""
    transport.on(
        "POST",
        ROOT + "$batch",
        reply(400, json={"error": {"code": "0x80048d19", "message": "bad batch"}}),
    )
    with pytest.raises(WebApiError, match="bad batch"):
        client.send_batch([WebRequest("DELETE", "a(1)")])


def test_token_never_logged(transport, client, caplog):
    """§1.7: Authorization is redacted in debug logs."""
    caplog.set_level(logging.DEBUG, logger="target_dynamics")
    transport.on("GET", ROOT + "WhoAmI", reply(json={}))
    client.get_json("WhoAmI")
    assert "token-0" not in caplog.text
    assert "WhoAmI" in caplog.text
    assert redact_headers({"authorization": "Bearer x", "A": "b"}) == {
        "authorization": "***",
        "A": "b",
    }


def test_default_headers_refuse_injection(tokens):
    with pytest.raises(ValueError, match="CR, LF"):
        DataverseClient(
            dynamics_url=ORG,
            api_version="9.2",
            tokens=tokens,
            transport=TransportDouble(),
            default_headers={"CallerObjectId": "a\nb"},
        )


def test_a_429_for_a_request_sent_before_the_last_halving_does_not_halve_again():
    """Requests already in flight when the limit halved come back throttled too: one episode."""
    limit = ConcurrencyLimit(ceiling=8)
    limit.observe(8, {})
    limit.decrease(sent=1.0, now=2.0)
    limit.increase()  # a request in flight since before succeeded
    limit.decrease(sent=1.5, now=3.0)
    assert limit.limit == 4
    limit.decrease(sent=2.5, now=3.0)
    assert limit.limit == 2
