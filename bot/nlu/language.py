"""Per-message language: function words plus the words this knowledge base uses in one language only,
then, when the words do not decide, Telegram's language_code, then character n-grams.

The knowledge base is a parallel corpus written by this project (every answer, phrasing and pattern exists
in Spanish and English), so a word found in only one language's texts is evidence for that language, and
its character 1-4-grams make a small naive-Bayes model for words it never used ("nope", "understood").
Chosen over py3langid and lingua by accuracy, memory and latency (training/evaluate_chat.py --languages).
"""

from __future__ import annotations

import math
import re
from collections import Counter

from inference.text import _FUNCTION_WORDS, _STEMMERS, fold, tokens

from ..knowledge import LANGS, KnowledgeBase


def _texts(kb: KnowledgeBase, lang: str) -> list[str]:
    out = [p for by_lang in kb.phrasings.values() for p in by_lang.get(lang, ())]
    out += [p for it in kb.intents.values() for p in it.patterns.get(lang, ()) + it.responses.get(lang, ())]
    for file in kb.topics.values():
        out += list(file.lexicon.get(lang, ())) + [getattr(a, lang) for a in file.answers.values()]
        out.append(file.names.get(lang, ""))
    return out


class LanguageGuesser:
    def __init__(self, kb: KnowledgeBase) -> None:
        counts = {lang: Counter(w for text in _texts(kb, lang) for w in tokens(text)) for lang in LANGS}
        self.words: dict[str, frozenset[str]] = {}
        for lang in LANGS:
            other = counts["en" if lang == "es" else "es"]
            own = {w for w, c in counts[lang].items() if other[w] == 0 and len(w) > 1 and not w.isdigit()}
            self.words[lang] = frozenset(own | _FUNCTION_WORDS[lang])
        # a word on both lists (a function word of one language that the other's texts also use) decides nothing
        both = self.words["es"] & self.words["en"]
        self.words = {lang: ws - both for lang, ws in self.words.items()}

        self.grams = {lang: Counter(g for text in _texts(kb, lang) for g in _grams(text)) for lang in LANGS}
        self.totals = {lang: sum(c.values()) for lang, c in self.grams.items()}
        self.distinct = len(set(self.grams["es"]) | set(self.grams["en"]))

    def ngram_guess(self, text: str) -> str:
        """Naive Bayes over character 1-4-grams (add-0.5 smoothing), Spanish on an exact tie."""
        grams = _grams(text)
        score = {lang: sum(math.log((self.grams[lang][g] + 0.5) / (self.totals[lang] + 0.5 * self.distinct))
                           for g in grams) for lang in LANGS}
        return "en" if score["en"] > score["es"] else "es"

    def scores(self, text: str) -> dict[str, int]:
        words = tokens(text)
        return {lang: sum(w in self.words[lang] for w in words) for lang in LANGS}

    def guess(self, text: str, language_code: str | None = None, default: str = "es") -> str:
        """The language the text is clearly in (more words of it); else Telegram's language_code; else n-grams.

        `default` answers only a message with no letters at all.
        """
        scores = self.scores(text)
        words = len(tokens(text))
        best = max(scores.values())
        # "Clearly": the winning language's words are a fair share of the message, so one English-looking
        # word in German ("Was ist ein Hirntumor…") does not beat the user's locale.
        if scores["es"] != scores["en"] and best >= CLEAR_SHARE * words:
            return "es" if scores["es"] > scores["en"] else "en"
        code = (language_code or "").lower()[:2]
        if code in _STEMMERS:
            return code
        return self.ngram_guess(text) if _LETTERS.search(fold(text)) else default


CLEAR_SHARE = 0.25
_LETTERS = re.compile(r"[a-z]")
_NOT_LETTERS = re.compile(r"[^a-z]+")
_RUNS = re.compile(r"([a-z])\1{2,}")


def _grams(text: str) -> list[str]:
    plain = " " + _RUNS.sub(r"\1", _NOT_LETTERS.sub(" ", fold(text))).strip() + " "
    return [plain[i:i + n] for n in (1, 2, 3, 4) for i in range(len(plain) - n + 1)]
