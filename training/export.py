"""Keras → `.tflite`, choosing the variant by measured parity and latency."""

from __future__ import annotations

import time

import numpy as np
import tensorflow as tf

from inference.calibration import softmax
from inference.runtime import TFLiteModel

VARIANTS = ("float32", "float16", "dynamic_int8")


def convert(model: tf.keras.Model, variant: str) -> bytes:
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if variant == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "dynamic_int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif variant != "float32":
        raise ValueError(variant)
    return converter.convert()


def single_image_latency_ms(content: bytes, sample: np.ndarray, repeats: int = 50) -> float:
    model = TFLiteModel(content)
    one = sample[:1].astype(np.float32)
    model.run(one)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        model.run(one)
        times.append((time.perf_counter() - t) * 1000)
    return float(np.median(times))


def choose_variant(model: tf.keras.Model, x_test: np.ndarray, y_test: np.ndarray, keras_logits: np.ndarray,
                   temperature: float, max_accuracy_drop: float = 0.005) -> tuple[str, bytes, dict]:
    """The fastest variant whose accuracy on the given (validation) images is within 0.5 pt of Keras.

    Returns the chosen name, its bytes and a table of every candidate.
    """
    keras_acc = float((keras_logits.argmax(1) == y_test).mean())
    keras_probs = softmax(keras_logits, temperature)
    table: dict[str, dict] = {}
    blobs: dict[str, bytes] = {}
    for variant in VARIANTS:
        content = convert(model, variant)
        logits = TFLiteModel(content).run_in_chunks(x_test.astype(np.float32))
        probs = softmax(logits, temperature)
        table[variant] = {
            "bytes": len(content),
            "val_accuracy": round(float((logits.argmax(1) == y_test).mean()), 4),
            "keras_val_accuracy": round(keras_acc, 4),
            "argmax_agreement_with_keras": round(float((logits.argmax(1) == keras_logits.argmax(1)).mean()), 4),
            "max_abs_prob_diff": round(float(np.abs(probs - keras_probs).max()), 5),
            "latency_ms_1_image": round(single_image_latency_ms(content, x_test), 3),
        }
        blobs[variant] = content
    eligible = [v for v in VARIANTS if keras_acc - table[v]["val_accuracy"] <= max_accuracy_drop]
    chosen = min(eligible or ["float32"], key=lambda v: (table[v]["latency_ms_1_image"], table[v]["bytes"]))
    return chosen, blobs[chosen], table
