"""Serve the chat intent model (bag of stems → small net) with LiteRT."""

from __future__ import annotations

import json
from dataclasses import dataclass

from .calibration import softmax
from .manifest import Manifest, ModelSpec
from .runtime import TFLiteModel
from .text import Vocabulary, vectorize


@dataclass(frozen=True)
class IntentGuess:
    intent: str | None  # None when below the fallback threshold
    best: str  # the top-scoring intent, even when it fell back
    confidence: float


class IntentModel:
    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        vocab_file = spec.file.parent / spec.vocabulary
        self.vocab = Vocabulary.from_json(json.loads(vocab_file.read_text()))
        self.model = TFLiteModel(spec.file)
        # The question classifier falls back below this; the red-flag net has its own threshold (bot/nlu/safety.py).
        self.threshold = spec.thresholds.get("min_confidence", 0.0)

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> IntentModel:
        return cls(manifest["intents"])

    def probabilities(self, text: str, lang: str) -> dict[str, float] | None:
        """Calibrated probability of every label, or None when the text has no known feature."""
        features = vectorize(text, lang, self.vocab)
        if not features.any():
            return None
        probs = softmax(self.model.run(features[None])[0], self.spec.temperature)
        return dict(zip(self.spec.labels, map(float, probs)))

    def classify(self, text: str, lang: str, allowed: frozenset[str] | None = None) -> IntentGuess:
        """The best label (among `allowed`, when given), None below the fallback threshold."""
        probs = self.probabilities(text, lang)
        if probs is None:
            return IntentGuess(None, "", 0.0)
        pool = {k: v for k, v in probs.items() if allowed is None or k in allowed} or probs
        best = max(pool, key=pool.__getitem__)
        confidence = pool[best]
        return IntentGuess(best if confidence >= self.threshold else None, best, round(confidence, 4))
