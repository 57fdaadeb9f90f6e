r"""Fault-rule path patterns that cannot freeze the emulator (``docs/emulator-faults.md``).

Python's ``re`` backtracks and has no timeout, so a pattern such as ``(a+)+$`` or ``.*a.*a.*b``
can run for hours on one request path while the whole server (control API included) waits. A
rule's ``path`` is therefore checked when the rule is created; refused are:

- patterns longer than :data:`MAX_LENGTH` characters;
- backreferences, lookarounds and conditional groups;
- a repeated group that itself holds a repeat or an alternation (``(a+)+``, ``(a|ab)*``);
- more than one *wide* repeat (``*``, ``+``, or ``{m,n}`` with ``n`` above :data:`WIDE`): one
  keeps a search linear per start position, two make it cubic in the path length;
- narrow optional repeats (``?``, ``{m,n}``) whose choices multiply beyond :data:`WIDE`
  (fixed counts such as ``\d{4}`` offer no choice and are free).

Example:
    >>> path_pattern("UpdateMultiple|batch").search("/api/data/v9.2/$batch") is not None
    True
    >>> path_pattern("(a+)+$")
    Traceback (most recent call last):
    ...
    ValueError: path '(a+)+$' may backtrack catastrophically: repeat of a repeat or alternation
"""

from __future__ import annotations

import re
import typing as t

# The parse tree is the only way to inspect a pattern. typeshed types only the deprecated aliases
# sre_constants / sre_parse (importing them warns), not these modules, hence the two ignores.
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser  # type: ignore[attr-defined]

MAX_LENGTH = 200
WIDE = 16
_REPEATS = frozenset({sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT})
_REFUSED = {
    sre.GROUPREF: "backreferences",
    sre.GROUPREF_EXISTS: "conditional groups",
    sre.ASSERT: "lookarounds",
    sre.ASSERT_NOT: "lookarounds",
}


def path_pattern(text: str) -> re.Pattern[str]:
    """Compile a fault rule's ``path``, refusing patterns that may backtrack catastrophically.

    Raises:
        ValueError: The pattern is invalid, too long, or could blow up (the message says why).
    """
    if len(text) > MAX_LENGTH:
        raise ValueError(f"path is longer than {MAX_LENGTH} characters")
    try:
        pattern = re.compile(text)
        tree = _parser.parse(text)
    except re.error as exc:
        raise ValueError(f"path is not a regular expression: {exc}") from exc
    problem = _problem(tree)
    wide, choices = _choices(tree)
    if problem is None and wide > 1:
        problem = "more than one '*', '+' or wide '{m,n}' repeat"
    if problem is None and choices > WIDE:
        problem = f"optional repeats offer more than {WIDE} combinations"
    if problem is not None:
        raise ValueError(f"path {text!r} may backtrack catastrophically: {problem}")
    return pattern


def _children(tree: t.Any) -> t.Iterator[t.Any]:
    """The sub-patterns directly below each node of ``tree``."""
    for op, av in tree:
        if op in _REPEATS:
            yield av[2]
        elif op is sre.SUBPATTERN:
            yield av[3]
        elif op is sre.BRANCH:
            yield from av[1]
        elif op in {sre.ATOMIC_GROUP, sre.ASSERT, sre.ASSERT_NOT}:
            yield av if op is sre.ATOMIC_GROUP else av[1]


def _problem(tree: t.Any) -> str | None:
    for op, av in tree:
        if op in _REFUSED:
            return f"{_REFUSED[op]} are not allowed"
        if op in _REPEATS and av[1] > 1 and _holds_choice(av[2]):
            return "repeat of a repeat or alternation"
    return next((p for child in _children(tree) if (p := _problem(child)) is not None), None)


def _holds_choice(tree: t.Any) -> bool:
    """Whether ``tree`` holds a repeat or an alternation (ways to match the same text twice)."""
    if any(op is sre.BRANCH or (op in _REPEATS and av[1] > 1) for op, av in tree):
        return True
    return any(_holds_choice(child) for child in _children(tree))


def _choices(tree: t.Any) -> tuple[int, int]:
    """Count wide repeats and multiply the choices of narrow ones, through the whole tree."""
    wide, choices = 0, 1
    for op, av in tree:
        if op in _REPEATS and av[0] < av[1]:
            if av[1] > WIDE:
                wide += 1
            else:
                choices *= av[1] - av[0] + 1
    for child in _children(tree):
        more_wide, more_choices = _choices(child)
        wide, choices = wide + more_wide, choices * more_choices
    return wide, choices
