"""The files of a BATCH message: the records a Singer SDK tap wrote with ``batch_config``.

A tap built on the Meltano Singer SDK, given ``batch_config``, writes its records to files and
sends one BATCH message naming them (``manifest``, URLs such as ``file:///tmp/b-1.json.gz``) and
their ``encoding`` (``{"format": "jsonl", "compression": "gzip"}``). :func:`batch_records` reads
them one line at a time (a file is never held in memory) and yields each record with where it
came from; the target handles each as it handles a RECORD message. JSONL, gzip-compressed or
not, is supported; local files always, other URLs through fsspec when its file system for them
is installed. What cannot be read raises :class:`BatchFileError` (what, which file and line, how
to fix it). URLs are shown without user, password or query, which may hold credentials.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import typing as t
import zlib
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit
from urllib.request import url2pathname

from target_dynamics.errors import DataverseError
from target_dynamics.reader import NotUnicode, exact_json

if t.TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

FORMATS = ("jsonl",)
"""Batch file formats this target reads."""
COMPRESSIONS = ("gzip", "none")
"""Batch file compressions this target reads (a missing compression means none)."""
_GZIP_MAGIC = b"\x1f\x8b"
_FIX_ENCODING = 'set the tap\'s batch_config encoding to {"format": "jsonl", "compression": "gzip"}'


class BatchFileError(DataverseError):
    """A BATCH message's encoding is not supported, or one of its files cannot be read."""


def shown(url: str) -> str:
    """``url`` without user, password, query or fragment (they may hold credentials)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def check_encoding(encoding: Mapping[str, t.Any]) -> None:
    """Check a BATCH message's ``encoding``.

    Raises:
        BatchFileError: The format or compression is not one this target reads.
    """
    fmt = encoding.get("format")
    if fmt not in FORMATS:
        msg = f"BATCH files in format {fmt!r} are not supported (only jsonl): {_FIX_ENCODING}"
        raise BatchFileError(msg)
    compression = encoding.get("compression") or "none"
    if compression not in COMPRESSIONS:
        msg = (
            f"BATCH files with compression {compression!r} are not supported (only gzip or "
            f"none): {_FIX_ENCODING}"
        )
        raise BatchFileError(msg)


def batch_records(
    manifest: Sequence[str], encoding: Mapping[str, t.Any]
) -> Iterator[tuple[dict[str, t.Any], str]]:
    """Each record of the ``manifest``'s files, in order, with ``<url> line <n>``.

    Whether a file is gzip-compressed is told by its first bytes, not by the encoding: SDK taps
    compress their JSONL batch files even when their ``batch_config`` says ``none``.

    Raises:
        BatchFileError: The encoding is not supported, a file cannot be opened or read, or a
            line is not a JSON object.
    """
    check_encoding(encoding)
    for url in manifest:
        with _open(url) as raw, _decompressed(raw) as lines:
            yield from _records(lines, shown(url))


def _decompressed(raw: t.IO[bytes]) -> t.ContextManager[t.Iterable[bytes]]:
    """``raw``, read through gzip when it starts like gzip data."""
    head = raw.peek(2)[:2] if hasattr(raw, "peek") else raw.read(2)
    if not hasattr(raw, "peek"):
        raw.seek(0)
    return gzip.GzipFile(fileobj=raw) if head == _GZIP_MAGIC else contextlib.nullcontext(raw)


def _records(lines: t.Iterable[bytes], where: str) -> Iterator[tuple[dict[str, t.Any], str]]:
    number = 0
    try:
        for number, line in enumerate(lines, start=1):
            source = f"{where} line {number}"
            yield _record(line, source), source
    except (gzip.BadGzipFile, zlib.error, EOFError) as exc:
        msg = (
            f"batch file {where}: gzip data cut off or corrupt after line {number} ({exc}); "
            "rerun the tap to write the file again"
        )
        raise BatchFileError(msg) from None
    except OSError as exc:
        msg = f"batch file {where} cannot be read ({exc.strerror or exc}): rerun the tap"
        raise BatchFileError(msg) from None


def _record(line: bytes, where: str) -> dict[str, t.Any]:
    """The record on one line of a batch file."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        msg = (
            f"batch file {where}: not UTF-8 text (byte {line[exc.start]:#04x} at column "
            f"{exc.start + 1}); a jsonl batch file is UTF-8 JSON, plain or gzip-compressed"
        )
        raise BatchFileError(msg) from None
    try:
        record: object = exact_json(text)
    except NotUnicode as exc:
        raise BatchFileError(f"batch file {where}: {exc}") from None
    except json.JSONDecodeError as exc:
        msg = (
            f"batch file {where}: not JSON ({exc.msg}: column {exc.colno}); every line of a "
            "jsonl batch file is one record, a JSON object"
        )
        raise BatchFileError(msg) from None
    if not isinstance(record, dict):
        msg = (
            f"batch file {where}: a record must be a JSON object, got {type(record).__name__}"
            f" {record!r:.40}"
        )
        raise BatchFileError(msg)
    return record


def _open(url: str) -> t.IO[bytes]:
    """Open the batch file at ``url`` for reading bytes."""
    parts = urlsplit(url)
    if parts.scheme in {"", "file"}:
        if parts.netloc not in {"", "localhost"}:
            msg = (
                f"batch file {shown(url)}: a file URL on another host ({parts.netloc}) cannot "
                "be read; give the tap a local batch_config storage root"
            )
            raise BatchFileError(msg)
        path = Path(url2pathname(parts.path))
        try:
            return path.open("rb")
        except OSError as exc:
            raise _unreadable(url, exc) from None
    return _open_remote(url)


def _open_remote(url: str) -> t.IO[bytes]:
    """Open ``url`` through fsspec (which the SDK's batch support is built on)."""
    try:
        import fsspec  # noqa: PLC0415 - only for batch files that are not local

        return t.cast("t.IO[bytes]", fsspec.open(url, "rb").open())
    except (ImportError, ValueError) as exc:
        msg = (
            f"batch file {shown(url)} cannot be read ({exc}): install the file system for "
            f"{urlsplit(url).scheme}:// URLs beside target-dynamics, or give the tap a local "
            "batch_config storage root (file://)"
        )
        raise BatchFileError(msg) from None
    except OSError as exc:
        raise _unreadable(url, exc) from None


def _unreadable(url: str, error: OSError) -> BatchFileError:
    if isinstance(error, FileNotFoundError):
        problem = (
            "does not exist; the tap writes its batch files where its batch_config storage "
            "root says, which must be readable by this target (and kept until it has run)"
        )
    else:
        problem = f"cannot be opened ({error.strerror or type(error).__name__})"
    return BatchFileError(f"batch file {shown(url)} {problem}")
