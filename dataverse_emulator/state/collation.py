"""How Dataverse compares text: the database collation, case- and accent-insensitive (pure).

The collation comes from the environment's base language and cannot be changed. Every language
is case-insensitive (``_CI``); English (1033) and most others are also accent-insensitive
(``_AI``): "Cafe", "cafe" and "café" are the same word in key uniqueness, key lookups and
``$filter`` comparisons. The few accent-sensitive (``_CI_AS``) languages, such as 1035 Finnish,
are not modelled (docs/dataverse.md §3.10,
https://learn.microsoft.com/power-platform/admin/language-collations).
"""

from __future__ import annotations

import typing as t
import unicodedata


def fold(text: str) -> str:
    """``text`` as the default collation compares it: accents stripped, case-folded."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFKC", bare.casefold())


def key_value(value: t.Any) -> t.Any:
    """A column value as a unique index compares it: strings folded, others as they are."""
    return fold(value) if isinstance(value, str) else value
