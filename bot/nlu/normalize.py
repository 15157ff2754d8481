"""One normal form of a message for the rule-based parts (red flags, topic lexicon): folded, plain words."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from inference.text import nearest_word

MAX_CHARS = 4096  # a whole Telegram message: a red flag at its end still counts

_NON_WORD = re.compile(r"[^a-z0-9]+")
_REPEATS = re.compile(r"([a-z])\1{2,}")
# "can't" folds to "can t": join the pieces so one spelling serves with and without the apostrophe.
_CONTRACTIONS = re.compile(r"\b(can|isn|won|don|doesn|didn|wasn|aren|couldn|wouldn|shouldn|haven|hasn|ain|weren"
                           r"|i|he|she|it|that|there|what|you|we|they|let)\s+(t|s|m|re|ve|ll|d)\b")


def normalize(text: str) -> str:
    """Lower-case, no accents, punctuation as spaces, contractions joined, letter runs of 3+ collapsed."""
    decomposed = unicodedata.normalize("NFKD", text[:MAX_CHARS].lower())
    plain = _NON_WORD.sub(" ", "".join(ch for ch in decomposed if not unicodedata.combining(ch)))
    plain = _REPEATS.sub(r"\1", plain)
    return _CONTRACTIONS.sub(r"\1\2", plain).strip()


class TypoRepair:
    """Map an unknown word to the nearest word of a small vocabulary (same first letter).

    Edit distance ≤ 1 for 5–7 letters, ≤ 2 from 8; words shorter than 5 or already known stay as they are,
    so "he" never becomes "hey".
    """

    def __init__(self, targets: set[str], known: set[str]) -> None:
        self.targets = frozenset(w for w in targets if len(w) >= 5)
        self.known = frozenset(known) | self.targets
        # In a fixed order, so a tie between two equally near words goes the same way in every process (a set's
        # order follows the string hash, which Python salts per process: webhook workers disagreed on ties).
        self._by_letter: dict[str, list[str]] = {}
        for w in sorted(self.targets):
            self._by_letter.setdefault(w[0], []).append(w)

    def text(self, normal: str) -> str:
        return " ".join(self.word(w) for w in normal.split())

    def word(self, word: str) -> str:
        if len(word) < 5 or word in self.known or word.isdigit():
            return word
        return _nearest(word, self)

    def __hash__(self) -> int:
        return id(self)


@lru_cache(maxsize=20_000)
def _nearest(word: str, repair: TypoRepair) -> str:
    return nearest_word(word, repair._by_letter.get(word[0], ()), budget=1 if len(word) < 8 else 2)
