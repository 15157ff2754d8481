"""The question classifier: which question a message asks (or which small intent it is), whatever topic it names.

It is the LiteRT bag-of-stems net of inference/intents.py, trained (training/train_intents.py) on the shared
question phrasings of bot/knowledge/questions.json and the small intents' patterns, all with their topic words
masked exactly as at serving time.
"""

from __future__ import annotations

import re

from inference.intents import IntentGuess, IntentModel

from ..knowledge import BOT_QUESTIONS, Question
from .topics import MASK, TopicFinder, TopicMatch

# Small intents about using the bot: a cue for one of the bot's own questions ("which images can you read?") wins.
BOT_INTENTS = frozenset({"how_to_send", "capabilities", "tumor_types_detected", "how_ai_works", "delete_data"})


def prepare(finder: TopicFinder, text: str, lang: str) -> TopicMatch:
    """The topic pass over a message or a training phrasing ("{t}" is any topic name)."""
    return finder.find(text.replace("{t}", f" {MASK} "), lang)


class QuestionClassifier:
    """The net's guess, corrected by question cues (bot/knowledge/question_cues.json).

    The net knows the shared phrasings; a cue knows the subject words ("cabergoline", "relapse", "report").
    When the net's best guess is a question (or nothing) and some question is cued, the most specific cued
    question wins: "what is the Stupp protocol?" is a treatment question, "is gadolinium dangerous?" a
    contrast one. The net alone decides among the small intents and when nothing is cued.
    """

    def __init__(self, model: IntentModel, cues: dict) -> None:
        self.model = model
        raw = cues or {"cues": {}, "precedence": []}
        self.cues = {Question(q): tuple(re.compile(p) for p in patterns) for q, patterns in raw["cues"].items()}
        order = [Question(q) for q in raw.get("precedence", [])]
        self.precedence = order + [q for q in self.cues if q not in order]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.model.spec.labels)

    def cued(self, match: TopicMatch) -> set[str]:
        texts = (match.residue, match.masked)  # the masked text keeps a cue that spans a topic word
        return {q.value for q, patterns in self.cues.items() if any(p.search(x) for p in patterns for x in texts)}

    def classify(self, match: TopicMatch, lang: str, allowed: frozenset[str] | None = None) -> IntentGuess:
        probs = self.model.probabilities(features_text(match.masked), lang) or {}
        pool = {k: v for k, v in probs.items() if allowed is None or k in allowed}
        best = max(pool, key=pool.get) if pool else None
        cued = {q for q in self.cued(match) if allowed is None or q in allowed}
        questions = {q.value for q in Question}
        bot_cued = cued & {q.value for q in BOT_QUESTIONS}
        if cued and (best is None or best in questions) or bot_cued and best in BOT_INTENTS:
            pick = next(q.value for q in self.precedence if q.value in (cued if best not in BOT_INTENTS else bot_cued))
            return IntentGuess(pick, pick, round(max(pool.get(pick, 0.0), self.model.threshold), 4))
        if best is None:
            return IntentGuess(None, "", 0.0)
        confidence = pool[best]
        return IntentGuess(best if confidence >= self.model.threshold else None, best, round(confidence, 4))


def features_text(masked: str) -> str:
    """What the classifier reads: the message without its topic words (the placeholder carries no question)."""
    return " ".join(w for w in masked.split() if w != MASK)
