"""Writer logic against an in-memory fake client (send / send_batch / get_json)."""

from __future__ import annotations

import re
import threading
import urllib.parse
import uuid

import orjson
import pytest

from target_dynamics.collation import DEFAULT
from target_dynamics.errors import WebApiError
from target_dynamics.identity import IdMode, key_guid
from target_dynamics.plans import Operation, Row, WritePlan
from target_dynamics.webapi import WebRequest, WebResponse
from target_dynamics.writer import Writer, merge_rows, split_even

PID = "contactid"
TOO_LONG = WebApiError(400, "0x80044331", "A validation error occurred.  The length is too long.")


def gid(n: int) -> str:
    return str(uuid.UUID(int=n))


class FakeDataverse:
    """Just enough Dataverse: contacts by id or by emailaddress1, bulk messages, $batch."""

    def __init__(self, *, bulk: bool = True, dop_hint: int | None = 3) -> None:
        self.bulk = bulk
        self.dop_hint = dop_hint
        self.records: dict[str, dict] = {}
        self.calls: list[tuple[str, WebRequest | list[WebRequest]]] = []
        self.part_faults: list[int] = []  # statuses to answer instead of the next parts
        self._lock = threading.Lock()

    # -- client API --
    def send(self, request: WebRequest) -> WebResponse:
        with self._lock:
            self.calls.append(("send", request))
            message = request.path.rsplit(".", 1)[-1]
            if not self.bulk:
                raise WebApiError(400, "0x80040216", f"{message} is not supported for contact")
            targets = orjson.loads(request.body)["Targets"]
            assert all(t["@odata.type"] == "Microsoft.Dynamics.CRM.contact" for t in targets)
            snapshot = {k: dict(v) for k, v in self.records.items()}
            try:
                for target in targets:
                    body = {k: v for k, v in target.items() if not k.startswith("@")}
                    if "@odata.id" in target:
                        self._upsert(self._parse_key(target["@odata.id"]), body)
                    elif message == "CreateMultiple":
                        self._create(body)
                    elif message == "UpdateMultiple":
                        self._update({PID: body[PID]}, body)
                    else:
                        self._upsert({PID: body[PID]}, body)
            except WebApiError:
                self.records = snapshot  # standard tables: all or nothing (§6.5)
                raise
            return WebResponse(204, {})

    def send_batch(self, requests, *, continue_on_error=True):
        assert continue_on_error
        assert len(requests) <= 1000
        with self._lock:
            self.calls.append(("batch", list(requests)))
            answers = []
            for request in requests:
                if self.part_faults:
                    status = self.part_faults.pop(0)
                    body = orjson.dumps({"error": {"code": "0x80072322", "message": "throttled"}})
                    answers.append(WebResponse(status, {"Retry-After": "2"}, body))
                    continue
                try:
                    self._single(request)
                    answers.append(WebResponse(204, {}))
                except WebApiError as error:
                    body = orjson.dumps(
                        {"error": {"code": error.code or "", "message": error.message}}
                    )
                    answers.append(WebResponse(error.status, {}, body))
            return answers

    def get_json(self, path: str) -> dict:
        self.calls.append(("get", WebRequest("GET", path)))
        if path == "WhoAmI":
            if self.dop_hint is None:
                self.dop_hint = 5
            return {}
        query = urllib.parse.unquote(path)
        wanted = {
            v.replace("''", "'").casefold() for v in re.findall(r"eq '((?:[^']|'')*)'", query)
        }
        return {
            "value": [
                {PID: rid, "emailaddress1": r.get("emailaddress1")}
                for rid, r in self.records.items()
                if (r.get("emailaddress1") or "").casefold() in wanted
            ]
        }

    def get_all(self, path: str):
        yield from self.get_json(path)["value"]

    def capacity(self) -> int:
        return self.dop_hint or 5

    # -- semantics --
    def _check(self, body):
        if len(body.get("lastname", "")) > 10:
            raise TOO_LONG

    def _parse_key(self, path: str) -> dict:
        inner = urllib.parse.unquote(re.search(r"\((.*)\)$", path).group(1))
        if "=" not in inner:
            return {PID: inner}
        column, value = inner.split("=", 1)
        return {column: value[1:-1].replace("''", "'")}

    def _find(self, key: dict) -> str | None:
        if PID in key:
            return key[PID] if key[PID] in self.records else None
        wanted = key["emailaddress1"].casefold()
        return next(
            (
                rid
                for rid, r in self.records.items()
                if (r.get("emailaddress1") or "").casefold() == wanted
            ),
            None,
        )

    def _create(self, body):
        self._check(body)
        rid = body.get(PID) or gid(len(self.records) + 10_000)
        if rid in self.records:
            raise WebApiError(
                412, "0x80040237", "A record with matching key values already exists."
            )
        self.records[rid] = {**body, PID: rid}

    def _upsert(self, key, body):
        self._check(body)
        rid = self._find(key)
        if rid is None:
            self._create({**body, **key} if PID in key else {**body, **key, PID: None})
        else:
            self.records[rid].update(body)

    def _update(self, key, body):
        self._check(body)
        rid = self._find(key)
        if rid is None:
            raise WebApiError(404, "0x80040217", f"contact With Id = {key} Does Not Exist")
        self.records[rid].update(body)

    def _single(self, request: WebRequest):
        body = orjson.loads(request.body) if request.body else {}
        if request.method == "POST":
            self._create(body)
            return
        key = self._parse_key(request.path)
        if request.method == "DELETE":
            rid = self._find(key)
            if rid is None:
                raise WebApiError(404, "0x80040217", "contact Does Not Exist")
            del self.records[rid]
        elif request.headers.get("If-Match") == "*":
            self._update(key, body)
        else:
            self._upsert(key, body)

    def kinds(self) -> list[str]:
        out = []
        for kind, request in self.calls:
            if kind == "send":
                out.append(request.path.rsplit(".", 1)[-1])
            else:
                out.append(kind)
        return out


