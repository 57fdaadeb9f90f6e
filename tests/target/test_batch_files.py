"""Reading SDK batch files, server-free: encodings, compression by content, errors, redaction."""

from __future__ import annotations

import gzip
from decimal import Decimal

import pytest

from target_dynamics.batch_files import BatchFileError, batch_records, check_encoding, shown

JSONL = {"format": "jsonl", "compression": "gzip"}


def test_gzip_and_plain_files_are_told_apart_by_their_content(tmp_path):
    """SDK taps gzip their batch files even when batch_config says none."""
    plain, packed = tmp_path / "a.json", tmp_path / "b.json.gz"
    plain.write_text('{"n": 1}\n{"n": 2.5}\n')
    packed.write_bytes(gzip.compress(b'{"n": 3}\n'))
    for compression in ("gzip", "none"):
        got = list(
            batch_records(
                [plain.as_uri(), str(packed)], {"format": "jsonl", "compression": compression}
            )
        )
        assert got == [
            ({"n": 1}, f"{plain.as_uri()} line 1"),
            ({"n": Decimal("2.5")}, f"{plain.as_uri()} line 2"),  # as RECORD messages parse
            ({"n": 3}, f"{packed} line 1"),
        ]


def test_records_are_read_one_line_at_a_time(tmp_path):
    path = tmp_path / "b.json.gz"
    path.write_bytes(gzip.compress(b'{"n": 1}\nnot json\n'))
    records = batch_records([path.as_uri()], JSONL)
    assert next(records) == ({"n": 1}, f"{path.as_uri()} line 1")
    with pytest.raises(BatchFileError, match=r"b\.json\.gz line 2: not JSON"):
        next(records)


@pytest.mark.parametrize(
    ("encoding", "fragment"),
    [
        ({"format": "parquet"}, "format 'parquet' are not supported (only jsonl)"),
        ({"format": "jsonl", "compression": "bz2"}, "compression 'bz2' are not supported"),
        ({}, "format None are not supported"),
    ],
)
def test_unsupported_encodings_say_what_to_set(encoding, fragment):
    with pytest.raises(BatchFileError) as caught:
        check_encoding(encoding)
    assert fragment in str(caught.value)
    assert '{"format": "jsonl", "compression": "gzip"}' in str(caught.value)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (
            gzip.compress(b'{"n": 1}\n' * 50, mtime=0)[:-12],
            "gzip data cut off or corrupt after line",
        ),
        (b"[1, 2]\n", "line 1: a record must be a JSON object, got list"),
        (b"\xff\xfe{}\n", "line 1: not UTF-8 text (byte 0xff at column 1)"),
    ],
)
def test_unreadable_content_names_file_and_line(tmp_path, content, fragment):
    path = tmp_path / "b.json.gz"
    path.write_bytes(content)
    with pytest.raises(BatchFileError, match="batch file file://") as caught:
        list(batch_records([path.as_uri()], JSONL))
    assert fragment in str(caught.value)


def test_urls_are_shown_without_credentials(tmp_path):
    assert shown("https://user:pa55@host.example/b-1.json.gz?sig=s3cret#x") == (
        "https://host.example/b-1.json.gz"
    )
    url = "nosuchfs://user:pa55@bucket/b-1.json.gz?token=s3cret"
    with pytest.raises(BatchFileError) as caught:
        list(batch_records([url], JSONL))
    assert "pa55" not in str(caught.value)
    assert "s3cret" not in str(caught.value)
    assert "nosuchfs:// URLs" in str(caught.value)
    with pytest.raises(BatchFileError, match="on another host"):
        list(batch_records(["file://server/share/b-1.json.gz"], JSONL))
