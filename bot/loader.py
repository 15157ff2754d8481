"""The one place that loads the models and owns their lifetime.

Polling, `serve`, the console, `ask`, `predict` and the benchmarks all start here, so they share the warm-up and
the threads. The manifest is read once. The chat router is built on the caller's thread, where texts are
answered. The cascade is built and warmed up on an inference thread: LiteRT interpreters are per thread
(inference/runtime.py), so its first interpreters are ones that thread serves with, not an idle copy elsewhere.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from inference.cascade import Cascade
from inference.intents import IntentModel
from inference.manifest import Manifest, load_manifest

from .chat import ChatRouter
from .knowledge import load_knowledge
from .settings import Settings


def _warm_cascade(manifest: Manifest) -> Cascade:
    return Cascade(manifest).warm_up()


@dataclass
class Models:
    """Everything loaded from MODELS_DIR and KNOWLEDGE_DIR, and the inference threads that serve the cascade."""

    manifest: Manifest
    router: ChatRouter
    pool: ThreadPoolExecutor
    cascade: Cascade | None  # None when only the chat was asked for

    def run(self, fn, *args):
        """Run `fn(*args)` on an inference thread and wait for it (for synchronous callers such as `predict`)."""
        return self.pool.submit(fn, *args).result()

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def inference_pool(settings: Settings) -> ThreadPoolExecutor:
    """The threads that decode and classify images (INFERENCE_WORKERS), off the event loop."""
    return ThreadPoolExecutor(max_workers=max(1, settings.inference_workers), thread_name_prefix="infer")


def load_models(settings: Settings, images: bool = True) -> Models:
    """The chat router and, with `images`, the warmed-up cascade. The chat alone does not need the gating table
    (it only quotes it, and says when the image side has not fitted one)."""
    manifest = load_manifest(settings.models_dir, require_gating=images)
    router = ChatRouter(load_knowledge(settings.knowledge_dir), IntentModel.from_manifest(manifest), manifest)
    pool = inference_pool(settings)
    cascade = pool.submit(_warm_cascade, manifest).result() if images else None
    return Models(manifest, router, pool, cascade)


def chat_router(models_dir: Path | None = None) -> ChatRouter:
    """The chat alone, as `ask` loads it (for evaluation, benchmarks and tests); `models_dir` overrides MODELS_DIR."""
    settings = Settings() if models_dir is None else Settings(MODELS_DIR=models_dir)
    return load_models(settings, images=False).router
