"""How the environment compares text in keys: the collation of its base language (§3.10).

Microsoft Learn, "Language collations"
(https://learn.microsoft.com/power-platform/admin/language-collations): the base language chosen
when the environment is created fixes its SQL collation for good. Every language is
case-insensitive; most are also accent-insensitive (``_CI_AI``: "José" and "jose" are one key
value), the languages in :data:`ACCENT_SENSITIVE` are not (``_CI_AS``: two key values).

The target reads the base language once per run (:func:`read_collation`) and hands the
:class:`Collation` to everything that compares key values (writer, identity, lists, associations,
mirror), so two records are merged, and a row a lookup returns is recognised, exactly when the
service would treat their keys as one.
"""

from __future__ import annotations

import logging
import typing as t
import unicodedata
import uuid
from dataclasses import dataclass

from target_dynamics.errors import WebApiError

if t.TYPE_CHECKING:
    from collections.abc import Mapping

    from target_dynamics.writer import Transport

LOGGER = logging.getLogger(__name__)

ACCENT_INSENSITIVE = frozenset(
    {1025, 1026, 1027, 1028, 1029, 1030, 1031, 1032, 1033, 1036, 1037, 1038, 1040, 1041, 1042}
    | {1043, 1044, 1045, 1046, 1049, 1055, 2052, 2070, 3076, 3082, 3084, 3098, 4108}
)
"""Base languages (LCID) whose collation Learn's table lists as ``_CI_AI``."""
ACCENT_SENSITIVE = frozenset(
    {1035, 1048, 1050, 1051, 1053, 1054, 1057, 1058, 1060, 1061, 1062, 1063, 1066, 1069}
    | {1081, 1086, 1087, 1110, 2055, 2064, 2074, 3079, 3081}
)
"""Base languages (LCID) whose collation Learn's table lists as ``_CI_AS``."""
ORGANIZATION_QUERY = "organizations?$select=languagecode"
"""Where the base language is read (the environment's one ``organization`` row)."""

KeyId = tuple[tuple[str, t.Any], ...]
"""A hashable identity of key values (:meth:`Collation.key_id`)."""


@dataclass(frozen=True, slots=True)
class Collation:
    """Text comparison of one environment: case-insensitive, accent-insensitive unless told."""

    accent_sensitive: bool = False

    @property
    def suffix(self) -> str:
        """``_CI_AS`` or ``_CI_AI``."""
        return "_CI_AS" if self.accent_sensitive else "_CI_AI"

    def fold(self, text: str) -> str:
        """``text`` as the collation compares it: case-folded; accents stripped if ``_AI``.

        ASCII text folds as ``str.casefold`` does under both, so the ids of ASCII keys
        (:func:`identity.key_guid`) never depend on the language.
        """
        if text.isascii():
            return text.casefold()
        if self.accent_sensitive:
            return unicodedata.normalize("NFKC", text.casefold())
        decomposed = unicodedata.normalize("NFKD", text)
        bare = "".join(c for c in decomposed if not unicodedata.combining(c))
        return unicodedata.normalize("NFKC", bare.casefold())

    def norm(self, value: t.Any) -> t.Any:
        """``value`` as a key compares it: strings folded (:meth:`fold`), GUIDs as text."""
        if isinstance(value, str):
            return self.fold(value)
        if isinstance(value, uuid.UUID):
            return str(value)
        return value

    def key_id(self, key: Mapping[str, t.Any]) -> KeyId:
        """A hashable identity of key values: equal exactly when the service's are."""
        if len(key) == 1:  # the common case, on the hot path: ASCII text folds inline
            ((column, value),) = key.items()
            if type(value) is str and value.isascii():
                return ((column, value.casefold()),)
            return ((column, self._hashable(value)),)
        return tuple(sorted((column, self._hashable(value)) for column, value in key.items()))

    def _hashable(self, value: t.Any) -> t.Any:
        if type(value) is str:
            return self.fold(value)
        value = self.norm(value)
        try:
            hash(value)
        except TypeError:
            return repr(value)
        return value


DEFAULT = Collation()
"""Dataverse's default collation (``_CI_AI``, English and most languages)."""


def of_language(language_code: int) -> Collation | None:
    """The collation of a base language; None for one Learn's table does not list."""
    if language_code in ACCENT_SENSITIVE:
        return Collation(accent_sensitive=True)
    if language_code in ACCENT_INSENSITIVE:
        return DEFAULT
    return None


def read_collation(client: Transport) -> Collation:
    """The collation of the environment's base language, read once per run.

    A base language that cannot be read (the service refused the query) or that Learn's table
    does not list leaves the default, accent-insensitive collation, with one warning: the run
    goes on, comparing keys as most environments do. Failures no write could survive either
    (no token, the service unreachable) are raised, as the first write would raise them.
    """
    try:
        rows = client.get_json(ORGANIZATION_QUERY).get("value", [])
        code = rows[0].get("languagecode") if rows else None
    except WebApiError as error:
        LOGGER.warning(
            "Could not read the environment's base language (%s): comparing key values "
            "accent-insensitively (_CI_AI, Dataverse's default); on an accent-sensitive "
            "environment, grant the application user read access to the organization table",
            error,
        )
        return DEFAULT
    found = of_language(code) if isinstance(code, int) else None
    if found is None:
        LOGGER.warning(
            "The environment's base language %r is not in Microsoft Learn's 'Language "
            "collations' table: comparing key values accent-insensitively (_CI_AI, Dataverse's "
            "default)",
            code,
        )
        return DEFAULT
    LOGGER.info("Base language %s: key values compare as %s", code, found.suffix)
    return found
