"""Find the topics a message names, through the topic files' lexicons (names, synonyms, plurals, misspellings).

The same pass masks the topic words with one placeholder, so the question classifier sees "what is a
xtopic" whichever tumour was named and question phrasings are shared across topics. Words that are also
question words ("contrast", "t1", "report") stay visible to the classifier.
"""

from __future__ import annotations

from dataclasses import dataclass

from inference.text import _FUNCTION_WORDS, stem

from ..knowledge import LANGS, KnowledgeBase, Topic
from .normalize import TypoRepair, normalize

# A term of the other language counts only when it cannot be an ordinary word here ("son" is Spanish for "are").
CROSS_LANGUAGE_MIN_CHARS = 6

MASK = "xtopic"
# Generic roots give way to a more specific topic named in the same message ("tumor de hipófisis").
GENERIC = frozenset({Topic.BRAIN_TUMOUR, Topic.MRI})
# Topics whose names are part of what is asked ("how often an MRI after surgery?", "delete my data").
CUE_VISIBLE = frozenset({Topic.MRI, Topic.CT_VS_MRI, Topic.BOT})


@dataclass(frozen=True)
class TopicMatch:
    topics: tuple[Topic, ...]  # in order of first mention, generic roots dropped when a descendant is named
    masked: str  # the normalised message with topic words replaced by MASK
    unknown: tuple[str, ...] = ()  # content words the knowledge base does not know (a hint of another subject)
    generic: bool = False  # only a bare "tumour" / "cancer" was named: a follow-up may mean the current topic
    residue: str = ""  # the normalised words outside every topic mention (question cues are read here)


class TopicFinder:
    def __init__(self, kb: KnowledgeBase, keep: set[str], known: set[str]) -> None:
        """`keep`: question words never masked; `known`: every word the knowledge base uses."""
        self.kb = kb
        self.keep = frozenset(keep)
        depth = {t: len(kb.taxonomy.chain(t)) if kb.taxonomy else 1 for t in Topic}
        own: dict[str, dict[tuple[str, ...], Topic]] = {lang: {} for lang in LANGS}
        self.markers: set[tuple[str, ...]] = set()
        for topic, lang, term, marker in _lexicon_terms(kb):
            key = tuple(normalize(term).split())
            if marker and key:
                self.markers.add(key)
            index = own[lang]
            if key and (key not in index or depth[topic] > depth[index[key]]):
                index[key] = topic
        # Per message language: its own terms, then the other language's unmistakable ones.
        self.indexes: dict[str, dict[tuple[str, ...], Topic]] = {}
        for lang in LANGS:
            merged = {k: v for other in LANGS if other != lang for k, v in own[other].items()
                      if len(k) > 1 or len(k[0]) >= CROSS_LANGUAGE_MIN_CHARS}
            merged.update(own[lang])
            self.indexes[lang] = merged
        self.index = {k: v for index in self.indexes.values() for k, v in index.items()}
        self.longest = max((len(k) for k in self.index), default=1)
        lexicon_words = {w for key in self.index for w in key}
        self.known = frozenset(known) | lexicon_words
        self.repair = TypoRepair(lexicon_words, set(known))
        self.word_repair = TypoRepair(set(known), set())
        self.known_stems = frozenset(stem(w, lang) for w in self.known for lang in LANGS if w.isalpha())

    def find(self, text: str, lang: str = "es") -> TopicMatch:
        index = self.indexes.get(lang, self.index)
        words = [self._base(self.repair.word(w)) for w in normalize(text).split()]
        found: list[Topic] = []
        terms: list[tuple[str, ...]] = []
        out: list[str] = []
        residue: list[str] = []
        i = 0
        while i < len(words):
            for n in range(min(self.longest, len(words) - i), 0, -1):
                topic = index.get(tuple(words[i:i + n]))
                if topic is not None:
                    terms.append(tuple(words[i:i + n]))
                    if topic not in found:
                        found.append(topic)
                    span = [w if w in self.keep else MASK for w in words[i:i + n]]
                    if topic in CUE_VISIBLE or tuple(words[i:i + n]) in self.markers:
                        residue += words[i:i + n]  # "how often an MRI after…", "delete my data", "cabergoline"
                    out += [w for k, w in enumerate(span) if w != MASK or k == 0 or span[k - 1] != MASK]
                    i += n
                    break
            else:
                out.append(words[i])
                residue.append(words[i])
                i += 1
        topics = self._specific(found)
        unknown = tuple(w for w in out if w != MASK and len(w) >= 4 and w.isalpha() and not self._known(w))
        generic = topics == (Topic.BRAIN_TUMOUR,) and all(len(term) == 1 for term in terms)
        return TopicMatch(topics, " ".join(out), unknown, generic, " ".join(residue))

    def _known(self, word: str) -> bool:
        if word in self.known or self.word_repair.word(word) in self.known:
            return True
        return any(stem(word, lang) in self.known_stems for lang in LANGS)

    def _base(self, word: str) -> str:
        """A plural the lexicon lacks ("oligodendrogliomas") as its singular, when that is a lexicon word."""
        if (word,) in self.index or len(word) < 5:
            return word
        for cut in ("es", "s"):
            if word.endswith(cut) and (word[: -len(cut)],) in self.index:
                return word[: -len(cut)]
        return word

    def _specific(self, found: list[Topic]) -> tuple[Topic, ...]:
        if self.kb.taxonomy is None:
            return tuple(found)
        chains = {t: self.kb.taxonomy.chain(t) for t in found}
        return tuple(t for t in found
                     if not (t in GENERIC and any(t in chains[u][1:] for u in found if u != t)))


def _lexicon_terms(kb: KnowledgeBase):
    """(topic, lang, term, is_marker) from every topic file, plus this router's additions (lexicon.json)."""
    for topic, file in kb.topics.items():
        for lang, terms in file.lexicon.items():
            for term in terms:
                yield topic, lang.value, term, False
    if kb.lexicon:
        extra = kb.lexicon
        for section, marker in (("topics", False), ("markers", True)):
            for topic, by_lang in extra.get(section, {}).items():
                if Topic(topic) in kb.topics:
                    for lang, terms in by_lang.items():
                        for term in terms:
                            yield Topic(topic), lang, term, marker


def knowledge_words(kb: KnowledgeBase) -> tuple[set[str], set[str]]:
    """(question words, every known word) of the knowledge base, normalised.

    Question words come from the shared phrasings: inside a topic mention they stay unmasked. Known words
    add the small intents' patterns (not the out-of-scope examples: those name other subjects).
    """
    keep = {w for by_lang in kb.phrasings.values() for texts in by_lang.values() for t in texts
            for w in normalize(t.replace("{t}", " ")).split()}
    known = set(keep) | {w for words in _FUNCTION_WORDS.values() for w in words}
    for tag, intent in kb.intents.items():
        if tag != "out_of_scope":
            known |= {w for texts in intent.patterns.values() for t in texts for w in normalize(t).split()}
    for file in kb.topics.values():  # the answers are a few thousand ordinary words of each language
        known |= {w for answer in file.answers.values() for text in (answer.es, answer.en) for w in normalize(text).split()}
    return keep, known
