"""The emulator as one async handler: control → authority → faults → auth → budget/cost → wire.

(Fault rules that name ``operation: "token"`` sit in front of the authority instead.)

:class:`Emulator` owns the state (environment, users, tokens, budgets, fault rules, counters)
and the handler chain; :mod:`dataverse_emulator.server` puts it on loopback HTTPS. Wire runs on
the event-loop thread, so concurrent clients see consistent state. Nothing escapes
:meth:`Emulator.handle`: an unexpected exception becomes a Dataverse-shaped 500.
"""

from __future__ import annotations

import logging
import random
import typing as t
import uuid
from dataclasses import dataclass, field

from dataverse_emulator import wire
from dataverse_emulator.auth import BearerAuth
from dataverse_emulator.authority import Authority
from dataverse_emulator.control import Control
from dataverse_emulator.costs import CostModel
from dataverse_emulator.counters import Counters
from dataverse_emulator.faults import FaultLayer, Faults, classify
from dataverse_emulator.protection import ServiceProtection
from dataverse_emulator.state import collation
from dataverse_emulator.state.budget import Budgets, Limits
from dataverse_emulator.state.environment import Environment
from dataverse_emulator.state.error_catalogue import unexpected_server_error
from dataverse_emulator.state.key_jobs import DEFAULT_DELAY
from dataverse_emulator.tokens import TokenService
from dataverse_emulator.wire.errors import fault_response

if t.TYPE_CHECKING:
    from pathlib import Path

    from dataverse_emulator.http import Request, Response
    from dataverse_emulator.state.users import Users

logger = logging.getLogger(__name__)

Latency = t.Literal["realistic", "zero"]
WireHandler = t.Callable[["Request", Environment], "Response"]

DEFAULT_TOKEN_LIFETIME = 3599
"""§1.2: ``expires_in`` 3599; §1.6: MSAL refetches on every call below 300 s."""


@dataclass(frozen=True, slots=True)
class Options:
    """How an emulator behaves (the CLI flags, plus limits and costs for Python callers).

    Attributes:
        latency: ``realistic`` applies the cost model and the limits; ``zero`` turns both off.
        time_scale: Multiplies every time and window (costs, window, ``Retry-After``).
        seed: Seed of ids and fault probabilities.
        token_lifetime: ``expires_in`` of issued tokens, in seconds.
        faults: Start-up fault plan (``docs/emulator-faults.md``).
        entities_file: Extra tables for the catalog.
        limits: Nominal service protection limits, the ``x-ms-dop-hint`` the environment
            reports and its number of web servers at start (``Limits(dop_hint=48)``; CLI
            ``--dop-hint``, ``--web-servers``; control API ``PUT /_emulator/limits``).
        app_users: Application users that may write (CLI ``--app-users``): 3 registers the
            two secret loaders and the certificate loader; more adds secret loaders.
        costs: Nominal cost model.
        max_body_bytes: Larger request bodies get 413 (§7.5: bulk requests up to 116.85 MB).
        key_index_seconds: Nominal seconds a key index job takes (§3.6; CLI
            ``--key-index-seconds``; scaled by ``time_scale``).
        language_code: The environment's base language (LCID; CLI ``--language``), which fixes
            its collation: ``_CI_AI`` (1033) or ``_CI_AS`` (e.g. 1035, §3.10).
    """

    latency: Latency = "realistic"
    time_scale: float = 1.0
    seed: int = 0
    token_lifetime: int = DEFAULT_TOKEN_LIFETIME
    faults: t.Any = None
    entities_file: Path | None = None
    limits: Limits = field(default_factory=Limits)
    costs: CostModel = field(default_factory=CostModel)
    max_body_bytes: int = 116_850_000
    app_users: int = 3
    key_index_seconds: float = DEFAULT_DELAY
    language_code: int = 1033

    def __post_init__(self) -> None:
        if self.latency not in {"realistic", "zero"}:
            raise ValueError(f"latency must be 'realistic' or 'zero', not {self.latency!r}")
        if not self.time_scale > 0:
            raise ValueError("time_scale must be positive")
        if self.token_lifetime < 1:
            raise ValueError("token_lifetime must be at least 1 second")
        if self.key_index_seconds < 0:
            raise ValueError("key_index_seconds must not be negative")


def tenant_id_for(seed: int) -> str:
    """The emulated tenant's id: stable for a seed."""
    rng = random.Random(f"tenant:{seed}")  # noqa: S311 - an id, not a secret
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


class Emulator:
    """State plus the handler chain.

    Attributes:
        options: The options it was built with.
        users: Registered application users.
        tenant_id: The emulated tenant.
        env: The Dataverse environment (catalog + records).
        tokens: Issued tokens and revocations.
        budgets: Per-user service protection windows.
        faults: Active fault rules.
        counters: What happened since start or reset.
    """

    def __init__(
        self,
        options: Options,
        users: Users,
        *,
        environment: Environment | None = None,
        wire_handler: WireHandler | None = None,
    ) -> None:
        self.options = options
        self.users = users
        self.tenant_id = tenant_id_for(options.seed)
        self.env = (
            Environment.create(
                entities_file=options.entities_file,
                seed=options.seed,
                users=list(users),
                key_index_delay=options.key_index_seconds * options.time_scale,
                language_code=options.language_code,
            )
            if environment is None
            else environment
        )
        self.tokens = TokenService(self.tenant_id, options.token_lifetime)
        self.budgets = Budgets(options.limits, options.time_scale)
        self.faults = Faults(options.faults, options.seed)
        self.counters = Counters()
        handle_wire = wire_handler or wire.handle
        env = self.env

        async def wire_layer(request: Request) -> Response:
            return handle_wire(request, env)

        protection = ServiceProtection(
            self.budgets,
            options.costs,
            wire_layer,
            options.time_scale,
            enforce=options.latency == "realistic",
            counters=self.counters,
        )
        auth = BearerAuth(
            self.tokens,
            users,
            self.counters,
            protection,
            dop_hint=lambda: self.budgets.limits.dop_hint,
        )
        faults = FaultLayer(
            self.faults,
            self.tokens,
            self.counters,
            auth,
            options.time_scale,
            dop_hint=lambda: self.budgets.limits.dop_hint,
        )
        authority = Authority(self.tenant_id, users, self.tokens, self.counters, faults)
        token_faults = FaultLayer(
            self.faults, self.tokens, self.counters, authority, options.time_scale, token_phase=True
        )
        self._chain = Control(self, token_faults)

    async def handle(self, request: Request) -> Response:
        """Run the chain; count the outcome; turn any exception into a Dataverse 500."""
        try:
            with collation.language(self.env.language_code):
                response = await self._chain(request)
        except Exception:
            logger.exception("unhandled error on %s %s", request.method, request.path)
            response = fault_response(unexpected_server_error())
        kind = request.context.get("operation_kind") or classify(request.method, request.path)
        if kind != "control":
            outcome = "reset" if response.abort else str(response.status)
            self.counters.requests[kind, outcome] += 1
            if "operation_count" in request.context:
                self.counters.operations[kind] += int(request.context["operation_count"])
            if response.status == 429:
                self.counters.throttled += 1
        return response

    def reset(self) -> None:
        """Back to the start-up state.

        Records, fault rules, budgets and limits, counters, token revocations and users.
        """
        self.env.reset()
        self.faults.reset()
        self.budgets.clear()
        self.counters.clear()
        self.tokens.clear_revocations()
        self.users.restore()
