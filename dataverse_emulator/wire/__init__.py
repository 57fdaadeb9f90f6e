"""The Web API surface: route table, handlers (parse -> call state -> serialise), Dataverse errors.

Entry point: :func:`handle` (``Request`` + ``Environment`` -> ``Response``, synchronous).
"""

from dataverse_emulator.wire.router import handle

__all__ = ["handle"]
