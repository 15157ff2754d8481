"""The bot's core, free of Telegram: answer a text, analyse an image, keep the log.

Telegram handlers and the console chat both call this, so they behave the same.
CPU work (decoding, inference) runs in a bounded thread pool, off the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from inference.cascade import Cascade, CascadeResult
from inference.errors import InputRejected
from inference.picture import PictureAnalysis, analyse_picture
from inference.scan import Scan, load_scan

from .chat import ChatRouter, Reply
from .db.engine import Database
from .db.log import ConversationLog, Row
from .db.shared import SharedState, SharedStateUnavailable
from .loader import Models, inference_pool, load_models
from .settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageOutcome:
    """Either a result or a rejection, plus what the reply needs."""

    result: CascadeResult | None = None
    rejection: InputRejected | None = None
    scan: Scan | None = None
    prediction_id: int | None = None
    analysis: PictureAnalysis | None = None  # where the scan was found, and a film sheet's slices


class Assistant:
    def __init__(self, settings: Settings, cascade: Cascade, router: ChatRouter, db: Database,
                 pool: ThreadPoolExecutor | None = None) -> None:
        self.settings = settings
        self.cascade = cascade
        self.router = router
        self.db = db
        self.log = ConversationLog(db, store_images=settings.store_images)
        self.pool = pool or inference_pool(settings)
        # Heatmaps cost ~30x a classification: their own single thread, so results never queue behind them.
        self.heatmap_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="heatmap")
        self.cpu_slots = asyncio.Semaphore(max(1, settings.inference_workers) * 2)
        # Shared by every worker through the database: rate limits, update claims, confirmations.
        self.shared = SharedState(db)

    @classmethod
    def from_models(cls, settings: Settings, models: Models, db: Database) -> Assistant:
        return cls(settings, models.cascade, models.router, db, models.pool)

    @classmethod
    async def create(cls, settings: Settings) -> Assistant:
        """Load the models (bot/loader.py) and open (and migrate) the database, once per process."""
        models = await asyncio.get_running_loop().run_in_executor(None, load_models, settings)
        db = Database(settings.database_url)
        await db.migrate()
        return cls.from_models(settings, models, db)

    async def image_wait(self, user_id: int) -> float:
        """Per-user image rate limit (IMAGES_PER_MINUTE), shared by all workers: 0 if allowed, else seconds.

        Fails open: when the database cannot answer, the image is served (and a warning logged)
        rather than refusing everyone while the log is unavailable.
        """
        try:
            return await self.shared.hit(user_id, "image", self.settings.images_per_minute, 60.0)
        except SharedStateUnavailable as exc:
            log.warning("image rate limit not checked, database unavailable (%s)", exc)
            return 0.0

    async def close(self) -> None:
        await self.db.close()
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.heatmap_pool.shutdown(wait=True, cancel_futures=True)

    async def run_cpu(self, fn, *args):
        async with self.cpu_slots:
            return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    async def user_language(self, user_id: int, language_code: str | None, text: str = "") -> str:
        stored = await self.log.language(user_id)
        return stored or self.router.language_of(text, language_code)

    async def ask(self, user_id: int, text: str, lang: str, kind: str = "text") -> Reply:
        """Answer, then log the question and the answer in one transaction (both rows or neither)."""
        question = Row("in", kind, text[:4096])
        try:
            reply = self.router.answer(text, lang=lang)
        except Exception:
            await self.log.exchange(user_id, lang, question)  # a question that broke the router is still logged
            raise
        await self.log.exchange(user_id, lang, question, Row("out", reply.kind, reply.text, reply.intent))
        return reply

    async def analyse(self, user_id: int, data: bytes, file_name: str | None, source: str, lang: str) -> ImageOutcome:
        await self.log.message(user_id, lang, "in", source, file_name)
        try:
            scan = await self.run_cpu(load_scan, data, file_name)
            analysis = await self.run_cpu(analyse_picture, self.cascade, scan.image, None, scan.kind != "dicom")
            result = analysis.result
        except InputRejected as rejection:
            await self.log.message(user_id, lang, "out", "rejected", rejection.code)
            return ImageOutcome(rejection=rejection)
        prediction_id = await self.log.prediction(user_id, lang, "dicom" if scan.kind == "dicom" else source,
                                                  scan.sha256, result, data)
        await self.log.message(user_id, lang, "out", "result", result.verdict)
        return ImageOutcome(result=result, scan=scan, prediction_id=prediction_id, analysis=analysis)

    def _heatmap_jpeg(self, outcome: ImageOutcome, caption: str) -> bytes:
        import io

        from inference.heatmap import occlusion_map, render_overlay

        image = outcome.analysis.image  # the located scan (or a sheet's leading slice), as the models saw it
        heat = occlusion_map(self.cascade, image, outcome.result)
        buf = io.BytesIO()
        # JPEG: Telegram re-encodes photos as JPEG anyway, and an optimised PNG cost 123 ms vs 1 ms.
        render_overlay(image, heat, caption, blur=self.cascade.manifest.pipeline.heatmap["overlay_blur"]).save(
            buf, format="JPEG", quality=85)
        return buf.getvalue()

    async def heatmap_image(self, outcome: ImageOutcome, caption: str) -> bytes | None:
        """An overlay of what drove a `tumor`/`inconclusive` answer, or None when there is nothing to show."""
        if outcome.result is None or outcome.result.verdict not in ("tumor", "inconclusive") \
                or "unsure_mri" in outcome.result.reasons:
            return None
        return await asyncio.get_running_loop().run_in_executor(self.heatmap_pool, self._heatmap_jpeg, outcome, caption)