def plan(operation=Operation.UPSERT, keys=(PID,), *, bulk=True) -> WritePlan:
    mode = IdMode.PRIMARY if keys == (PID,) else IdMode.ALTERNATE
    return WritePlan("contacts", "contact", PID, operation, mode, supports_bulk=bulk)


def by_id(index, n, **payload):
    return Row(index, payload, {PID: gid(n)}, DEFAULT)


def by_email(index, email, **payload):
    return Row(index, payload, {"emailaddress1": email}, DEFAULT)


@pytest.fixture
def dv():
    return FakeDataverse()


def writer(client, **kwargs):
    return Writer(client, collation=DEFAULT, sleep=lambda _: None, **kwargs)


def test_upsert_by_id_is_one_bulk_message(dv):
    """§6.3: UpsertMultiple, primary id in the body; counted as upserted."""
    result = writer(dv).write(plan(), [by_id(i, i, firstname=f"f{i}") for i in range(5)])
    assert result.landed == [0, 1, 2, 3, 4]
    assert result.rejected == []
    assert result.upserted == 5
    assert dv.kinds() == ["UpsertMultiple"]
    assert dv.records[gid(3)]["firstname"] == "f3"


def test_upsert_by_alternate_key_uses_odata_id_without_key_in_body(dv):
    """§6.3: key only in @odata.id (pitfall: key column also in the body)."""
    writer(dv).write(
        plan(keys=("emailaddress1",)),
        [by_email(0, "O'Neil@x.com", emailaddress1="O'Neil@x.com", firstname="a")],
    )
    ((_, request),) = [c for c in dv.calls if c[0] == "send"]
    (target,) = orjson.loads(request.body)["Targets"]
    assert target["@odata.id"] == "contacts(emailaddress1='O''Neil@x.com')"
    assert "emailaddress1" not in target
    assert [r["emailaddress1"] for r in dv.records.values()] == ["O'Neil@x.com"]


def test_bad_record_is_isolated_through_batch(dv):
    """§6.5: a standard-table bulk failure rolls back all; isolation rejects only the bad row."""
    rows = [by_id(0, 1, lastname="ok"), by_id(1, 2, lastname="x" * 11), by_id(2, 3, lastname="ok")]
    w = writer(dv)
    result = w.write(plan(), rows)
    assert result.landed == [0, 2]
    [(index, error)] = result.rejected
    assert (index, error.status, error.code) == (1, 400, "0x80044331")
    assert error.message == TOO_LONG.message
    assert dv.kinds() == ["UpsertMultiple", "batch"]
    assert sorted(dv.records) == [gid(1), gid(3)]
    assert not w.bulk_disabled("contacts")


def test_table_without_bulk_falls_back_and_is_remembered():
    """§6.5 F13: fall back to $batch and remember the table."""
    dv = FakeDataverse(bulk=False)
    w = writer(dv)
    first = w.write(plan(), [by_id(0, 1), by_id(1, 2)])
    assert first.landed == [0, 1]
    assert first.upserted == 2
    assert w.bulk_disabled("contacts")
    w.write(plan(), [by_id(0, 3)])
    assert dv.kinds() == ["UpsertMultiple", "batch", "batch"]


