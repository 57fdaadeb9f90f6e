"""Writer logic on the emulator: what it sends, what lands, how each outcome is counted.

Rows are read back through the emulator's own session (``api``); the transport double answers
only the edges the emulator cannot produce (413, whole-request refusals, throttled ``$batch``
parts), and passes every other request through to the emulator.
"""

from __future__ import annotations

import json
import re
import uuid

import pytest

from target_dynamics.collation import DEFAULT
from target_dynamics.errors import ServiceUnreachable
from target_dynamics.identity import IdMode, key_guid
from target_dynamics.plans import Operation, Row, WritePlan
from target_dynamics.transport import Unanswered
from target_dynamics.writer import merge_rows, split_even
from tests.target.transport_double import reply

PID = "contactid"
TOO_LONG = "x" * 51  # lastname holds 50 characters (0x80044331)
BULK = re.compile(r"/contacts/Microsoft\.Dynamics\.CRM\.\w+Multiple$", re.IGNORECASE)
BATCH = re.compile(r"/\$batch$")


def gid(n: int) -> str:
    return str(uuid.UUID(int=n))


def plan(operation=Operation.UPSERT, keys=(PID,), *, bulk=True) -> WritePlan:
    mode = IdMode.PRIMARY if keys == (PID,) else IdMode.ALTERNATE
    return WritePlan("contacts", "contact", PID, operation, mode, supports_bulk=bulk)


def by_id(index, n, **payload):
    return Row(index, payload, {PID: gid(n)}, DEFAULT)


def by_email(index, email, **payload):
    return Row(index, payload, {"emailaddress1": email}, DEFAULT)


def contacts(api, emulator) -> dict[str, dict]:
    """The emulator's contacts by id, read through its own session."""
    url = f"{emulator.api_url}/contacts?$select=contactid,firstname,lastname,emailaddress1"
    response = api.get(url, timeout=30)
    response.raise_for_status()
    return {c[PID]: c for c in response.json()["value"]}


def batch_answer(*parts: tuple[int, str]) -> str:
    """A ``$batch`` response body (§5.3) with one part per ``(status, reason)``."""
    lines = []
    for status, reason in parts:
        body = ""
        if status >= 400:
            body = '{"error":{"code":"0x80072322","message":"throttled"}}'
        lines.append(
            "--batchresponse_1\r\nContent-Type: application/http\r\n"
            f"Content-Transfer-Encoding: binary\r\n\r\nHTTP/1.1 {status} {reason}\r\n"
            f"Retry-After: 2\r\nContent-Type: application/json\r\n\r\n{body}\r\n"
        )
    return "".join(lines) + "--batchresponse_1--\r\n"


def test_upsert_by_id_is_one_bulk_message(dataverse, api):
    """§6.3: UpsertMultiple, primary id in the body; counted as upserted."""
    rows = [by_id(i, i + 1, firstname=f"f{i}") for i in range(5)]
    result = dataverse.writer().write(plan(), rows)
    assert result.landed == [0, 1, 2, 3, 4]
    assert result.rejected == []
    assert result.upserted == 5
    assert dataverse.kinds() == ["UpsertMultiple"]
    assert contacts(api, dataverse.server)[gid(4)]["firstname"] == "f3"


def test_upsert_by_alternate_key_uses_odata_id_without_key_in_body(dataverse, api):
    """§6.3: key only in @odata.id (pitfall: key column also in the body)."""
    dataverse.writer().write(
        plan(keys=("emailaddress1",)),
        [by_email(0, "O'Neil@x.com", emailaddress1="O'Neil@x.com", firstname="a")],
    )
    [[target]] = dataverse.targets()
    assert target["@odata.id"] == "contacts(emailaddress1='O''Neil@x.com')"
    assert "emailaddress1" not in target
    found = [c for c in contacts(api, dataverse.server).values() if c["firstname"] == "a"]
    assert [c["emailaddress1"] for c in found] == ["O'Neil@x.com"]


