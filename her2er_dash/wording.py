"""Counts and chance expectations in words, so that no sentence of the app says "1 patients",
"0 arm(s)" or "about 0.1 false positives" for one test.

Pure helpers (no Streamlit): used by the pages and by the package's own messages.
"""

from __future__ import annotations

from numbers import Real

_VOWELS = frozenset("aeiou")


def plural(noun: str) -> str:
    """The English plural of a regular noun: "study" -> "studies", "patient ID" -> "patient IDs"."""
    if noun.endswith("y") and len(noun) > 1 and noun[-2].lower() not in _VOWELS:
        return noun[:-1] + "ies"
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    return noun + "s"


def count(n: Real, noun: str, plural_form: str | None = None) -> str:
    """``n`` and the noun in the right number, thousands separated: "1 arm", "0 arms",
    "1,675 patients", "2 studies". ``plural_form`` for irregular nouns."""
    word = noun if n == 1 else (plural_form or plural(noun))
    number = f"{n:,}" if isinstance(n, int) or float(n).is_integer() else f"{n:g}"
    return f"{number.removesuffix('.0')} {word}"


def expected_by_chance(tests: int, alpha: float = 0.05) -> str:
    """How many of ``tests`` independent tests are expected below ``alpha`` by chance alone,
    written as a reader expects: 0.05 for one test at 5%, 0.15 for three, 1 for twenty."""
    expected = tests * alpha
    return f"{expected:.2f}".rstrip("0").rstrip(".") if expected < 10 else f"{expected:.0f}"


__all__ = ["count", "expected_by_chance", "plural"]
