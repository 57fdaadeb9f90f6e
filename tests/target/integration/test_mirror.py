"""Full-table mirrors: ACTIVATE_VERSION removes the rows in scope a version did not send (§4.10,
§4.11). A first sync sends ACTIVATE_VERSION before and after its records (Singer spec)."""

from __future__ import annotations

import logging
import uuid

import pytest

from target_dynamics.reporting import LoadFailed
from target_dynamics.target import TargetDynamics

pytestmark = pytest.mark.usefixtures("reset_emulator")

SCOPE = "department eq 'Newsletter'"
GUIDS = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"p{n}")) for n in range(100)]
MODES = {  # mode -> (id_field, key field of the record, its column)
    "primary": ("contactid", "id", "contactid"),
    "alternate": ("emailaddress1", "email", "emailaddress1"),
    "match": ("employeeid", "emp", "employeeid"),
}


def person(mode: str, n: int) -> dict:
    field = MODES[mode][1]
    value = {"id": GUIDS[n], "email": f"p{n}@x.org", "emp": f"E{n}"}[field]
    return {field: value, "last": f"L{n}", "dept": "Newsletter"}


def messages(mode: str, version: int, people: range, *, first: bool = False, end: bool = True):
    """One full-table sync of ``people`` as a Stitch-style tap sends it."""
    _, field, _ = MODES[mode]
    props = {f: {"type": ["string", "null"]} for f in (field, "last", "dept")}
    schema = {"type": "SCHEMA", "stream": "people", "schema": {"properties": props}}
    activate = {"type": "ACTIVATE_VERSION", "stream": "people", "version": version}
    out = [{**schema, "key_properties": [field]}]
    out += [activate] if first else []
    out += [
        {"type": "RECORD", "stream": "people", "record": person(mode, n), "version": version}
        for n in people
    ]
    out += [activate] if end else []
    out.append({"type": "STATE", "value": {"version": version}})
    return out


def config(emulator, mode: str = "alternate", **extra) -> dict:
    id_field, field, column = MODES[mode]
    stream = {"columns": {field: column, "last": "lastname", "dept": "department"}}
    stream["mirror_scope"] = SCOPE
    stream |= extra.pop("stream", {})
    return {
        **emulator.target_config,
        "entity": "contact",
        "id_field": id_field,
        "streams": {"people": stream},
        "progress_interval_seconds": 0,
        **extra,
    }


def quick_target(settings: dict) -> TargetDynamics:
    """An in-process target that retries once, without waiting."""
    target = TargetDynamics(config=settings)
    target.client._max_retries = 1
    target.client._backoff_base = 0.01
    target.writer._sleep = lambda _seconds: None
    return target


@pytest.fixture
def listen(singer):
    """Run messages through a :func:`quick_target` with ``settings``: the target, and the
    :class:`LoadFailed` that ended its run, if one did."""

    def run(settings: dict, lines: list[dict]) -> tuple[TargetDynamics, LoadFailed | None]:
        target = quick_target(settings)
        _, error = singer.run(target, lines)
        return target, error

    return run


def contacts(emulator) -> dict[str, int]:
    """lastname -> statecode of every contact."""
    return {r["lastname"]: r["statecode"] for r in emulator.admin.snapshot().get("contact", [])}


def outsiders(emulator, api) -> None:
    """Rows the stream does not own: another department, and no department."""
    for last, dept in (("Sales1", "Sales"), ("Sales2", "Sales"), ("None1", None)):
        body = {"lastname": last, "department": dept, "emailaddress1": f"{last}@x.org"}
        assert api.post(f"{emulator.api_url}/contacts", json=body).ok


def first_then_second(
    listen, emulator, mode: str, **extra
) -> tuple[TargetDynamics, LoadFailed | None]:
    settings = config(emulator, mode, **extra)
    _, error = listen(settings, messages(mode, 1, range(100), first=True))
    assert error is None
    assert contacts(emulator) == {f"L{n}": 0 for n in range(100)} | OUTSIDE
    return listen(settings, messages(mode, 2, range(90)))


