"""The chat router: emergencies first, then the intent model, then an honest fallback.

Shared by the Telegram handlers, the console chat and `saveyourlife ask`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from inference.intents import IntentModel
from inference.manifest import Manifest
from inference.text import detect_language, fold, stem, tokens

from .knowledge import Intent, KnowledgeBase, Link
from .messages import has, percent, t

EMERGENCY = "emergency"
OUT_OF_SCOPE = "out_of_scope"
MAX_INPUT_CHARS = 1000


@dataclass(frozen=True)
class Reply:
    text: str  # plain text; callers escape it before any HTML formatting
    lang: str
    intent: str | None
    confidence: float
    kind: str  # "emergency" | "answer" | "fallback" | "empty"
    links: tuple[Link, ...] = ()
    follow_ups: tuple[tuple[str, str], ...] = field(default=())  # (tag, button label)


class RedFlags:
    """A message is a red flag when every stem of one entry occurs in it (either language)."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.entries = [
            (lang, frozenset(stem(w, lang) for w in words))
            for lang, lists in kb.red_flags.items() for words in lists
        ]

    def match(self, text: str) -> bool:
        words = tokens(text)
        stems = {lang: {stem(w, lang) for w in words} for lang in {"es", "en"}}
        return any(entry <= stems[lang] for lang, entry in self.entries)


def accuracy_values(manifest: Manifest, lang: str) -> dict[str, str]:
    """Measured figures from models/manifest.json, formatted for the accuracy answer."""

    def metric(model: str, *path: str) -> float | None:
        node = manifest.raw.get("models", {}).get(model, {}).get("metrics", {})
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        return node if isinstance(node, (int, float)) else None

    test_images = metric("typer", "n")
    return {
        "typer_accuracy": percent(metric("typer", "accuracy"), lang),
        "typer_macro_f1": percent(metric("typer", "macro_f1"), lang),
        "detector_sensitivity": percent(metric("detector", "operating_point", "sensitivity"), lang),
        "detector_specificity": percent(metric("detector", "operating_point", "specificity"), lang),
        "discriminator_accuracy": percent(metric("discriminator", "accuracy"), lang),
        "test_images": str(int(test_images)) if test_images is not None else t("common.not_available", lang),
    }


class ChatRouter:
    def __init__(self, kb: KnowledgeBase, model: IntentModel, manifest: Manifest) -> None:
        self.kb = kb
        self.model = model
        self.manifest = manifest
        self.red_flags = RedFlags(kb)

    def language_of(self, text: str, language_code: str | None = None) -> str:
        return detect_language(text, language_code)

    def answer(self, text: str, lang: str | None = None, language_code: str | None = None) -> Reply:
        text = (text or "")[:MAX_INPUT_CHARS]
        lang = lang or self.language_of(text, language_code)
        if not tokens(text):
            return Reply(t("chat.empty", lang), lang, None, 0.0, "empty")
        if self.red_flags.match(text):
            return self._intent_reply(self.kb.intents[EMERGENCY], lang, 1.0, "emergency")
        guess = self.model.classify(text, lang)
        if guess.intent is None or guess.intent == OUT_OF_SCOPE:
            return self._fallback(lang, guess.confidence, text)
        return self._intent_reply(self.kb.intents[guess.intent], lang, guess.confidence, "answer", text)

    def topic(self, tag: str, lang: str) -> Reply | None:
        """The answer for a follow-up button (no classification needed)."""
        intent = self.kb.intents.get(tag)
        return self._intent_reply(intent, lang, 1.0, "answer") if intent else None

    def _fallback(self, lang: str, confidence: float, text: str) -> Reply:
        intent = self.kb.intents[OUT_OF_SCOPE]
        reply = self._intent_reply(intent, lang, confidence, "fallback", text)
        return Reply(reply.text, lang, None, confidence, "fallback", (), reply.follow_ups)

    def _intent_reply(self, intent: Intent, lang: str, confidence: float, kind: str, seed_text: str = "") -> Reply:
        options = intent.responses.get(lang) or intent.responses.get("es") or ("",)
        pick = int(hashlib.sha256(fold(seed_text).encode()).hexdigest(), 16) % len(options) if seed_text else 0
        text = options[pick]
        if "{" in text:
            text = text.format_map(_Missing(accuracy_values(self.manifest, lang)))
        follow_ups = tuple((tag, self.topic_label(tag, lang)) for tag in intent.follow_ups if tag in self.kb.intents)
        links = intent.links.get(lang) or intent.links.get("en") or ()
        return Reply(text, lang, intent.tag, round(confidence, 4), kind, tuple(links), follow_ups)

    def topic_label(self, tag: str, lang: str) -> str:
        key = f"topic.{tag}"
        if has(key):
            return t(key, lang)
        patterns = self.kb.intents[tag].patterns.get(lang) or ("?",)
        return patterns[0][:40]


class _Missing(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"
