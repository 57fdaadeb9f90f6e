"""Fault injection: an ordered, seeded rule list; the first rule that fires wins.

A rule matches on method, path regex, entity set, operation kind and caller, becomes active
after ``after`` matching requests, fires at most ``times`` times, each time with
``probability`` drawn from a generator seeded once, so the same seed and the same request
sequence give the same faults. Actions (reference §7.8, §10 F1/F2/F11, §10.2):

- ``throttle``: 429 with ``Retry-After`` and a service protection code (a storm).
- ``error``: 500 / 502 / 503 / 504 with a Dataverse error body.
- ``reset``: the connection breaks halfway through the response; nothing ran.
- ``delay``: the operation runs ``seconds`` long (slower than a client timeout), then passes
  through and lands, whether or not the client still waits. Past Dataverse's 2-minute limit
  on a message operation it is cancelled instead: after 120 s the answer is a 500
  ``TimeoutException`` and nothing was written (Analyze plug-in performance, §7.5).
- ``drop``: pass through (the write lands), then break the connection (the answer is lost).
- ``revoke_tokens``: revoke the caller's (or everybody's) tokens, then pass through (→ 401).
- ``redirect``: a 3xx with ``Location`` (a hijacked or misconfigured path to the authority: a
  client must refuse to follow it, or it sends its credentials there).

Rules with ``operation: "token"`` or ``"discovery"`` apply in front of the authority instead
(Appendix A.2: 429 / 503 with ``Retry-After`` in Entra's ``temporarily_unavailable`` shape,
resets, delays, redirects); all other rules apply to the Web API only.

Faults never write state. The JSON format is documented in ``docs/emulator-faults.md``.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import typing as t
from dataclasses import dataclass, field, fields
from enum import StrEnum

import orjson

from dataverse_emulator.authority import authority_kind, entra_error, transient_error
from dataverse_emulator.http import Abort, Request, Response
from dataverse_emulator.patterns import path_pattern
from dataverse_emulator.state.budget import REQUESTS_CODE
from dataverse_emulator.tokens import peek_client_id
from dataverse_emulator.wire.errors import error_response, stamp_request_id

if t.TYPE_CHECKING:
    from dataverse_emulator.counters import Counters
    from dataverse_emulator.http import Handler
    from dataverse_emulator.tokens import TokenService

API_PREFIX = "/api/data/"
_BULK = re.compile(
    r"(?:Microsoft\.Dynamics\.CRM\.(?:Create|Update|Upsert|Delete)Multiple"
    r"|/(?:Microsoft\.Dynamics\.CRM\.)?AddListMembersList)$"
)
"""Bulk operations: the ``…Multiple`` messages and AddListMembersList (one record per member)."""
_METADATA = ("$metadata", "EntityDefinitions", "RelationshipDefinitions", "GlobalOptionSet")

DEFAULT_ERRORS: dict[int, tuple[str, str]] = {
    429: (
        REQUESTS_CODE,
        "Number of requests exceeded the limit of 6000 over time window of 300 seconds.",
    ),
    500: ("0x80040216", "An unexpected error occurred."),
    502: ("0x80040216", "Bad Gateway: the web server received an invalid response."),
    503: ("0x80040216", "The Web API service isn't available."),
    504: ("0x80040216", "The operation timed out: the gateway did not receive a response."),
}

OPERATION_TIME_LIMIT = 120.0
"""Seconds a Dataverse message operation may run; past them it is cancelled and rolled back with
a TimeoutException (§7.5)."""
OPERATION_TIMEOUT = (
    500,
    "0x80040216",
    (
        "The operation did not complete within the 2-minute time limit and was canceled "
        "(rolled back): System.TimeoutException."
    ),
)
"""The answer after the limit: Microsoft documents the rollback and the TimeoutException but no
Web API code, so the generic "unexpected error" code carries it."""


class Action(StrEnum):
    """What a fired rule does."""

    THROTTLE = "throttle"
    ERROR = "error"
    RESET = "reset"
    DELAY = "delay"
    DROP = "drop"
    REVOKE_TOKENS = "revoke_tokens"
    REDIRECT = "redirect"


REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
AUTHORITY_OPERATIONS = frozenset({"token", "discovery"})
"""Operations answered in front of the authority rather than the Web API."""

_DEFAULT_STATUS = {Action.THROTTLE: 429, Action.REDIRECT: 307}


def entity_set(path: str) -> str | None:
    """The first resource segment after ``/api/data/v9.x/`` (``accounts``, ``$batch``)."""
    if not path.startswith(API_PREFIX):
        return None
    rest = path[len(API_PREFIX) :].partition("/")[2]
    segment = rest.partition("/")[0]
    return segment.partition("(")[0] or None


def classify(method: str, path: str) -> str:
    """Predict the operation kind wire will report, from the method and path alone.

    ``token`` is the authority's token endpoint, ``discovery`` its OpenID configuration and keys
    (only rules naming them apply there).
    """
    resource = entity_set(path)
    if resource is None:
        return authority_kind(path) or "other"
    if resource == "$batch":
        return "batch"
    if resource.startswith(_METADATA):
        return "metadata"
    if _BULK.search(path):
        return "bulk"
    if method in {"GET", "HEAD"}:
        return "read"
    return "single" if method in {"POST", "PATCH", "PUT", "DELETE"} else "other"


@dataclass(slots=True)
class FaultRule:
    """One rule; ``None`` match fields match anything.

    Attributes:
        action: What to do when the rule fires.
        name: Free label, echoed by ``GET /_emulator/faults``.
        method: HTTP method.
        path: Regular expression searched in the request path; refused when it could
            backtrack catastrophically (:mod:`dataverse_emulator.patterns`).
        entity_set: Entity set (``accounts``) or ``$batch``.
        operation: ``read``, ``metadata``, ``single``, ``batch``, ``bulk``, ``other``, or
            ``token`` / ``discovery`` (the authority's endpoints; only such rules apply there).
        client_id: The caller's application id (read from its bearer token).
        probability: Chance that an active, matching rule fires.
        times: Fire at most this often (None: no limit).
        after: Let this many matching requests through before the rule becomes active.
        status: HTTP status for ``throttle`` (429), ``error`` (500/502/503/504) and
            ``redirect`` (301/302/303/307/308, default 307).
        code: Dataverse error code; defaults per status.
        message: Error message; defaults per status.
        retry_after: ``Retry-After`` seconds for ``throttle`` and 503 (scaled by time scale).
        seconds: How long a ``delay`` operation runs (scaled by time scale); over 120, it is
            cancelled at 120 with a TimeoutException.
        revoke: ``caller`` or ``all`` for ``revoke_tokens``.
        location: The ``Location`` of a ``redirect`` (required there).
    """

    action: Action
    name: str = ""
    method: str | None = None
    path: str | None = None
    entity_set: str | None = None
    operation: str | None = None
    client_id: str | None = None
    probability: float = 1.0
    times: int | None = None
    after: int = 0
    status: int | None = None
    code: str | None = None
    message: str | None = None
    retry_after: float | None = None
    seconds: float = 0.0
    revoke: str = "caller"
    location: str | None = None
    matched: int = field(default=0, compare=False)
    fired: int = field(default=0, compare=False)
    _pattern: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.action = Action(self.action)
        if self.method:
            self.method = self.method.upper()
        self._pattern = path_pattern(self.path) if self.path else None
        after: object = self.after  # from JSON (from_json) these may be anything
        times: object = self.times
        if not isinstance(after, int) or (times is not None and not isinstance(times, int)):
            raise ValueError("'after' and 'times' must be whole numbers")
        status = self.status or _DEFAULT_STATUS.get(self.action, 500)
        if self.action in {Action.THROTTLE, Action.ERROR} and status not in DEFAULT_ERRORS:
            raise ValueError(f"status {status} is not one of {sorted(DEFAULT_ERRORS)}")
        if self.action is Action.REDIRECT:
            if status not in REDIRECT_STATUSES:
                raise ValueError(f"status {status} is not one of {sorted(REDIRECT_STATUSES)}")
            if not self.location:
                raise ValueError("a redirect rule needs a 'location'")
        self.status = status
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be between 0 and 1")
        if self.revoke not in {"caller", "all"}:
            raise ValueError("revoke must be 'caller' or 'all'")

    @classmethod
    def from_json(cls, data: dict[str, t.Any]) -> FaultRule:
        """Build a rule from its JSON object; unknown keys are an error."""
        allowed = {f.name for f in fields(cls) if not f.name.startswith("_")} - {
            "matched",
            "fired",
        }
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown fault rule keys: {sorted(unknown)}")
        if "action" not in data:
            raise ValueError("a fault rule needs an 'action'")
        return cls(**data)

    def to_json(self) -> dict[str, t.Any]:
        """The rule with its ``matched`` / ``fired`` counters."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if not f.name.startswith("_") and getattr(self, f.name) is not None
        }

    def matches(self, request: Request, kind: str, client_id: t.Callable[[], str | None]) -> bool:
        """Whether the request meets every match field."""
        return (
            (self.method is None or request.method == self.method)
            and (self._pattern is None or self._pattern.search(request.path) is not None)
            and (self.entity_set is None or entity_set(request.path) == self.entity_set)
            and (self.operation is None or kind == self.operation)
            and (self.client_id is None or (client_id() or "").lower() == self.client_id.lower())
        )


