"""What the emulator has seen: requests by kind and outcome, token traffic, throttling.

Read through ``GET /_emulator/counters``; a healthy MSAL run shows exactly one discovery and
one token request (reference Appendix A.2).
"""

from __future__ import annotations

import typing as t
from collections import Counter
from dataclasses import dataclass, field


@dataclass(slots=True)
class Counters:
    """Counts since start or the last reset.

    Attributes:
        requests: ``(operation kind, outcome)`` → count; the outcome is the status code as a
            string, or ``"reset"`` when the connection was broken on purpose.
        operations: Operation kind → operations wire handled (records of bulk requests, parts
            of ``$batch``); what entitlement limits count (§7.6).
        token_requests: Calls to the token endpoint (answered or refused).
        discovery_requests: Calls to the OpenID configuration document.
        token_errors: Authority answers with an AADSTS error.
        unauthorized: Web API requests refused with 401.
        throttled: 429 answers (service protection and injected storms).
        throttle_extensions: 429s to requests sent before an earlier ``Retry-After`` had
            passed, each of which extended the wait (§7.1; ``state/budget.py``).
        faults: Fault rules that fired.
    """

    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    operations: Counter[str] = field(default_factory=Counter)
    token_requests: int = 0
    discovery_requests: int = 0
    token_errors: int = 0
    unauthorized: int = 0
    throttled: int = 0
    throttle_extensions: int = 0
    faults: int = 0

    def to_json(self) -> dict[str, t.Any]:
        """Nested ``{"requests": {kind: {outcome: n}}, ...}`` for the control API."""
        by_kind: dict[str, dict[str, int]] = {}
        for (kind, outcome), count in sorted(self.requests.items()):
            by_kind.setdefault(kind, {})[outcome] = count
        return {
            "requests": by_kind,
            "operations": dict(sorted(self.operations.items())),
            "token_requests": self.token_requests,
            "discovery_requests": self.discovery_requests,
            "token_errors": self.token_errors,
            "unauthorized": self.unauthorized,
            "throttled": self.throttled,
            "throttle_extensions": self.throttle_extensions,
            "faults": self.faults,
        }

    def clear(self) -> None:
        """Start counting from zero."""
        self.requests.clear()
        self.operations.clear()
        self.token_requests = self.discovery_requests = self.token_errors = 0
        self.unauthorized = self.throttled = self.throttle_extensions = self.faults = 0
