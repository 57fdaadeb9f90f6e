"""``python -m target_dynamics``: the same CLI as ``target-dynamics``."""

from __future__ import annotations

from target_dynamics.target import TargetDynamics

TargetDynamics.cli()