class Faults:
    """The active rule list and its seeded generator."""

    def __init__(self, plan: t.Any = None, seed: int = 0) -> None:
        self._initial = (plan, seed)
        self.rules: list[FaultRule] = []
        self.seed = seed
        self._rng = random.Random(seed)  # noqa: S311 - reproducible faults, not secrets
        self.load(plan, seed)

    def load(self, plan: t.Any, default_seed: int | None = None) -> None:
        """Replace the rules from a plan: a list of rules or ``{"seed": n, "rules": [...]}``.

        Raises:
            ValueError: if the plan is malformed (the old rules stay).
        """
        seed = self.seed if default_seed is None else default_seed
        if plan is None:
            rules_json: t.Any = []
        elif isinstance(plan, list):
            rules_json = plan
        elif isinstance(plan, dict) and set(plan) <= {"seed", "rules"}:
            rules_json = plan.get("rules", [])
            seed = int(plan.get("seed", seed))
        else:
            raise ValueError("a fault plan is a list of rules or {'seed': n, 'rules': [...]}")
        if not isinstance(rules_json, list) or not all(isinstance(r, dict) for r in rules_json):
            raise ValueError("'rules' must be a list of objects")
        try:
            rules = [FaultRule.from_json(r) for r in rules_json]
        except TypeError as exc:
            raise ValueError(str(exc)) from exc
        self.rules = rules
        self.seed = seed
        self._rng = random.Random(seed)  # noqa: S311 - reproducible faults, not secrets

    def reset(self) -> None:
        """Back to the start-up plan with fresh counters and a re-seeded generator."""
        plan, seed = self._initial
        self.load(plan, seed)

    def to_json(self) -> dict[str, t.Any]:
        """``{"seed": n, "rules": [...]}`` including each rule's counters."""
        return {"seed": self.seed, "rules": [rule.to_json() for rule in self.rules]}

    def decide(self, request: Request, *, token_phase: bool = False) -> FaultRule | None:
        """Return the first rule that fires for ``request`` (counting it), or None.

        Args:
            request: The request.
            token_phase: True in front of the authority: only ``token`` and ``discovery``
                rules apply there; False behind it: every other rule.
        """
        if not self.rules:
            return None
        kind = classify(request.method, request.path)
        caller: list[str | None] = []

        def client_id() -> str | None:
            if not caller:
                caller.append(_bearer_client_id(request))
            return caller[0]

        for rule in self.rules:
            if (rule.operation in AUTHORITY_OPERATIONS) != token_phase:
                continue
            if not rule.matches(request, kind, client_id) or not self._fires(rule):
                continue
            rule.fired += 1
            request.context["fault"] = rule.name or rule.action.value
            return rule
        return None

    def _fires(self, rule: FaultRule) -> bool:
        """Count a match of ``rule``; whether it fires now (``after``, ``times``, probability)."""
        rule.matched += 1
        if rule.matched <= rule.after:
            return False
        if rule.times is not None and rule.fired >= rule.times:
            return False
        return rule.probability >= 1.0 or self._rng.random() < rule.probability