OUTSIDE = {"Sales1": 0, "Sales2": 0, "None1": 0}


@pytest.mark.parametrize("mode", list(MODES))
def test_version_2_deactivates_the_rows_in_scope_it_did_not_send(listen, reset_emulator, api, mode):
    outsiders(reset_emulator, api)
    target, error = first_then_second(listen, reset_emulator, mode)
    assert error is None
    want = {f"L{n}": 0 if n < 90 else 1 for n in range(100)}
    assert contacts(reset_emulator) == want | OUTSIDE
    assert "Mirror people: deactivated 10, deleted 0, 0 rejected" in "\n".join(
        target.report.summary()
    )


def test_hard_delete_deletes_them_and_a_rerun_removes_nothing_more(listen, reset_emulator, api):
    outsiders(reset_emulator, api)
    settings = config(reset_emulator, hard_delete=True)
    _, error = first_then_second(listen, reset_emulator, "alternate", hard_delete=True)
    assert error is None
    assert contacts(reset_emulator) == {f"L{n}": 0 for n in range(90)} | OUTSIDE
    target, error = listen(settings, messages("alternate", 3, range(90)))
    assert error is None
    assert "Mirror people: deactivated 0, deleted 0" in "\n".join(target.report.summary())
    assert len(contacts(reset_emulator)) == 93


def test_already_inactive_rows_are_not_deactivated_again(listen, reset_emulator):
    settings = config(reset_emulator)
    listen(settings, messages("alternate", 1, range(10), first=True))
    listen(settings, messages("alternate", 2, range(8)))
    target, _ = listen(settings, messages("alternate", 3, range(8)))
    assert "Mirror people: deactivated 0, deleted 0" in "\n".join(target.report.summary())
    assert contacts(reset_emulator) == {f"L{n}": 0 if n < 8 else 1 for n in range(10)}


def test_a_version_whose_input_ends_before_activate_version_removes_nothing(listen, reset_emulator):
    settings = config(reset_emulator)
    listen(settings, messages("alternate", 1, range(100), first=True))
    _, error = listen(settings, messages("alternate", 2, range(90), end=False))
    assert error is None
    assert contacts(reset_emulator) == {f"L{n}": 0 for n in range(100)}


def test_activate_version_before_the_records_of_its_version_removes_nothing(listen, reset_emulator):
    """A Meltano SDK tap sends it only at the start of each sync."""
    settings = config(reset_emulator)
    listen(settings, messages("alternate", 1, range(100), first=True, end=False))
    _, error = listen(settings, messages("alternate", 2, range(90), first=True, end=False))
    assert error is None
    assert contacts(reset_emulator) == {f"L{n}": 0 for n in range(100)}


def test_a_version_that_lost_records_removes_nothing(listen, reset_emulator, caplog):
    settings = config(reset_emulator)
    listen(settings, messages("alternate", 1, range(100), first=True))
    reset_emulator.admin.set_faults(
        [{"action": "error", "status": 500, "method": "POST", "path": "/api/data/"}]
    )
    with caplog.at_level(logging.WARNING):
        _, error = listen(settings, messages("alternate", 2, range(90)))
    reset_emulator.admin.set_faults([])
    assert isinstance(error, LoadFailed)
    assert "version 2 not mirrored (no rows removed): some records could not be written" in (
        caplog.text
    )
    assert contacts(reset_emulator) == {f"L{n}": 0 for n in range(100)}


