"""JSON in and out of the emulator, with ``Edm.Decimal`` numbers exact (§4.6).

The service is .NET: a Decimal or Money value is a ``System.Decimal``, exact to 28 significant
digits, and "decimal numbers are stored in the database exactly as specified" (Microsoft Learn,
*Types of columns*). So a JSON number with a fraction or an exponent is read as a
:class:`~decimal.Decimal` (a ``float`` would turn ``99999999999999.99`` into
``99999999999999.984375``); the column's converter makes it a float only for a Double column
(:mod:`dataverse_emulator.state.values`). Integers stay ``int``. Writing, a ``Decimal`` becomes a
JSON number with every digit it holds (``5000000.0000`` stays so).

Every body that can carry row values, every response and the snapshot go through this module.
"""

from __future__ import annotations

import typing as t
from decimal import Decimal

import msgspec

_DECODER = msgspec.json.Decoder(float_hook=Decimal)
_ENCODER = msgspec.json.Encoder(decimal_format="number")


class InvalidJsonError(ValueError):
    """The bytes are not one JSON document; the message says where."""


def loads(body: bytes | str) -> t.Any:
    """Decode one JSON document; numbers with a fraction or exponent as ``Decimal``.

    Raises:
        InvalidJsonError: if ``body`` is not JSON.
    """
    try:
        return _DECODER.decode(body)
    except msgspec.DecodeError as exc:
        raise InvalidJsonError(str(exc)) from None


def dumps(data: t.Any, *, indent: int = 0) -> bytes:
    """Encode ``data`` as JSON; a ``Decimal`` as an exact number; ``indent`` > 0 pretty-prints."""
    encoded = _ENCODER.encode(data)
    return msgspec.json.format(encoded, indent=indent) if indent else encoded