def test_bad_record_is_isolated_through_batch(dataverse, api):
    """§6.5: a standard-table bulk failure rolls back all; isolation rejects only the bad row."""
    rows = [by_id(0, 1, lastname="ok"), by_id(1, 2, lastname=TOO_LONG), by_id(2, 3, lastname="ok")]
    w = dataverse.writer()
    result = w.write(plan(), rows)
    assert result.landed == [0, 2]
    [(index, error)] = result.rejected
    assert (index, error.status, error.code) == (1, 400, "0x80044331")
    assert "lastname" in error.message
    assert dataverse.kinds() == ["UpsertMultiple", "batch"]
    stored = contacts(api, dataverse.server)
    assert (gid(1) in stored, gid(2) in stored, gid(3) in stored) == (True, False, True)
    assert not w.bulk_disabled("contacts")


def test_table_without_bulk_falls_back_and_is_remembered(emulator_factory, dataverse_on, tmp_path):
    """§6.5 F13: fall back to $batch and remember the table."""
    entities = tmp_path / "entities.json"
    entities.write_text(json.dumps({"supports_bulk": {"contact": False}}), encoding="utf-8")
    server = emulator_factory(latency="zero", entities_file=entities)
    dataverse = dataverse_on(server)
    w = dataverse.writer()
    first = w.write(plan(), [by_id(0, 1), by_id(1, 2)])
    assert first.landed == [0, 1]
    assert first.upserted == 2
    assert w.bulk_disabled("contacts")
    w.write(plan(), [by_id(0, 3)])
    assert dataverse.kinds() == ["UpsertMultiple", "batch", "batch"]
    ids = {c[PID] for c in dataverse.client.get_json("contacts?$select=contactid")["value"]}
    assert {gid(1), gid(2), gid(3)} <= ids


def test_plan_without_bulk_goes_straight_to_batch(dataverse):
    dataverse.writer().write(plan(bulk=False), [by_id(0, 1)])
    assert dataverse.kinds() == ["batch"]


def test_duplicate_keys_merged_per_column_later_wins(dataverse):
    """§6.5: de-duplicate keys within a batch; later values win, per column."""
    rows = [
        by_email(0, "a@x.com", firstname="old", lastname="keep"),
        by_email(1, "b@x.com", firstname="b"),
        by_email(2, "A@X.com", firstname="new"),
    ]
    result = dataverse.writer().write(plan(keys=("emailaddress1",)), rows)
    assert result.landed == [0, 1, 2]
    [targets] = dataverse.targets()
    assert len(targets) == 2
    assert targets[0]["firstname"] == "new"
    assert targets[0]["lastname"] == "keep"
    assert targets[0]["@odata.id"] == "contacts(emailaddress1='A@X.com')"


def test_merge_rows_keeps_keyless_rows_apart():
    items = merge_rows([Row(0, {"a": 1}, None, DEFAULT), Row(1, {"a": 1}, None, DEFAULT)])
    assert [i.indexes for i in items] == [[0], [1]]


def test_create_bodies_carry_the_primary_id(dataverse, api):
    dataverse.writer().write(plan(Operation.CREATE), [by_id(0, 7, firstname="a")])
    [[target]] = dataverse.targets()
    assert target[PID] == gid(7)
    assert contacts(api, dataverse.server)[gid(7)]["firstname"] == "a"


def test_deletes_use_batch_chunks_and_404_is_done(dataverse, api):
    """§4.5, §5.1: deletes in $batch, at most 1,000 per batch; 404 means already deleted."""
    seeded = dataverse.writer().write(plan(), [by_id(n, n + 1) for n in range(1200)])
    assert len(seeded.landed) == 1200
    before = set(contacts(api, dataverse.server))
    dataverse.sent.clear()
    rows = [by_id(i, i + 1) for i in range(1300)]
    result = dataverse.writer(chunk_size=5000).write(plan(Operation.DELETE), rows)
    assert len(result.landed) == 1300
    assert result.deleted == 1200
    assert set(contacts(api, dataverse.server)) == before - {gid(n + 1) for n in range(1200)}
    sizes = dataverse.batch_sizes()
    assert max(sizes) <= 1000
    assert sum(sizes) == 1300


