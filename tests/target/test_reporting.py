"""The run's verdict and summary (§10.3: rejected vs not written)."""

from __future__ import annotations

import logging

import pytest

from target_dynamics.client import ClientStats
from target_dynamics.reporting import LoadFailed, RunReport


def report(**counts: int) -> RunReport:
    run = RunReport(logging.getLogger("report-test"), 0)
    run.add("people", **counts)
    return run


@pytest.mark.parametrize(
    ("counts", "max_errors", "words"),
    [
        ({"rejected": 1}, 0, "1 records were rejected, more than max_errors=0 (see dead.jsonl)"),
        ({"lost": 2}, 10, "2 records could not be written"),
        ({"lost": 1, "rejected": 3}, 1, "could not be written"),
    ],
)
def test_run_fails_when_records_are_lost_or_too_many_rejected(counts, max_errors, words):
    with pytest.raises(LoadFailed, match=words.replace("(", r"\(").replace(")", r"\)")):
        report(**counts).raise_if_failed(max_errors, "dead.jsonl")


def test_run_passes_within_max_errors():
    report(received=3, landed=2, rejected=1).raise_if_failed(1, None)


def test_totals_add_up_streams():
    run = report(received=3, landed=3, created=3)
    run.add("orgs", received=2, landed=1, rejected=1, upserted=1)
    totals = run.totals
    assert (totals.received, totals.landed, totals.rejected, totals.created, totals.upserted) == (
        5,
        4,
        1,
        3,
        1,
    )


def test_summary_lines(caplog):
    run = RunReport(logging.getLogger("report-test"), 0, dry_run=True)
    run.add("people", received=4, landed=4, upserted=2, deleted=1, deactivated=1, gone=1)
    with caplog.at_level(logging.INFO, logger="report-test"):
        lines = run.summary()
    assert lines == [
        (
            "Summary people: 4 received, 4 validated (dry run, nothing written) "
            "(would be created 0, updated 0, upserted 2, deleted 1, deactivated 1, 1 already "
            "gone), 0 rejected, 0 not written"
        )
    ]
    assert caplog.messages == lines


def test_summary_tells_each_application_users_share():
    run = RunReport(logging.getLogger("report-test"), 0, dry_run=False)
    first, second = ClientStats(requests=30, retries=1), ClientStats(requests=10, throttled=2)
    second.throttled_seconds = 4.0
    assert run.summary([("app-1", first), ("app-2", second)]) == [
        "Requests: 40, retries: 1, throttled: 4.0 s",
        "Requests by application user: app-1 30 (75%), app-2 10 (25%)",
    ]


def test_failure_names_the_commonest_codes_with_a_message():
    run = report(received=4, landed=0, rejected=4)
    run.note_rejections(
        [
            ("0x80040220", "Principal user is missing prvCreateContact privilege"),
            ("0x80040220", "Principal user is missing prvCreateContact privilege"),
            ("0x80044331", "column 'jobtitle' is 117 characters long;\n the maximum is 100"),
            (None, "record does not match the stream's schema"),
        ]
    )
    with pytest.raises(LoadFailed) as caught:
        run.raise_if_failed(0, "dead.jsonl")
    message = str(caught.value)
    assert "0x80040220 x2: Principal user is missing prvCreateContact privilege" in message
    assert "0x80044331 x1: column 'jobtitle' is 117 characters long; the maximum is 100" in message
    assert "no code x1" in message


def test_mirror_removals_are_counted_apart_and_failures_fail_the_run():
    run = RunReport(logging.getLogger("report-test"), 0, dry_run=True)
    run.add("people", received=90, landed=90, upserted=90)
    run.add_mirror("people", deactivated=10)
    lines = run.summary()
    assert "Mirror people: would be deactivated 10, would be deleted 0, 0 rejected" in lines[-1]
    assert "deactivated 0" in lines[0]  # the stream's own counts stay apart
    run.raise_if_failed(0, None)
    run.add_mirror("people", rejected=1, lost=2)
    with pytest.raises(LoadFailed, match="3 rows in mirror scope could not be removed"):
        run.raise_if_failed(0, None)
