"""Serve the chat intent model (bag of stems → small net) with LiteRT."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

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
        vocab_file = spec.file.parent / spec.extra["vocabulary"]
        self.vocab = Vocabulary.from_json(json.loads(vocab_file.read_text()))
        self.model = TFLiteModel(spec.file)
        self.threshold = spec.thresholds["min_confidence"]

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> "IntentModel":
        return cls(manifest["intents"])

    def classify(self, text: str, lang: str) -> IntentGuess:
        features = vectorize(text, lang, self.vocab)
        if not features.any():
            return IntentGuess(None, "", 0.0)
        probs = softmax(self.model.run(features[None])[0], self.spec.temperature)
        i = int(np.argmax(probs))
        best, confidence = self.spec.labels[i], float(probs[i])
        return IntentGuess(best if confidence >= self.threshold else None, best, round(confidence, 4))