def test_update_by_alternate_key_uses_if_match_and_rejects_missing(dataverse, api):
    """§6.2: no alternate keys in UpdateMultiple; §4.4: If-Match: * never creates."""
    dataverse.writer().write(plan(), [by_id(0, 1, emailaddress1="a@x.com")])
    before = len(contacts(api, dataverse.server))
    dataverse.sent.clear()
    result = dataverse.writer().write(
        plan(Operation.UPDATE, ("emailaddress1",)),
        [by_email(0, "a@x.com", firstname="z"), by_email(1, "nobody@x.com")],
    )
    assert result.landed == [0]
    assert result.updated == 1
    assert [(i, e.status) for i, e in result.rejected] == [(1, 404)]
    assert dataverse.kinds() == ["batch"]
    after = contacts(api, dataverse.server)
    assert len(after) == before
    assert after[gid(1)]["firstname"] == "z"


def test_update_by_id_uses_update_multiple(dataverse, api):
    dataverse.writer().write(plan(), [by_id(0, 1)])
    dataverse.sent.clear()
    result = dataverse.writer().write(plan(Operation.UPDATE), [by_id(0, 1, firstname="z")])
    assert result.updated == 1
    assert dataverse.kinds() == ["UpdateMultiple"]
    assert contacts(api, dataverse.server)[gid(1)]["firstname"] == "z"


def test_unaddressable_key_is_resolved_by_filter_then_written_by_id(dataverse, api):
    """§3.6, §10 F14: a key value with `/` or `&` never goes into a URL."""
    email = "a/b&c@x.com"
    p = plan(keys=("emailaddress1",))
    first = dataverse.writer().write(p, [by_email(0, email, firstname="one")])
    assert first.landed == [0]
    expected = key_guid("contact", {"emailaddress1": email}, DEFAULT)
    found = [c for c in contacts(api, dataverse.server).values() if c["emailaddress1"] == email]
    assert [(c[PID], c["firstname"]) for c in found] == [(expected, "one")]
    second = dataverse.writer().write(p, [by_email(0, email.upper(), firstname="two")])
    assert second.landed == [0]
    found = [
        c
        for c in contacts(api, dataverse.server).values()
        if (c["emailaddress1"] or "").casefold() == email
    ]
    assert [(c[PID], c["firstname"]) for c in found] == [(expected, "two")]
    for request in dataverse.sent:
        url = request.url or ""
        assert "a/b" not in url
        assert "&c" not in url.partition("?")[2]
        if request.method == "POST" and url.endswith("Multiple"):
            assert "@odata.id" not in (request.body or b"").decode()


def test_unaddressable_delete_not_found_is_done(dataverse):
    result = dataverse.writer().write(
        plan(Operation.DELETE, ("emailaddress1",)), [by_email(0, "x/y")]
    )
    assert result.landed == [0]
    assert dataverse.kinds() == ["get"]


def test_transient_parts_are_sent_again(dataverse, api):
    """§7.7: a 429 part (which paused its user in the client) is resent alone."""
    answered = []

    def first_batch(request):
        if answered or not BATCH.search(request.path):
            return None
        answered.append(request)
        return reply(
            headers={"Content-Type": "multipart/mixed; boundary=batchresponse_1"},
            text=batch_answer((429, "Too Many Requests"), (204, "No Content")),
        )

    with dataverse.transport.answering(first_batch):
        result = dataverse.writer().write(plan(bulk=False), [by_id(0, 1), by_id(1, 2)])
    assert result.landed == [0, 1]
    assert dataverse.batch_sizes() == [2, 1]
    assert gid(1) in contacts(api, dataverse.server)


def test_transient_parts_rejected_when_rounds_run_out(dataverse):
    def every_batch(request):
        if not BATCH.search(request.path):
            return None
        return reply(
            headers={"Content-Type": "multipart/mixed; boundary=batchresponse_1"},
            text=batch_answer((503, "Service Unavailable")),
        )

    with dataverse.transport.answering(every_batch):
        result = dataverse.writer(part_retries=2).write(plan(bulk=False), [by_id(0, 1)])
    assert [(i, e.status) for i, e in result.rejected] == [(0, 503)]


def test_invalid_keys_rejected_without_a_request(dataverse):
    rows = [Row(0, {}, {PID: "not-a-guid"}, DEFAULT), Row(1, {}, None, DEFAULT), by_id(2, 2)]
    result = dataverse.writer().write(plan(Operation.DELETE), rows)
    assert [i for i, _ in result.rejected] == [0, 1]
    assert all(e.status == 400 and not e.is_transient for _, e in result.rejected)
    assert result.landed == [2]
    assert dataverse.batch_sizes() == [1]