def test_plan_without_bulk_goes_straight_to_batch(dv):
    writer(dv).write(plan(bulk=False), [by_id(0, 1)])
    assert dv.kinds() == ["batch"]


def test_duplicate_keys_merged_per_column_later_wins(dv):
    """§6.5: de-duplicate keys within a batch; later values win, per column."""
    rows = [
        by_email(0, "a@x.com", firstname="old", lastname="keep"),
        by_email(1, "b@x.com", firstname="b"),
        by_email(2, "A@X.com", firstname="new"),
    ]
    result = writer(dv).write(plan(keys=("emailaddress1",)), rows)
    assert result.landed == [0, 1, 2]
    ((_, request),) = [c for c in dv.calls if c[0] == "send"]
    targets = orjson.loads(request.body)["Targets"]
    assert len(targets) == 2
    assert targets[0]["firstname"] == "new"
    assert targets[0]["lastname"] == "keep"
    assert targets[0]["@odata.id"] == "contacts(emailaddress1='A@X.com')"


def test_merge_rows_keeps_keyless_rows_apart():
    items = merge_rows([Row(0, {"a": 1}, None, DEFAULT), Row(1, {"a": 1}, None, DEFAULT)])
    assert [i.indexes for i in items] == [[0], [1]]


def test_create_bodies_carry_the_primary_id(dv):
    writer(dv).write(plan(Operation.CREATE), [by_id(0, 7, firstname="a")])
    ((_, request),) = [c for c in dv.calls if c[0] == "send"]
    assert orjson.loads(request.body)["Targets"][0][PID] == gid(7)


def test_deletes_use_batch_chunks_and_404_is_done(dv):
    """§4.5, §5.1: deletes in $batch, at most 1,000 per batch; 404 means already deleted."""
    for n in range(1, 1201):
        dv.records[gid(n)] = {PID: gid(n)}
    rows = [by_id(i, i + 1) for i in range(1300)]
    result = writer(dv, chunk_size=5000).write(plan(Operation.DELETE), rows)
    assert len(result.landed) == 1300
    assert result.deleted == 1200
    assert dv.records == {}
    sizes = [len(r) for kind, r in dv.calls if kind == "batch"]
    assert max(sizes) <= 1000
    assert sum(sizes) == 1300


def test_update_by_alternate_key_uses_if_match_and_rejects_missing(dv):
    """§6.2: no alternate keys in UpdateMultiple; §4.4: If-Match: * never creates."""
    dv.records[gid(1)] = {PID: gid(1), "emailaddress1": "a@x.com"}
    result = writer(dv).write(
        plan(Operation.UPDATE, ("emailaddress1",)),
        [by_email(0, "a@x.com", firstname="z"), by_email(1, "nobody@x.com")],
    )
    assert result.landed == [0]
    assert result.updated == 1
    assert [(i, e.status) for i, e in result.rejected] == [(1, 404)]
    assert dv.kinds() == ["batch"]
    assert len(dv.records) == 1


def test_update_by_id_uses_update_multiple(dv):
    dv.records[gid(1)] = {PID: gid(1)}
    result = writer(dv).write(plan(Operation.UPDATE), [by_id(0, 1, firstname="z")])
    assert result.updated == 1
    assert dv.kinds() == ["UpdateMultiple"]


def test_unaddressable_key_is_resolved_by_filter_then_written_by_id(dv):
    """§3.6, §10 F14: a key value with `/` or `&` never goes into a URL."""
    email = "a/b&c@x.com"
    p = plan(keys=("emailaddress1",))
    first = writer(dv).write(p, [by_email(0, email, firstname="one")])
    assert first.landed == [0]
    expected = key_guid("contact", {"emailaddress1": email}, DEFAULT)
    assert dv.records == {expected: {PID: expected, "firstname": "one", "emailaddress1": email}}
    second = writer(dv).write(p, [by_email(0, email.upper(), firstname="two")])
    assert second.landed == [0]
    assert list(dv.records) == [expected]
    assert dv.records[expected]["firstname"] == "two"
    urls = [r.path for kind, r in dv.calls if kind == "get"]
    assert all("a/b" not in u and "&c" not in u.split("$filter=")[1] for u in urls)
    for kind, request in dv.calls:
        if kind == "send":
            assert "@odata.id" not in request.body.decode()


