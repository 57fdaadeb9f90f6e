"""Expected failures: the user's to fix, each ending a CLI run with one message.

Settings, credentials, metadata, a malformed input line, a SCHEMA the table cannot take and too
many rejections are expected: the CLI logs one message (what, where, how to fix) and exits 1,
with the traceback only at DEBUG. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from singer_sdk.exceptions import (
    ConfigurationError,
    InvalidJSONSchema,
    MappingError,
    RecordsWithoutSchemaException,
)
from singer_sdk.singerlib.exceptions import SingerError

from target_dynamics.errors import AuthError, DataverseError, ServiceUnreachable, WebApiError
from target_dynamics.reader import input_line
from target_dynamics.reporting import LoadFailed

EXPECTED: tuple[type[Exception], ...] = (
    DataverseError,
    ConfigurationError,  # config validation, stream maps not initialised
    SingerError,  # the SDK's InvalidInputLine
    RecordsWithoutSchemaException,
    InvalidJSONSchema,
    MappingError,  # stream_maps expressions and name clashes
)
"""What bad settings, credentials, metadata or input raise (here or in the SDK)."""


def failure_message(error: BaseException) -> str | None:
    """The one message an expected ``error`` ends the run with; None for a bug."""
    if not isinstance(error, EXPECTED):
        return None
    text = str(error).strip() or type(error).__name__
    where = input_line(error)
    others = [n for n in getattr(error, "__notes__", ()) if n != where]
    if isinstance(error, MappingError):
        text += " Fix the stream_maps setting for this stream."
    if where:
        text = f"{where}: {text}"
    return "\n".join([text, *others])


def came_from_input(error: BaseException) -> bool:
    """Whether ``error`` is about the input or the settings, not the service.

    What the target accepted before such an error can still be written; after an auth or Web
    API failure (or a failed verdict) writing more would fail the same way.
    """
    return isinstance(error, EXPECTED) and not isinstance(
        error, AuthError | WebApiError | ServiceUnreachable | LoadFailed
    )