class FaultLayer:
    """Answers instead of the rest of the chain when a rule fires."""

    def __init__(  # noqa: PLR0913 - the rooms it acts on, plus its settings
        self,
        faults: Faults,
        tokens: TokenService,
        counters: Counters,
        inner: Handler,
        scale: float = 1.0,
        *,
        token_phase: bool = False,
        dop_hint: t.Callable[[], int] = lambda: 4,
    ) -> None:
        self._faults = faults
        self._dop_hint = dop_hint
        self._token_phase = token_phase
        self._tokens = tokens
        self._counters = counters
        self._inner = inner
        self._scale = scale

    async def __call__(self, request: Request) -> Response:
        """Apply the first rule that fires, or pass the request on."""
        rule = self._faults.decide(request, token_phase=self._token_phase)
        if rule is None:
            return await self._inner(request)
        self._counters.faults += 1
        return await self._fire(rule, request)

    async def _fire(self, rule: FaultRule, request: Request) -> Response:
        """Answer as ``rule`` says."""
        match rule.action:
            case Action.THROTTLE | Action.ERROR:
                return self._error(rule, request)
            case Action.RESET:
                return _broken(error_response(500, *DEFAULT_ERRORS[500]))
            case Action.DELAY:
                return await self._slow(rule, request)
            case Action.DROP:
                return _broken(await self._inner(request))
            case Action.REDIRECT:
                headers = [("Location", rule.location or ""), ("Cache-Control", "no-store")]
                return Response(rule.status or 307, headers)
            case Action.REVOKE_TOKENS:
                caller = None if rule.revoke == "all" else _bearer_client_id(request) or ""
                self._tokens.revoke(caller)
        return await self._inner(request)

    async def _slow(self, rule: FaultRule, request: Request) -> Response:
        """Run the request ``rule.seconds`` late, or cancel it at the 2-minute limit (§7.5).

        A client that stops waiting does not stop the operation: it still lands.
        """
        if not self._token_phase and rule.seconds > OPERATION_TIME_LIMIT:
            await asyncio.sleep(OPERATION_TIME_LIMIT * self._scale)
            return error_response(*OPERATION_TIMEOUT)
        await asyncio.sleep(rule.seconds * self._scale)
        return await self._inner(request)

    def _retry_after(self, rule: FaultRule, status: int) -> str | None:
        """``Retry-After`` (scaled, whole seconds) if the rule sets one or the status is 429."""
        if rule.retry_after is None and status != 429:
            return None
        nominal = 5.0 if rule.retry_after is None else rule.retry_after
        return str(max(1, math.ceil(nominal * self._scale)))

    def _error(self, rule: FaultRule, request: Request) -> Response:
        """Dataverse error body, or Entra's ``temporarily_unavailable`` at the token endpoint."""
        status = rule.status or 500
        retry = self._retry_after(rule, status)
        headers = [("Retry-After", retry)] if retry else []
        if self._token_phase:
            return entra_error(
                transient_error(status), request.headers.get("client-request-id"), headers
            )
        if status == 429:  # like the service's own 429s (§7.3, §2.3)
            headers.append(("x-ms-dop-hint", str(self._dop_hint())))
        default_code, default_message = DEFAULT_ERRORS[status]
        return stamp_request_id(
            error_response(
                status, rule.code or default_code, rule.message or default_message, headers
            )
        )


def _bearer_client_id(request: Request) -> str | None:
    """The application id in the request's bearer token (unverified), or None."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return peek_client_id(token) if scheme.lower() == "bearer" else None


def _broken(response: Response) -> Response:
    """Mark ``response`` to be cut off halfway; a body-less answer gets a body to cut."""
    if len(response.body) < 2:
        response.status = 200 if response.status in {204, 304} else response.status
        response.body = orjson.dumps({"@odata.context": "dropped", "value": []})
    response.abort = Abort.RESET
    return response
