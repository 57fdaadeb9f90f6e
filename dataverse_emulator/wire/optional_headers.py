"""Values of the §8 optional headers: anything but the documented values is refused (§8).

- ``MSCRM.BypassBusinessLogicExecution``: ``CustomSync``, ``CustomAsync`` or both,
  comma-separated (Bypass custom Dataverse logic).
- ``MSCRM.BypassBusinessLogicExecutionStepIds``: comma-separated plug-in step GUIDs.
- ``MSCRM.BypassCustomPluginExecution``, ``MSCRM.SuppressCallbackRegistrationExpanderJob``,
  ``MSCRM.SuppressDuplicateDetection``: Boolean, ``true`` or ``false``.

A header valued ``null`` counts as absent (§2.2). Another value answers 400 ``0x80040203``
(InvalidArgument) naming the header and the values it takes.
"""

from __future__ import annotations

import uuid

from dataverse_emulator.state.error_catalogue import invalid_optional_header

_LOGIC = frozenset({"CustomSync", "CustomAsync"})
_BOOLEAN = (
    "MSCRM.BypassCustomPluginExecution",
    "MSCRM.SuppressCallbackRegistrationExpanderJob",
    "MSCRM.SuppressDuplicateDetection",
)


def check_values(header: dict[str, str]) -> None:
    """Refuse an undocumented value of a §8 optional header.

    Args:
        header: The request's headers with lower-case names.

    Raises:
        DataverseFault: 400 ``0x80040203`` naming the header, its value and the valid ones.
    """
    for name in _BOOLEAN:
        value = _value(header, name.lower())
        if value is not None and value.lower() not in {"true", "false"}:
            _refuse(name, value, "'true' or 'false'")
    value = _value(header, "mscrm.bypassbusinesslogicexecution")
    if value is not None:
        items = [item.strip() for item in value.split(",")]
        if not set(items) <= _LOGIC or len(set(items)) != len(items):
            _refuse(
                "MSCRM.BypassBusinessLogicExecution",
                value,
                "'CustomSync', 'CustomAsync' or 'CustomSync,CustomAsync'",
            )
    value = _value(header, "mscrm.bypassbusinesslogicexecutionstepids")
    if value is not None and not all(_is_guid(item) for item in value.split(",")):
        _refuse("MSCRM.BypassBusinessLogicExecutionStepIds", value, "comma-separated step ids")


def _value(header: dict[str, str], name: str) -> str | None:
    value = header.get(name)
    if value is None or value.strip().lower() == "null":
        return None
    return value.strip()


def _is_guid(text: str) -> bool:
    try:
        uuid.UUID(text.strip())
    except ValueError:
        return False
    return True


def _refuse(name: str, value: str, valid: str) -> None:
    raise invalid_optional_header(name, value, valid)
