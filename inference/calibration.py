"""Temperature-scaled softmax: the one place logits become probabilities."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def softmax(logits: np.ndarray, temperature: float = 1.0) -> NDArray[np.float64]:
    z = np.asarray(logits, dtype=np.float64) / max(float(temperature), 1e-6)
    z = z - z.max(axis=-1, keepdims=True)
    e: NDArray[np.float64] = np.exp(z)
    total: NDArray[np.float64] = e.sum(axis=-1, keepdims=True)  # numpy types a keepdims reduction as Any
    return e / total
