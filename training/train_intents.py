"""Train the chat question classifier from the knowledge base and export it for LiteRT.

    saveyourlife train intents

Labels are the question ids (bot/knowledge/questions.json, phrasings shared by every topic) and the small
social/bot intents (bot/knowledge/intents.json). Every text goes through the router's own topic pass first
(bot.nlu.questions.prepare), so topic names are masked exactly as at serving time. The fallback threshold is
chosen on a held-out slice of the phrasings (15 %, with the out-of-scope intent standing for unknown
questions); the final net is then refit on every phrasing. The evaluation sets in tests/data/chat are only
ever used for evaluation (training/evaluate_chat.py).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np

from bot.knowledge import load_knowledge
from bot.nlu.questions import features_text, prepare
from bot.nlu.topics import TopicFinder, knowledge_words
from inference.calibration import softmax
from inference.text import build_vocabulary, vectorize

from .manifest_io import update_manifest_entry
from .metrics import fit_temperature

OUT_OF_SCOPE = "out_of_scope"
VOCAB_FILE = "intents_vocab.json"
EVAL_DIR = Path(__file__).resolve().parents[1] / "tests" / "data" / "chat"


def _fit(samples, labels, vocab, seed: int, epochs: int):
    import keras

    from .models import intent_classifier

    keras.utils.set_random_seed(seed)
    x = np.stack([vectorize(t, lang, vocab) for t, lang, _ in samples])
    y = np.array([labels.index(tag) for _, _, tag in samples])
    model = intent_classifier(x.shape[1], len(labels))
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=16, verbose=0, shuffle=True)
    return model


def _holdout(samples, seed: int, share: float = 0.15):
    def bucket(sample):
        return int(hashlib.sha256(f"{seed}:{sample[0]}".encode()).hexdigest(), 16) % 1000 / 1000

    train = [s for s in samples if bucket(s) >= share]
    held = [s for s in samples if bucket(s) < share]
    return train, held


def _choose_threshold(probs: np.ndarray, tags: list[str], labels: list[str]) -> float:
    """Maximise in-scope correct answers + out-of-scope fallbacks on the held-out patterns."""
    in_scope = np.array([t != OUT_OF_SCOPE for t in tags])
    truth = np.array([labels.index(t) for t in tags])
    pred = probs.argmax(1)
    conf = probs.max(1)
    best_t, best_score = 0.3, -1.0
    for t in np.linspace(0.1, 0.9, 81):
        answered = (conf >= t) & (pred != labels.index(OUT_OF_SCOPE))
        ok_in = (answered & (pred == truth))[in_scope].mean()
        ok_out = (~answered)[~in_scope].mean() if (~in_scope).any() else 1.0
        score = ok_in + ok_out
        if score > best_score + 1e-9:
            best_t, best_score = float(t), score
    return round(best_t, 3)


def train_intents(models_dir: Path, seed: int = 1234, epochs: int | None = None, log=print) -> dict:
    from .export import convert

    started = time.time()
    kb = load_knowledge()
    finder = TopicFinder(kb, *knowledge_words(kb))
    samples = [(features_text(prepare(finder, text, lang).masked), lang, label) for text, lang, label in kb.training_samples()]
    samples = [s for s in samples if s[0]]
    labels = sorted({label for _, _, label in samples})
    epochs = epochs or 60

    train, held = _holdout(samples, seed)
    vocab = build_vocabulary([(t, lang) for t, lang, _ in train])
    probe = _fit(train, labels, vocab, seed, epochs)
    held_x = np.stack([vectorize(t, lang, vocab) for t, lang, _ in held])
    held_logits = probe.predict(held_x, verbose=0)
    held_tags = [tag for _, _, tag in held]
    temperature = fit_temperature(held_logits, np.array([labels.index(t) for t in held_tags]))
    threshold = _choose_threshold(softmax(held_logits, temperature), held_tags, labels)
    holdout_accuracy = float((held_logits.argmax(1) == np.array([labels.index(t) for t in held_tags])).mean())
    log(f"[intents] held-out patterns: {len(held)}, accuracy {holdout_accuracy:.3f}, T={temperature}, threshold={threshold}")

    vocab = build_vocabulary([(t, lang) for t, lang, _ in samples])
    model = _fit(samples, labels, vocab, seed, epochs)
    content = convert(model, "float32")
    models_dir.mkdir(parents=True, exist_ok=True)
    (models_dir / "intents.tflite").write_bytes(content)
    (models_dir / VOCAB_FILE).write_text(json.dumps(vocab.to_json(), ensure_ascii=False) + "\n")
    entry = {
        "file": "intents.tflite",
        "kind": "text",
        "vocabulary": VOCAB_FILE,
        "vocabulary_sha256": hashlib.sha256((models_dir / VOCAB_FILE).read_bytes()).hexdigest(),
        "labels": labels,
        "input": {"features": len(vocab.features), "dtype": "float32"},
        "preprocessing": "bot.nlu.questions.prepare (topic words masked as 'xtopic'), then inference.text: NFKD "
                         "accent folding, lower-case, regexp tokens, Snowball stems (es/en), stem bigrams, typo repair "
                         "by nltk edit_distance",
        "temperature": temperature,
        "thresholds": {"min_confidence": threshold},
        "training": {"seed": seed, "epochs": epochs, "patterns": len(samples), "seconds": round(time.time() - started, 1),
                     "holdout_patterns": len(held), "holdout_accuracy": round(holdout_accuracy, 4)},
    }
    # The dev paraphrases are scored through the whole router (safety layer, lexicon, context), which changes
    # without this model: one place holds those figures, the chat card, rewritten by each evaluate_chat run.
    entry["metrics"] = {"measured_by": "python -m training.evaluate_chat", "card": "cards/chat/metrics.json"}
    update_manifest_entry(models_dir, "intents", entry, content)
    if (EVAL_DIR / "dev.json").exists():
        from .evaluate_chat import dev_summary

        log(f"[intents] dev paraphrases: {json.dumps(dev_summary(models_dir, EVAL_DIR))}")
    return entry