def test_rejections_beyond_max_errors_remove_nothing_and_within_keep_their_rows(
    listen,
    reset_emulator,
):
    settings = config(reset_emulator)
    listen(settings, messages("alternate", 1, range(10), first=True))
    bad = messages("alternate", 2, range(8))
    bad[2]["record"]["email"] = "x" * 200 + "@x.org"  # too long: rejected, row p1 not sent
    bad[3]["record"]["last"] = "y" * 300  # too long: rejected, row p2 is the source's
    _, error = listen(settings, bad)
    assert isinstance(error, LoadFailed)
    assert set(contacts(reset_emulator).values()) == {0}

    _, error = listen({**settings, "max_errors": 2}, bad[:1] + bad[1:])
    assert error is None
    states = contacts(reset_emulator)
    assert (states["L1"], states["L2"]) == (1, 0)  # p2's record was rejected: its row stays
    assert [states[f"L{n}"] for n in (8, 9)] == [1, 1]


def test_without_a_scope_one_warning_and_nothing_removed(listen, reset_emulator, caplog):
    settings = config(reset_emulator, stream={"mirror_scope": ""})
    with caplog.at_level(logging.WARNING):
        listen(settings, messages("alternate", 1, range(10), first=True))  # two of them
    warnings = [r.getMessage() for r in caplog.records if "ACTIVATE_VERSION" in r.getMessage()]
    assert len(warnings) == 1
    assert "set streams.people.mirror_scope" in warnings[0]
    listen(settings, messages("alternate", 2, range(5)))
    assert contacts(reset_emulator) == {f"L{n}": 0 for n in range(10)}


def test_dry_run_counts_what_would_be_deactivated(listen, reset_emulator):
    settings = config(reset_emulator)
    listen(settings, messages("alternate", 1, range(10), first=True))
    target, error = listen({**settings, "dry_run": True}, messages("alternate", 2, range(6)))
    assert error is None
    assert "Mirror people: would be deactivated 4" in "\n".join(target.report.summary())
    assert set(contacts(reset_emulator).values()) == {0}


def test_a_bad_filter_fails_before_any_write_with_one_line(singer, reset_emulator, tmp_path):
    settings = config(reset_emulator, stream={"mirror_scope": "department eq Newsletter"})
    done = singer.cli(settings, messages("alternate", 1, range(5)), tmp_path)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if "mirror_scope" in line]
    assert len(errors) == 1, done.stderr[-2000:]
    quoted = "stream 'people': mirror_scope 'department eq Newsletter' is not a filter contacts"
    assert quoted in errors[0]
    assert "Traceback" not in done.stderr
    assert contacts(reset_emulator) == {}


def test_removals_that_fail_are_retried_then_fail_the_run_and_withhold_state(
    listen, singer, reset_emulator
):
    settings = config(reset_emulator)
    listen(settings, messages("alternate", 1, range(10), first=True))
    reset_emulator.admin.set_faults(
        [{"action": "error", "status": 500, "method": "POST", "path": "UpdateMultiple|batch"}]
    )
    states, error = singer.run(quick_target(settings), messages("alternate", 2, range(8)))
    reset_emulator.admin.set_faults([])
    assert isinstance(error, LoadFailed)
    assert "rows in mirror scope could not be removed" in str(error)
    assert states == []  # the version's STATE ({"version": 2}) is withheld
    assert set(contacts(reset_emulator).values()) == {0}


def test_a_rejected_record_keeps_only_its_own_accent_variant_when_accents_matter(
    listen,
    emulator_factory,
):
    """§3.10 ``_CI_AS`` (1035 Finnish): version 2 sends only "josé@x.org", rejected; its row
    is kept (the source still has it), while the "jose@x.org" row, another key there, is
    deactivated."""
    finnish = emulator_factory(latency="zero", language_code=1035)
    settings = {**config(finnish), "max_errors": 1}
    first = messages("alternate", 1, range(2), first=True)
    for line, email in zip(first[2:4], ("josé@x.org", "jose@x.org"), strict=True):
        line["record"]["email"] = email
    _, error = listen(settings, first)
    assert error is None
    second = messages("alternate", 2, range(1))
    second[1]["record"] |= {"email": "josé@x.org", "last": "y" * 300}  # too long: rejected
    _, error = listen(settings, second)
    assert error is None
    assert contacts(finnish) == {"L0": 0, "L1": 1}