def test_unaddressable_delete_not_found_is_done(dv):
    result = writer(dv).write(plan(Operation.DELETE, ("emailaddress1",)), [by_email(0, "x/y")])
    assert result.landed == [0]
    assert dv.kinds() == ["get"]


def test_transient_parts_are_sent_again(dv):
    """§7.7: a 429 part (which paused its user in the client) is resent."""
    dv.part_faults = [429]
    result = writer(dv).write(plan(bulk=False), [by_id(0, 1), by_id(1, 2)])
    assert result.landed == [0, 1]
    assert [len(r) for kind, r in dv.calls if kind == "batch"] == [2, 1]


def test_transient_parts_rejected_when_rounds_run_out(dv):
    dv.part_faults = [503] * 10
    result = writer(dv, part_retries=2).write(plan(bulk=False), [by_id(0, 1)])
    assert [(i, e.status) for i, e in result.rejected] == [(0, 503)]


def test_invalid_keys_rejected_without_a_request(dv):
    rows = [Row(0, {}, {PID: "not-a-guid"}, DEFAULT), Row(1, {}, None, DEFAULT), by_id(2, 2)]
    result = writer(dv).write(plan(Operation.DELETE), rows)
    assert [i for i, _ in result.rejected] == [0, 1]
    assert all(e.status == 400 and not e.is_transient for _, e in result.rejected)
    assert result.landed == [2]


def test_parallel_chunks_all_land(dv):
    rows = [by_id(i, i + 1) for i in range(230)]
    result = writer(dv, chunk_size=20).write(plan(), rows)
    assert result.landed == list(range(230))
    assert len(dv.records) == 230
    assert dv.kinds().count("UpsertMultiple") == 12


class TooBigFake(FakeDataverse):
    """Answers 413 to bulk messages with more than two targets (§7.5)."""

    def send(self, request):
        if len(orjson.loads(request.body)["Targets"]) > 2:
            with self._lock:
                self.calls.append(("send", request))
            raise WebApiError(413, None, "Request Entity Too Large")
        return super().send(request)


def test_too_large_bulk_is_halved_not_isolated():
    """§10 F11: 413 / SQL timeout shrink the request instead of falling back row by row."""
    dv = TooBigFake()
    result = writer(dv).write(plan(), [by_id(i, i + 1) for i in range(5)])
    assert result.landed == [0, 1, 2, 3, 4]
    assert result.upserted == 5
    assert "batch" not in dv.kinds()
    assert len(dv.records) == 5


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


class RefusingFake(FakeDataverse):
    """Every bulk message fails with one given error (after the client's retries)."""

    def __init__(self, error: WebApiError) -> None:
        super().__init__()
        self.error = error

    def send(self, request):
        with self._lock:
            self.calls.append(("send", request))
        raise self.error


@pytest.mark.parametrize("status", [0, 408, 429, 502, 503, 504])
def test_unavailable_bulk_is_not_isolated(status):
    """Issue 8: no answer or a refusal of the whole request says nothing about the rows: they
    fail with that (transient) error, no $batch isolation, bulk stays on."""
    error = WebApiError(status, None, "ConnectionError during POST" if not status else "busy")
    dv = RefusingFake(error)
    w = writer(dv)
    result = w.write(plan(), [by_id(0, 1), by_id(1, 2)])
    assert result.rejected == [(0, error), (1, error)]
    assert dv.kinds() == ["UpsertMultiple"]
    assert not w.bulk_disabled("contacts")


@pytest.mark.parametrize(
    ("error", "disabled"),
    [
        (WebApiError(400, "0x80040800", "The 'UpsertMultiple' method does not support "), True),
        (WebApiError(401, None, "Unauthorized"), False),
        (WebApiError(500, "0x80040333", "A duplicate of the current record exists."), False),
        (WebApiError(400, "0x80044331", "The value 'x' is not supported for column a."), False),
    ],
)
def test_only_not_supported_for_the_message_turns_bulk_off(error, disabled):
    """Issue 8: a 401 or duplicate detection is isolated through $batch but never switches bulk
    off; only a "not supported" answer naming the bulk message does."""
    dv = RefusingFake(error)
    w = writer(dv)
    assert w.write(plan(), [by_id(0, 1), by_id(1, 2)]).landed == [0, 1]
    assert dv.kinds() == ["UpsertMultiple", "batch"]
    assert w.bulk_disabled("contacts") is disabled