def test_parallel_chunks_all_land(dataverse, api):
    rows = [by_id(i, i + 1) for i in range(230)]
    result = dataverse.writer(chunk_size=20).write(plan(), rows)
    assert result.landed == list(range(230))
    assert {gid(i + 1) for i in range(230)} <= set(contacts(api, dataverse.server))
    assert dataverse.kinds().count("UpsertMultiple") == 12


def test_too_large_bulk_is_halved_not_isolated(dataverse, api):
    """§10 F11: 413 / SQL timeout shrink the request instead of falling back row by row."""

    def over_two_targets(request):
        if BULK.search(request.path) and len(request.json()["Targets"]) > 2:
            return reply(413)
        return None

    with dataverse.transport.answering(over_two_targets) as refused:
        result = dataverse.writer().write(plan(), [by_id(i, i + 1) for i in range(5)])
    assert refused
    assert result.landed == [0, 1, 2, 3, 4]
    assert result.upserted == 5
    assert "batch" not in dataverse.kinds()
    assert {gid(i + 1) for i in range(5)} <= set(contacts(api, dataverse.server))


@pytest.mark.parametrize(
    ("count", "chunk_size", "workers", "sizes"),
    [
        (1000, 500, 4, [250, 250, 250, 250]),  # a batch spreads over every worker
        (1000, 500, 1, [500, 500]),  # one worker: chunk_size bounds each request
        (150, 500, 4, [150]),  # too small to be worth splitting
        (250, 500, 4, [125, 125]),  # split only while chunks keep 100 rows
        (2500, 1000, 2, [834, 834, 832]),  # chunk_size still caps the request
        (1, 500, 4, [1]),
    ],
)
def test_split_even(count, chunk_size, workers, sizes):
    chunks = split_even(list(range(count)), chunk_size, workers)
    assert [len(c) for c in chunks] == sizes
    assert [x for c in chunks for x in c] == list(range(count))


def refuse_bulk(dataverse, answer):
    """Answer every bulk message with ``answer`` (the client's retries included)."""
    return dataverse.transport.answering(
        lambda request: answer if BULK.search(request.path) else None
    )


def error_reply(status, code, message):
    return reply(status, json={"error": {"code": code, "message": message}})


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        (Unanswered("ConnectionError"), 0),
        (reply(408), 408),
        (reply(429, headers={"Retry-After": "1"}), 429),
        (reply(502), 502),
        (reply(503), 503),
        (reply(504), 504),
    ],
)
def test_unavailable_bulk_is_not_isolated(dataverse, api, answer, status):
    """Issue 8: no answer or a refusal of the whole request says nothing about the rows: no
    $batch isolation, bulk stays on; once the outage budget is spent the run stops, naming it."""
    w = dataverse.writer()
    with refuse_bulk(dataverse, answer) as refused, pytest.raises(ServiceUnreachable) as caught:
        w.write(plan(), [by_id(0, 1), by_id(1, 2)])
    assert f"last error: {status}: " in str(caught.value)
    assert len(refused) > 1
    assert "batch" not in dataverse.kinds()
    assert not w.bulk_disabled("contacts")
    assert gid(1) not in contacts(api, dataverse.server)


@pytest.mark.parametrize(
    ("answer", "disabled"),
    [
        (error_reply(400, "0x80040800", "The 'UpsertMultiple' method does not support "), True),
        (reply(401), False),
        (error_reply(500, "0x80040333", "A duplicate of the current record exists."), False),
        (error_reply(400, "0x80044331", "The value 'x' is not supported for column a."), False),
    ],
)
def test_only_not_supported_for_the_message_turns_bulk_off(dataverse, api, answer, disabled):
    """Issue 8: a 401 or duplicate detection is isolated through $batch but never switches bulk
    off; only a "not supported" answer naming the bulk message does."""
    w = dataverse.writer()
    with refuse_bulk(dataverse, answer) as refused:
        assert w.write(plan(), [by_id(0, 1), by_id(1, 2)]).landed == [0, 1]
    assert refused
    kinds = dataverse.kinds()
    assert set(kinds[:-1]) == {"UpsertMultiple"}
    assert kinds[-1] == "batch"
    assert w.bulk_disabled("contacts") is disabled
    assert {gid(1), gid(2)} <= set(contacts(api, dataverse.server))
