"""How Dataverse compares text: the database collation of the environment's base language.

Microsoft Learn, "Language collations" (https://learn.microsoft.com/power-platform/admin/language-collations):
the collation comes from the base language chosen when the environment is created and cannot be
changed. Every language is case-insensitive (``_CI``); English (1033) and many others are also
accent-insensitive (``_CI_AI``: "Cafe", "cafe" and "café" are one word), the languages in
:data:`ACCENT_SENSITIVE` are accent-sensitive (``_CI_AS``: "cafe" and "café" differ). The
collation governs key uniqueness, key lookups, ``$filter`` comparisons and sorting
(docs/dataverse.md §3.10).

The collation in force is a context variable: :class:`~dataverse_emulator.app.Emulator` sets its
environment's for each request (:func:`language`), so emulators of different languages can share
a process. Outside any request it is ``_CI_AI``.
"""

from __future__ import annotations

import contextlib
import contextvars
import typing as t
import unicodedata

if t.TYPE_CHECKING:
    from collections.abc import Iterator

ACCENT_INSENSITIVE = frozenset(
    {1025, 1026, 1027, 1028, 1029, 1030, 1031, 1032, 1033, 1036, 1037, 1038, 1040, 1041, 1042}
    | {1043, 1044, 1045, 1046, 1049, 1055, 2052, 2070, 3076, 3082, 3084, 3098, 4108}
)
"""Base languages (LCID) whose collation is ``_CI_AI``, as Learn's table lists them."""
ACCENT_SENSITIVE = frozenset(
    {1035, 1048, 1050, 1051, 1053, 1054, 1057, 1058, 1060, 1061, 1062, 1063, 1066, 1069}
    | {1081, 1086, 1087, 1110, 2055, 2064, 2074, 3079, 3081}
)
"""Base languages (LCID) whose collation is ``_CI_AS``, as Learn's table lists them."""
LANGUAGES = ACCENT_INSENSITIVE | ACCENT_SENSITIVE

_accents_matter: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "accent_sensitive", default=False
)


def suffix(language_code: int) -> str:
    """``_CI_AS`` or ``_CI_AI``, the collation of a base language.

    Raises:
        ValueError: for a language Learn's table does not list.
    """
    if language_code not in LANGUAGES:
        msg = (
            f"{language_code} is not a Dataverse base language (Microsoft Learn, "
            "'Language collations', lists e.g. 1033 English, 1035 Finnish, 3082 Spanish)"
        )
        raise ValueError(msg)
    return "_CI_AS" if language_code in ACCENT_SENSITIVE else "_CI_AI"


@contextlib.contextmanager
def language(language_code: int) -> Iterator[None]:
    """Compare text as the collation of ``language_code`` does inside the block."""
    token = _accents_matter.set(language_code in ACCENT_SENSITIVE)
    try:
        yield
    finally:
        _accents_matter.reset(token)


def fold(text: str) -> str:
    """``text`` as the collation in force compares it: case-folded, accents stripped if ``_AI``."""
    if _accents_matter.get():
        return unicodedata.normalize("NFKC", text.casefold())
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFKC", bare.casefold())


def key_value(value: t.Any) -> t.Any:
    """A column value as a unique index compares it: strings folded, others as they are."""
    return fold(value) if isinstance(value, str) else value
