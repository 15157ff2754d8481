"""The conversation context in the database: read before a text is answered, written when it changed.

One row per user (chat_context), so every webhook worker sees the same context and it survives restarts.
Writes go through Database.write (retried, queued when the database fails); reads fail soft to an empty
context, because a lost follow-up is better than a lost answer.
"""

from __future__ import annotations

import logging

from sqlalchemy import delete, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession

from ..chat_context import ChatContext, ImageResult, TopicSource
from ..knowledge import Question, Topic
from .engine import Database
from .models import ChatContextRow, utcnow

log = logging.getLogger(__name__)


def _from_row(row: ChatContextRow | None) -> ChatContext:
    if row is None:
        return ChatContext()
    topic = Topic(row.topic) if row.topic in Topic.__members__.values() else None
    image = None
    if row.image_verdict and row.image_at is not None:
        image = ImageResult(row.image_verdict, row.image_tumor_type, row.image_sequence, row.image_at)
    source = TopicSource(row.topic_source) if row.topic_source in TopicSource.__members__.values() else TopicSource.TEXT
    question = Question(row.question) if topic and row.question in Question.__members__.values() else None
    return ChatContext(topic, row.topic_at if topic else None, source, question, image, row.chosen_language)


def _values(ctx: ChatContext) -> dict:
    image = ctx.image
    return {"topic": ctx.topic.value if ctx.topic else None, "topic_source": ctx.topic_source.value,
            "topic_at": ctx.topic_at, "question": ctx.question.value if ctx.question else None,
            "image_verdict": image.verdict if image else None,
            "image_tumor_type": image.tumor_type if image else None,
            "image_sequence": image.sequence if image else None, "image_at": image.at if image else None,
            "chosen_language": ctx.chosen_language, "updated_at": utcnow()}


class ContextStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, telegram_id: int) -> ChatContext:
        async def op(session: AsyncSession) -> ChatContext:
            return _from_row(await session.get(ChatContextRow, telegram_id))

        try:
            return await self.db.read(op)
        except (DBAPIError, OSError, PoolTimeout) as exc:
            log.warning("conversation context not read (%s); answering without it", type(exc).__name__)
            return ChatContext()

    async def put(self, telegram_id: int, ctx: ChatContext) -> None:
        """Insert or update the user's row (a portable read-then-write inside one transaction)."""
        values = _values(ctx)

        async def op(session: AsyncSession) -> None:
            row = await session.get(ChatContextRow, telegram_id)
            if row is None:
                session.add(ChatContextRow(telegram_id=telegram_id, **values))
            else:
                for key, value in values.items():
                    setattr(row, key, value)

        await self.db.write(op)

    async def choose_language(self, telegram_id: int, language: str) -> None:
        """/lang: the user's explicit choice, which then beats the language of each message."""

        async def op(session: AsyncSession) -> None:  # one write, no read: /lang must not cost a round trip
            row = await session.get(ChatContextRow, telegram_id)
            if row is None:
                session.add(ChatContextRow(telegram_id=telegram_id, **_values(ChatContext(chosen_language=language))))
            else:
                row.chosen_language, row.updated_at = language, utcnow()

        await self.db.write(op)

    async def remember_image(self, telegram_id: int, verdict: str, tumor_type: str | None, sequence: str | None) -> None:
        ctx = (await self.get(telegram_id)).with_image(verdict, tumor_type, sequence, utcnow())
        await self.put(telegram_id, ctx)


async def delete_context(session: AsyncSession, telegram_id: int) -> None:
    """Part of /forget (bot/db/log.py): the row goes with everything else about the user."""
    await session.execute(delete(ChatContextRow).where(ChatContextRow.telegram_id == telegram_id))


async def context_rows(session: AsyncSession, telegram_id: int) -> int:
    return len((await session.execute(select(ChatContextRow.telegram_id)
                                      .where(ChatContextRow.telegram_id == telegram_id))).all())
