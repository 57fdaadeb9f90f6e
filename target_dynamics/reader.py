"""Reading the Singer input: one message per line, each problem named by its line number.

The SDK's reader reports a bad line without its number, and lets a message without the fields
its type needs reach the target as a ``KeyError`` or ``TypeError``. :class:`LineReader` checks
each line's encoding, JSON and message shape before the target sees it, raising
:class:`InputError` (which line, what is wrong, how to fix it). An error raised while the target
handles a line gets the line as a note (see :func:`input_line`).
"""

from __future__ import annotations

import decimal
import difflib
import json
import typing as t
from collections import Counter

import msgspec
from singer_sdk.io_base import SingerMessageType, SingerReader
from typing_extensions import override

from target_dynamics.errors import DataverseError

if t.TYPE_CHECKING:
    from collections.abc import Callable

LINE_NOTE = "input line "
"""How the note that locates an error in the input starts."""
_SHAPES: dict[str, dict[str, tuple[type, ...]]] = {
    "SCHEMA": {"stream": (str,), "schema": (dict,)},
    "RECORD": {"stream": (str,), "record": (dict,)},
    "STATE": {"value": (object,)},
    "ACTIVATE_VERSION": {"stream": (str,), "version": (int,)},
    "BATCH": {"stream": (str,), "encoding": (dict,), "manifest": (list,)},
}
"""The fields each supported message type needs, with their JSON types."""
_KINDS = {kind.value: kind for kind in SingerMessageType}
_JSON_TYPES = {
    str: "a string",
    dict: "an object",
    list: "a list",
    int: "an integer",
    object: "a value",
}
_SHOWN = 120
_DECODER = json.JSONDecoder(parse_float=decimal.Decimal)
"""The SDK's JSON reading (decimals exact): it reads what the fast decoder refuses."""
_FAST = msgspec.json.Decoder(float_hook=decimal.Decimal)
"""The same reading (exact decimals, integers of any size) at a fraction of the CPU; it refuses
what the SDK's reading may still take (``NaN``, lone surrogates, a byte-order mark), and bad
lines, which the SDK's reading then names."""


