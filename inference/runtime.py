"""LiteRT interpreters: created once per model and per thread, never shared unsafely.

A LiteRT Interpreter is not thread-safe, so each worker thread gets its own copy
of the (small) model, built lazily from the bytes read once at start-up.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter


class TFLiteModel:
    """One `.tflite` file; `run(batch)` returns the raw output (logits) for a batch."""

    def __init__(self, model: bytes | Path, num_threads: int = 1) -> None:
        self._content = model.read_bytes() if isinstance(model, Path) else bytes(model)
        self._num_threads = num_threads
        self._local = threading.local()
        first = self._interpreter()
        detail = first.get_input_details()[0]
        self.input_shape = tuple(int(d) for d in detail["shape"][1:])
        self.input_dtype = np.dtype(detail["dtype"])

    def _interpreter(self) -> Interpreter:
        interp = getattr(self._local, "interp", None)
        if interp is None:
            interp = Interpreter(model_content=self._content, num_threads=self._num_threads)
            interp.allocate_tensors()
            self._local.interp = interp
            self._local.batch = 1
        return interp

    def run(self, batch: np.ndarray) -> np.ndarray:
        interp = self._interpreter()
        inp = interp.get_input_details()[0]
        n = int(batch.shape[0])
        if self._local.batch != n:
            interp.resize_tensor_input(inp["index"], (n, *self.input_shape), strict=False)
            interp.allocate_tensors()
            self._local.batch = n
            inp = interp.get_input_details()[0]
        interp.set_tensor(inp["index"], np.ascontiguousarray(batch, dtype=self.input_dtype))
        interp.invoke()
        out = interp.get_output_details()[0]
        return np.array(interp.get_tensor(out["index"]), copy=True)

    def run_in_chunks(self, data: np.ndarray, chunk: int = 64, tta: str | None = None) -> np.ndarray:
        return np.concatenate([self.logits(data[i:i + chunk], tta) for i in range(0, len(data), chunk)], axis=0)

    def logits(self, batch: np.ndarray, tta: str | None = None) -> np.ndarray:
        """Raw outputs; with tta="hflip" the mean over the image and its mirror (one batched call).

        Training evaluates, calibrates and thresholds with the same setting it writes to the
        manifest, so serving with it changes no published number.
        """
        if tta is None:
            return self.run(batch)
        if tta != "hflip":
            raise ValueError(f"unknown test-time augmentation {tta!r}")
        n = len(batch)
        out = self.run(np.concatenate([batch, batch[:, :, ::-1]], axis=0))
        mean: np.ndarray = (out[:n] + out[n:]) / 2.0  # the model's own output dtype, which numpy cannot know
        return mean
