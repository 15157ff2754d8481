"""Metrics (scikit-learn), temperature scaling and abstention thresholds.

ECE, reliability bins and the operating-point searches have no scikit-learn equivalent and stay in numpy.
"""

from __future__ import annotations

import numpy as np

from inference.calibration import softmax


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> np.ndarray:
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(y_true, y_pred, labels=np.arange(n))


def classification_report(y_true: np.ndarray, probs: np.ndarray, labels: list[str]) -> dict:
    """Per-class precision, recall and F1 (scikit-learn; an empty class scores 0), the confusion matrix and ECE."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    y_pred = probs.argmax(1)
    classes = np.arange(len(labels))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=classes, zero_division=0)
    per_class = {name: {"precision": round(float(precision[i]), 4), "recall": round(float(recall[i]), 4),
                        "f1": round(float(f1[i]), 4), "support": int(support[i])} for i, name in enumerate(labels)}
    return {
        "n": int(len(y_true)),
        "accuracy": round(float(accuracy_score(y_true, y_pred)), 4),
        "macro_f1": round(float(np.mean(f1)), 4),
        "per_class": per_class,
        "confusion_matrix": confusion(y_true, y_pred, len(labels)).tolist(),
        "ece": round(expected_calibration_error(y_true, probs), 4),
    }


def expected_calibration_error(y_true: np.ndarray, probs: np.ndarray, bins: int = 15) -> float:
    confidence = probs.max(1)
    correct = probs.argmax(1) == y_true
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        mask = (confidence > lo) & (confidence <= hi)
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(ece)


def reliability_bins(y_true: np.ndarray, probs: np.ndarray, bins: int = 10) -> list[dict]:
    confidence = probs.max(1)
    correct = probs.argmax(1) == y_true
    edges = np.linspace(0.0, 1.0, bins + 1)
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        mask = (confidence > lo) & (confidence <= hi)
        out.append({"lo": float(lo), "hi": float(hi), "n": int(mask.sum()),
                    "accuracy": float(correct[mask].mean()) if mask.any() else None,
                    "confidence": float(confidence[mask].mean()) if mask.any() else None})
    return out


def fit_temperature(logits: np.ndarray, y_true: np.ndarray) -> float:
    """Temperature that minimises validation NLL (golden-section search on log T)."""

    def nll(log_t: float) -> float:
        p = softmax(logits, float(np.exp(log_t)))
        return float(-np.log(np.clip(p[np.arange(len(y_true)), y_true], 1e-12, 1.0)).mean())

    lo, hi = np.log(0.05), np.log(20.0)
    ratio = (np.sqrt(5) - 1) / 2
    for _ in range(80):
        a = hi - ratio * (hi - lo)
        b = lo + ratio * (hi - lo)
        if nll(a) < nll(b):
            hi = b
        else:
            lo = a
    return round(float(np.exp((lo + hi) / 2)), 4)


def binary_operating_point(p_pos: np.ndarray, y_pos: np.ndarray, min_sensitivity: float,
                           min_specificity: float | None = None) -> dict:
    """The best specificity that keeps sensitivity ≥ target; the threshold then sits halfway (in logit space)
    between the lowest positive it keeps and the highest negative below it, not on an example's own score.

    With `min_specificity`, that floor comes first when both cannot be had: the lowest threshold reaching it
    (the best sensitivity that keeps specificity ≥ its floor)."""
    candidates = np.unique(np.concatenate([[0.0], p_pos]))
    scored, specific = [], []
    for t in candidates:
        pred = p_pos >= t
        sens = pred[y_pos == 1].mean() if (y_pos == 1).any() else 1.0
        spec = (~pred[y_pos == 0]).mean() if (y_pos == 0).any() else 1.0
        if sens >= min_sensitivity:
            scored.append((spec, sens, -t))
        if min_specificity is not None and spec >= min_specificity:
            specific.append((sens, spec, -t))
    if scored and (min_specificity is None or max(scored)[0] >= min_specificity):
        spec, sens, neg_t = max(scored)  # best specificity, then best sensitivity, then the lowest threshold
    elif specific:
        sens, spec, neg_t = max(specific)  # best sensitivity, then best specificity, then the lowest threshold
    else:
        return {"threshold": 0.0, "sensitivity": 1.0, "specificity": 0.0}
    t = -neg_t
    below = p_pos[p_pos < t]
    if len(below) and t > 0:
        logit = lambda q: np.log(np.clip(q, 1e-6, 1 - 1e-6) / (1 - np.clip(q, 1e-6, 1 - 1e-6)))  # noqa: E731
        t = float(1 / (1 + np.exp(-(logit(t) + logit(below.max())) / 2)))
    return {"threshold": float(t), "sensitivity": float(sens), "specificity": float(spec)}


def sens_spec(p_pos: np.ndarray, y_pos: np.ndarray, threshold: float) -> dict:
    pred = p_pos >= threshold
    pos, neg = y_pos == 1, y_pos == 0
    return {"threshold": round(float(threshold), 4),
            "sensitivity": round(float(pred[pos].mean()), 4) if pos.any() else None,
            "specificity": round(float((~pred[neg]).mean()), 4) if neg.any() else None}


def abstention_band(p_pos: np.ndarray, y_pos: np.ndarray, threshold: float,
                    target_accuracy: float = 0.98, min_coverage: float = 0.95) -> tuple[float, float]:
    """Widen an uncertain band around `threshold` until answered accuracy reaches the target.

    Stops at the widest band that still answers `min_coverage` of the data.
    Returns (low, high): below low is negative, at or above high is positive.
    """
    low, high = threshold, threshold
    margins = np.linspace(0.0, 0.5, 101)
    for m in margins:
        lo_c, hi_c = max(0.0, threshold - m), min(1.0, threshold + m)
        answered = (p_pos < lo_c) | (p_pos >= hi_c)
        if answered.mean() < min_coverage:
            break
        low, high = lo_c, hi_c
        pred = p_pos[answered] >= hi_c
        if answered.any() and (pred == (y_pos[answered] == 1)).mean() >= target_accuracy:
            break
    return round(float(low), 4), round(float(high), 4)


def coverage_at(probs: np.ndarray, y_true: np.ndarray, min_confidence: float) -> dict:
    answered = probs.max(1) >= min_confidence
    acc = (probs.argmax(1)[answered] == y_true[answered]).mean() if answered.any() else 0.0
    return {"min_confidence": round(float(min_confidence), 4), "coverage": round(float(answered.mean()), 4),
            "answered_accuracy": round(float(acc), 4)}


def confidence_threshold(probs: np.ndarray, y_true: np.ndarray, target_accuracy: float = 0.98,
                         min_coverage: float = 0.95) -> float:
    """Smallest max-probability cut that reaches the answered-accuracy target within the coverage floor."""
    chosen = 0.0
    for t in np.linspace(0.25, 0.99, 75):
        c = coverage_at(probs, y_true, t)
        if c["coverage"] < min_coverage:
            break
        chosen = float(t)
        if c["answered_accuracy"] >= target_accuracy:
            break
    return round(chosen, 4)
