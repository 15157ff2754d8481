"""What the bot records, as small typed operations on the conversation log."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from inference.cascade import CascadeResult

from .engine import Database
from .models import Feedback, Message, Prediction, User, utcnow


@dataclass(frozen=True)
class HistoryItem:
    created_at: dt.datetime
    verdict: str
    tumor_type: str | None
    tumor_probability: float


def _clean(text: str | None, limit: int | None = None) -> str | None:
    """Text as every backend accepts it: PostgreSQL refuses NUL characters and over-long VARCHARs."""
    if text is None:
        return None
    text = text.replace("\x00", "")
    return text[:limit] if limit else text


async def _user(session: AsyncSession, telegram_id: int, language: str | None = None) -> User:
    user = await session.scalar(select(User).where(User.telegram_id == telegram_id))
    if user is None:
        user = User(telegram_id=telegram_id, language=language or "es")
        session.add(user)
        await session.flush()
    return user


class ConversationLog:
    def __init__(self, db: Database, store_images: bool = False) -> None:
        self.db = db
        self.store_images = store_images

    async def language(self, telegram_id: int) -> str | None:
        async def op(session: AsyncSession):
            return await session.scalar(select(User.language).where(User.telegram_id == telegram_id))

        return await self.db.read(op)

    async def ensure_user(self, telegram_id: int, language: str) -> None:
        async def op(session: AsyncSession):
            await _user(session, telegram_id, language)

        await self.db.write(op)

    async def set_language(self, telegram_id: int, language: str) -> None:
        async def op(session: AsyncSession):
            (await _user(session, telegram_id, language)).language = language

        await self.db.write(op)

    async def record_consent(self, telegram_id: int, language: str) -> None:
        async def op(session: AsyncSession):
            user = await _user(session, telegram_id, language)
            user.consent_at = user.consent_at or utcnow()

        await self.db.write(op)

    async def message(self, telegram_id: int, language: str, direction: str, kind: str,
                      text: str | None = None, intent: str | None = None) -> None:
        async def op(session: AsyncSession):
            user = await _user(session, telegram_id, language)
            session.add(Message(user_id=user.id, direction=direction, kind=_clean(kind, 16), text=_clean(text),
                                intent=_clean(intent, 64)))

        await self.db.write(op)

    async def prediction(self, telegram_id: int, language: str, source: str, image_sha256: str,
                         result: CascadeResult, image: bytes | None = None) -> int | None:
        async def op(session: AsyncSession) -> int:
            user = await _user(session, telegram_id, language)
            p = result.type_probabilities
            row = Prediction(
                user_id=user.id, source=source, image_sha256=image_sha256,
                mri_probability=result.mri_probability, tumor_probability=result.tumor_probability,
                p_glioma=p.get("glioma", 0.0), p_meningioma=p.get("meningioma", 0.0),
                p_notumor=p.get("notumor", 0.0), p_pituitary=p.get("pituitary", 0.0),
                verdict=result.verdict, tumor_type=result.tumor_type, reasons=",".join(result.reasons),
                latency_ms=result.latency_ms, model_versions=json.dumps(result.model_versions, sort_keys=True),
                image_bytes=image if self.store_images else None,
            )
            session.add(row)
            await session.flush()
            return row.id

        return await self.db.write(op)

    async def feedback(self, telegram_id: int, prediction_id: int, helpful: bool) -> bool:
        async def op(session: AsyncSession) -> bool:
            user = await session.scalar(select(User).where(User.telegram_id == telegram_id))
            owned = user is not None and await session.scalar(
                select(func.count()).select_from(Prediction).where(Prediction.id == prediction_id,
                                                                   Prediction.user_id == user.id))
            if not owned:
                return False
            session.add(Feedback(user_id=user.id, prediction_id=prediction_id, helpful=helpful))
            return True

        return bool(await self.db.write(op))

    async def history(self, telegram_id: int, limit: int = 5) -> list[HistoryItem]:
        async def op(session: AsyncSession):
            rows = await session.execute(
                select(Prediction.created_at, Prediction.verdict, Prediction.tumor_type, Prediction.tumor_probability)
                .join(User, User.id == Prediction.user_id).where(User.telegram_id == telegram_id)
                .order_by(Prediction.id.desc()).limit(limit))
            return [HistoryItem(*r) for r in rows]

        return await self.db.read(op)

    async def forget(self, telegram_id: int) -> str:
        """Delete every row about the user (children first: no reliance on ON DELETE support).

        Returns "deleted", "nothing" (no rows existed) or "queued" (the database refused for now;
        the delete is queued and replayed, and the user is told to confirm again later).
        """

        async def op(session: AsyncSession) -> bool:
            user_id = await session.scalar(select(User.id).where(User.telegram_id == telegram_id))
            if user_id is None:
                return False
            for table in (Feedback, Prediction, Message):
                await session.execute(delete(table).where(table.user_id == user_id))
            await session.execute(delete(User).where(User.id == user_id))
            return True

        outcome = await self.db.write(op)
        return "queued" if outcome is None else "deleted" if outcome else "nothing"

    async def counts(self, telegram_id: int) -> dict[str, int]:
        async def op(session: AsyncSession) -> dict[str, int]:
            user_id = await session.scalar(select(User.id).where(User.telegram_id == telegram_id))
            out = {"users": 0 if user_id is None else 1}
            for name, table in (("messages", Message), ("predictions", Prediction), ("feedback", Feedback)):
                out[name] = 0 if user_id is None else int(await session.scalar(
                    select(func.count()).select_from(table).where(table.user_id == user_id)))
            return out

        return await self.db.read(op)