class InputError(DataverseError):
    """A line of the Singer input is not a Singer message this target can take."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"{LINE_NOTE}{line}: {problem}")
        self.line = line


def input_line(error: BaseException) -> str | None:
    """The note saying which input line ``error`` was raised at, if it has one."""
    return next((n for n in getattr(error, "__notes__", ()) if n.startswith(LINE_NOTE)), None)


class LineReader(SingerReader):
    """The SDK's reader, with line numbers, strict UTF-8 and message shapes checked.

    Args:
        on_failure: Called with any exception that ends the reading, before it propagates
            (the target writes what it accepted before the bad line).
    """

    def __init__(self, on_failure: Callable[[Exception], None] | None = None) -> None:
        super().__init__()
        self._on_failure = on_failure
        self.reached_end = False
        """Whether the input was read to its end without a failure."""
        self.line = 0
        """The number of the line being handled."""

    @override
    def process_lines(
        self,
        file_input: t.IO[str] | None,
        callbacks: dict[str, Callable[[dict[str, t.Any]], None]],
    ) -> Counter[str]:
        """Hand each line's message to its callback; raise at the first line that is not one.

        Returns:
            Messages handled, by type.

        Raises:
            InputError: A line is not UTF-8, not JSON, or not a supported Singer message.
        """
        stream = file_input or self.default_input
        # Bytes, when the stream has them: a decoding error then names its own line.
        lines = getattr(stream, "buffer", stream)
        stats: Counter[str] = Counter()
        try:
            for number, line in enumerate(lines, start=1):
                self.line = number
                message = _message(number, line)
                kind = _KINDS[message["type"]]
                try:
                    callbacks[kind](message)
                except Exception as exc:
                    exc.add_note(f"{LINE_NOTE}{number} ({_what(message)})")
                    raise
                stats[kind] += 1
        except Exception as exc:
            if self._on_failure is not None:
                self._on_failure(exc)
            raise
        self.reached_end = True
        return stats


def _text(number: int, line: str | bytes) -> str:
    """Input line ``number`` as text (a byte-order mark may start the first line)."""
    if isinstance(line, str):
        return line
    try:
        return line.decode("utf-8-sig" if number == 1 else "utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            number,
            f"not UTF-8 text (byte {line[exc.start]:#04x} at column {exc.start + 1}): "
            "Singer messages are UTF-8 JSON; make the tap write UTF-8",
        ) from None


class NotUnicode(ValueError):
    """A JSON string holds an unpaired surrogate escape: valid JSON, not Unicode text."""

    def __init__(self, escape: str) -> None:
        super().__init__(
            f"a string holds the unpaired surrogate escape {escape}, which is not a Unicode "
            "character: Dataverse cannot store it; the tap must escape text as UTF-16 pairs "
            "(or drop the broken character)"
        )


def exact_json(line: str | bytes) -> t.Any:
    """One line of JSON: decimals exact, integers of any size, text checked to be Unicode.

    Raises:
        UnicodeDecodeError: ``line`` is bytes that are not UTF-8.
        json.JSONDecodeError: ``line`` is not JSON.
        NotUnicode: A string holds an unpaired surrogate.
    """
    try:
        return _FAST.decode(line)
    except msgspec.DecodeError:
        return _sdk_json(line.decode("utf-8") if isinstance(line, bytes) else line)


def _sdk_json(text: str) -> t.Any:
    """A line the fast decoder refused, read as the SDK reads it (see :func:`exact_json`)."""
    value = _DECODER.decode(text.rstrip("\r\n"))
    try:  # only lines the fast decoder refused may hold an unpaired surrogate
        json.dumps(value, ensure_ascii=False, default=str).encode("utf-8")
    except UnicodeEncodeError as exc:
        surrogate = exc.object[exc.start : exc.end].encode("utf-16-le", "surrogatepass")
        raise NotUnicode(
            "".join(f"\\u{code:04x}" for code in memoryview(surrogate).cast("H"))
        ) from None
    return value


def _message(number: int, raw: str | bytes) -> dict[str, t.Any]:
    """The Singer message on input line ``number``, checked for the fields its type needs."""
    try:
        message = _FAST.decode(raw)
    except msgspec.DecodeError:
        message = _decoded(number, _text(number, raw))
    if (  # the common case, checked fast
        type(message) is dict
        and message.get("type") == "RECORD"
        and type(message.get("stream")) is str
        and type(message.get("record")) is dict
    ):
        return message
    if not isinstance(message, dict) or "type" not in message:
        raise InputError(
            number,
            f'not a Singer message (a JSON object with "type"): {_shorten(_text(number, raw))}',
        )
    kind = message["type"]
    if kind not in _SHAPES:
        hint = difflib.get_close_matches(str(kind).upper(), list(_SHAPES), 1)
        fix = f"did you mean '{hint[0]}'?" if hint else f"use one of {', '.join(_SHAPES)}"
        raise InputError(number, f"unknown message type {kind!r}: {fix}")
    _check_fields(number, kind, message)
    if kind == "SCHEMA":
        _check_schema_message(number, message)
    if kind == "BATCH" and not all(isinstance(url, str) for url in message["manifest"]):
        raise InputError(number, "BATCH message needs 'manifest', a list of file URLs")
    return message


def _decoded(number: int, line: str) -> t.Any:
    """Input line ``number`` (text), which the fast decoder refused, read by :func:`_sdk_json`."""
    try:
        return _sdk_json(line)
    except NotUnicode as exc:
        raise InputError(number, str(exc)) from None
    except json.JSONDecodeError as exc:
        if not line.strip():
            raise InputError(
                number,
                "the line is empty: every line must be one Singer message (JSON); find what "
                "writes blank lines to the tap's output",
            ) from None
        raise InputError(
            number,
            f"not JSON ({exc.msg}: column {exc.colno}): {_shorten(line)}; every line must be "
            "one Singer message, so the tap (or something in the pipe) wrote a non-JSON line",
        ) from None


def _check_fields(number: int, kind: str, message: dict[str, t.Any]) -> None:
    """Raise when a field a ``kind`` message needs is missing or of another JSON type."""
    for name, types in _SHAPES[kind].items():
        value = message.get(name)
        wrong = not isinstance(value, types) or (int in types and isinstance(value, bool))
        if name not in message or wrong:
            wanted = _JSON_TYPES[types[0]]
            got = "missing" if name not in message else f"{type(value).__name__} {value!r:.40}"
            raise InputError(number, f"{kind} message needs '{name}', {wanted} (got {got})")


def _check_schema_message(number: int, message: dict[str, t.Any]) -> None:
    stream = message["stream"]
    if not isinstance(message["schema"].get("properties"), dict):
        raise InputError(
            number,
            f"the SCHEMA of stream '{stream}' has no 'properties' object: a Singer schema is "
            '{"type": "object", "properties": {"field": {"type": ...}}}',
        )
    keys = message.get("key_properties")
    if keys is not None and (
        not isinstance(keys, list) or not all(isinstance(k, str) for k in keys)
    ):
        raise InputError(
            number,
            f"the SCHEMA of stream '{stream}' has key_properties {keys!r:.60}: it must be a list "
            'of field names, e.g. ["id"]',
        )


def _what(message: dict[str, t.Any]) -> str:
    stream = message.get("stream")
    return f"{message['type']} of stream '{stream}'" if stream else str(message["type"])


def _shorten(line: str) -> str:
    text = line.strip()
    return repr(text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "...")
