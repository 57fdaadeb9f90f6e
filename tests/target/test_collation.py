"""The target's collation table and folding (pure; Learn, "Language collations", §3.10)."""

from __future__ import annotations

import pytest

from dataverse_emulator.state import collation as emulator_collation
from target_dynamics.collation import (
    ACCENT_INSENSITIVE,
    ACCENT_SENSITIVE,
    DEFAULT,
    Collation,
    of_language,
)

AS = Collation(accent_sensitive=True)


def test_the_target_and_the_emulator_copy_the_same_table():
    """Two copies of Learn's table (the target never imports the emulator): they agree."""
    assert emulator_collation.ACCENT_SENSITIVE == ACCENT_SENSITIVE
    assert emulator_collation.ACCENT_INSENSITIVE == ACCENT_INSENSITIVE


@pytest.mark.parametrize(
    ("language", "expected"),
    [(1033, DEFAULT), (3082, DEFAULT), (1035, AS), (1053, AS), (3081, AS), (9999, None)],
)
def test_of_language(language, expected):
    """English and Spanish ``_CI_AI``; Finnish, Swedish, English (Australia) ``_CI_AS``; an
    unlisted LCID has no known collation."""
    assert of_language(language) == expected


@pytest.mark.parametrize(
    ("text", "insensitive", "sensitive"),
    [
        ("Ann@X.org", "ann@x.org", "ann@x.org"),
        ("José", "jose", "josé"),
        ("JOSÉ", "jose", "josé"),
        ("Jose\u0301", "jose", "josé"),  # decomposed accent: the same letter as precomposed
        ("Straße", "strasse", "strasse"),
        ("\uff2a\uff4f\uff53\uff45", "jose", "jose"),  # full-width compatibility forms
    ],
)
def test_fold(text, insensitive, sensitive):
    """Case always folds; accents only under ``_CI_AI``; ASCII folds alike under both."""
    assert DEFAULT.fold(text) == insensitive
    assert AS.fold(text) == sensitive


def test_key_id_keeps_accent_variants_apart_only_when_accents_matter():
    """One identity for "José" and "jose" under ``_CI_AI``, two under ``_CI_AS``; composite keys
    compare column by column, in any order; unhashable values still give an identity."""
    assert DEFAULT.key_id({"k": "José"}) == DEFAULT.key_id({"k": "jose"})
    assert AS.key_id({"k": "José"}) != AS.key_id({"k": "jose"})
    assert AS.key_id({"a": "X", "b": 1}) == AS.key_id({"b": 1, "a": "x"})
    assert DEFAULT.key_id({"k": [1, 2]}) == (("k", "[1, 2]"),)
