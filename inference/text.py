"""Offline NLTK text features for the intent model: fold, tokenize, stem, fix typos.

Needs no downloaded NLTK data: a regexp tokenizer and the Snowball stemmers ship
inside the nltk package. Training (`training.train_intents`) imports this module,
so features are computed identically at training and serving time.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # numpy is imported lazily, by vectorize only
    import numpy as np
    from numpy.typing import NDArray

# Packages whose __init__ the light import below skips (parents first).
_NLTK_PACKAGES = ("nltk", "nltk.corpus", "nltk.metrics", "nltk.stem", "nltk.tokenize")


class Stemmer(Protocol):
    """What is used of an NLTK Snowball stemmer (nltk ships no type information)."""

    def stem(self, token: str) -> str: ...


class Tokenizer(Protocol):
    """What is used of an NLTK RegexpTokenizer."""

    def tokenize(self, text: str) -> list[str]: ...


class EditDistance(Protocol):
    """NLTK's edit_distance, as it is called here and in bot.nlu."""

    def __call__(self, s1: str, s2: str, substitution_cost: int = 1, transpositions: bool = False) -> int: ...


def _import_nltk_parts() -> tuple[Callable[[str], Stemmer], EditDistance, Callable[[str], Tokenizer]]:
    """NLTK's own SnowballStemmer, edit_distance and RegexpTokenizer, without running `nltk/__init__`.

    Any `import nltk.x` first executes nltk/__init__, which imports all of NLTK (parsers, corpus
    readers, classifiers -- and scikit-learn and SciPy whenever they are installed) for three classes:
    the bot's RSS after start was 139 MB with it, 126 MB without, in a runtime-only install (241 vs
    128 MB in the dev venv, where nltk pulls in scikit-learn and SciPy). So the
    package `__init__`s are stood in for by empty modules while these three modules (and the few
    NLTK modules they import) load, and afterwards every NLTK module loaded this way leaves
    `sys.modules`: a later `import nltk` anywhere gets the whole, normal package. The stemmers
    are NLTK's code, unchanged. If NLTK is already imported, or its layout ever stops fitting,
    the ordinary import is used.
    """
    if "nltk" not in sys.modules:
        before = set(sys.modules)
        try:
            for name in _NLTK_PACKAGES:
                spec = importlib.util.find_spec(name)
                if spec is None:
                    raise ImportError(name)
                sys.modules[name] = importlib.util.module_from_spec(spec)
            vars(sys.modules["nltk.corpus"])["stopwords"] = None  # read only with ignore_stopwords=True, never used here
            snowball = importlib.import_module("nltk.stem.snowball")
            distance = importlib.import_module("nltk.metrics.distance")
            regexp = importlib.import_module("nltk.tokenize.regexp")
            return snowball.SnowballStemmer, distance.edit_distance, regexp.RegexpTokenizer
        except (ImportError, AttributeError):
            pass  # fall through to the ordinary import
        finally:
            for name in set(sys.modules) - before:
                if name == "nltk" or name.startswith("nltk."):
                    del sys.modules[name]
    from nltk.metrics.distance import edit_distance
    from nltk.stem.snowball import SnowballStemmer
    from nltk.tokenize import RegexpTokenizer

    return SnowballStemmer, edit_distance, RegexpTokenizer


SnowballStemmer, edit_distance, RegexpTokenizer = _import_nltk_parts()

MAX_CHARS = 1000
_TOKENIZER = RegexpTokenizer(r"[a-z]+|\d+")
_STEMMERS = {"es": SnowballStemmer("spanish"), "en": SnowballStemmer("english")}

# Frequent words that belong to one language only (no "me", "a", "no", "son", "he": both languages use them),
# counted to guess the language of a message (measured against language-ID libraries in training/evaluate_chat.py).
_FUNCTION_WORDS = {
    "es": set("el la los las un una unos unas de del que y o u en es por para con sin mi mis te se lo le les su sus "
              "al como cual cuales donde cuando cuanto cuanta cuantos cuantas porque pero muy mas tengo tiene tienen "
              "tienes hay esta estoy estan estas puede puedo pueden puedes hola gracias quien sirve hacer hago dolor "
              "cabeza sintomas tratamiento trata ese esa eso esto este estos mucho muchos mucha poco tambien ya aqui "
              "hace hacen ser estar fue era sea soy eres dime dice dijo dijeron vale bueno buenas buenos dias noches "
              "tardes adios hasta luego favor hijo hija madre padre mama papa abuelo abuela hermano hermana marido "
              "esposa nino nina ninos pronostico cerebro cerebral resonancia informe medico vida si nada algo alguien "
              "otra otro otros despues antes ahora siempre nunca tumores peligroso grave cancer significa quiere "
              "decir pasa tiempo cuanto dura operar operacion cirugia salir sale vuelve volver yo tu usted ellos "
              "nos nuestro vez veces entre sobre desde mejor peor malo mala bien".split()),
    "en": set("the an of and or in is are was were be been by for with without my you your it its to what which "
              "where when why how but very more have has had there this that these those can could do does did "
              "hello hi hey thanks thank who brain headache symptoms tumour treated treatment cure tell about mean "
              "means please should would will get got if not dont im ive whats isnt cant wont i mum mom dad son "
              "daughter wife husband brother sister kid kids child children grandma grandpa doctor scan life yes am "
              "so just also any some after before long much many need know think want like from at on up out all "
              "than then them they we our us she her him his one here now well bad serious dangerous surgery come "
              "back again still cancer my chances survive survival".split()),
}
# "cancer" is written the same in both languages: keep it only where the other words decide.
_FUNCTION_WORDS["en"].discard("cancer")
_FUNCTION_WORDS["es"].discard("cancer")


