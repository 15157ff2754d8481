"""What the bot records, as small typed operations on the conversation log.

The hot path (a question and its answer) is one statement in one transaction: both rows are
inserted by `INSERT ... SELECT users.id, ... WHERE users.telegram_id = ? UNION ALL ...`, so there
is no separate user lookup and no user row id to go stale (see `_insert_for_user`). The user's
language is cached in memory for a few seconds (`LANGUAGE_TTL_S`): with several worker processes
on one database it is the only thing that may be stale, and only for that long.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from time import monotonic
from typing import Any

from sqlalchemy import Table, bindparam, delete, func, insert, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from inference.cascade import CascadeResult

from .context import ContextStore, delete_context
from .engine import Database
from .models import Feedback, Message, Prediction, User, utcnow

# Another worker's /lang reaches this process's cache within this time; this process's own at once.
LANGUAGE_TTL_S = 5.0
CACHE_LIMIT = 10_000
_LANGUAGE = select(User.language).where(User.telegram_id == bindparam("telegram_id"))


@dataclass(frozen=True)
class HistoryItem:
    created_at: dt.datetime
    verdict: str
    tumor_type: str | None
    tumor_probability: float


@dataclass(frozen=True)
class Row:
    """One `messages` row; `at` is taken when the row is made, so a question is stamped before its answer."""

    direction: str  # "in" | "out"
    kind: str
    text: str | None = None
    intent: str | None = None
    at: dt.datetime = field(default_factory=utcnow)

    def values(self) -> dict[str, Any]:
        return {"direction": self.direction, "kind": _clean(self.kind, 16), "text": _clean(self.text),
                "intent": _clean(self.intent, 64), "created_at": self.at}


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


@lru_cache(maxsize=32)
def _insert_for_user(table: Table, columns: tuple[str, ...], n_rows: int, returning_id: bool = False):
    """`INSERT INTO table (user_id, ...) SELECT users.id, :c_0, ... FROM users WHERE telegram_id = :telegram_id`,
    with `UNION ALL` one SELECT per row.

    One statement for every row of an exchange, whose `user_id` is found inside the INSERT: no
    separate lookup, and it cannot go stale -- a row id remembered from before a /forget (which
    SQLite may give to the next new user) is never used. No user row: nothing is inserted.
    Built once per shape, so SQLAlchemy neither rebuilds it nor recomputes its cache key per call.
    """
    picks = [select(User.id, *(bindparam(f"{c}_{i}", type_=table.c[c].type) for c in columns))
             .where(User.telegram_id == bindparam("telegram_id")) for i in range(n_rows)]
    stmt = insert(table).from_select(["user_id", *columns], picks[0] if n_rows == 1 else union_all(*picks))
    return stmt.returning(table.c.id) if returning_id else stmt


def _for_user(table: Table, telegram_id: int, rows: Sequence[Mapping[str, Any]], returning_id: bool = False):
    """The statement and parameters that insert `rows` for the user (see `_insert_for_user`)."""
    columns = tuple(rows[0])
    params = {"telegram_id": telegram_id}
    for i, row in enumerate(rows):
        params.update((f"{c}_{i}", row[c]) for c in columns)
    return _insert_for_user(table, columns, len(rows), returning_id), params


async def _new_user(session: AsyncSession, telegram_id: int, language: str) -> int:
    return (await session.execute(insert(User.__table__).values(telegram_id=telegram_id, language=language)
                                  .returning(User.id))).scalar_one()


async def _add_rows(session: AsyncSession, table: Table, telegram_id: int, language: str,
                    rows: Sequence[Mapping[str, Any]]) -> bool:
    """Insert `rows` (without `user_id`) for this Telegram user, creating the user first if needed.

    Returns whether the user was created. Rows are inserted in order (ids ascend: a question before its answer).
    """
    if (await session.execute(*_for_user(table, telegram_id, rows))).rowcount == len(rows):
        return False
    user_id = await _new_user(session, telegram_id, language)
    await session.execute(insert(table), [{"user_id": user_id, **row} for row in rows])
    return True


async def _add_row_returning_id(session: AsyncSession, table: Table, telegram_id: int, language: str,
                                row: Mapping[str, Any]) -> int:
    """Like `_add_rows` for one row, returning the new row's id (a prediction's id goes on its feedback buttons)."""
    row_id = (await session.execute(*_for_user(table, telegram_id, [row], returning_id=True))).scalar()
    if row_id is None:
        user_id = await _new_user(session, telegram_id, language)
        row_id = (await session.execute(insert(table).values(user_id=user_id, **row).returning(table.c.id))).scalar_one()
    return row_id


@dataclass
class _Cached:
    language: str | None  # None: the user had no row when this was read
    read_at: float  # monotonic() when read


class ConversationLog:
    def __init__(self, db: Database, store_images: bool = False, language_ttl_s: float = LANGUAGE_TTL_S) -> None:
        self.db = db
        self.store_images = store_images
        self.language_ttl_s = language_ttl_s
        self._languages: dict[int, _Cached] = {}
        # Bumped by /lang and /forget: a read that began before either must not refill the cache.
        self._epoch = 0

    # ---- the language cache ---------------------------------------------------------------------

    def _remember(self, telegram_id: int, language: str | None, epoch: int) -> None:
        if epoch != self._epoch:
            return
        if len(self._languages) >= CACHE_LIMIT and telegram_id not in self._languages:
            del self._languages[next(iter(self._languages))]  # the oldest entry
        self._languages[telegram_id] = _Cached(language, monotonic())

    def _invalidate(self, telegram_id: int) -> None:
        self._epoch += 1
        self._languages.pop(telegram_id, None)

    async def language(self, telegram_id: int) -> str | None:
        """The stored language (None for a user without a row); cached for `language_ttl_s`."""
        cached = self._languages.get(telegram_id)
        if cached is not None and monotonic() - cached.read_at < self.language_ttl_s:
            return cached.language
        epoch = self._epoch

        async def op(session: AsyncSession):
            return await session.scalar(_LANGUAGE, {"telegram_id": telegram_id})

        stored = await self.db.read(op)
        self._remember(telegram_id, stored, epoch)
        return stored

    # ---- writes ---------------------------------------------------------------------------------

    async def ensure_user(self, telegram_id: int, language: str) -> None:
        async def op(session: AsyncSession):
            await _user(session, telegram_id, language)

        await self.db.write(op)

    async def set_language(self, telegram_id: int, language: str) -> None:
        async def op(session: AsyncSession):
            (await _user(session, telegram_id, language)).language = language

        self._invalidate(telegram_id)
        await self.db.write(op)
        self._invalidate(telegram_id)
        # Even when the write is queued: it is what the user asked for, and the replay will store it.
        self._remember(telegram_id, language, self._epoch)
        # An explicit choice: from now on it beats the language each message is written in.
        await ContextStore(self.db).choose_language(telegram_id, language)

    async def record_consent(self, telegram_id: int, language: str) -> None:
        async def op(session: AsyncSession):
            user = await _user(session, telegram_id, language)
            user.consent_at = user.consent_at or utcnow()

        await self.db.write(op)

    async def exchange(self, telegram_id: int, language: str, *rows: Row) -> None:
        """Log rows (a message and its reply) in ONE transaction: all of them are written, or queued, together."""
        if not rows:
            return
        values = [row.values() for row in rows]
        epoch = self._epoch

        async def op(session: AsyncSession) -> bool:
            return await _add_rows(session, Message.__table__, telegram_id, language, values)

        if await self.db.write(op):  # this write created the user, with this language
            self._remember(telegram_id, language, epoch)

    async def message(self, telegram_id: int, language: str, direction: str, kind: str,
                      text: str | None = None, intent: str | None = None) -> None:
        await self.exchange(telegram_id, language, Row(direction, kind, text, intent))

    async def prediction(self, telegram_id: int, language: str, source: str, image_sha256: str,
                         result: CascadeResult, image: bytes | None = None) -> int | None:
        values = dict(
            source=source, image_sha256=image_sha256,
            mri_probability=result.mri_probability, tumor_probability=result.tumor_probability,
            type_probabilities=dict(result.type_probabilities),  # a copy: a queued write must not see later edits
            verdict=result.verdict, tumor_type=result.tumor_type, reasons=",".join(result.reasons),
            latency_ms=result.latency_ms, model_versions=json.dumps(result.model_versions, sort_keys=True),
            image_bytes=image if self.store_images else None, created_at=utcnow(),
        )

        async def op(session: AsyncSession) -> int:
            return await _add_row_returning_id(session, Prediction.__table__, telegram_id, language, values)

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
            await delete_context(session, telegram_id)  # even without a user row: the context is about them too
            user_id = await session.scalar(select(User.id).where(User.telegram_id == telegram_id))
            if user_id is None:
                return False
            for table in (Feedback, Prediction, Message):
                await session.execute(delete(table).where(table.user_id == user_id))
            await session.execute(delete(User).where(User.id == user_id))
            return True

        self._invalidate(telegram_id)
        outcome = await self.db.write(op)
        self._invalidate(telegram_id)
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