def fold(text: str) -> str:
    """Lower-case, strip accents and control characters, collapse whitespace, truncate."""
    text = text[:MAX_CHARS * 4]
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch) and unicodedata.category(ch)[0] != "C" or ch in " \n")
    return re.sub(r"\s+", " ", text.lower()).strip()[:MAX_CHARS]


def tokens(text: str) -> list[str]:
    return _TOKENIZER.tokenize(fold(text))


def language_scores(text: str) -> dict[str, int]:
    """How many words of the message belong to each language's function-word list."""
    words = tokens(text)
    return {lang: sum(w in vocab for w in words) for lang, vocab in _FUNCTION_WORDS.items()}


def detect_language(text: str, language_code: str | None = None, default: str = "es") -> str:
    """The language the message is clearly written in; else Telegram's language_code; else `default`.

    Clearly: more of one language's function words than the other's (a tie is not clear), so "tell me about
    meningioma" is English whatever the user's Telegram locale says, and "glioma?" follows the locale.
    """
    scores = language_scores(text)
    if scores["en"] != scores["es"]:
        return "en" if scores["en"] > scores["es"] else "es"
    code = (language_code or "").lower()[:2]
    return code if code in _STEMMERS else default


@lru_cache(maxsize=4096)
def stem(word: str, lang: str) -> str:
    """NLTK's Snowball stem, memoised: every message stems each word for both languages' red flags."""
    return _STEMMERS[lang].stem(word)


def nearest_word(word: str, candidates: Iterable[str], budget: int) -> str:
    """The first of `candidates` nearest to `word` within `budget` edits (a swap of two letters is one), else
    `word`. Callers pass candidates in a fixed order, so ties go the same way in every process."""
    best, best_d = word, budget + 1
    for candidate in candidates:
        if abs(len(candidate) - len(word)) > budget:
            continue
        d = edit_distance(word, candidate, transpositions=True)
        if d < best_d:
            best, best_d = candidate, d
    return best


@dataclass(frozen=True)
class Vocabulary:
    """Feature names (stems, stem bigrams, language) and the known surface words for typo repair."""

    features: tuple[str, ...]
    words: dict[str, tuple[str, ...]]  # lang -> known folded words
    # Derived in __post_init__: not arguments, and left out of repr and comparisons.
    _index: dict[str, int] = field(init=False, repr=False, compare=False)
    _known: dict[str, frozenset[str]] = field(init=False, repr=False, compare=False)
    _buckets: dict[tuple[str, str], list[str]] = field(init=False, repr=False, compare=False)
    _repaired: dict[tuple[str, str], str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {f: i for i, f in enumerate(self.features)})
        object.__setattr__(self, "_known", {lang: frozenset(ws) for lang, ws in self.words.items()})
        buckets: dict[tuple[str, str], list[str]] = {}
        for lang, ws in self.words.items():
            for w in ws:
                buckets.setdefault((lang, w[:1]), []).append(w)
        object.__setattr__(self, "_buckets", buckets)
        object.__setattr__(self, "_repaired", {})

    @property
    def index(self) -> dict[str, int]:
        return self._index

    def repair(self, word: str, lang: str) -> str:
        """Map an unknown word to the nearest known one with the same first letter.

        Edit distance ≤ 1 (≤ 2 for words of 7+ letters); results are memoised.
        """
        key = (word, lang)
        cache = self._repaired
        if key not in cache:
            if len(cache) > 50_000:
                cache.clear()
            cache[key] = self._nearest(word, lang)
        return cache[key]

    def _nearest(self, word: str, lang: str) -> str:
        if word in self._known.get(lang, ()) or len(word) < 4 or word.isdigit():
            return word
        return nearest_word(word, self._buckets.get((lang, word[:1]), ()), budget=1 if len(word) < 7 else 2)

    def to_json(self) -> dict[str, Any]:
        return {"features": list(self.features), "words": {k: list(v) for k, v in self.words.items()}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Vocabulary:
        return cls(tuple(data["features"]), {k: tuple(v) for k, v in data["words"].items()})


def feature_names(text: str, lang: str, vocab: Vocabulary | None = None) -> list[str]:
    """Stems and stem bigrams of a message (after typo repair when a vocabulary is given)."""
    words = tokens(text)
    if vocab is not None:
        words = [vocab.repair(w, lang) for w in words]
    stems = [stem(w, lang) for w in words]
    return stems + [f"{a}_{b}" for a, b in zip(stems, stems[1:])]


def build_vocabulary(samples: list[tuple[str, str]], min_count: int = 1) -> Vocabulary:
    from collections import Counter

    counts: Counter[str] = Counter()
    words: dict[str, set[str]] = {lang: set() for lang in _STEMMERS}
    for text, lang in samples:
        words[lang].update(tokens(text))
        counts.update(set(feature_names(text, lang)))
    features = sorted(f for f, c in counts.items() if c >= min_count)
    return Vocabulary(tuple(features), {lang: tuple(sorted(ws)) for lang, ws in words.items()})


def vectorize(text: str, lang: str, vocab: Vocabulary) -> NDArray[np.float32]:
    import numpy as np

    vec = np.zeros((len(vocab.features),), dtype=np.float32)
    index = vocab.index
    for name in feature_names(text, lang, vocab):
        i = index.get(name)
        if i is not None:
            vec[i] = 1.0
    return vec
